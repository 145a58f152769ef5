"""The accuracy-gated search: measure every configuration, judge it, recommend one.

Each measured configuration is a store row (kind ``deploy``) keyed by model, configuration,
batch size, threads, weights, the compared images and the machine, with its logits beside
the store (``outputs/KEY.npy``), so a rerun with the same ``out`` folder measures only what
is missing. Statuses are decided after measuring, so another ``tolerance`` on a rerun
judges the same figures again.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dnnmeter.deployment import configs as cfg
from dnnmeter.deployment.images import Images, choose
from dnnmeter.deployment.judge import judge
from dnnmeter.deployment.result import ConfigResult, DeployResult
from dnnmeter.deployment.runner import Runner, in_subprocess
from dnnmeter.deployment.stats import parse_tolerance
from dnnmeter.deployment.worker import DeploySpec
from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.timing import TimingSettings
from dnnmeter.store import Store, machine_id, measurement_key

DEFAULT_IMAGES = 256
TOLERANCE_ON = ("agreement", "accuracy")
OnConfig = Callable[[ConfigResult], None]


def _timing(budget_min: float, measurable: int) -> TimingSettings:
    """Half of the budget for timing, shared by the configurations; the rest builds and runs them."""
    per_config_s = budget_min * 60 / max(1, measurable) / 2
    return TimingSettings(time_budget_s=min(2.0, max(0.2, per_config_s)), warmup_s=0.1)


def _images_file(work: Path, images: Images) -> tuple[Path, str]:
    import torch

    digest = hashlib.sha256(images.images.numpy().tobytes()).hexdigest()[:16]
    path = work / f"images-{digest}.pt"
    if not path.is_file():
        torch.save({"images": images.images, "calibration": images.calibration}, path)
    return path, digest


class _Session:
    """One search's settings and folders; measures a configuration or takes it from the store."""

    def __init__(self, model: str, device: str, batch_size: int, weights: str | None, work: Path,
                 images: Images, timing: TimingSettings, runner: Runner) -> None:
        self.model, self.device, self.batch_size, self.weights = model, device, batch_size, weights
        self.work, self.images, self.timing, self.runner = work, images, timing, runner
        (work / "outputs").mkdir(parents=True, exist_ok=True)
        self.images_path, self.images_digest = _images_file(work, images)

    def key(self, config: cfg.Config) -> str:
        return measurement_key("deploy", self.model, config=config.name, batch=self.batch_size,
                               threads=config.threads, machine=machine_id(), weights=self.weights,
                               images=self.images_digest, device=self.device)

    def artefacts(self) -> Path:
        """Shared by this search's configurations: one ONNX export serves every ORT level."""
        same = measurement_key("deploy-artefacts", self.model, batch=self.batch_size, weights=self.weights,
                               images=self.images_digest, device=self.device)[:16]
        return self.work / "artefacts" / same

    def outputs(self, key: str) -> Path:
        return self.work / "outputs" / f"{key}.npy"

    def measure(self, config: cfg.Config, store: Store) -> tuple[ConfigResult, np.ndarray | None]:
        key = self.key(config)
        stored = next(iter(store.rows("deploy", {key})), None)
        if stored is not None and self.outputs(key).is_file():
            return ConfigResult.from_dict(stored.data), np.load(self.outputs(key))
        spec = DeploySpec(self.model, config.kind, config.threads, self.batch_size, str(self.images_path),
                          str(self.outputs(key)), str(self.artefacts()), self.weights,
                          self.device, self.timing)
        raw = self.runner(spec)
        result = ConfigResult.from_dict({**raw, "name": config.name, "kind": config.kind, "threads": config.threads})
        if raw.get("status") != "measured":
            return result, None
        store.add(key, "deploy", self.model, result.to_dict(), batch_size=self.batch_size, device=self.device)
        return result, np.load(self.outputs(key))


