"""Distributed evaluation: the same `dnnmeter eval` under torchrun, 2 CPU processes (gloo).

Oracle: the single-process run of the same command. Every field that describes the data and
the model's answers (n, top-1, top-5, per-class counts, best and worst classes, the skipped
list in order) must be identical; only timings and settings may differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dnnmeter.distributed import Group
from test_evaluate import folder_with_a_corrupt_file

MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn

    def seeded():
        # Fixed initial weights: every process builds the same model.
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))

    def brightness():
        from test_evaluate import Brightness
        return Brightness()
    """
)

SAME = ("n", "top1", "top5", "top5_k", "per_class", "best_classes", "worst_classes", "skipped", "layout")


def test_shards_are_contiguous_and_cover_everything() -> None:
    items = list(range(10))
    shards = [Group(rank, 3, "cpu", "gloo").shard(items) for rank in range(3)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert Group(1, 4, "cpu", "gloo").shard([7, 8]) == [7]  # fewer items than ranks
    assert Group(0, 1, "cpu", None).gather("x") == ["x"]


def _run(tmp_path: Path, args: list[str], nproc: int) -> subprocess.CompletedProcess[str]:
    (tmp_path / "distmodels.py").write_text(MODELS)
    env = {
        **os.environ,
        # Keep the caller's PYTHONPATH: the dnnmeter under test may come from it (a source tree).
        "PYTHONPATH": os.pathsep.join(p for p in [str(tmp_path), str(Path(__file__).parent),
                                                  os.environ.get("PYTHONPATH", "")] if p),
        "OMP_NUM_THREADS": "1",
    }
    env = {k: v for k, v in env.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    command = [*(launcher if nproc > 1 else [sys.executable]), "-m", "dnnmeter", "eval", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def _result(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result,) = json.loads(proc.stdout)  # rank 1 printed nothing
    return result  # type: ignore[no-any-return]


@pytest.mark.integration
@pytest.mark.timeout(900)  # two runs of up to 300 s each
@pytest.mark.parametrize("data", ["digits", "folder"])
def test_two_processes_give_the_single_process_result(tmp_path: Path, data: str) -> None:
    if data == "folder":
        folder_with_a_corrupt_file(tmp_path / "images")
        args = ["distmodels:brightness", "--data", str(tmp_path / "images"), "--input-size", "16", "--batch-size", "2"]
    else:
        args = ["distmodels:seeded", "--data", "digits", "--input-size", "8", "--limit", "301", "--batch-size", "16"]
    args += ["--format", "json"]
    single = _result(_run(tmp_path, args, nproc=1))
    shared = _result(_run(tmp_path, args, nproc=2))
    for key in SAME:
        assert shared[key] == single[key], key
    assert shared["settings"]["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert single["settings"]["distributed"] == {"world_size": 1, "backend": None}
    if data == "folder":
        assert shared["n"] == 11 and len(shared["skipped"]) == 1  # the corrupt file sits in rank 0's half
    else:
        # A random linear model: some classes right, some wrong, so the per-class rows are a real check.
        assert shared["n"] == 301 and 0 < shared["top1"] < 1


@pytest.mark.integration
@pytest.mark.timeout(600)  # one torchrun of up to 300 s
def test_a_failing_rank_stops_every_rank_with_one_line(tmp_path: Path) -> None:
    bad = folder_with_a_corrupt_file(tmp_path / "images")
    # Move the corrupt file into rank 1's half (class c, files 8..11 of 12).
    bad.rename(tmp_path / "images" / "b" / "0.JPEG.keep")
    Path(tmp_path / "images" / "c" / "3.JPEG").write_bytes(os.urandom(64))
    proc = _run(tmp_path, ["distmodels:brightness", "--data", str(tmp_path / "images"), "--input-size", "16",
                           "--strict"], nproc=2)  # fmt: skip
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dnnmeter: error:")]
    # The job ends (no rank hangs in the gather) with the file named in one line. Rank 0 may
    # print its own line too, or be stopped by torchrun first, which ends every worker once
    # one has failed; the traceback that follows is torchrun's report, not dnnmeter's.
    assert 1 <= len(errors) <= 2 and all(str(tmp_path / "images" / "c" / "3.JPEG") in line for line in errors)


class _TwoRanks(Group):
    """Rank 0 of a pretend group of two whose rank 1 sends ``other``."""

    def __init__(self, other: object) -> None:
        super().__init__(0, 2, "cpu", "gloo")
        object.__setattr__(self, "other", other)

    def gather(self, obj: object) -> list[object]:
        return [obj, self.other]  # type: ignore[attr-defined]


def test_another_ranks_failure_is_raised_here_in_one_line(tmp_path: Path) -> None:
    """Without torchrun to stop it, rank 0 must not wait for rank 1's tally: it raises rank 1's error."""
    from test_evaluate import Brightness

    from dnnmeter.accuracy.inputs import open_for_eval, preprocessing_for
    from dnnmeter.accuracy.loop import DistributedError, Run, evaluate_shard

    folder_with_a_corrupt_file(tmp_path)
    transform, size, _ = preprocessing_for(None, None, 16)
    dataset = open_for_eval(str(tmp_path), transform, size, {})
    run = Run("brightness", 4, 0, "cpu", False, None)
    group = _TwoRanks((None, "rank 1: /data/x.JPEG: unreadable image"))
    with pytest.raises(DistributedError, match="rank 1: /data/x.JPEG: unreadable image"):
        evaluate_shard(Brightness(), None, None, dataset, group, list(range(len(dataset))), run)
