"""analyze --depth N (layers folded into their parents) and --top K (the costliest layers):
the data (Analysis.fold / top_layers, folding.py) by invariants and by hand, the tables and
CSV by golden files, the JSON and CSV against the data."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torchvision
from rich.console import Console
from torch import nn

from dnnmeter import InvalidInputError, analyze
from dnnmeter.analysis import FoldedRow, RankedLayer
from dnnmeter.analysis.folding import TOP_LEVEL, fold, module_path, top_layers
from dnnmeter.cli import main
from dnnmeter.report import text


def render(table: object) -> str:
    out = io.StringIO()
    Console(file=out, width=140, color_system=None, soft_wrap=False).print(table)
    return out.getvalue()


@pytest.mark.parametrize("depth", [1, 2, 3, 9])
def test_folded_rows_sum_to_the_totals(depth: int) -> None:
    a = analyze(torchvision.models.resnet18())
    rows = fold(a, depth)
    assert sum(r.params for r in rows) == a.params and sum(r.macs for r in rows) == a.macs
    assert sum(r.flops for r in rows) == a.flops and sum(r.layers for r in rows) == len(a.layers)
    assert sum(r.params_share for r in rows) == pytest.approx(1.0)
    assert all(len(r.name.split(".")) <= depth for r in rows)


def test_resnet18_to_depth_1_by_hand() -> None:
    a = analyze("resnet18")
    rows = {r.name: r for r in fold(a, 1)}
    assert list(rows) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    # layer1: two BasicBlocks, each 2 convolutions 64->64 3x3 at 56x56 and 2 batch norms
    assert rows["layer1"].params == 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64) == 147_968
    assert rows["layer1"].macs == 4 * 56 * 56 * 64 * 64 * 9 == 462_422_016
    assert rows["layer1"].layers == 2 * 7  # conv, bn, relu, conv, bn, the residual add, relu
    assert rows["fc"].params_share == pytest.approx(513_000 / 11_689_512)


def test_module_paths_of_repeated_calls_and_ops_in_a_parent() -> None:
    shared = nn.Linear(4, 4)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(shared, nn.ReLU(), shared)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.block(x) + x

    a = analyze(Net(), inputs=(2, 4))
    names = [layer.name for layer in a.layers]
    assert names == ["block.0", "block.1", "block.0#2", "add"]
    assert [module_path(layer) for layer in a.layers] == ["block.0", "block.1", "block.0", ""]
    rows = fold(a, 1)
    assert [(r.name, r.layers, r.params, r.macs) for r in rows] == [("block", 3, 20, 64), (TOP_LEVEL, 1, 0, 0)]


def test_top_layers() -> None:
    a = analyze("resnet18")
    top = a.top_layers(3)
    assert all(isinstance(r, RankedLayer) for r in top) and [r.rank for r in top] == [1, 2, 3]
    assert [r.name for r in top] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert top[0].macs_share == pytest.approx(118_013_952 / a.macs)
    assert top[0].params_share == pytest.approx(3 * 64 * 7 * 7 / a.params)
    assert top == top_layers(a, 3) and a.fold(2) == fold(a, 2)
    assert all(isinstance(r, FoldedRow) for r in a.fold(2))
    assert len(a.top_layers(10_000)) == len(a.layers)
    top[0].output_shapes[0][0] = 99  # a copy: the analysis's rows stay as they were
    assert a.layers[0].output_shapes[0][0] == 1
    with pytest.raises(InvalidInputError, match="bad top 0"):
        a.top_layers(0)
    with pytest.raises(InvalidInputError, match="bad depth 0"):
        a.fold(0)


def test_golden_tables(golden) -> None:  # type: ignore[no-untyped-def]
    a = analyze("resnet18")
    golden("resnet18.depth2.txt", render(text.folded_table(a, fold(a, 2), 2)))
    golden("resnet18.top5.txt", render(text.top_table(a, a.top_layers(5))))
    m = analyze("mobilenet_v2", mode="train")
    golden("mobilenet_v2.train.depth1.txt", render(text.folded_table(m, fold(m, 1), 1)))


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "resnet18", "--depth", "1", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "resnet18: layers folded to depth 1 (10 rows)" in out and "the 2 costliest layers by MACs" in out
    with pytest.raises(SystemExit) as stopped:
        main(["analyze", "resnet18", "--depth", "0"])
    assert stopped.value.code == 2 and "--depth: expected a positive integer" in capsys.readouterr().err


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["analyze", "resnet18", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("depth", [1, 2])
def test_json_and_csv_list_the_folded_rows(depth: int, capsys: pytest.CaptureFixture[str]) -> None:
    a = analyze("resnet18")
    [d] = json.loads(run_cli(capsys, "--depth", str(depth), "--format", "json"))
    assert (d["params"], d["macs"], d["depth"]) == (a.params, a.macs, depth) == (11_689_512, 1_814_073_344, depth)
    rows = d["layers"]
    assert rows == [r.to_dict() for r in a.fold(depth)]
    assert sum(r["params"] for r in rows) == d["params"] and sum(r["macs"] for r in rows) == d["macs"]
    assert sum(r["flops"] for r in rows) == d["flops"]
    assert sum(r["params_share"] for r in rows) == pytest.approx(1.0)
    assert sum(r["macs_share"] for r in rows) == pytest.approx(1.0)
    assert all(len(r["name"].split(".")) <= depth for r in rows)
    assert len(rows) == (10 if depth == 1 else 2 + 2 + 8 + 2)  # stem 4, 8 blocks, avgpool and fc
    table = list(csv.DictReader(io.StringIO(run_cli(capsys, "--depth", str(depth), "--format", "csv"))))
    assert [r["name"] for r in table] == [r["name"] for r in rows]
    assert {r["model"] for r in table} == {"resnet18"} and {r["depth"] for r in table} == {str(depth)}
    assert sum(int(r["params"]) for r in table) == a.params and sum(int(r["macs"]) for r in table) == a.macs
    assert sum(float(r["macs_share"]) for r in table) == pytest.approx(1.0)


def test_json_and_csv_list_the_costliest_rows(capsys: pytest.CaptureFixture[str]) -> None:
    a = analyze("resnet18")
    [d] = json.loads(run_cli(capsys, "--top", "3", "--format", "json"))
    rows = d["layers"]
    assert d["top"] == 3 and [r["rank"] for r in rows] == [1, 2, 3]
    # the 3 largest of the full list, sorted by MACs
    largest = sorted((layer.macs for layer in a.layers), reverse=True)[:3]
    assert [r["macs"] for r in rows] == largest == [118_013_952, 115_605_504, 115_605_504]
    full = {layer.name: layer.to_dict() for layer in a.layers}
    for r in rows:  # each a full layer row, with its rank and shares added
        assert {k: v for k, v in r.items() if k not in ("rank", "params_share", "macs_share")} == full[r["name"]]
        assert r["macs_share"] == pytest.approx(r["macs"] / a.macs)
    table = list(csv.DictReader(io.StringIO(run_cli(capsys, "--top", "3", "--format", "csv"))))
    assert [(r["rank"], r["name"], int(r["macs"])) for r in table] == [
        (str(r["rank"]), r["name"], r["macs"]) for r in rows]


def test_without_depth_or_top_json_and_csv_are_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    a = analyze("resnet18")
    assert json.loads(run_cli(capsys, "--format", "json")) == json.loads(text.to_json([a]))
    assert run_cli(capsys, "--format", "csv") == text.analyses_csv([a])
    assert run_cli(capsys, "--format", "csv", "--per-layer") == text.analyses_csv([a], per_layer=True)


def test_golden_csv(golden, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    golden("resnet18.depth2.csv", run_cli(capsys, "--depth", "2", "--format", "csv"))
    golden("resnet18.top3.csv", run_cli(capsys, "--top", "3", "--format", "csv"))


def test_one_list_per_output(capsys: pytest.CaptureFixture[str]) -> None:
    # --per-layer does not change the JSON (it always has the layers), so it goes with --depth there
    assert json.loads(run_cli(capsys, "--per-layer", "--depth", "1", "--format", "json"))[0]["depth"] == 1
    assert main(["analyze", "resnet18", "--top", "2", "--depth", "1", "--format", "csv"]) == 2
    assert "give one of them, or --format table" in capsys.readouterr().err
