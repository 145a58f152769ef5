"""Deploy's workers start with the heap bench's points start with (measure/heap.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dnnmeter.deployment import runner
from dnnmeter.deployment.worker import DeploySpec
from dnnmeter.measure.heap import heap_environment
from dnnmeter.measure.spec import RESULT_PREFIX


def test_a_worker_starts_with_the_steady_heap_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.update(kwargs["env"])  # type: ignore[arg-type]
        line = RESULT_PREFIX + json.dumps({"status": "measured", "extra": {}})
        return subprocess.CompletedProcess(args, 0, stdout=line + "\n")

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "4096")  # a parent's own setting does not reach the worker
    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    spec = DeploySpec(model="tiny_alexnet", kind="eager-float32", threads=1, batch_size=1,
                      images_path=str(tmp_path / "i.pt"), outputs_path=str(tmp_path / "o.npy"),
                      artefact_dir=str(tmp_path))
    found = runner.in_subprocess(spec)
    for name, value in heap_environment("steady").items():
        assert seen[name] == value
    assert found["extra"]["heap"] == "steady"
