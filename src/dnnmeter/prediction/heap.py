"""A steady C heap while calibrating: no page faults from glibc returning memory to the OS.

glibc's malloc gives a freed block above its thresholds (128 KiB at start, raised as the
process frees larger blocks) back to the OS, and the next allocation of that size faults
its pages in again, zeroed (about 3.5 us a 4 KiB page on the calibration machine). Whether
a kernel's output takes that path depends on every allocation the process made before:
a 64x224x224 conv timed alone cost 55 ms with its output faulted in and 35 ms without, on
the same machine, minutes apart. ``calibrate(steady_heap=True)`` pins both thresholds, so
each kernel and network is timed without that history, and restores glibc's defaults when
done (its dynamic thresholds stay off for the rest of the process). Models measured with
the heap as glibc leaves it fault or not by their own allocation pattern (mnasnet1_0 one
run 2,300 faults a forward, another none), so it is off by default; a measurement with
``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` set matches such a calibration.
Elsewhere than glibc (macOS, musl) nothing is changed.
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
