"""CPU threads: the cores this process may use, and torch's thread count set for a block.

Every part that runs a model with a chosen thread count (bench, eval, train, the roofline,
the quantization and pruning sweeps, modify's latency) sets it with :func:`torch_threads`,
which puts the caller's count back afterwards, even on error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def cores_available() -> int | None:
    """Cores this process may run on (taskset, cgroups cpusets); None where the OS cannot say."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return None


def available_cores() -> int:
    """:func:`cores_available`, else the machine's logical cores, else 1: a count to divide."""
    return cores_available() or os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block (None: left alone), restored after."""
    before = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(before)
