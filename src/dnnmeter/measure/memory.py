"""Peak memory of one forward pass: CUDA's allocator statistics, or the process's peak RSS.

On the CPU the kernel's high-water mark of resident memory (VmHWM) is reset before the
pass by writing 5 to /proc/self/clear_refs, so each batch size gets its own peak; where that
file cannot be written the lifetime peak (``ru_maxrss``) is used and the kind says so.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

import torch

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass(frozen=True)
class MemoryReading:
    peak_bytes: int | None
    kind: str
    reserved_bytes: int | None = None


def _status_bytes(field: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Resident memory now (VmRSS), or the lifetime peak where /proc is missing."""
    now = _status_bytes("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_cpu_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_peak(call: Callable[[], object], baseline_bytes: int) -> MemoryReading:
    """Peak RSS during ``call`` above ``baseline_bytes`` (RSS before the model was built)."""
    resettable = _reset_cpu_peak()
    call()
    peak = _status_bytes("VmHWM") if resettable else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        kind = "cpu: lifetime peak RSS above the pre-model baseline (ru_maxrss; VmHWM not resettable)"
    else:
        kind = "cpu: peak RSS above the pre-model baseline (VmHWM)"
    return MemoryReading(max(0, peak - baseline_bytes), kind)


def cuda_peak(call: Callable[[], object], device: torch.device) -> MemoryReading:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    call()
    torch.cuda.synchronize(device)
    return MemoryReading(
        torch.cuda.max_memory_allocated(device),
        "cuda: max allocated by tensors (torch.cuda.max_memory_allocated)",
        torch.cuda.max_memory_reserved(device),
    )
