"""`dnnmeter analyze` says when a total is incomplete, in every output format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dnnmeter.cli import main

NOTICE = "ops without a cost formula (not in the totals): sort x1"


@pytest.fixture
def sorting_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A model whose one op (sort) has no cost formula, importable as `sorting_net:build`."""
    (tmp_path / "sorting_net.py").write_text(
        "import torch\n"
        "class Sorts(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.sort(x, dim=1).values\n"
        "def build(**kwargs):\n"
        "    return Sorts()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sorting_net", raising=False)
    return "sorting_net:build"


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_the_incomplete_notice_is_on_stderr_in_every_format(
    fmt: str, sorting_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["analyze", sorting_model, "--format", fmt])
    out, err = capsys.readouterr()
    assert status == 0
    assert NOTICE in err and NOTICE not in out
    if fmt == "json":
        (record,) = json.loads(out)
        assert record["complete"] is False and record["unsupported_ops"] == {"sort": 1}


def test_a_complete_count_says_so_and_prints_no_notice(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["analyze", "tiny_alexnet", "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0 and "cost formula" not in err
    (record,) = json.loads(out)
    assert record["complete"] is True and record["unsupported_ops"] == {}
