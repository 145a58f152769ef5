"""Checkpoints and the models trained on the user's data (issue 11): zoo models with one output
per class, scores on held-out images only, one-line errors for every wrong weights file,
--overwrite, files written with the user's umask; and the layering of issue 12 (cycle 1)."""

from __future__ import annotations

import ast
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from dnnmeter.cli import main
from dnnmeter.data import digits_split
from dnnmeter.errors import InvalidInputError, ModelBuildError
from dnnmeter.accuracy import evaluate, prepared_data
from dnnmeter.training import train
from dnnmeter.zoo import create_model
from dnnmeter.zoo.weights import load_weights_file, save_checkpoint

SRC = Path(__file__).resolve().parent.parent / "src" / "dnnmeter"
DIGITS_META = {"model": "tiny_alexnet", "classes": [str(d) for d in range(10)], "input_size": [3, 16, 16],
               "normalization": {"mean": [0.3] * 3, "std": [0.3] * 3}}


class Tiny(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def quick(out: Path | None = None, **kwargs: object) -> object:
    torch.manual_seed(0)
    args: dict[str, object] = {"epochs": 1, "input_size": 8, "batch_size": 64, "threads": 1, "val_fraction": 0.6}
    args.update(kwargs)
    return train(Tiny(), "digits", out=None if out is None else str(out), **args)  # type: ignore[arg-type]


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("dnnmeter: error:")]
    assert len(lines) == 1 and "Traceback" not in err and "\x1b" not in err, err
    return lines[0]


# --- 1. a zoo model trained on the user's data: one output per class --------------------------


