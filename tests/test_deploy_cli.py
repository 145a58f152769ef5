"""`dnnmeter deploy` on the command line: listing, bad input, the table and the JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

import dnnmeter
from dnnmeter.cli import choices, main
from dnnmeter.deployment import BaselineRecheck, ConfigResult, DeployResult
from dnnmeter.deployment.budget import SCREEN_IMAGES
from dnnmeter.deployment.search import DEFAULT_IMAGES


def test_the_cli_default_equals_the_librarys() -> None:
    assert choices.DEPLOY_IMAGES == DEFAULT_IMAGES and choices.DEPLOY_SCREEN_IMAGES == SCREEN_IMAGES


def test_list_configs_counts_at_least_20_for_resnet50(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "resnet50", "--list-configs", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 13 * 1 and rows[0]["name"] == "eager-float32@t1"
    assert {"name", "kind", "threads", "skipped"} <= set(rows[0])


@pytest.mark.parametrize(("argv", "said"), [
    (["--tolerance", "5 percent"], "bad tolerance '5 percent'"),
    (["--configs", "int4", "--list-configs"], "unknown configuration(s) int4"),
])  # fmt: skip
def test_bad_input_is_one_line_and_status_2(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "tiny_alexnet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0], err


def _result() -> DeployResult:
    base = ConfigResult("eager-float32@t1", "eager-float32", 1, "accepted", "the baseline", 0.01, 0.009, 0.011,
                        1.0, 0.9, 1.1, 1.0, 0.0, 0.0, float("inf"), None, None, 0.02, 100, 1000)
    fast = ConfigResult("int8@t1", "int8", 1, "rejected", "top-1 disagreement 5.00% above the tolerance 1.00%",
                        0.002, 0.002, 0.003, 5.0, 4.5, 5.5, 0.95, 0.1, 0.9, 20.0)
    return DeployResult("tiny_alexnet", "cpu", 1, 0.01, "agreement", 100, "100 images of digits", base.name,
                        base.name, "no other configuration was accepted", [base, fast],
                        rechecks=[BaselineRecheck(1, reason="budget: timing the baseline again needs about 20 s")])


def test_the_table_and_the_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}

    def fake(model: str, **kwargs: Any) -> DeployResult:
        seen.update(kwargs, model=model)
        return _result()

    monkeypatch.setattr(sys.modules["dnnmeter.deployment"], "deploy", fake)
    assert main(["deploy", "tiny_alexnet", "--tolerance", "0.5%", "--configs", "int8,compile"]) == 0
    out = capsys.readouterr().out
    assert "int8@t1" in out and "rejected" in out and "5.00x [4.50, 5.50]" in out and "inf" in out
    assert "recommended: eager-float32@t1 (no other configuration was accepted)" in out
    assert ("baseline: Not timed again at 1 thread (budget: timing the baseline again needs about 20 s): the "
            "speed-ups there rest on one timing of the baseline.") in " ".join(out.split())
    assert seen["tolerance"] == "0.5%" and seen["configs"] == ["int8", "compile"]
    assert main(["deploy", "tiny_alexnet", "--format", "json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["recommended"] == "eager-float32@t1" and raw["configs"][0]["sqnr_db"] is None


def test_dnnmeter_deploy_is_the_function_and_its_package_a_noun() -> None:
    import dnnmeter.deployment.search  # noqa: F401 - the package has its own name: nothing to shadow

    assert callable(dnnmeter.deploy) and dnnmeter.deploy is sys.modules["dnnmeter.deployment"].deploy
    assert dnnmeter.DeployResult is DeployResult


def test_a_gpu_that_is_not_here_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["deploy", "tiny_alexnet", "--device", "cuda"]) == 2
    assert "torch sees no CUDA GPU here" in capsys.readouterr().err
