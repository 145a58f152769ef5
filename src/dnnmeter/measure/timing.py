"""Timing one model call: warm-up, blocks of calls, repeats until the median is steady.

The method follows ``torch.utils.benchmark.Timer.blocked_autorange``: each sample times a
block of calls long enough for the clock's resolution not to matter, and the spread of the
samples (interquartile range over median) is kept beside them. Sampling stops when the
spread is small (``target_spread``) after ``min_samples``, or when the time budget is
spent; the verdict ``stable`` uses torch.utils.benchmark's 10% threshold and needs at least
``VERDICT_SAMPLES`` samples: with fewer, an interquartile range rests on two or three values
and says little, so ``stable`` is None and ``stable_unknown_reason`` says why.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STABLE_SPREAD = 0.10
SETTLE_TOLERANCE = 0.02
SETTLE_BLOCK_S = 0.02  # each settling block lasts at least this long
FLOOR_SAMPLES = 3  # taken even past the budget, so that a very slow model has a median
VERDICT_SAMPLES = 7  # TimingSettings.min_samples' default: fewer give no verdict on stability


@dataclass(frozen=True)
class TimingSettings:
    time_budget_s: float = 2.0  # per point, warm-up included
    warmup_s: float = 0.2
    min_block_s: float = 0.01  # a block shorter than this is timer noise for perf_counter
    min_samples: int = 7
    max_samples: int = 500
    target_spread: float = 0.05
    # Device-timed (CUDA) only: after the warm-up, blocks of calls run until two in a row agree
    # within SETTLE_TOLERANCE, for at most this long. A GPU left idle (a model built, idle power
    # read) sits at its lowest clock (345 MHz on an H200, against 1980 under load) and ramps up
    # under load; the warm-up's synchronised calls at a small batch load it lightly. Sampling
    # starts once the device's own timings have stopped moving. 0 turns this off.
    settle_max_s: float = 1.0


@dataclass
class Timing:
    samples_s: list[float] = field(default_factory=list)  # per call, each the mean of a block
    calls_per_sample: int = 1
    cold_s: float | None = None
    warmup_calls: int = 0
    settle_blocks: int = 0
    settled: bool | None = None  # None: not asked for (host-timed, or settle_max_s=0)
    elapsed_s: float = 0.0

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    def percentile_s(self, q: float) -> float:
        return percentile(self.samples_s, q)

    @property
    def spread(self) -> float:
        return spread(self.samples_s)

    @property
    def stable(self) -> bool | None:
        """Spread at most 10%; None (no verdict) with fewer than ``VERDICT_SAMPLES`` samples."""
        if len(self.samples_s) < VERDICT_SAMPLES:
            return None
        return self.spread <= STABLE_SPREAD

    @property
    def stable_unknown_reason(self) -> str | None:
        n = len(self.samples_s)
        if n >= VERDICT_SAMPLES:
            return None
        return f"only {n} samples; a verdict on stability needs {VERDICT_SAMPLES} (give it a larger time budget)"


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100] (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def spread(values: list[float]) -> float:
    """Interquartile range over median: torch.utils.benchmark's measure of noise."""
    if len(values) < 2:
        return float("inf")
    return (percentile(values, 75) - percentile(values, 25)) / statistics.median(values)


Block = Callable[[Callable[[], object], int], float]


def time_calls(
    call: Callable[[], object],
    settings: TimingSettings = TimingSettings(),
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] = lambda: None,
    block: Block | None = None,
) -> Timing:
    """Time ``call`` (one forward pass); ``sync`` waits for the device (CUDA) to finish.

    The first call is timed alone and reported as ``cold_s``. ``block(call, n)`` times n
    calls and returns seconds per call: by default with ``clock`` between two ``sync``s;
    on CUDA pass :func:`cuda_event_block`, which times on the device itself.
    """
    device_timed = block is not None
    block = block or (lambda fn, n: _block(fn, n, clock, sync))
    timing = Timing()
    start = clock()
    sync()
    t0 = clock()
    call()
    sync()
    timing.cold_s = clock() - t0
    timing.warmup_calls, per_call = _warm_up(call, settings, clock, sync)
    if device_timed and settings.settle_max_s > 0:
        timing.settle_blocks, timing.settled = settle(call, block, per_call, settings.settle_max_s, clock)
    timing.calls_per_sample = 1 if per_call >= settings.min_block_s else math.ceil(settings.min_block_s / max(per_call, 1e-9))
    deadline = start + settings.time_budget_s
    while len(timing.samples_s) < settings.max_samples:
        timing.samples_s.append(block(call, timing.calls_per_sample))
        enough = len(timing.samples_s) >= settings.min_samples
        if enough and (spread(timing.samples_s) <= settings.target_spread or clock() >= deadline):
            break
        if not enough and len(timing.samples_s) >= FLOOR_SAMPLES and clock() >= deadline + settings.time_budget_s:
            break  # a very slow model: three samples, however long they take, then stop
    timing.elapsed_s = clock() - start
    return timing


def _warm_up(call: Callable[[], object], settings: TimingSettings, clock: Callable[[], float],
             sync: Callable[[], None]) -> tuple[int, float]:
    calls, t0 = 0, clock()
    while True:
        call()
        calls += 1
        sync()
        elapsed = clock() - t0
        if elapsed >= settings.warmup_s or calls >= 10_000:
            return calls, elapsed / calls


def settle(call: Callable[[], object], block: Block, per_call_s: float, max_s: float,
            clock: Callable[[], float]) -> tuple[int, bool]:
    """Run device-timed blocks until two in a row agree within SETTLE_TOLERANCE (the device
    has reached its steady clocks for this load), for at most ``max_s``. Returns (blocks run,
    settled)."""
    n = max(1, math.ceil(SETTLE_BLOCK_S / max(per_call_s, 1e-9)))
    end = clock() + max_s
    last, blocks = block(call, n), 1
    while clock() < end:
        now = block(call, n)
        blocks += 1
        if abs(now - last) <= SETTLE_TOLERANCE * last:
            return blocks, True
        last = now
    return blocks, False


def _block(call: Callable[[], object], n: int, clock: Callable[[], float], sync: Callable[[], None]) -> float:
    sync()
    t0 = clock()
    for _ in range(n):
        call()
    sync()
    return (clock() - t0) / n


def cuda_event_block(device: object) -> Block:
    """Time a block of calls with CUDA events recorded around it on the device's stream."""
    import torch

    def block(call: Callable[[], object], n: int) -> float:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)  # type: ignore[arg-type]
        start.record()
        for _ in range(n):
            call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / n  # elapsed_time is in milliseconds

    return block
