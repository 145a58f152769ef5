"""The roofline: how fast each layer could run on this machine, and how fast it does.

For each product layer (from :func:`~dnnmeter.hardware.layers.extract_layers`):

- ``flops`` = 2 x MACs; ``min_bytes`` = the DRAM lower bound (each weight, input and output
  moved once) x bytes per element;
- ``arithmetic_intensity_flops_per_byte`` = flops / min_bytes;
- ``attainable_flops_per_s`` = min(peak, intensity x bandwidth) (Williams, Waterman and
  Patterson, *Roofline*, CACM 2009), and ``attainable_time_s`` = flops / attainable;
- ``bound`` = "compute" when the intensity reaches the ridge point peak / bandwidth, else
  "memory".

With ``measure=True`` the model runs on the CPU: torch.profiler times every convolution and
matrix product (the outermost ``aten::convolution``, ``aten::linear``, ``aten::matmul``,
``aten::mm``, ``aten::addmm``, ``aten::bmm`` ... event, matched to the layers in order; when
the events do not line up one to one with the layers, per-layer times are left out and the
reason says why), and :func:`dnnmeter.measure.timing.time_calls` times the whole forward
pass. ``fraction_of_roofline`` = attainable time / measured time: 1 is the machine's limit.

>>> from dnnmeter.hardware import measure_ceilings, roofline
>>> r = roofline("resnet18", measure_ceilings(threads=1), threads=1)    # doctest: +SKIP
>>> r.fraction_of_roofline, [l.bound for l in r.layers][:3]               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dnnmeter._serial import Record

import torch
from torch import nn

from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware.accesses import lower_bound
from dnnmeter.hardware.estimate import model_input_size
from dnnmeter.hardware.ceilings import Ceilings, measure_ceilings
from dnnmeter.hardware.layers import LayerShape, extract_layers
from dnnmeter.hardware.profile_match import match_layer_times
from dnnmeter.measure.threads import torch_threads
from dnnmeter.measure.timing import TimingSettings, time_calls
from dnnmeter.zoo import create_model

__all__ = ["RooflineLayer", "RooflineRecord", "RooflineResult", "RooflineTotals", "attainable_flops_per_s", "roofline", "roofline_layer"]


def attainable_flops_per_s(intensity: float, peak_flops_per_s: float, bandwidth_bytes_per_s: float) -> float:
    """min(peak, intensity x bandwidth): the roof over ``intensity`` FLOPs per byte."""
    return min(peak_flops_per_s, intensity * bandwidth_bytes_per_s)


@dataclass(frozen=True)
class RooflineLayer(Record):
    """One layer under the roof; the measured fields are None when not measured."""

    name: str
    kind: str
    macs: int
    flops: int
    min_bytes: int
    arithmetic_intensity_flops_per_byte: float
    attainable_flops_per_s: float
    attainable_time_s: float
    bound: str  # "compute" or "memory"
    measured_time_s: float | None = None
    measured_flops_per_s: float | None = None
    fraction_of_roofline: float | None = None


def roofline_layer(layer: LayerShape, ceilings: Ceilings, dtype_bytes: int = 4,
                   measured_time_s: float | None = None) -> RooflineLayer:
    """One layer's place under the roof of ``ceilings`` (and against its measured time)."""
    peak, bandwidth, ridge = ceilings.peak_flops_per_s, ceilings.bandwidth_bytes_per_s, ceilings.ridge_flops_per_byte
    if peak is None or bandwidth is None or ridge is None:
        raise InvalidInputError(f"no ceilings for {ceilings.device}: {ceilings.unavailable_reason or 'missing peak'}")
    flops, min_bytes = 2 * layer.macs, lower_bound(layer) * dtype_bytes
    intensity = flops / min_bytes
    attainable = attainable_flops_per_s(intensity, peak, bandwidth)
    time_s = flops / attainable
    measured = measured_time_s if measured_time_s and measured_time_s > 0 else None
    return RooflineLayer(
        name=layer.name, kind=layer.kind, macs=layer.macs, flops=flops, min_bytes=min_bytes,
        arithmetic_intensity_flops_per_byte=intensity, attainable_flops_per_s=attainable,
        attainable_time_s=time_s, bound="compute" if intensity >= ridge else "memory",
        measured_time_s=measured, measured_flops_per_s=None if measured is None else flops / measured,
        fraction_of_roofline=None if measured is None else time_s / measured,
    )