def deploy(
    model: str,
    device: str = "cpu",
    batch_size: int = 1,
    threads: int | None = None,
    data: str | None = None,
    weights: str | None = None,
    tolerance: str | float = "1%",
    tolerance_on: str = "agreement",
    budget_min: float = 10.0,
    configs: list[str] | None = None,
    export: str | Path | None = None,
    out: str | Path | None = None,
    images: int = DEFAULT_IMAGES,
    runner: Runner = in_subprocess,
    capabilities: cfg.Capabilities | None = None,
    on_config: OnConfig | None = None,
    store: str | Path | None = None,
) -> DeployResult:
    """The fastest way to run ``model`` here whose outputs stay within ``tolerance``.

    Every configuration (dnnmeter.deployment.configs) is measured in a process of its own by
    ``runner``; those that cannot run here are ``skipped`` with the reason, those that fail
    ``failed``. ``tolerance`` ("1%" or 0.01) bounds the loss of top-1 agreement with eager
    float32 (``tolerance_on="agreement"``) or the drop of top-1 accuracy ("accuracy", needs
    labelled ``data``). ``out`` keeps the store (resumable) and the outputs compared;
    ``store`` (a path or an SQLAlchemy URL) puts the rows elsewhere, e.g. a shared store;
    ``export`` writes the winner.

    >>> r = deploy("tiny_alexnet", configs=["int8"], budget_min=0.5)  # doctest: +SKIP
    >>> r.recommended, r.config(r.recommended).speedup  # doctest: +SKIP
    """
    from dnnmeter.zoo import resolve

    resolve(model)  # an unknown name is said before anything runs
    share = parse_tolerance(tolerance)
    if tolerance_on not in TOLERANCE_ON:
        raise InvalidInputError(f"bad tolerance_on {tolerance_on!r}: choose {' or '.join(TOLERANCE_ON)}")
    if batch_size < 1 or images < 1:
        raise InvalidInputError("batch_size and images must be at least 1")
    from dnnmeter.measure import check_bench_args, not_runnable_reason

    check_bench_args(device, [batch_size], "float32")  # a device that is not here is said before any work
    why_not = not_runnable_reason(model)
    if why_not:
        raise InvalidInputError(why_not)
    caps = capabilities or cfg.probe(device)
    planned = cfg.plan(device, caps, threads, configs)
    chosen = choose(model, data, weights, images)
    if tolerance_on == "accuracy" and chosen.labels is None:
        raise InvalidInputError("--tolerance-on accuracy needs labelled images: pass --data digits or a folder")
    with _work_dir(out) as work, Store(store or work / "results.sqlite") as store:
        measurable = sum(cfg.skip_reason(c, caps, device) is None for c in planned)
        session = _Session(model, device, batch_size, weights, work, chosen, _timing(budget_min, measurable), runner)
        results, outputs = _measure_all(planned, caps, session, store, on_config)
        verdict = judge(results, outputs, chosen.labels, share, tolerance_on)
        if weights is None:  # once the baseline ran: bad input stays the only line
            warnings.warn(f"{model} has its initial (random) weights: agreement with float32 still holds, but an "
                          "accuracy change means nothing; pass --weights FILE or --weights default", stacklevel=2)
        result = DeployResult(model, device, batch_size, share, tolerance_on, int(chosen.images.shape[0]),
                              chosen.note, verdict.baseline, verdict.recommended, verdict.reason, results,
                              _environment(device, threads))
        if export is not None:
            from dnnmeter.deployment.export import export_recommended

            export_recommended(result, Path(export), weights)
    return result


def _measure_all(planned: list[cfg.Config], caps: cfg.Capabilities, session: _Session, store: Store,
                 on_config: OnConfig | None) -> tuple[list[ConfigResult], dict[str, np.ndarray]]:
    results: list[ConfigResult] = []
    outputs: dict[str, np.ndarray] = {}
    for config in planned:
        why = cfg.skip_reason(config, caps, session.device)
        if why is not None:
            result = ConfigResult(config.name, config.kind, config.threads, "skipped", why)
        else:
            started = time.perf_counter()
            result, logits = session.measure(config, store)
            result.extra.setdefault("wall_s", time.perf_counter() - started)
            if logits is not None:
                outputs[config.name] = logits
        results.append(result)
        if on_config is not None:
            on_config(result)
    return results, outputs


class _work_dir:
    """``out`` (made if missing), or a temporary folder removed afterwards."""

    def __init__(self, out: str | Path | None) -> None:
        self.out, self.temp = out, None

    def __enter__(self) -> Path:
        if self.out is not None:
            Path(self.out).mkdir(parents=True, exist_ok=True)
            return Path(self.out)
        self.temp = tempfile.TemporaryDirectory(prefix="dnnmeter-deploy-")
        return Path(self.temp.name)

    def __exit__(self, *exc: Any) -> None:
        if self.temp is not None:
            self.temp.cleanup()


def _environment(device: str, threads: int | None) -> dict[str, Any]:
    from dnnmeter.measure.environment import capture_environment

    return capture_environment(device=device, threads=threads)
