"""``calibrate``: time the kernels and calibration networks on this machine, fit, save as JSON.

Each kernel is analysed on the meta device (the same rows a model's prediction uses) and
timed with dnnmeter's blocked timing (:func:`dnnmeter.measure.timing.time_calls`), shorter
per kernel than a model benchmark because there are hundreds of them. Measurements are
appended to ``<key>.jsonl`` as they are made; a rerun skips them and spends its budget on
the rest of the grid; the fit always uses everything measured so far.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dnnmeter.analysis import LayerCost
from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.heap import STEADY, check_heap, steady_heap
from dnnmeter.prediction import calib_models, kernels, records
from dnnmeter.prediction.features import FEATURES, mapped_pages
from dnnmeter.prediction.predictor import Predictor, fit_models, fit_overhead

# Per kernel: a quarter of a second, blocks of at least 5 ms (the clock's noise is far below).
KERNEL_TIMING = {"time_budget_s": 0.25, "warmup_s": 0.05, "min_block_s": 0.005, "min_samples": 5,
                 "max_samples": 60, "target_spread": 0.05}
# Kept for the fit so the whole run stays within its budget: the fit of a full grid took
# 15-40 s on a busy 2-core machine; at most half of a small budget.
FIT_RESERVE_S = 60.0
DEFAULT_BUDGET_S = 900.0

Timer = Callable[[kernels.Kernel, list[LayerCost]], float]
Progress = Callable[[int, int, str], None]


@dataclass
class Calibration:
    """What one ``calibrate`` run did; the fitted predictor itself is the JSON at ``path``."""

    key: str
    path: str
    device: str
    threads: int | None
    dtype: str
    kernels_measured: int
    kernels_in_grid: int
    measured_now: int
    elapsed_s: float
    complete: bool
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class KernelTimer:
    """The real timer: ``timer(kernel, layers)`` is a kernel's median latency in seconds, and
    ``last_record`` says how that kernel was timed (weight copies cycled through, page faults
    of one call), for its record. Fakes in the tests are plain functions without it."""

    def __init__(self, device: str, dtype: str, settings: dict[str, Any]) -> None:
        import torch

        from dnnmeter.measure.spec import dtype_of

        self.device, self.dtype, self.settings = torch.device(device), dtype_of(dtype), settings
        self.cuda = self.device.type == "cuda"
        self.clock = kernel_clock(device, torch.get_num_threads())
        self.last_record: dict[str, Any] = {}

    def __call__(self, kernel: kernels.Kernel, layers: list[LayerCost]) -> float:
        import torch

        from dnnmeter.measure.timing import TimingSettings, cuda_event_block, time_calls

        dev, cuda = self.device, self.cuda
        sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)
        module = kernel.timed.to(dev, self.dtype)
        x = torch.randn(kernel.batch, *kernel.input_size, device=dev, dtype=self.dtype)
        linear = len(layers) == 1 and layers[0].kind == "linear"
        copies = cold_copies(module) if linear and not cuda else [module]
        cycle = itertools.cycle(copies)
        record: dict[str, Any] = {"weight_copies": len(copies)} if len(copies) > 1 else {}
        self.last_record = record
        with torch.inference_mode():  # as bench times models; never around the analysis (no ops seen)
            call = (lambda: module(x)) if len(copies) == 1 else (lambda: next(cycle)(x))
            timing = time_calls(call, TimingSettings(**self.settings), clock=self.clock, sync=sync,
                                block=cuda_event_block(dev) if cuda else None)
            if not cuda and any(mapped_pages(layer, self.dtype.itemsize) for layer in layers):  # one more call
                before = minor_faults()
                module(x)
                record["faults_per_call"] = float(minor_faults() - before)
        return timing.median_s


COLD_WEIGHT_BYTES = 4 * 2**20


def cache_bytes() -> int:
    """This CPU's last-level cache, as the roofline reads it (32 MiB where the OS does not say)."""
    from dnnmeter.hardware.ceilings import FALLBACK_LLC_BYTES, last_level_cache_bytes

    return last_level_cache_bytes() or FALLBACK_LLC_BYTES


