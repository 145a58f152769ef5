"""The command line: formats, exit statuses, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dnnmeter.cli import main

FIELDS = ("model", "input_size", "batch_size", "params", "trainable_params", "macs", "flops",
          "activations", "weight_bytes", "layers", "by_kind")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_analyze_json_uses_the_documented_names_and_integers(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "analyze", "resnet18", "tiny_alexnet", "--format", "json")
    assert status == 0
    data = json.loads(out)
    assert [d["model"] for d in data] == ["resnet18", "tiny_alexnet"]
    for d in data:
        assert set(FIELDS) <= set(d)
        assert all(type(d[k]) is int for k in ("params", "macs", "flops", "activations", "weight_bytes"))
    assert data[0]["params"] == 11_689_512 and data[0]["macs"] == 1_814_073_344


def test_analyze_csv_per_layer_sums_to_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "analyze", "resnet18", "--format", "csv", "--per-layer")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sum(int(r["params"]) for r in rows) == 11_689_512
    assert sum(int(r["macs"]) for r in rows) == 1_814_073_344


def test_analyze_csv_summary(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "analyze", "vgg16", "--format", "csv", "--batch-size", "2", "--input-size", "3,224,224")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert int(row["macs"]) == 2 * 15_470_264_320 and row["input_size"] == "[3,224,224]"
    assert int(row["fc_params"]) > int(row["conv_params"])


def test_analyze_table_shows_totals_and_the_conv_fc_split(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "analyze", "alexnet", "--per-layer")
    assert status == 0
    assert "features.0" in out and "classifier.6" in out
    assert "Convolutional against fully connected" in out and "61.10" in out


def test_models_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "models", "--format", "json")
    data = json.loads(out)
    assert status == 0 and len(data) >= 87
    names = {d["name"]: d for d in data}
    assert names["vit_h_14"]["input_size"] == [3, 518, 518]
    assert names["resnet50"]["published"]["params"] == 25_557_032


def test_models_table_by_source(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "models", "--source", "seed")
    assert status == 0 and "tiny_alexnet_dw_res" in out and "resnet50" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "resnet5"], "unknown model 'resnet5'; did you mean"),
        (["analyze", "resnet18", "resnt34"], "unknown model 'resnt34'"),
        (["analyze", "alexnet", "--input-size", "8"], "alexnet: forward failed at input (1, 3, 8, 8)"),
        (["analyze", "resnet18", "--input-size", "a,b"], "bad input size"),
    ],
)
def test_bad_input_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_not_an_onnx_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("not a model")
    status, _, err = run(capsys, "analyze", str(path))
    assert status == 2 and "not an ONNX model" in err and err.count("\n") == 1


def test_argument_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "resnet18", "--batch-size", "0"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2 and err.count("\n") == 1 and "positive integer" in err


def test_debug_shows_the_traceback() -> None:
    from dnnmeter.errors import UnknownModelError

    with pytest.raises(UnknownModelError):
        main(["--debug", "analyze", "resnet5"])


@pytest.mark.integration
def test_python_dash_m_and_exit_status() -> None:
    done = subprocess.run([sys.executable, "-m", "dnnmeter", "analyze", "nope_model"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("dnnmeter: error: unknown model 'nope_model'")
    version = subprocess.run([sys.executable, "-m", "dnnmeter", "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("dnnmeter ")


def test_golden_per_layer_csv(capsys: pytest.CaptureFixture[str], golden) -> None:  # type: ignore[no-untyped-def]
    _, out, _ = run(capsys, "analyze", "tiny_alexnet_dw_res", "--format", "csv", "--per-layer")
    golden("tiny_alexnet_dw_res.layers.csv", out)
    _, out, _ = run(capsys, "analyze", "resnet18", "--format", "csv")
    golden("resnet18.summary.csv", out)


def test_eval_json_on_the_built_in_digits(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "eval", "tiny_alexnet_dw", "--data", "digits", "--limit", "20", "--format", "json")
    assert status == 0
    (result,) = json.loads(out)
    for key in ("model", "data", "n", "top1", "top5", "per_class", "best_classes", "worst_classes",
                "images_per_s", "skipped", "weights"):
        assert key in result
    assert result["n"] == 20 and 0.0 <= result["top1"] <= result["top5"] <= 1.0
    assert len(result["best_classes"]) == 5 and result["skipped"] == []


def test_eval_bad_data_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "eval", "resnet18", "--data", str(tmp_path / "missing"))
    assert status == 2 and "no such folder" in err and err.count("\n") == 1
