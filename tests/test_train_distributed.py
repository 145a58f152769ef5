"""dnnmeter.train with 2 CPU processes (gloo): DDP, local SGD with periodic averaging,
and a failing child.

Oracles: DDP replicas end identical (their largest difference is 0.0); in local SGD the
parameters after an averaging step are the mean of what each replica's own step gave,
checked against a plain SGD step replayed on each rank, and between averaging steps the
replicas differ. Each run starts processes, which costs seconds, so the runs are short.
"""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from test_train import Tiny

from dnnmeter.training import DistributedTrainingError, TrainResult, train
from dnnmeter.training.distributed import GroupSync, _failure, leave_without_finalising


class NoScores(Tiny):
    """Returns feature maps, not class scores: every rank fails in its first step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def two(strategy: str, model: nn.Module | None = None, **kwargs: object) -> TrainResult:
    torch.manual_seed(0)
    args: dict[str, object] = {
        "epochs": 1,
        "input_size": 8,
        "batch_size": 32,
        "val_fraction": 0.8,
        "threads": 1,
    }
    args.update(kwargs)
    return train(model or Tiny(), "digits", nproc=2, strategy=strategy, **args)  # type: ignore[arg-type]


@pytest.mark.integration
def test_ddp_replicas_end_identical_and_rank_0_writes_the_files(tmp_path: Path) -> None:
    calls: list[tuple[int, int, int, int]] = []
    r = two("ddp", out=str(tmp_path), progress=lambda *a: calls.append(a))
    assert r.distributed is not None
    assert r.distributed["world_size"] == 2 and r.distributed["backend"] == "gloo"
    assert r.distributed["replica_max_abs_diff"] == 0.0
    assert r.settings["batch_size_per_process"] == 16
    # Each process takes half the 359 training images: ceil(180 / 16) steps.
    assert r.settings["steps_per_epoch"] == 12
    assert calls[-1] == (1, 1, 12, 12) and len(calls) == 12
    assert len(r.history) == 1 and r.val_accuracy is not None
    assert Path(r.checkpoint or "").is_file() and (tmp_path / "history.json").is_file()
    assert r.module is not None
    assert sum(p.numel() for p in r.module.parameters()) == sum(p.numel() for p in Tiny().parameters())


@pytest.mark.integration
@pytest.mark.slow  # a third pair of processes; the averaging itself is checked step by step below
def test_averaged_run_ends_with_one_global_model() -> None:
    r = two("average")
    assert r.distributed is not None
    assert r.distributed["strategy"] == "average"
    assert r.distributed["average_every"] == r.settings["steps_per_epoch"]  # default: once an epoch
    assert r.distributed["replica_max_abs_diff"] == 0.0


@pytest.mark.integration
@pytest.mark.slow  # a fourth pair of processes; test_failure_message checks the message
def test_a_failing_child_is_one_line_in_the_parent() -> None:
    with pytest.raises(DistributedTrainingError, match=r"^rank \d failed: .*class scores") as info:
        two("ddp", model=NoScores())
    assert "\n" not in str(info.value)


def test_failure_message_is_the_failing_ranks_own(tmp_path: Path) -> None:
    (tmp_path / "error-1.txt").write_text("tiny: forward failed")
    exc = mp.ProcessRaisedException("Traceback ...\nRuntimeError: gloo connection closed", 1, 1234)
    assert _failure(str(tmp_path), exc) == "rank 1 failed: tiny: forward failed"
    exc0 = mp.ProcessExitedException("process 0 terminated with signal SIGKILL", 0, -9, 99, "SIGKILL")
    assert _failure(str(tmp_path), exc0) == "rank 0 failed: process 0 terminated with signal SIGKILL"


# --- local SGD, step by step -------------------------------------------------------------------


def _local_sgd_steps(rank: int, port: int, period: int, steps: int, queue: object) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        module = nn.Linear(3, 2)
        sync = GroupSync("average", period, "test", 1)
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        _, local_sgd = sync.wrap(module, optimizer, steps_per_epoch=100)
        torch.manual_seed(1 + rank)  # each rank its own data
        report = []
        for _ in range(steps):
            x = torch.randn(4, 3)
            # The oracle: the same step by plain SGD on a copy, without averaging.
            alone = copy.deepcopy(module)
            plain = torch.optim.SGD(alone.parameters(), lr=0.1)
            alone(x).square().sum().backward()
            plain.step()
            local_sgd.zero_grad()
            module(x).square().sum().backward()
            local_sgd.step()
            mine = torch.cat([p.detach().flatten() for p in alone.parameters()])
            got = torch.cat([p.detach().flatten() for p in module.parameters()])
            both = [torch.zeros_like(got), torch.zeros_like(got)]
            dist.all_gather(both, got)
            alone_both = [torch.zeros_like(mine), torch.zeros_like(mine)]
            dist.all_gather(alone_both, mine)
            report.append({
                "equals_mean_of_own_steps": bool(torch.allclose(got, (alone_both[0] + alone_both[1]) / 2, atol=1e-6)),
                "replicas_equal": bool(torch.equal(both[0], both[1])),
            })  # fmt: skip
        if rank == 0:
            queue.put(report)  # type: ignore[attr-defined]
        # Both ranks leave the last collective before either tears gloo down: a rank that destroyed
        # its group while the other still read from it was once aborted (SIGABRT) under load.
        dist.barrier()
    finally:
        dist.destroy_process_group()
    leave_without_finalising()  # as dnnmeter's own spawned ranks end: see its docstring


@pytest.mark.integration
def test_local_sgd_averages_exactly_every_period_steps() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_local_sgd_steps, args=(port, 2, 5, queue), nprocs=2, start_method="spawn")
    report = queue.get()
    # PeriodicModelAverager averages after steps 0, 2, 4 (period 2, no warm-up).
    assert [r["replicas_equal"] for r in report] == [True, False, True, False, True]
    assert [r["equals_mean_of_own_steps"] for r in report] == [True, False, True, False, True]


@pytest.mark.skipif(os.environ.get("WORLD_SIZE") is not None, reason="already under torchrun")
def test_no_torchrun_environment_means_spawning() -> None:
    from dnnmeter.training import launched_by_torchrun

    assert not launched_by_torchrun()


def test_collectives_reduce_on_the_gpu_under_nccl(monkeypatch: pytest.MonkeyPatch) -> None:
    """nccl reduces CUDA tensors only: the CPU counts of an epoch go to this rank's GPU and back."""
    from dnnmeter.training.distributed import collective_device

    assert collective_device("gloo") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert collective_device("nccl") == torch.device("cuda", 1)
