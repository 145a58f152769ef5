"""Distributed training with torch.distributed: synchronous DDP, or local SGD with periodic
model averaging (the seed study's proposed future work: sub-models trained independently on
shards of the data and averaged into one global model every T steps).

- ``nproc > 1`` on one machine: :func:`spawn` starts ``nproc`` processes
  (``torch.multiprocessing``, gloo on the CPU, nccl on CUDA, a free localhost port).
- under ``torchrun`` (``RANK``/``WORLD_SIZE`` in the environment, one machine or several):
  :func:`run_in_group` joins that group instead; every process calls ``train()`` the same way.

Each process reads its shard of the training data (``DistributedSampler``, seeded). With
``ddp`` the gradients are averaged at every step (``DistributedDataParallel``), so the replicas
stay identical. With ``average`` each process steps its own model and the parameters are
averaged every ``average_every`` steps by ``PeriodicModelAverager`` inside
``PostLocalSGDOptimizer``; at the end of every epoch parameters and batch-norm statistics
are averaged as well, so validation and the checkpoint see the global model. Rank 0
validates and writes the files.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dnnmeter.data.files import one_line
from dnnmeter.errors import DnnmeterError
from dnnmeter.measure.threads import available_cores, torch_threads
from dnnmeter.training.loop import Sync
from dnnmeter.training.result import TrainResult
from dnnmeter.training.session import Progress, build_module, run
from dnnmeter.training.settings import TrainSettings

RESULT = "result.json"
STATE = "state.safetensors"


class DistributedTrainingError(DnnmeterError):
    """A process of a distributed run failed; the message names the rank and the cause."""


class GroupSync(Sync):
    """One rank of an initialised process group, with the chosen strategy."""

    def __init__(self, strategy: str, average_every: int | None, launcher: str, threads: int) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.strategy, self.period, self.launcher, self.threads = strategy, average_every, launcher, threads
        self.replica_max_abs_diff: float | None = None
        self.device = collective_device(str(dist.get_backend()))

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, copy=True)
        dist.all_reduce(t)
        return t.cpu()

    def max(self, value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)

    def broadcast_object(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(
        self, module: nn.Module, optimizer: torch.optim.Optimizer, steps_per_epoch: int
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        _broadcast_state(module)  # one start for all: a module passed in may differ by rank
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            device = next(module.parameters()).device
            ids = [device.index] if device.type == "cuda" else None
            return DistributedDataParallel(module, device_ids=ids), optimizer
        from torch.distributed.algorithms.model_averaging.averagers import (
            PeriodicModelAverager,
        )
        from torch.distributed.optim import PostLocalSGDOptimizer

        self.period = self.period or steps_per_epoch  # default: once an epoch
        averager = PeriodicModelAverager(period=self.period, warmup_steps=0)
        return module, PostLocalSGDOptimizer(optimizer, averager)

    def inner(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        return getattr(optimizer, "optim", optimizer)

    def end_epoch(self, module: nn.Module) -> None:
        if self.strategy == "average":
            average_state(module, self.world_size)

    def finish(self, module: nn.Module) -> None:
        self.replica_max_abs_diff = replica_difference(module, self.device)

    def describe(self) -> dict[str, Any]:
        return {
            "world_size": self.world_size, "strategy": self.strategy, "backend": str(dist.get_backend()),
            "average_every": self.period if self.strategy == "average" else None,
            "launcher": self.launcher, "threads_per_process": self.threads,
            "replica_max_abs_diff": self.replica_max_abs_diff,
        }  # fmt: skip


def collective_device(backend: str) -> torch.device:
    """Where this rank's tensors must be for a collective: nccl reduces CUDA tensors only (on
    the GPU set with ``torch.cuda.set_device``), gloo CPU ones. Sums and maxima of counts start
    on the CPU, so they are moved there and back."""
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _broadcast_state(module: nn.Module) -> None:
    with torch.no_grad():
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)


def average_state(module: nn.Module, world_size: int) -> None:
    """Replace every floating parameter and buffer by its mean over the processes."""
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.is_floating_point():
                dist.all_reduce(t)
                t.div_(world_size)


def replica_difference(module: nn.Module, device: torch.device | None = None) -> float:
    """Largest absolute difference between any parameter here and on rank 0, over all ranks
    (0.0 when the replicas agree exactly); ``device`` is where the collective reduces
    (:func:`collective_device`; the CPU by default)."""
    worst = torch.zeros(1, dtype=torch.float64, device=device)
    with torch.no_grad():
        for p in module.parameters():
            ref = p.detach().clone()
            dist.broadcast(ref, src=0)
            worst = torch.maximum(worst, (p.detach() - ref).abs().max().double().reshape(1).to(worst.device))
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst)


def run_in_group(model: str | nn.Module, s: TrainSettings, progress: Progress | None) -> TrainResult:
    """This process's part of a torchrun job (or of a group the caller already started)."""
    started = not dist.is_initialized()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local}" if s.device == "cuda" else s.device
    if device.startswith("cuda"):
        torch.cuda.set_device(device)  # nccl's object collectives and collective_device use the current GPU
    if started:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
    threads = s.threads or max(1, available_cores() // per_node)
    try:
        with torch_threads(threads):
            sync = GroupSync(s.strategy, s.average_every, "torchrun", threads)
            return run(model, replace(s, device=device, nproc=dist.get_world_size()), sync, progress)
    finally:
        if started:
            dist.destroy_process_group()


# --- Spawning on this machine ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child(
    rank: int, model: str | nn.Module, s: TrainSettings, port: int, threads: int, tmp: str, queue: Any
) -> None:
    """One spawned process: join the group, train, and (rank 0) hand the result back in ``tmp``."""
    from dnnmeter.atomic import write_json
    from dnnmeter.zoo.weights import save_checkpoint

    torch.set_num_threads(threads)
    device = f"cuda:{rank}" if s.device == "cuda" else s.device
    backend = "nccl" if device.startswith("cuda") else "gloo"
    try:
        if device.startswith("cuda"):
            torch.cuda.set_device(device)  # see run_in_group
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=s.nproc)
        progress = (lambda *event: queue.put(event)) if rank == 0 else None
        result = run(
            model,
            replace(s, device=device),
            GroupSync(s.strategy, s.average_every, "spawn", threads),
            progress,
        )
        if rank == 0:
            assert result.module is not None
            save_checkpoint(result.module, Path(tmp) / STATE, {})
            write_json(Path(tmp) / RESULT, result.to_dict())
    except BaseException as exc:
        message = str(exc) if isinstance(exc, DnnmeterError) else one_line(exc)
        Path(tmp, f"error-{rank}.txt").write_text(message)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    leave_without_finalising()