def cold_copies(module: Any) -> list[Any]:
    """The module, and copies of it to take turns with when its weights are large: in a network
    they come from memory, evicted by the other layers' weights and activations since the last
    forward; timed alone, call after call, they stay in cache. Weights of 4 MiB or more are
    timed cold, cycling through copies that fill twice the last-level cache (at least 64 MiB).
    ViT-B/32's 768 -> 3072 MLP linear (9 MiB): 3.06 ms warm, 3.32 cold, 3.47 in the network;
    a 1024 -> 3072 linear on one vector: 0.25 ms warm, 0.85 cold. Used for linear kernels only:
    cold conv kernels (wide_resnet50_2's 1x1 convs at 7 x 7: 2.96 ms warm, 3.38 cold, 3.54 in
    the network) moved the conv fit of small-weight layers too (ResNet-18 +7%)."""
    import copy

    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    if weight_bytes < COLD_WEIGHT_BYTES:
        return [module]
    n = -(-max(2 * cache_bytes(), 64 * 2**20) // weight_bytes)
    return [module] + [copy.deepcopy(module) for _ in range(n - 1)]


def minor_faults() -> int:
    """This process's minor page faults so far (0 where getrusage is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def page_fault_s(megabytes: int = 64, repeats: int = 5) -> float | None:
    """Seconds to fault in one 4 KiB page of a fresh mapping (glibc maps any block above its
    mmap threshold, 32 MiB at most): filling a new 64 MiB tensor less filling a reused one,
    per fault counted. None where no fault was counted (no getrusage, or no mapping made)."""
    import torch

    n = megabytes * 2**20 // 4
    reused = torch.ones(n)  # its pages faulted in here, before any timing
    costs = []
    for _ in range(repeats):
        t0, f0 = time.thread_time(), minor_faults()
        torch.empty(n).fill_(1.0)
        fresh_s, faults = time.thread_time() - t0, minor_faults() - f0
        t0 = time.thread_time()
        reused.fill_(1.0)
        if faults > 0:
            costs.append(max(fresh_s - (time.thread_time() - t0), 0.0) / faults)
    return sorted(costs)[len(costs) // 2] if costs else None


def kernel_clock(device: str, threads: int) -> Callable[[], float]:
    """The clock kernels are timed with: on one CPU thread, the thread's CPU time.

    A calibration may share the machine with other work; wall-clock time would then include
    every slice the OS gave to other processes (kernels timed 2-3x slow on a busy 2-core
    machine). The thread's CPU time counts only this thread's work, so the calibration
    describes the machine at rest. Several threads (their CPU time adds up) and GPUs keep
    wall-clock time: calibrate those on a quiet machine.
    """
    if device == "cpu" and threads == 1:
        return time.thread_time
    return time.perf_counter


def _analyse(kernel: kernels.Kernel, name: str) -> list[LayerCost]:
    from dnnmeter.analysis import analyze

    # copies=True, as predict analyses models: kernels and networks have the rows models have
    analysis = analyze(kernel.module, input_size=kernel.input_size, batch_size=kernel.batch, name=name,
                       copies=True)
    return [layer for layer in analysis.layers if layer.executed]


def _networks() -> list[tuple[str, kernels.Kernel]]:
    out = []
    for name, (build, size, batches) in calib_models.MODELS.items():
        for batch in batches:
            module = build().eval()
            out.append((f"network:{name}:b{batch}", kernels.Kernel(module, size, batch, module)))
    return out


def _measure(item_id: str, kernel: kernels.Kernel, timer: Timer, base: dict[str, Any]) -> dict[str, Any]:
    layers = _analyse(kernel, item_id)
    row: dict[str, Any] = {"id": item_id, **base, "rows": [layer.to_dict() for layer in layers]}
    try:
        row["latency_s"] = float(timer(kernel, layers))
        row.update(getattr(timer, "last_record", {}))  # how it was timed: weight copies, faults of a call
    except RuntimeError as exc:  # out of memory, or a kernel this backend lacks: recorded, not fitted
        row["error"] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
    row["time_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return row


def _check(device: str, dtype: str, budget_s: float) -> None:
    from dnnmeter.measure import check_bench_args as check_bench

    check_bench(device, (1,), dtype)
    if not 0 < budget_s < float("inf"):
        raise InvalidInputError(f"bad budget of {budget_s / 60:g} minutes; give a positive number of minutes")


def calibrate(device: str = "cpu", threads: int | None = None, dtype: str = "float32",
              budget_s: float = DEFAULT_BUDGET_S, out: str | Path | None = None, per_group: int | None = None,
              timer: Timer | None = None, on_progress: Progress | None = None,
              store: str | Path | None = None, heap: str = STEADY) -> Calibration:
    """Measure the kernel grid on ``device`` within ``budget_s``, fit, and save the predictor.

    ``per_group`` caps the shapes per kernel group (a quick, coarser calibration); ``timer``
    replaces the real timing (tests). A rerun resumes: kernels already measured are skipped.
    ``store`` (a path or an SQLAlchemy URL) also gets the fitted calibration as a row (kind
    ``calibration``, model = the calibration's key), so a fleet's calibrations sit together.
    ``heap="steady"`` (the default, as ``dnnmeter bench``'s) pins glibc's heap thresholds while
    timing (:mod:`dnnmeter.measure.heap`), so that no kernel pays page faults by this process's
    allocation history; ``"glibc"`` leaves the heap as glibc sets it, to match points measured
    with ``bench --heap glibc``. The saved calibration says which in ``heap["mode"]``.
    """
    from dnnmeter.store import Store

    _check(device, dtype, budget_s)
    check_heap(heap)
    with contextlib.ExitStack() as stack:
        opened = stack.enter_context(Store(store)) if store is not None else None  # said before any timing
        result, calibration, environment = _calibrate(device, threads, dtype, budget_s, out, per_group, timer,
                                                      on_progress, heap)
        if opened is not None:
            _store_calibration(opened, result, calibration, environment)
    return result


def _store_calibration(store: Any, result: Calibration, calibration: dict[str, Any],
                       environment: dict[str, Any]) -> None:
    """One row per state of a calibration: a rerun that measured more kernels adds the new fit."""
    from dnnmeter.store import measurement_key

    key = measurement_key("calibration", result.key, kernels_measured=result.kernels_measured,
                          kernels_in_grid=result.kernels_in_grid)
    store.add(key, "calibration", result.key, calibration, status="ok" if result.complete else "partial",
              device=result.device, environment=environment)


def _calibrate(device: str, threads: int | None, dtype: str, budget_s: float, out: str | Path | None,
               per_group: int | None, timer: Timer | None,
               on_progress: Progress | None,
               heap: str = STEADY) -> tuple[Calibration, dict[str, Any], dict[str, Any]]:
    from dnnmeter.measure import default_threads
    from dnnmeter.measure.environment import capture_environment
    from dnnmeter.measure.threads import torch_threads

    if threads is None and device == "cpu":
        threads = default_threads()[0]
    directory = Path(out) if out else records.default_dir()
    start = time.monotonic()
    pinned = steady_heap() if heap == STEADY else contextlib.nullcontext({"pinned": False})
    with torch_threads(threads), pinned as heap_state:
        environment = capture_environment(device, threads)
        identity = records.machine_identity(environment)
        key = records.calibration_key(identity, threads, dtype)
        store = records.Records(directory / f"{key}.jsonl")
        base = {"key": key, "device": device, "threads": threads, "dtype": dtype}
        todo = _networks_and_kernels(per_group, device)
        timer = timer or KernelTimer(device, dtype, KERNEL_TIMING)
        deadline = start + max(budget_s - FIT_RESERVE_S, budget_s / 2)
        measured_now = _run(todo, store, timer, {**base, "heap": heap}, deadline, on_progress)
        fault_s = page_fault_s() if device == "cpu" else None
    calibration = _fit(store, environment, identity, key, base, per_group, time.monotonic() - start, fault_s)
    calibration["heap"] = {"mode": heap, **heap_state, "records": _records_by_heap(store)}
    path = directory / f"{key}.json"
    records.save_calibration(path, calibration)
    done = sum(1 for item_id, _ in todo if item_id in store)
    result = Calibration(key=key, path=str(path), device=device, threads=threads, dtype=dtype,
                         kernels_measured=done, kernels_in_grid=len(todo), measured_now=measured_now,
                         elapsed_s=time.monotonic() - start, complete=done == len(todo),
                         diagnostics=calibration["diagnostics"])
    return result, calibration, environment


def _records_by_heap(store: records.Records) -> dict[str, int]:
    """How many of the fitted records were timed with each heap. The key leaves the heap out (a
    calibration made before there was a choice stays found), so a resumed run may fit records
    of another heap or of none recorded (made before dnnmeter recorded it): said, not hidden."""
    counts: dict[str, int] = {}
    for row in store.rows.values():
        mode = str(row.get("heap") or "unrecorded")
        counts[mode] = counts.get(mode, 0) + 1
    return counts


def _networks_and_kernels(per_group: int | None,
                          device: str = "cpu") -> list[tuple[str, Callable[[], kernels.Kernel]]]:
    nets: list[tuple[str, Callable[[], kernels.Kernel]]] = [(i, (lambda k=k: k)) for i, k in _networks()]
    specs = kernels.grid(per_group)
    if device.startswith("cuda"):
        specs = kernels.gpu_twins(specs)
    return nets + [(spec.id, (lambda s=spec: kernels.build(s))) for spec in specs]


def _run(todo: list[tuple[str, Callable[[], kernels.Kernel]]], store: records.Records, timer: Timer,
         base: dict[str, Any], deadline: float, on_progress: Progress | None) -> int:
    measured = 0
    report = on_progress or (lambda done, total, what: None)
    for done, (item_id, make) in enumerate(todo):
        if item_id in store:
            continue
        if time.monotonic() >= deadline:
            break
        report(done, len(todo), item_id)
        store.add(_measure(item_id, make(), timer, base))
        measured += 1
    report(len(todo), len(todo), "fitting")
    return measured


def _fit(store: records.Records, environment: dict[str, Any], identity: dict[str, Any], key: str,
         base: dict[str, Any], per_group: int | None, elapsed_s: float,
         fault_s: float | None = None) -> dict[str, Any]:
    from dnnmeter.measure.spec import dtype_of

    itemsize = dtype_of(base["dtype"]).itemsize
    ok = [r for r in store.rows.values() if "latency_s" in r and r["latency_s"] > 0]
    kernels_ok = [r for r in ok if not r["id"].startswith("network:")]
    networks = [r for r in ok if r["id"].startswith("network:")]
    calibration: dict[str, Any] = {
        "schema": records.SCHEMA, "key": key, **base, "itemsize": itemsize, "machine": identity,
        "environment": environment, "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "per_group": per_group, "features": list(FEATURES),
        "clock": kernel_clock(base["device"], base["threads"] or 0).__name__,
        "calibration_networks": sorted(calib_models.MODELS),
        # a page fault's cost: convs whose weights exceed glibc's mmap threshold fault them in
        # on every call (features.mapped_pages); the fit is made without, the predictor adds them
        "page_fault_s": fault_s,
        "models": fit_models(kernels_ok, itemsize, fault_s or 0.0),
    }  # fmt: skip
    if not calibration["models"]:
        raise InvalidInputError("too few kernels were measured to fit anything; give a larger --budget-min")
    calibration["overhead"] = fit_overhead(Predictor(calibration), networks)
    calibration["diagnostics"] = {
        "kernels": len(kernels_ok), "networks": len(networks), "failed": len(store.rows) - len(ok),
        "elapsed_s_this_run": elapsed_s,
        "groups": {k: v["diagnostics"] for k, v in calibration["models"].items() if k.startswith("g:")},
    }  # fmt: skip
    return calibration
