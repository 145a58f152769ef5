"""``predict``: a model's latency on this machine from its meta-device analysis and a calibration.

Nothing is run for real: each model is analysed on the meta device at each batch size and
its layers go through the calibrated predictor. Every figure is labelled ``predicted``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dnnmeter.errors import DnnmeterError, InvalidInputError
from dnnmeter.prediction import records


@dataclass
class LayerPrediction:
    name: str
    kind: str
    fit: str  # the fit that predicted it: g:<group>, k:<kind> (fallback) or all
    latency_s: float


@dataclass
class Prediction:
    """Predicted latency of one model at one batch size (seconds per batch unless named)."""

    model: str
    batch_size: int
    device: str
    threads: int | None
    dtype: str
    input_size: tuple[int, ...] = ()
    latency_s: float | None = None
    latency_s_low: float | None = None
    latency_s_high: float | None = None
    latency_s_per_image: float | None = None
    images_per_s: float | None = None
    macs: int | None = None
    params: int | None = None
    published_top1: float | None = None  # fraction, from the zoo's published metadata
    calibration: dict[str, Any] = field(default_factory=dict)
    source: str = "predicted"
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    layers: list[LayerPrediction] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d


def expand_models(models: str | Sequence[str]) -> list[str]:
    """Names, sources (``torchvision``, ``seed``, ``timm``) and wildcards (``'timm:eff*'``) to names."""
    from dnnmeter.zoo import SOURCES, expand_names, list_models, resolve

    names: list[str] = []
    for name in [models] if isinstance(models, str) else list(models):
        if name == "seed":
            found = expand_names([name])
        elif name in SOURCES:
            found = [e.name for e in list_models(source=name)]
        elif any(c in name for c in "*?["):
            found = [e.name for e in list_models(name, source="timm" if name.startswith("timm:") else None)]
            if not found:
                raise InvalidInputError(f"no model matches {name!r}; see `dnnmeter models` for the names")
        else:
            found = [resolve(name).name]
        names += [n for n in found if n not in names]
    return names


def _calibration(device: str, threads: int | None, dtype: str, directory: Path) -> dict[str, Any]:
    from dnnmeter.measure.environment import capture_environment

    identity = records.machine_identity(capture_environment(device, threads))
    key = records.calibration_key(identity, threads, dtype)
    return records.load_calibration(directory, key, records.command_for(device, threads, dtype, directory))


def predict(models: str | Sequence[str], batch_sizes: Sequence[int] = (1,), device: str = "cpu",
            threads: int | None = None, dtype: str = "float32", calibration_dir: str | Path | None = None,
            per_layer: bool = False, max_latency_s: float | None = None) -> list[Prediction]:
    """Predicted latency of each model at each batch size, from this machine's calibration.

    ``max_latency_s`` keeps only predictions within it, best published top-1 first (models
    without a published accuracy last, fastest first). A model that cannot be analysed gets
    a Prediction with ``error`` set (and a warning), so a wildcard's other models still come.
    """
    from dnnmeter.measure import check_bench_args, default_threads
    from dnnmeter.prediction.predictor import Predictor

    check_bench_args(device, batch_sizes, dtype)
    if threads is None and device == "cpu":
        threads = default_threads()[0]
    names = expand_models(models)
    directory = Path(calibration_dir) if calibration_dir else records.default_dir()
    calibration = _calibration(device, threads, dtype, directory)
    predictor = Predictor(calibration)
    from dnnmeter.measure.heap import calibration_heap

    # the heap its kernels were timed with: compare with bench points measured with the same (settings.heap)
    used = {**{k: calibration.get(k) for k in ("key", "path", "created_utc")}, "heap": calibration_heap(calibration)}
    out = []
    for name in names:
        for batch in sorted(set(batch_sizes)):
            base = Prediction(model=name, batch_size=batch, device=device, threads=threads, dtype=dtype,
                              calibration=used)
            out.append(_one(predictor, base, per_layer))
    return rank(out, max_latency_s) if max_latency_s is not None else out


def _one(predictor: Any, p: Prediction, per_layer: bool) -> Prediction:
    import torch

    from dnnmeter.analysis import analyze
    from dnnmeter.prediction.features import group_of
    from dnnmeter.prediction.predictor import COPY_GROUP

    try:
        with torch.inference_mode(False):  # under inference mode the meta pass sees no ops to count
            analysis = analyze(p.model, batch_size=p.batch_size, copies=True)  # as calibration analyses
    except DnnmeterError as exc:
        p.error = str(exc)
        warnings.warn(f"{p.model}: not predicted: {exc}", stacklevel=3)
        return p
    point, low, high, each, fits = predictor.model_s(analysis.layers)
    executed = predictor.priced(analysis.layers)
    p.input_size, p.macs, p.params = analysis.input_size, analysis.macs, analysis.params
    p.latency_s, p.latency_s_low, p.latency_s_high = point, low, high
    p.latency_s_per_image, p.images_per_s = point / p.batch_size, p.batch_size / point
    if analysis.published and analysis.published.top1 is not None:
        p.published_top1 = analysis.published.top1
    fallback = sum(1 for f in fits if not f.startswith("g:"))
    if fallback:
        p.notes.append(f"{fallback} of {len(fits)} layers have no calibrated kernel group; "
                       "predicted from a broader fit")
    copies = sum(1 for layer in analysis.layers if layer.executed and group_of(layer) == COPY_GROUP)
    if copies and not predictor.prices_copies:
        p.notes.append(f"{copies} memory copies (cat, roll, padding, ...) predicted as free: this calibration "
                       "timed no copy kernels; calibrate again to price them")
    if predictor.overhead_note:
        p.notes.append(f"no whole-network overhead added ({predictor.overhead_note}): likely predicted low")
    if analysis.unsupported_ops:
        p.notes.append(f"ops without a cost formula (predicted as free calls): {', '.join(analysis.unsupported_ops)}")
    if per_layer:
        p.layers = [LayerPrediction(layer.name, layer.kind, f, float(t))
                    for layer, f, t in zip(executed, fits, each, strict=True)]
    return p


def rank(predictions: list[Prediction], max_latency_s: float) -> list[Prediction]:
    """Those within ``max_latency_s``, best published top-1 first, then fastest."""
    if not max_latency_s > 0:
        raise InvalidInputError(f"bad latency budget {max_latency_s!r}: give a positive number")
    fits = [p for p in predictions if p.latency_s is not None and p.latency_s <= max_latency_s]
    return sorted(fits, key=lambda p: (p.published_top1 is None, -(p.published_top1 or 0.0), p.latency_s))