def leave_without_finalising() -> None:
    """End a spawned process that has handed back everything, skipping the interpreter's
    finalisation: gloo's worker threads may still hold work objects then, and destroying them
    aborts the process (SIGABRT, "terminate called without an active exception"; see
    pytorch/pytorch#179291) after every result was written, which the parent would take for a
    failed rank. The queue is a SimpleQueue (written at put, no feeder thread to flush)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _drain(queue: Any, progress: Progress | None) -> None:
    while not queue.empty():
        event = queue.get()
        if progress is not None:
            progress(*event)


def _failure(tmp: str, exc: Exception) -> str:
    """The failing rank's own one-line message (the others die of its absence)."""
    rank = getattr(exc, "error_index", None)
    path = Path(tmp, f"error-{rank}.txt")
    if path.is_file():
        return f"rank {rank} failed: {path.read_text()}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"rank {rank} failed: {lines[-1] if lines else type(exc).__name__}"


def spawn(model: str | nn.Module, s: TrainSettings, progress: Progress | None) -> TrainResult:
    """Run ``s.nproc`` processes here and return rank 0's result, with the trained module."""
    threads = s.threads or max(1, available_cores() // s.nproc)
    with tempfile.TemporaryDirectory(prefix="dnnmeter-train-") as tmp:
        queue = mp.get_context("spawn").SimpleQueue()
        try:
            context = mp.start_processes(
                _child,
                args=(model, s, _free_port(), threads, tmp, queue),
                nprocs=s.nproc,
                join=False,
                start_method="spawn",
            )
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise DistributedTrainingError(
                f"the model cannot be sent to the worker processes ({one_line(exc)}); pass a model name "
                "or define its class in an importable module"
            ) from exc
        try:
            while not context.join(timeout=0.2):
                _drain(queue, progress)
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as exc:
            raise DistributedTrainingError(_failure(tmp, exc)) from None
        _drain(queue, progress)
        result = TrainResult.from_dict(json.loads(Path(tmp, RESULT).read_text()))
        module = build_module(model, int(result.settings["classes"]), "cpu")
        from dnnmeter.zoo.weights import load_weights_file

        load_weights_file(module, str(Path(tmp) / STATE), "cpu", result.model)
    result.module = module.eval()
    return result
