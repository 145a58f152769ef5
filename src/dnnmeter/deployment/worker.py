"""Measure one configuration; run as ``python -m dnnmeter.deployment.worker`` (one process each).

The parent (runner.py) writes a :class:`DeploySpec` as JSON on stdin; the worker builds the
configuration, times it alone (measure/timing.py's blocked timing, cycling through batches of the
real images so that each call sees fresh inputs; eager float32 is timed in its own process, and
the judge divides the two), weighs its peak memory, runs every image
through it and saves the logits to ``outputs_path`` (.npy) for the parent to compare with the
baseline's, and last times it at ``throughput_batch_size`` for its images per second (None with
the reason where it cannot run at that batch: a fixed-shape artefact, out of memory). It
prints one ``DNNMETER-RESULT {json}`` line. A failure to build or run is that
line's ``failed`` status with the reason; a missing package is ``skipped``.

The images run through at ``accuracy_batch_size`` (larger than the timed batch: fewer, fuller
calls), since no configuration mixes images within a batch in eval mode: batch norm uses its
running statistics, torch.ao int8 and ONNX Runtime int8 are static (activation scales fixed
at calibration, not per batch). Rounding may still differ in the last bits between batch
shapes (another kernel blocking), so the worker also runs the first images at the timed batch
and records the largest difference and the share of top-1 that changed (``extra.batch_check``).
``time_it=False`` only builds the configuration and saves the logits (the search's full
comparison of a candidate, see search.py); ``extra.phases_s`` says where the worker's time went.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dnnmeter.measure.spec import RESULT_PREFIX
from dnnmeter.measure.timing import TimingSettings


@dataclass
class DeploySpec:
    model: str
    kind: str
    threads: int | None
    batch_size: int
    images_path: str  # a .pt file: {"images": N x C x H x W float32, "calibration": M x C x H x W}
    outputs_path: str  # where the logits of every image go (.npy)
    artefact_dir: str
    weights: str | None = None
    device: str = "cpu"
    timing: TimingSettings = field(default_factory=TimingSettings)
    throughput_batch_size: int | None = None  # also time this larger batch (None: do not)
    accuracy_batch_size: int | None = None  # the batch the compared images run at (None: batch_size)
    time_it: bool = True  # False: build and save the logits only (a full comparison)
    wait_s: float | None = None  # how long the parent waits for this worker (None: runner.CONFIG_TIMEOUT_S)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DeploySpec:
        raw = json.loads(text)
        raw["timing"] = TimingSettings(**raw["timing"])
        return cls(**raw)


def _batches(images: Any, batch: int) -> list[Any]:
    """Every image in batches of ``batch``; the last one padded with the first images, so that
    a configuration built for one batch shape (an export, a CUDA graph) takes them all."""
    import torch

    n = images.shape[0]
    pad = (-n) % batch
    padded = torch.cat([images, images[:pad].expand(pad, *images.shape[1:])]) if pad and n >= pad else images
    while padded.shape[0] % batch:  # fewer images than the padding needs
        padded = torch.cat([padded, padded[: batch - padded.shape[0] % batch]])
    return list(padded.split(batch))


def _fail(exc: BaseException) -> dict[str, Any]:
    from dnnmeter.errors import MissingDependencyError
    from dnnmeter.measure.spec import is_out_of_memory

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if isinstance(exc, (MissingDependencyError, ModuleNotFoundError)):
        return {"status": "skipped", "reason": first}
    why = "out of memory: " if is_out_of_memory(exc) else ""
    return {"status": "failed", "reason": f"{why}{type(exc).__name__}: {first}"}


def measure_config(spec: DeploySpec) -> dict[str, Any]:
    """Build, time, weigh and run ``spec``'s configuration; the figures as a dict."""
    import torch

    from dnnmeter.measure import memory
    from dnnmeter.measure.threads import torch_threads

    baseline_rss = memory.rss_bytes()
    with torch_threads(spec.threads), torch.inference_mode():
        try:
            return _measure(spec, baseline_rss)
        except Exception as exc:  # noqa: BLE001 - any failure is this configuration's, recorded
            return _fail(exc)


def _cycling(fn: Any, batches: list[Any]) -> Any:
    """``fn`` on a different batch of real images each call."""
    turn = itertools.count()
    return lambda: fn(batches[next(turn) % len(batches)])


def _measure(spec: DeploySpec, baseline_rss: int) -> dict[str, Any]:
    import torch

    from dnnmeter.deployment.build import BuildContext, build, cudnn_benchmark
    from dnnmeter.deployment.configs import Config
    from dnnmeter.accuracy import build_with_weights

    phases: dict[str, float] = {}
    clock = functools.partial(_phase, phases)
    device = torch.device(spec.device)
    with clock("load_s"):
        data = torch.load(spec.images_path)
        batches = [b.to(device) for b in _batches(data["images"], spec.batch_size)]
        calibration = [b.to(device) for b in _batches(data["calibration"], spec.batch_size)]
    with clock("build_s"):
        torch.manual_seed(0)  # without --weights every process must build the same initial weights
        model = build_with_weights(spec.model, spec.weights, device=spec.device)
    Path(spec.artefact_dir).mkdir(parents=True, exist_ok=True)
    with cudnn_benchmark(spec.kind == "cudnn-benchmark"):
        with clock("prepare_s"):
            context = BuildContext(Config(spec.kind, spec.threads), batches[0], calibration,
                                   Path(spec.artefact_dir), device)
            prepared = build(model, context)
        # Whatever the configuration still needs of the float32 model, ``prepared`` holds; the
        # rest leaves memory before the timing and before the peak memory is read.
        del model
        gc.collect()
        if not spec.time_it:
            with clock("outputs_s"):
                outputs, accuracy_batch = _outputs(prepared, data["images"], spec, device)
            np.save(spec.outputs_path, outputs.numpy())
            return {"status": "compared", "extra": {"phases_s": phases, "accuracy_batch_size": accuracy_batch,
                                                    "images": int(outputs.shape[0])}}
        found = _timed(spec, prepared, batches, data, device, baseline_rss, clock)
    found["extra"].update(phases_s=phases, prepare_s=phases["prepare_s"], artefact=prepared.artefact,
                          notes=prepared.notes)
    return found


