"""analyze --depth N (layers folded into their parents) and --top K (the costliest layers):
the data (folding.py) by invariants and by hand, the tables by golden files."""

from __future__ import annotations

import io

import pytest
import torchvision
from rich.console import Console
from torch import nn

from dnnmeter import InvalidInputError, analyze
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
    top = top_layers(a, 3)
    assert [layer.name for layer, _ in top] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert top[0][1] == pytest.approx(118_013_952 / a.macs)
    assert len(top_layers(a, 10_000)) == len(a.layers)
    with pytest.raises(InvalidInputError, match="bad top 0"):
        top_layers(a, 0)
    with pytest.raises(InvalidInputError, match="bad depth 0"):
        fold(a, 0)


def test_golden_tables(golden) -> None:  # type: ignore[no-untyped-def]
    a = analyze("resnet18")
    golden("resnet18.depth2.txt", render(text.folded_table(a, fold(a, 2), 2)))
    golden("resnet18.top5.txt", render(text.top_table(a, top_layers(a, 5))))
    m = analyze("mobilenet_v2", mode="train")
    golden("mobilenet_v2.train.depth1.txt", render(text.folded_table(m, fold(m, 1), 1)))


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "resnet18", "--depth", "1", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "resnet18: layers folded to depth 1 (10 rows)" in out and "the 2 costliest layers by MACs" in out
    with pytest.raises(SystemExit) as stopped:
        main(["analyze", "resnet18", "--depth", "0"])
    assert stopped.value.code == 2 and "--depth: expected a positive integer" in capsys.readouterr().err
