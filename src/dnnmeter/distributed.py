"""Running one job as several processes with torch.distributed: who am I, my shard, gather.

The same command works in one process and under ``torchrun`` (one machine or several):
:func:`process_group` joins the group torchrun describes in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...), or uses one the caller already started,
or, outside torchrun, yields a group of one. gloo serves the CPU, nccl CUDA.

>>> with process_group("cpu") as group:  # doctest: +SKIP
...     mine = group.shard(range(1000))            # this rank's contiguous block
...     everything = group.gather(partial_result)  # rank order, on every rank
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from dnnmeter.errors import InvalidInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """This process's place in the job: ``rank`` of ``world_size``, and its ``device``."""

    rank: int
    world_size: int
    device: str
    backend: str | None  # None for a group of one

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's contiguous block of ``items``: concatenated in rank order the blocks
        give ``items`` back, so per-item results keep their single-process order."""
        n = len(items)
        start, stop = n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size
        return list(items[start:stop])

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank (pickled; keep it small)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}


def launched_by_torchrun() -> bool:
    """True in a process torchrun started as one of several (it sets WORLD_SIZE and RANK)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def _device_for_rank(device: str) -> str:
    """Under torchrun each process on a machine takes its own GPU: ``cuda`` -> ``cuda:LOCAL_RANK``."""
    if device != "cuda":
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if local_rank >= torch.cuda.device_count():
        raise InvalidInputError(
            f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
            "start at most one process per GPU (torchrun --nproc-per-node)"
        )
    return f"cuda:{local_rank}"


@contextlib.contextmanager
def process_group(device: str = "cpu") -> Iterator[Group]:
    """The job's process group; a group this call started is torn down on exit, even on error."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        backend = str(dist.get_backend())
        yield Group(dist.get_rank(), dist.get_world_size(), _device_for_rank(device), backend)
        return
    if not launched_by_torchrun():
        yield Group(0, 1, device, None)
        return
    if not dist.is_available():
        raise InvalidInputError("WORLD_SIZE is set but this torch build has no torch.distributed; run one process")
    device = _device_for_rank(device)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    try:
        yield Group(dist.get_rank(), dist.get_world_size(), device, backend)
    finally:
        dist.destroy_process_group()
