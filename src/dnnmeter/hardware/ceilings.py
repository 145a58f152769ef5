"""This machine's roofline ceilings: peak FLOP/s from a large matrix product, memory bandwidth
from a large copy.

- **Peak compute**: ``torch.mm`` of two n x n matrices, 2 n^3 FLOPs per call; n doubles from
  256 until one call (after an untimed one) takes a twentieth of the budget (at most 4096), then the best of the
  repeated calls is taken (the ceiling is the best the machine did, not a typical run).
- **Bandwidth**: ``dst.copy_(src)`` of a tensor at least 4 times the last-level cache (the
  STREAM rule, so that the copy cannot run from the cache), counting the bytes read plus
  the bytes written; best of the repeated copies.

On CUDA both are timed with CUDA events; where CUDA is absent the ceilings are None with a
reason. Results are cached in-process per (device, threads, dtype): a study measures them
once. They are ``measured``; a :class:`Ceilings` built by hand (a data sheet's figures) is
labelled ``published``.

>>> c = measure_ceilings("cpu", threads=1, budget_s=1.0)          # doctest: +SKIP
>>> c.peak_flops_per_s, c.bandwidth_bytes_per_s, c.ridge_flops_per_byte   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch

from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError
from dnnmeter.names import CEILING_DTYPES
from dnnmeter.measure.environment import cpu_model
from dnnmeter.measure.spec import torch_dtype
from dnnmeter.measure.threads import torch_threads

__all__ = ["Ceilings", "clear_ceilings_cache", "last_level_cache_bytes", "measure_ceilings"]

DTYPES = CEILING_DTYPES
MIN_MATMUL, MAX_MATMUL = 256, 4096
MIN_COPY_BYTES, MAX_COPY_BYTES = 64 * 2**20, 512 * 2**20
FALLBACK_LLC_BYTES = 32 * 2**20  # when the OS does not say: larger than most desktop L3s


@dataclass(frozen=True)
class Ceilings(Record):
    """Peak compute and memory bandwidth of one device; None with ``unavailable_reason`` when
    they could not be measured. ``label`` is "measured" or "published" (given by hand)."""

    device: str
    peak_flops_per_s: float | None
    bandwidth_bytes_per_s: float | None
    device_name: str | None = None
    dtype: str = "float32"
    threads: int | None = None
    label: str = "measured"
    flops_method: str = ""
    bandwidth_method: str = ""
    matmul_size: int | None = None
    copy_bytes: int | None = None
    matmul_samples_s: list[float] = field(default_factory=list)
    copy_samples_s: list[float] = field(default_factory=list)
    budget_s: float | None = None
    unavailable_reason: str | None = None

    _derived: ClassVar[tuple[str, ...]] = ("ridge_flops_per_byte",)

    @property
    def ridge_flops_per_byte(self) -> float | None:
        """The arithmetic intensity where the memory roof meets the compute roof."""
        if not self.peak_flops_per_s or not self.bandwidth_bytes_per_s:
            return None
        return self.peak_flops_per_s / self.bandwidth_bytes_per_s



def last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of the CPU's last-level cache from sysfs (Linux), or None."""
    best: tuple[int, int] | None = None
    for index in Path(root).glob("index*"):
        try:
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        number = int(size.rstrip("KMG")) * units.get(size[-1], 1) if size.rstrip("KMG").isdigit() else 0
        if number and (best is None or level > best[0]):
            best = (level, number)
    return best[1] if best else None