@contextlib.contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Adds the block's seconds to ``phases[name]`` (where the worker's time went)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def _timed(spec: DeploySpec, prepared: Any, batches: list[Any], data: dict[str, Any], device: Any,
           baseline_rss: int, clock: Any) -> dict[str, Any]:
    import torch

    from dnnmeter.measure import memory
    from dnnmeter.measure.timing import cuda_event_block, time_calls

    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    call = _cycling(prepared.call, batches)
    with clock("timing_s"):
        timing = time_calls(call, spec.timing, sync=sync, block=cuda_event_block(device) if cuda else None)
    with clock("memory_s"):
        weighed = memory.cuda_peak(call, device) if cuda else memory.cpu_peak(call, baseline_rss)
    with clock("outputs_s"):
        outputs, accuracy_batch = _outputs(prepared, data["images"], spec, device)
    np.save(spec.outputs_path, outputs.numpy())
    with clock("batch_check_s"):
        check = _batch_check(prepared, batches, outputs) if accuracy_batch != spec.batch_size else None
    with clock("throughput_s"):  # last: a larger batch must not raise the peak memory read above
        throughput = _throughput(prepared, data["images"], spec, device, sync)
    return {
        "status": "measured", "samples_s": timing.samples_s, "latency_s_median": timing.median_s,
        "latency_s_p10": timing.percentile_s(10), "latency_s_p90": timing.percentile_s(90),
        "first_call_s": timing.cold_s, "peak_memory_bytes": weighed.peak_bytes, "size_bytes": prepared.size_bytes,
        **throughput,
        "extra": {"memory_kind": weighed.kind, "stable": timing.stable, "threads_used": torch.get_num_threads(),
                  "accuracy_batch_size": accuracy_batch,
                  "batch_check": check},
    }


def _outputs(prepared: Any, images: Any, spec: DeploySpec, device: Any) -> tuple[Any, int]:
    """The logits of every image, run at the accuracy batch (the timed batch where the artefact
    takes only that one), and the batch they ran at."""
    import torch

    size = spec.accuracy_batch_size or spec.batch_size
    if prepared.fixed_batch_reason:
        size = spec.batch_size
    logits = torch.cat([prepared.call(b).float().cpu() for b in _batches(images.to(device), size)])
    return logits[: images.shape[0]], size


BATCH_CHECK_CALLS = 4  # calls at the timed batch whose logits are compared with the accuracy batch's


def _batch_check(prepared: Any, batches: list[Any], outputs: Any) -> dict[str, Any]:
    """Do the first images' logits at the timed batch match those at the accuracy batch?"""
    import torch

    at_batch = torch.cat([prepared.call(b).float().cpu() for b in batches[:BATCH_CHECK_CALLS]])
    n = min(at_batch.shape[0], outputs.shape[0])
    a, b = at_batch[:n], outputs[:n]
    return {"images": n, "max_abs_diff": float((a - b).abs().max()),
            "top1_same": float((a.argmax(1) == b.argmax(1)).float().mean())}


THROUGHPUT_SHARE = 0.25  # of the configuration's timing budget


def _throughput(prepared: Any, images: Any, spec: DeploySpec, device: Any, sync: Any) -> dict[str, Any]:
    """Images per second at ``spec.throughput_batch_size`` (the median of blocked timing, fresh
    batches of the real images each call), or None with the reason it could not run there."""
    from dnnmeter.measure.spec import is_out_of_memory
    from dnnmeter.measure.timing import time_calls

    size = spec.throughput_batch_size
    found: dict[str, Any] = {"throughput_batch_size": size, "images_per_s_at_throughput_batch": None,
                             "throughput_unavailable_reason": None}
    if size is None:
        found["throughput_unavailable_reason"] = "no larger batch asked for"
        return found
    if prepared.fixed_batch_reason:
        found["throughput_unavailable_reason"] = prepared.fixed_batch_reason
        return found
    settings = replace(spec.timing, time_budget_s=spec.timing.time_budget_s * THROUGHPUT_SHARE, min_samples=3)
    try:
        timing = time_calls(_cycling(prepared.call, [b.to(device) for b in _batches(images, size)]), settings,
                            sync=sync)
    except Exception as exc:  # noqa: BLE001 - the latency figures stand; only this one is missing
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        why = "out of memory" if is_out_of_memory(exc) else "it failed"
        found["throughput_unavailable_reason"] = f"at batch {size} {why}: {type(exc).__name__}: {first}"
        if device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
        return found
    found["images_per_s_at_throughput_batch"] = size / timing.median_s
    return found


def main() -> int:
    spec = DeploySpec.from_json(sys.stdin.read())
    sys.stdout.write(RESULT_PREFIX + json.dumps(measure_config(spec)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
