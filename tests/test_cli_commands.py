"""The hardware, modify, train and study-modifications commands: JSON fields, files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnnmeter.cli import main
from dnnmeter.hardware import original_alexnet_layers, write_topology


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_hardware_json_totals_equal_the_layers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "hardware", "resnet18", "--array", "16x16", "--dataflow", "ws",
                         "--export-scalesim", str(tmp_path), "--format", "json")
    assert status == 0
    data = json.loads(out)
    totals, layers = data["totals"], data["layers"]
    for field in ("macs", "naive_accesses", "dram_lower_bound", "cycles", "utilization", "energy"):
        assert field in totals, field
    assert totals["macs"] == sum(layer["macs"] for layer in layers) == 1_814_073_344  # torchvision: 1.814 GMACs
    assert totals["naive_accesses"] == 4 * totals["macs"]
    assert totals["cycles"] == sum(layer["cycles"] for layer in layers)
    assert data["settings"]["array"] == [16, 16] and data["settings"]["dataflow"] == "ws"
    assert {"sram_reads", "dram_reads", "dram_writes", "mapping_efficiency"} <= set(layers[0])
    assert any(tmp_path.iterdir())  # the SCALE-Sim topology, layout and config


def test_hardware_reads_a_scalesim_topology(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    convs = original_alexnet_layers()[:5]
    topology = write_topology(convs, tmp_path / "alexnet.csv")
    status, out, _ = run(capsys, "hardware", "--topology", str(topology), "--format", "json")
    # SCALE-Sim has no groups: the two-tower convs come back as one row per group, same MACs.
    assert status == 0 and json.loads(out)["totals"]["macs"] == sum(layer.macs for layer in convs)


@pytest.mark.parametrize("argv, message", [
    (["hardware"], "give a MODEL or --topology"),
    (["hardware", "alexnet", "--array", "3x"], "bad array"),
    (["hardware", "alexnet", "--energy-table", "/no/such.toml"], "no/such.toml"),
    (["modify", "tiny_alexnet", "--op", "factorize", "--layers", "nothing.here"], "nothing.here"),
    (["train", "tiny_alexnet", "--data", "/no/such/folder"], "/no/such/folder"),
    (["study", "--epochs", "3", "--out", "/tmp/never-written"], "belong to `dnnmeter study modifications`"),
])  # fmt: skip
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 2 and message in err and err.count("\n") == 1, err


def test_modify_json_before_and_after(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "modify.json"
    status, out, _ = run(capsys, "modify", "tiny_alexnet", "--op", "depthwise-separable", "--op", "residual",
                         "--format", "json", "--out", str(out_file))
    assert status == 0
    data = json.loads(out)
    assert list(data)[:4] == ["model", "ops", "before", "after"]
    assert data["ops"] == ["depthwise-separable", "residual"]
    assert data["after"]["params"] < data["before"]["params"] and data["after"]["macs"] < data["before"]["macs"]
    assert data["before"]["latency_s"] is None  # not measured without --latency
    assert json.loads(out_file.read_text()) == data


def test_train_json_and_its_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "train", "tiny_alexnet_dw", "--epochs", "1", "--threads", "1",
                         "--augment", "noise", "--out", str(tmp_path), "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert [row["epoch"] for row in data["history"]] == [1]
    assert 0.0 <= data["val_accuracy"] <= 1.0 and len(data["worst_classes"]) == 5
    for name in ("model.safetensors", "model.json", "history.json", "curves.png"):
        assert (tmp_path / name).is_file(), name
    # The checkpoint evaluates with its own classes, input size and normalisation.
    status, out, _ = run(capsys, "eval", "tiny_alexnet_dw", "--data", "digits", "--weights",
                         str(tmp_path / "model.safetensors"), "--limit", "50", "--format", "json")
    assert status == 0 and json.loads(out)[0]["settings"]["outputs"] == 10


def test_quantize_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "quantize", "tiny_alexnet_dw", "--bits", "32,8", "--limit", "32",
                           "--input-size", "32", "--format", "json")
    assert status == 0 and "initial weights" in err
    points = json.loads(out)
    assert [(p["kind"], p["bits"]) for p in points] == [("float", 32), ("fake", 8), ("int8", 8)]
    assert points[1]["latency_s"] is None and points[1]["latency_reason"]  # fake quantization runs in float
    assert points[2]["int8_path"] in ("pt2e", "fx", "eager") and points[2]["size_bytes"] < points[0]["size_bytes"]


def test_prune_json_structured_removes_macs(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "prune", "tiny_alexnet", "--method", "structured", "--sparsities", "0,0.5",
                         "--limit", "32", "--input-size", "32", "--format", "json")
    assert status == 0
    before, after = json.loads(out)
    assert (before["sparsity"], after["sparsity"]) == (0.0, 0.5)
    assert after["macs"] < before["macs"] and after["hardware"]["cycles"] < before["hardware"]["cycles"]


def test_study_modifications_json_is_pure_and_resumes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["study", "modifications", "--models", "tiny_alexnet_dw", "--epochs", "1", "--nproc", "0",
            "--no-compression", "--threads", "1", "--out", str(tmp_path), "--format", "json"]
    status, out, err = run(capsys, *argv)
    assert status == 0 and "1 variants trained" in err
    (variant,) = json.loads(out)  # the summary went to stderr
    assert variant["variant"] == "tiny_alexnet_dw" and variant["ops"] == []
    status, out, err = run(capsys, *argv)
    assert status == 0 and "0 variants trained" in err and json.loads(out) == [variant]
    assert (tmp_path / "report.html").is_file()
