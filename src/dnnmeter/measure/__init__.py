"""Measured cost: latency, throughput, peak memory, power and energy across batch sizes.

>>> from dnnmeter.measure import benchmark
>>> results = benchmark(["tiny_alexnet_dw"], batch_sizes=(1, 8), threads=1, time_budget_s=0.2)
>>> [(r.batch_size, r.status) for r in results]
[(1, 'ok'), (8, 'ok')]
>>> results[0].latency_s_median > 0, results[1].images_per_s > 0
(True, True)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence

from dnnmeter.errors import InvalidInputError
from dnnmeter.names import BENCH_DTYPES
from dnnmeter.measure.heap import check_heap, steady_heap
from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.threads import available_cores
from dnnmeter.measure.timing import TimingSettings
from dnnmeter.measure.spec import BenchSpec

__all__ = ["BenchResult", "BenchSpec", "TimingSettings", "benchmark", "default_threads", "not_runnable_reason"]

DTYPES = BENCH_DTYPES


def default_threads() -> tuple[int, str]:
    """The CPU thread count used when none is given, and why.

    Half the cores this process may run on (at least one): on machines with two hardware
    threads per core that is one thread per physical core, and it leaves room for the
    system, whose load otherwise makes numbers unrepeatable (resnet18 at batch 1 ran about
    6x slower with torch's default thread count than with one thread on a loaded 2-core
    machine).
    """
    cores = available_cores()
    threads = max(1, cores // 2)
    return threads, f"default: half of the {cores} available cores; set --threads to change"


def check_bench_args(device: str, batch_sizes: Sequence[int], dtype: str) -> None:
    """Raise InvalidInputError, before anything is measured, for a bad device, batch or dtype."""
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise InvalidInputError(f"bad batch sizes {list(batch_sizes)!r}: give positive integers, e.g. 1,2,4")
    if dtype not in DTYPES:
        raise InvalidInputError(f"bad dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if device != "cpu" and not device.startswith("cuda"):
        raise InvalidInputError(f"bad device {device!r}: use cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InvalidInputError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    if dtype == "float16" and device == "cpu":
        # Most CPUs have no fast float16 kernels: resnet18 at batch 1 ran 17x to 37x slower in
        # float16 than in bfloat16 on the machines measured (docs/bench.md).
        warnings.warn("float16 on a CPU has no fast kernels on most processors and runs far slower than "
                      "bfloat16 (17x to 37x for resnet18); use --dtype bfloat16 for a half-precision CPU figure",
                      UserWarning, stacklevel=3)


def not_runnable_reason(name: str) -> str | None:
    """Why ``name`` cannot be benchmarked, or None: bench runs a PyTorch module, which an
    ONNX file does not have (every point would fail)."""
    from dnnmeter.zoo import resolve

    if resolve(name).source != "onnx":
        return None
    return (f"{name}: bench needs a PyTorch model, not an ONNX file; give the zoo name or "
            "package.module:callable it was exported from (`dnnmeter analyze` counts ONNX files)")


def _check_runnable(name: str) -> None:
    reason = not_runnable_reason(name)
    if reason:
        raise InvalidInputError(reason)


def _token_inputs(name: str, seq_len: int | None) -> tuple[str, ...]:
    from dnnmeter.zoo import resolve

    entry = resolve(name)
    return (f"input_ids=1x{seq_len or entry.input_size[0]}:int64",) if entry.token_inputs else ()


def benchmark(
    models: Sequence[str],
    device: str = "cpu",
    batch_sizes: Sequence[int] = (1,),
    threads: int | None = None,
    dtype: str = "float32",
    input_size: Sequence[int] | None = None,
    time_budget_s: float = 2.0,
    isolate: bool = True,
    on_result: Callable[[BenchResult], None] | None = None,
    inputs: Sequence[str] = (),
    seq_len: int | None = None,
    heap: str = "steady",
) -> list[BenchResult]:
    """Measure each model at each batch size (ascending), one subprocess per model.

    ``inputs`` are forward arguments as ``--input`` specs (``"ids=1x128:int64"``; the batch
    dimension is each point's batch size), for models that do not take one image; a model
    that takes token ids (``hf:NAME``) gets ``input_ids`` of ``seq_len`` (default 128) without them.
    ``threads=None`` picks :func:`default_threads` on the CPU (recorded on every result).
    ``time_budget_s`` bounds each point's sampling. ``isolate=False`` measures in this
    process (faster to start; a crash then ends the caller too).
    ``heap="steady"`` measures with glibc's heap thresholds pinned, so that no point pays page
    faults by the harness's allocation history; ``"glibc"`` as glibc leaves the heap
    (:mod:`dnnmeter.measure.heap`). Each point records it in ``settings["heap"]``.
    """
    check_bench_args(device, batch_sizes, dtype)
    check_heap(heap)
    if inputs:
        from dnnmeter.analysis.inputs import parse_specs

        parse_specs(inputs)  # a bad spec fails here, in one line, not in each worker
    for name in models:
        _check_runnable(name)  # unknown names and ONNX files fail before anything is measured
    chosen = None
    if threads is None and device == "cpu":
        threads, chosen = default_threads()
    results: list[BenchResult] = []
    callback = on_result or (lambda r: None)
    for name in models:
        spec = BenchSpec(model=name, device=device, batch_sizes=tuple(sorted(set(batch_sizes))),
                         threads=threads, dtype=dtype, input_size=tuple(input_size) if input_size else None,
                         inputs=tuple(inputs) or _token_inputs(name, seq_len),
                         timing=TimingSettings(time_budget_s=time_budget_s), heap=heap)
        points = _run(spec, isolate, callback)
        for point in points:
            if chosen:
                point.settings["threads_chosen"] = chosen
        results.extend(points)
    return results


def _run(spec: BenchSpec, isolate: bool, callback: Callable[[BenchResult], None]) -> list[BenchResult]:
    if isolate:
        from dnnmeter.measure.runner import run_isolated

        return run_isolated(spec, callback)
    from dnnmeter.measure.point import measure_model

    points: list[BenchResult] = []

    def keep(result: BenchResult) -> None:
        points.append(result)
        callback(result)

    # in this process the variables come too late for glibc: pin its thresholds with mallopt instead
    with steady_heap() if spec.heap == "steady" else contextlib.nullcontext():
        measure_model(spec, keep)
    return points