@dataclass(frozen=True)
class RooflineResult:
    """Every product layer under the roof, and the whole model against its measured latency.

    ``attainable_time_s`` sums the layers' attainable times (products only: element-wise
    layers are not in it); ``measured_latency_s`` is the median forward time of the whole
    model (None with ``latency_unavailable_reason``); ``fraction_of_roofline`` is their
    ratio. Per-layer measured times are None with ``layer_times_unavailable_reason`` when
    the profiler's events could not be matched to the layers."""

    model: str
    ceilings: Ceilings
    dtype_bytes: int
    batch_size: int
    input_size: list[int] | None
    layers: list[RooflineLayer]
    measured_latency_s: float | None = None
    latency_samples_s: list[float] = field(default_factory=list)
    latency_unavailable_reason: str | None = None
    layer_times_unavailable_reason: str | None = None
    threads: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def min_bytes(self) -> int:
        return sum(layer.min_bytes for layer in self.layers)

    @property
    def attainable_time_s(self) -> float:
        return sum(layer.attainable_time_s for layer in self.layers)

    @property
    def measured_layers_time_s(self) -> float | None:
        times = [layer.measured_time_s for layer in self.layers]
        return None if not times or None in times else sum(t for t in times if t is not None)

    @property
    def fraction_of_roofline(self) -> float | None:
        if not self.measured_latency_s:
            return None
        return self.attainable_time_s / self.measured_latency_s

    def counts(self) -> dict[str, int]:
        """How many layers are compute-bound and how many memory-bound."""
        return {b: sum(layer.bound == b for layer in self.layers) for b in ("compute", "memory")}

    def record(self) -> RooflineRecord:
        """The figures a table or a store wants, as one typed record."""
        totals = RooflineTotals(
            flops=self.flops, min_bytes=self.min_bytes,
            arithmetic_intensity_flops_per_byte=self.flops / self.min_bytes if self.min_bytes else None,
            attainable_time_s=self.attainable_time_s, measured_latency_s=self.measured_latency_s,
            measured_layers_time_s=self.measured_layers_time_s, fraction_of_roofline=self.fraction_of_roofline,
            bound_counts=self.counts(),
        )
        return RooflineRecord(
            model=self.model, label="measured" if self.ceilings.label == "measured" else "estimated",
            ceilings=self.ceilings, dtype_bytes=self.dtype_bytes, batch_size=self.batch_size,
            input_size=self.input_size, threads=self.threads, totals=totals,
            latency_samples_s=list(self.latency_samples_s), latency_unavailable_reason=self.latency_unavailable_reason,
            layer_times_unavailable_reason=self.layer_times_unavailable_reason, layers=list(self.layers),
            notes=list(self.notes),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_dict()


@dataclass(frozen=True)
class RooflineTotals(Record):
    """The whole model under the roof: sums over the product layers, and the measured latency."""

    flops: int
    min_bytes: int
    arithmetic_intensity_flops_per_byte: float | None
    attainable_time_s: float
    measured_latency_s: float | None = None
    measured_layers_time_s: float | None = None
    fraction_of_roofline: float | None = None
    bound_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RooflineRecord(Record):
    """A :class:`RooflineResult` as stored: ``label`` is "measured" when the ceilings were."""

    model: str
    label: str
    ceilings: Ceilings
    dtype_bytes: int
    batch_size: int
    input_size: list[int] | None
    totals: RooflineTotals
    threads: int | None = None
    latency_samples_s: list[float] = field(default_factory=list)
    latency_unavailable_reason: str | None = None
    layer_times_unavailable_reason: str | None = None
    layers: list[RooflineLayer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- measuring on the CPU -----------------------------------------------------------------------


@dataclass
class _Measured:
    latency_s: float | None = None
    samples_s: list[float] = field(default_factory=list)
    latency_reason: str | None = None
    layer_times_s: list[float] | None = None
    layer_reason: str | None = None


def _runnable(model: Any) -> tuple[nn.Module | None, str | None]:
    """A CPU module to run, or why there is none. A zoo name is built with random weights."""
    if isinstance(model, str):
        return create_model(model, device="cpu"), None
    if not isinstance(model, nn.Module):
        return None, "layers given as LayerShapes: there is no model to run"
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_meta for t in tensors):
        return None, "the model's weights are on the meta device: build it on the CPU to measure it"
    if any(t.device.type != "cpu" for t in tensors):
        return None, "the model is not on the CPU: the roofline measures on the CPU only"
    return model, None


def _measure(module: nn.Module, x: torch.Tensor, layers: list[LayerShape], warm_runs: int,
             profiled_runs: int, time_budget_s: float) -> _Measured:
    was_training = module.training
    out = _Measured()
    try:
        module.eval()
        with torch.inference_mode():
            for _ in range(warm_runs):
                module(x)
            out.layer_times_s, out.layer_reason = match_layer_times(lambda: module(x), layers, profiled_runs)
            settings = TimingSettings(time_budget_s=time_budget_s, warmup_s=min(0.2, time_budget_s / 5),
                                      min_samples=5)
            timing = time_calls(lambda: module(x), settings)
        out.latency_s, out.samples_s = timing.median_s, list(timing.samples_s)
    finally:
        module.train(was_training)
    return out


def roofline(
    model: str | nn.Module | Sequence[LayerShape],
    ceilings: Ceilings | None = None,
    *,
    input_size: Any = None,
    batch_size: int = 1,
    dtype_bytes: int = 4,
    measure: bool = True,
    threads: int | None = None,
    warm_runs: int = 2,
    profiled_runs: int = 3,
    time_budget_s: float = 1.0,
) -> RooflineResult:
    """Place every product layer of ``model`` under the roof of ``ceilings`` (measured on
    this CPU with ``threads`` when None), and with ``measure`` compare with measured times.

    ``model`` is a zoo name (built on the CPU with random weights to measure), an
    ``nn.Module`` (run as it is, in eval mode, then put back in its mode), or a list of
    :class:`LayerShape` (no measurement). ``dtype_bytes`` is the size of one element (4 for
    float32, the dtype the CPU runs). ``threads`` sets torch's threads while measuring and
    is restored after."""
    if isinstance(dtype_bytes, bool) or not isinstance(dtype_bytes, int) or dtype_bytes < 1:
        raise InvalidInputError(f"bad dtype_bytes {dtype_bytes!r}: give bytes per element, e.g. 4 for float32")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidInputError(f"bad thread count {threads!r}: give an integer >= 1")
    is_layers = isinstance(model, (list, tuple))
    layers = list(model) if is_layers else extract_layers(model, input_size, batch_size)  # type: ignore[arg-type]
    ceilings = ceilings or measure_ceilings("cpu", threads=threads)
    size = None if is_layers else model_input_size(model, input_size)
    notes: list[str] = []
    measured = _Measured(latency_reason="not measured (measure=False)", layer_reason="not measured (measure=False)")
    with torch_threads(threads):
        if measure:
            measured = _measure_model(model, layers, size, batch_size, warm_runs, profiled_runs, time_budget_s)
        used_threads = torch.get_num_threads()
    if ceilings.threads is not None and ceilings.threads != used_threads and measure:
        notes.append(f"the ceilings were measured with {ceilings.threads} thread(s), the model with {used_threads}")
    if dtype_bytes != 4 and measure:
        notes.append(f"the model was measured in float32, the roof drawn for {dtype_bytes}-byte elements")
    times = measured.layer_times_s or [None] * len(layers)
    return RooflineResult(
        model=model if isinstance(model, str) else ("layers" if is_layers else type(model).__name__),
        ceilings=ceilings, dtype_bytes=dtype_bytes, batch_size=batch_size,
        input_size=None if size is None or is_layers else list(size),
        layers=[roofline_layer(layer, ceilings, dtype_bytes, t) for layer, t in zip(layers, times)],
        measured_latency_s=measured.latency_s, latency_samples_s=measured.samples_s,
        latency_unavailable_reason=measured.latency_reason, layer_times_unavailable_reason=measured.layer_reason,
        threads=used_threads if measure else ceilings.threads, notes=notes,
    )


def _measure_model(model: Any, layers: list[LayerShape], size: tuple[int, ...] | None, batch_size: int,
                   warm_runs: int, profiled_runs: int, time_budget_s: float) -> _Measured:
    module, reason = _runnable(model)
    if module is None or size is None:
        why = reason or "no input size"
        return _Measured(latency_reason=why, layer_reason=why)
    x = torch.randn(batch_size, *size)
    return _measure(module, x, layers, warm_runs, profiled_runs, time_budget_s)
