"""A steady C heap: no page faults from glibc returning memory to the OS and faulting it in again.

glibc's malloc gives a freed block above its thresholds (128 KiB at start, raised as the
process frees larger blocks) back to the OS, and the next allocation of that size faults
its pages in again, zeroed (about 3.5 us a 4 KiB page on the calibration machine). Whether
a kernel's output takes that path depends on every allocation the process made before:
a 64x224x224 conv timed alone cost 55 ms with its output faulted in and 35 ms without, on
the same machine, minutes apart; mnasnet1_0 made 2,300 faults a forward in one process and
none in another, and two rounds of one bench point agreed within 10% 86.8% of the time.

So dnnmeter measures with a steady heap by default (``heap="steady"``): a bench point's
process starts with ``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` set
(:func:`heap_environment`), and ``calibrate`` pins the same thresholds with ``mallopt``
while timing (:func:`steady_heap`; glibc's start values come back afterwards, but its
dynamic thresholds stay off for the rest of that process). The bench process's allocation history is the
harness's, not the user's application's; pinning it makes the figure independent of that
history, as PyTorch's CPU launcher (``torch.backends.xeon.run_cpu``) preloads jemalloc or
tcmalloc for benchmarking. ``heap="glibc"`` measures with the heap as glibc leaves it.
Each point and calibration records which (:func:`point_heap`, :func:`calibration_heap`).
Elsewhere than glibc (macOS, musl) the variables are not read and nothing is pinned.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest allowed on 64 bits: blocks above it are always mapped
TRIM_THRESHOLD_BYTES = 2**30
DEFAULT_THRESHOLD_BYTES = 128 * 2**10  # glibc's start value of both

STEADY, GLIBC = "steady", "glibc"
HEAP_MODES = (STEADY, GLIBC)
DEFAULT_HEAP = STEADY
# glibc reads these as a process starts; any MALLOC_*_ setting also turns its dynamic thresholds off
ENV_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def check_heap(mode: str) -> str:
    """``mode`` when it is a heap mode; InvalidInputError naming the modes otherwise."""
    if mode not in HEAP_MODES:
        from dnnmeter.errors import InvalidInputError

        raise InvalidInputError(f"bad heap {mode!r}: choose steady (the default: glibc's thresholds pinned) "
                                "or glibc (as glibc leaves it)")
    return mode


def heap_environment(mode: str) -> dict[str, str]:
    """The environment variables a measuring process starts with for ``mode`` (none for glibc)."""
    if check_heap(mode) == GLIBC:
        return {}
    return {"MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES), "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES)}


def child_environment(mode: str, base: dict[str, str]) -> dict[str, str]:
    """``base`` (the parent's environment) for a measuring child with heap ``mode``: for glibc,
    without the variables, so that a parent's own settings do not pin a point said to be glibc's."""
    env = {k: v for k, v in base.items() if k not in ENV_VARIABLES}
    return {**env, **heap_environment(mode)}


def point_heap(settings: dict[str, Any]) -> str:
    """The heap a stored bench point was measured with. A point stored before dnnmeter recorded
    it (no ``heap`` in its settings) reads as glibc: bench set no variables then."""
    return str(settings.get("heap") or GLIBC)


def calibration_heap(calibration: dict[str, Any]) -> str:
    """The heap a stored calibration's latest run timed with: its ``mode``, or for one saved
    before the mode was recorded, steady when it pinned the thresholds and glibc otherwise."""
    state = calibration.get("heap") or {}
    return str(state.get("mode") or (STEADY if state.get("pinned") else GLIBC))


def _mallopt() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.mallopt
    except (OSError, AttributeError):  # not glibc: no mallopt to call
        return None


@contextlib.contextmanager
def steady_heap() -> Iterator[dict[str, Any]]:
    """Pins glibc's trim and mmap thresholds inside; yields what was done, for the record."""
    mallopt = _mallopt()
    if mallopt is None:
        yield {"pinned": False, "note": "no glibc mallopt: heap thresholds left as they are"}
        return
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    try:
        yield {"pinned": ok, "mmap_threshold_bytes": MMAP_THRESHOLD_BYTES, "trim_threshold_bytes": TRIM_THRESHOLD_BYTES}
    finally:
        mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD_BYTES)
        mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD_BYTES)
