"""CPU threads: the cores this process may use, and torch's thread count set for a block.

Every part that runs a model with a chosen thread count (bench, eval, train, the roofline,
the quantization and pruning sweeps, modify's latency) sets it with :func:`torch_threads`,
which puts the caller's count back afterwards, even on error; :func:`torch_flag` does the same
for one of torch's global flags (the quantized engine, cuDNN's benchmark mode).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

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


@contextlib.contextmanager
def torch_flag(owner: Any, name: str, value: object) -> Iterator[None]:
    """``owner.name`` (a global torch flag such as ``torch.backends.cudnn.benchmark``) set to
    ``value`` for the block, restored after, even on error."""
    before = getattr(owner, name)
    try:
        setattr(owner, name, value)
        yield
    finally:
        setattr(owner, name, before)
