"""One model, every batch size: build once, then time, weigh and meter each point."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from dnnmeter.measure import memory
from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.threads import torch_threads
from dnnmeter.measure.timing import cuda_event_block, time_calls
from dnnmeter.measure.spec import BenchSpec, Emit, dtype_of, is_out_of_memory


@contextlib.contextmanager
def _torch_settings(spec: BenchSpec) -> Iterator[None]:
    """Set threads and cudnn.benchmark for the measurement; put them back afterwards."""
    cudnn = torch.backends.cudnn.benchmark
    with torch_threads(spec.threads or None):
        try:
            torch.backends.cudnn.benchmark = spec.cudnn_benchmark
            yield
        finally:
            torch.backends.cudnn.benchmark = cudnn


def _base(spec: BenchSpec, batch: int, size: tuple[int, ...], environment: dict[str, Any]) -> BenchResult:
    return BenchResult(model=spec.model, device=spec.device, batch_size=batch, input_size=size,
                       dtype=spec.dtype, threads=torch.get_num_threads(), environment=environment,
                       settings={"timing": spec.timing.__dict__, "cudnn_benchmark": spec.cudnn_benchmark,
                                 "heap": spec.heap})


def measure_model(spec: BenchSpec, emit: Emit, meter: Any = None,
                  environment: Callable[..., dict[str, Any]] | None = None) -> None:
    """Measure ``spec.model`` at each batch size, emitting one BenchResult per point.

    An out-of-memory ends the sweep: the larger batch sizes are emitted as ``skipped``.
    """
    from dnnmeter.zoo import create_model, resolve

    if environment is None:
        from dnnmeter.measure.environment import capture_environment as environment
    if meter is None:
        from dnnmeter.measure.meters import meter_for

        meter = meter_for(spec.device)
    # resolving imports the source's library (timm, transformers) before the baseline, so
    # that a model's peak memory is not the library's
    entry = resolve(spec.model)
    baseline = memory.rss_bytes()
    with _torch_settings(spec), torch.inference_mode():
        env = environment(device=spec.device, threads=spec.threads)
        size = tuple(spec.input_size or _spec_size(spec) or entry.input_size)
        try:
            model = create_model(spec.model, device=spec.device).to(dtype_of(spec.dtype))
        except Exception as exc:  # noqa: BLE001 - any failure to build is this model's error
            for batch in spec.batch_sizes:
                emit(_failed(_base(spec, batch, size, env), exc))
            return
        try:
            _sweep(model, spec, size, env, baseline, meter, emit)
        finally:
            if hasattr(meter, "close"):
                meter.close()


def _sweep(model: torch.nn.Module, spec: BenchSpec, size: tuple[int, ...], env: dict[str, Any],
           baseline: int, meter: Any, emit: Emit) -> None:
    idle = meter.idle_power_w(spec.idle_s) if meter.available else None
    stopped: str | None = None
    for batch in spec.batch_sizes:
        result = _base(spec, batch, size, env)
        if stopped:
            result.status, result.error = "skipped", stopped
        else:
            try:
                _measure_point(model, spec, result, baseline, meter, idle)
            except Exception as exc:  # noqa: BLE001 - recorded on the point, never hidden
                _failed(result, exc)
                if result.status == "oom":
                    stopped = f"skipped after out of memory at batch size {batch}"
        emit(result)


def _failed(result: BenchResult, exc: BaseException) -> BenchResult:
    result.status = "oom" if is_out_of_memory(exc) else "error"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    result.error = f"{type(exc).__name__}: {first}"
    return result


def _measure_point(model: torch.nn.Module, spec: BenchSpec, result: BenchResult, baseline: int,
                   meter: Any, idle_w: float | None) -> None:
    device = torch.device(spec.device)
    args, kwargs = _inputs(spec, result.batch_size, result.input_size).real(result.batch_size, device,
                                                                              dtype_of(spec.dtype))
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)

    def call() -> object:
        return model(*args, **kwargs)

    clock_mhz = getattr(meter, "sm_clock_mhz", lambda: None)
    before_mhz = clock_mhz() if cuda else None
    timing = time_calls(call, spec.timing, sync=sync, block=cuda_event_block(device) if cuda else None)
    if cuda:
        result.settings["warmup"] = {"calls": timing.warmup_calls, "settle_blocks": timing.settle_blocks,
                                     "settled": timing.settled}
        result.settings["sm_clock_mhz"] = {"before": before_mhz, "after": clock_mhz()}
    weighed = memory.cuda_peak(call, device) if cuda else memory.cpu_peak(call, baseline)
    result.samples_s = timing.samples_s
    result.iterations_per_sample = timing.calls_per_sample
    result.latency_s_cold = timing.cold_s
    result.latency_s_median = timing.median_s
    result.latency_s_p10 = timing.percentile_s(10)
    result.latency_s_p90 = timing.percentile_s(90)
    result.latency_s_per_image = timing.median_s / result.batch_size
    result.images_per_s = result.batch_size / timing.median_s
    result.stable, result.spread = timing.stable, timing.spread
    result.stable_unknown_reason = timing.stable_unknown_reason
    result.peak_memory_bytes, result.memory_kind = weighed.peak_bytes, weighed.kind
    if weighed.reserved_bytes is not None:
        result.settings["peak_memory_reserved_bytes"] = weighed.reserved_bytes
    _meter_point(call, sync, spec, result, meter, idle_w)


def _inputs(spec: BenchSpec, batch: int, size: tuple[int, ...]) -> Any:
    from dnnmeter.analysis.inputs import Inputs, TensorSpec, parse_specs

    return parse_specs(spec.inputs) if spec.inputs else Inputs((TensorSpec((batch, *size)),))


def _spec_size(spec: BenchSpec) -> tuple[int, ...] | None:
    """The input size results report for --input specs: the first tensor's, batch left out."""
    first = _inputs(spec, 1, ()).first if spec.inputs else None
    return tuple(first.shape[1:]) if first is not None else None


def _meter_point(call: Callable[[], object], sync: Callable[[], None], spec: BenchSpec,
                 result: BenchResult, meter: Any, idle_w: float | None) -> None:
    """Energy over a window of calls long enough for the meter's counter to move."""
    from dnnmeter.measure.meters import MeterError

    if not meter.available:
        result.power_unavailable_reason = meter.unavailable_reason
        return
    try:
        reading = meter.measure(lambda: (call(), sync()), spec.min_energy_window_s)
    except MeterError as exc:  # the latency already measured stays; power says why it is missing
        result.power_unavailable_reason = str(exc)
        return
    result.power_source = f"{meter.name} ({reading.sampling})"
    result.power_w, result.idle_power_w = reading.power_w, idle_w
    if reading.energy_j is None:
        result.power_unavailable_reason = reading.unavailable_reason
        return
    images = max(1, reading.calls) * result.batch_size
    result.energy_j_per_image = reading.energy_j / images
    if idle_w is not None:
        result.energy_j_per_image_above_idle = (reading.energy_j - idle_w * reading.duration_s) / images