def _cpu_name() -> str | None:
    try:
        return cpu_model(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return cpu_model("")


def _repeat(step: Callable[[], float], budget_s: float, min_samples: int = 3) -> list[float]:
    """Time ``step`` (it returns seconds) until ``budget_s`` is spent, at least ``min_samples``."""
    samples, deadline = [], time.perf_counter() + budget_s
    while len(samples) < min_samples or time.perf_counter() < deadline:
        samples.append(step())
    return samples


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """Seconds one call of ``fn`` takes: perf_counter on the CPU, CUDA events on a GPU."""
    if device.type == "cuda":
        def cuda_time(fn: Callable[[], object]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3  # elapsed_time is in ms
        return cuda_time

    def cpu_time(fn: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return cpu_time


def _matmul(n: int, device: torch.device, dtype: torch.dtype) -> Callable[[], object]:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    return lambda: torch.mm(a, b, out=out)


def _peak_flops(device: torch.device, dtype: torch.dtype, budget_s: float,
                timer: Callable[[Callable[[], object]], float]) -> tuple[int, list[float]]:
    """(n, seconds per n x n matmul): n doubles until one call takes budget/20."""
    n = MIN_MATMUL
    while True:
        call = _matmul(n, device, dtype)
        # Untimed first: the first product of a process (or dtype) pays for the library's set-up,
        # cuBLAS's handle and workspace on a GPU (~0.1 s), which would stop the doubling at n = 256.
        call()
        if timer(call) >= budget_s / 20 or n >= MAX_MATMUL:
            return n, _repeat(partial(timer, call), budget_s / 2)
        n *= 2


def _bandwidth(device: torch.device, dtype: torch.dtype, budget_s: float,
               timer: Callable[[Callable[[], object]], float]) -> tuple[int, list[float]]:
    """(bytes per tensor, seconds per copy) of a copy 4x the last-level cache (STREAM's rule)."""
    if device.type == "cuda":
        cache = torch.cuda.get_device_properties(device).L2_cache_size or FALLBACK_LLC_BYTES
    else:
        cache = last_level_cache_bytes() or FALLBACK_LLC_BYTES
    nbytes = min(max(4 * cache, MIN_COPY_BYTES), MAX_COPY_BYTES)
    item = torch.empty((), dtype=dtype).element_size()
    src = torch.ones(nbytes // item, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch: page faults are not bandwidth
    return nbytes // item * item, _repeat(lambda: timer(lambda: dst.copy_(src)), budget_s / 2)


_CACHE: dict[tuple[str, int | None, str], Ceilings] = {}


def clear_ceilings_cache() -> None:
    """Forget the in-process ceilings, so that the next call measures again."""
    _CACHE.clear()


def _unavailable(device: str, dtype: str, threads: int | None, reason: str) -> Ceilings:
    return Ceilings(device=device, peak_flops_per_s=None, bandwidth_bytes_per_s=None, dtype=dtype,
                    threads=threads, unavailable_reason=reason)


def measure_ceilings(device: str = "cpu", threads: int | None = None, dtype: torch.dtype | str = torch.float32,
                     budget_s: float = 2.0, *, use_cache: bool = True) -> Ceilings:
    """Measure peak FLOP/s and memory bandwidth of ``device`` ("cpu", "cuda", "cuda:1").

    ``threads`` sets torch's CPU threads for the measurement (restored afterwards; None keeps
    the current count); ``budget_s`` is the time to spend, about half on each ceiling. A
    cached result for the same (device, threads, dtype) measured with at least this budget is
    returned without measuring again."""
    dtype_name = str(dtype).removeprefix("torch.")
    if dtype_name not in DTYPES:
        raise InvalidInputError(f"unsupported dtype {dtype!r} for the ceilings: use one of {', '.join(DTYPES)}")
    if not (device == "cpu" or device.startswith("cuda")):
        raise InvalidInputError(f"unknown device {device!r}: use cpu or cuda[:N]")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidInputError(f"bad thread count {threads!r}: give an integer >= 1")
    if not budget_s > 0:
        raise InvalidInputError(f"bad time budget {budget_s!r}: give seconds > 0")
    key = (device, threads, dtype_name)
    cached = _CACHE.get(key)
    if use_cache and cached is not None and (cached.budget_s or 0) >= budget_s:
        return cached
    if device.startswith("cuda") and not torch.cuda.is_available():
        return _unavailable(device, dtype_name, threads, "no CUDA device: torch.cuda.is_available() is False")
    result = _measure(torch.device(device), torch_dtype(dtype_name, DTYPES), threads, budget_s)
    _CACHE[key] = result
    return result


def _measure(device: torch.device, dtype: torch.dtype, threads: int | None, budget_s: float) -> Ceilings:
    with torch_threads(threads):
        timer = _timer(device)
        with torch.inference_mode():
            n, mm_s = _peak_flops(device, dtype, budget_s / 2, timer)
            nbytes, copy_s = _bandwidth(device, dtype, budget_s / 2, timer)
        used = torch.get_num_threads()
    is_cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if is_cuda else _cpu_name()
    dtype_name = str(dtype).removeprefix("torch.")
    return Ceilings(
        device=str(device), device_name=name, dtype=dtype_name, threads=None if is_cuda else used,
        peak_flops_per_s=2 * n**3 / min(mm_s), bandwidth_bytes_per_s=2 * nbytes / min(copy_s),
        flops_method=f"torch.mm of two {n} x {n} {dtype_name} matrices, 2 n^3 FLOPs, best of {len(mm_s)}",
        bandwidth_method=(f"copy_ of a {nbytes / 2**20:.0f} MiB tensor (4x the last-level cache, at least "
                          f"{MIN_COPY_BYTES // 2**20} MiB), bytes read + written, best of {len(copy_s)}"),
        matmul_size=n, copy_bytes=nbytes, matmul_samples_s=mm_s, copy_samples_s=copy_s, budget_s=budget_s,
    )