def test_a_torchvision_model_trains_on_digits() -> None:
    # 180 training images in one batch: one optimiser step of resnet18 at 32 px.
    r = train("resnet18", "digits", epochs=1, batch_size=180, val_fraction=0.9, threads=1)
    assert r.settings["steps_per_epoch"] == 1 and r.settings["classes"] == 10
    assert r.module is not None and r.module(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert r.val_accuracy is not None and len(r.per_class) == 10


def test_every_torchvision_builder_takes_the_datas_class_count() -> None:
    for name in ("vgg11", "googlenet", "inception_v3", "vit_b_16", "mobilenet_v3_small"):
        heads = [m for m in create_model(name, num_classes=7).modules() if isinstance(m, nn.Linear)]
        assert heads[-1].out_features == 7, name
    from torchvision import models

    assert len(models.get_model_weights("vgg11").DEFAULT.meta["categories"]) == 1000  # restored


def test_default_weights_with_another_class_count_is_one_line() -> None:
    with pytest.raises(ModelBuildError, match="default weights have 1000 classes, not 10"):
        create_model("resnet18", device="cpu", weights="default", num_classes=10)


def test_study_modifications_builds_vgg11_for_the_digits() -> None:
    from dnnmeter.studies.modifications import ModificationsSettings, _module

    settings = ModificationsSettings(models=("vgg11",))
    module, size = _module(settings.variants()[0], settings)
    assert size == 32
    with torch.no_grad():
        assert module.eval()(torch.zeros(1, 3, size, size)).shape == (1, 10)


# --- 2. scores on held-out images only ---------------------------------------------------------


def test_eval_of_a_digits_checkpoint_scores_only_the_held_out_digits(tmp_path: Path) -> None:
    r = quick(tmp_path, val_fraction=0.2)
    checkpoint = str(tmp_path / "model.safetensors")
    _, val = digits_split(0, 0.2, 8)
    side = json.loads((tmp_path / "model.json").read_text())
    assert side["split"]["val_indices"] == val.indices and side["split"]["seed"] == 0
    result = evaluate(Tiny(), "digits", weights=checkpoint)
    assert result.n == len(val) == 359 and result.held_out is True
    assert result.top1 == pytest.approx(r.val_accuracy)  # the same images train scored  # type: ignore[attr-defined]
    assert result.to_dict()["held_out"] is True and "held out in training" in result.held_out_note
    assert len(prepared_data("tiny_alexnet", "digits", checkpoint)) == 359  # quantize and prune


def test_prune_of_a_digits_checkpoint_says_held_out_in_its_json(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    train("tiny_alexnet", "digits", epochs=1, input_size=16, val_fraction=0.2, threads=1, out=str(tmp_path))
    argv = ["prune", "tiny_alexnet", "--weights", str(tmp_path / "model.safetensors"), "--method", "unstructured",
            "--sparsities", "0", "--format", "json"]
    assert main(argv) == 0
    points = json.loads(capsys.readouterr().out)
    assert points[0]["held_out"] is True and "359 digits held out" in points[0]["held_out_note"]


def test_an_older_sidecar_without_the_split_rederives_it_from_the_seed(tmp_path: Path) -> None:
    quick(tmp_path, val_fraction=0.2, seed=3)
    side = json.loads((tmp_path / "model.json").read_text())
    del side["split"]
    (tmp_path / "model.json").write_text(json.dumps(side))
    result = evaluate(Tiny(), "digits", weights=str(tmp_path / "model.safetensors"))
    _, val = digits_split(3, 0.2, 8)
    assert result.n == len(val) and result.held_out is True and "re-derived" in result.held_out_note


def test_a_malformed_split_is_one_line(tmp_path: Path) -> None:
    path = save_checkpoint(create_model("tiny_alexnet", device="cpu", num_classes=10), tmp_path / "model.safetensors",
                           {**DIGITS_META, "split": {"data": "digits", "val_indices": [1, 5000]}})
    with pytest.raises(ModelBuildError, match=r"model.json: its split's val_indices name digit 5000, past the 1797"):
        evaluate("tiny_alexnet", "digits", weights=str(path))


def test_weights_without_a_record_of_their_split_warn_and_say_so(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.save(Tiny().state_dict(), path)
    with pytest.warns(UserWarning, match="no record of the digits these weights were trained on"):
        result = evaluate(Tiny(), "digits", weights=str(path), input_size=8)
    assert result.n == 1797 and result.held_out is None and "training images" in result.held_out_note


def test_a_folder_checkpoint_on_its_training_folder_warns(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "data"
    for split in ("train", "val"):
        for name, level in (("a", 10), ("b", 200)):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (level + i,) * 3).save(root / split / name / f"{i}.png")
    torch.manual_seed(0)
    train(Tiny(2), str(root), epochs=1, input_size=8, out=str(tmp_path / "out"), threads=1)
    weights = str(tmp_path / "out" / "model.safetensors")
    with pytest.warns(UserWarning, match="the images these weights were trained on"):
        assert evaluate(Tiny(2), str(root / "train"), weights=weights, input_size=8).held_out is False
    assert evaluate(Tiny(2), str(root / "val"), weights=weights, input_size=8).held_out is True


# --- 3. every wrong weights file is one line ----------------------------------------------------


def test_another_models_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(create_model("tiny_alexnet", device="cpu", num_classes=10),
                           tmp_path / "model.safetensors", DIGITS_META)
    line = one_line_error(capsys, ["eval", "mobilenet_v3_small", "--data", "digits", "--weights", str(path)])
    assert "is a checkpoint of tiny_alexnet" in line and "dnnmeter eval tiny_alexnet --weights" in line


def test_a_pickled_whole_model_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Linear(2, 2)), path)  # the module's class, pickled: refused
    line = one_line_error(capsys, ["eval", "tiny_alexnet", "--data", "digits", "--weights", str(path)])
    assert "holds a pickled object" in line and "torch.save(model.state_dict(), FILE)" in line
    assert "weights_only" not in line


def test_a_dataparallel_state_dict_loads_with_a_warning(tmp_path: Path) -> None:
    source = Tiny()
    path = tmp_path / "dp.pt"
    torch.save(nn.DataParallel(source).state_dict(), path)
    target = Tiny()
    with pytest.warns(UserWarning, match="'module.'.*prefix stripped"):
        load_weights_file(target, str(path))
    torch.testing.assert_close(target.state_dict(), source.state_dict())


def test_another_class_count_suggests_num_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    path = tmp_path / "finetuned.pt"
    torch.save(create_model("mobilenet_v3_small", device="cpu", num_classes=10).state_dict(), path)
    argv = ["eval", "mobilenet_v3_small", "--data", "digits", "--weights", str(path), "--limit", "4",
            "--input-size", "32"]
    line = one_line_error(capsys, argv)
    assert "has 10 classes where mobilenet_v3_small is built with 1000; pass --num-classes 10" in line
    assert main([*argv, "--num-classes", "10", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["settings"]["outputs"] == 10
    # The CLI shows a library warning as one line of its own.
    assert [line for line in err.splitlines() if "no record of the digits" in line][0].startswith("dnnmeter: warning: ")
    line = one_line_error(capsys, ["quantize", "mobilenet_v3_small", "--weights", str(path), "--limit", "4"])
    assert "--num-classes 10" in line


def test_a_corrupt_sidecar_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(create_model("tiny_alexnet", device="cpu", num_classes=10),
                           tmp_path / "model.safetensors", DIGITS_META)
    (tmp_path / "model.json").write_text('{"model": "tiny_al')
    line = one_line_error(capsys, ["eval", "tiny_alexnet", "--data", "digits", "--weights", str(path)])
    assert f"{tmp_path / 'model.json'}: the checkpoint's sidecar is not readable JSON" in line


def test_a_folder_given_for_the_weights_says_it_is_a_folder(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, ["eval", "tiny_alexnet", "--data", "digits", "--weights", str(tmp_path)])
    assert "is a folder, not a weights file" in line
    save_checkpoint(create_model("tiny_alexnet", device="cpu", num_classes=10), tmp_path / "model.safetensors",
                    DIGITS_META)
    line = one_line_error(capsys, ["prune", "tiny_alexnet", "--weights", str(tmp_path)])
    assert f"did you mean {tmp_path / 'model.safetensors'}?" in line


# --- 4. initial weights warn -------------------------------------------------------------------


def test_eval_with_initial_weights_warns() -> None:
    with pytest.warns(UserWarning, match=r"initial \(random\) weights"):
        evaluate("tiny_alexnet", "digits", input_size=16, limit=4)


# --- 5. and 6. train's files: never replaced silently, and readable as the umask says ---------


def test_train_refuses_to_replace_a_checkpoint_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quick(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(InvalidInputError, match="model.safetensors exists .*pass --overwrite"):
        quick(tmp_path, seed=1)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    line = one_line_error(capsys, ["train", "tiny_alexnet", "--out", str(tmp_path), "--epochs", "1"])
    assert "--overwrite" in line
    quick(tmp_path, seed=1, overwrite=True)
    assert (tmp_path / "model.safetensors").read_bytes() != before


def test_trains_files_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    quick(tmp_path)
    for name in ("model.safetensors", "model.json", "history.json", "result.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_atomic_writer_replaces_whole_files_with_the_umask(tmp_path: Path, umask_022: None) -> None:
    from dnnmeter.atomic import write_bytes, write_json, write_text

    os.umask(0o027)
    target = tmp_path / "a.json"
    write_json(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    write_text(target, "new")
    assert target.read_text() == "new"
    write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and os.listdir(tmp_path) == ["a.json"]


# --- 7. layering (issue 12, cycle 1) ------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_weights_sit_below_evaluate_and_train_and_no_private_names_cross() -> None:
    weights = _imports(SRC / "zoo" / "weights.py")
    assert not [m for m in weights if m.startswith(("dnnmeter.accuracy", "dnnmeter.training"))]
    for path in (SRC / "accuracy").glob("*.py"):
        assert not [m for m in _imports(path) if m.startswith("dnnmeter.training")], path
        assert len(path.read_text().splitlines()) < 500, path
    for path in (SRC / "training").glob("*.py"):
        private = [m for m in _imports(path) if m.startswith("dnnmeter.accuracy") and m.rsplit(".", 1)[-1].startswith("_")]
        assert not private, path
