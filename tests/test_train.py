"""dnnmeter.training on one process: settings, augmentations, normalisation, determinism,
files, and the final figures checked against the returned module.

Oracles: hand-computed channel statistics and normalisation; a mirror is either the image
or its flip; two runs with one seed are bit-identical; the final validation accuracy is
recomputed from the returned module and the sidecar's normalisation; files are read back.
A tiny network on 8x8 digits keeps every run under a second or two.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from dnnmeter.data import digits_split
from dnnmeter.errors import InvalidInputError, ModelBuildError, UnknownModelError
from dnnmeter.accuracy import evaluate
from dnnmeter.zoo.weights import load_weights_file
from dnnmeter.training import (
    TrainResult,
    load_checkpoint,
    parse_augment,
    plot_curves,
    read_sidecar,
    train,
)
from dnnmeter.training.augment import train_transform, val_transform
from dnnmeter.training.data import channel_stats
from dnnmeter.accuracy.result import ClassAccuracy
from dnnmeter.training.result import EpochRecord, TrainResult
from dnnmeter.zoo import create_model

PNG_MAGIC = b"\x89PNG"
TIMES = ("epoch_s", "val_s")
VAL_FRACTION = 0.6  # 718 training images: fast runs


class Tiny(nn.Module):
    """conv 3->4, BN, ReLU, global pool, linear 4->10: a few hundred weights."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def quick(model: str | nn.Module | None = None, **kwargs: object) -> TrainResult:
    """Two epochs of :class:`Tiny` (initialised from seed 0) on 8x8 digits, 40% for training."""
    if model is None:
        torch.manual_seed(0)  # a module passed in brings its own initial weights
        model = Tiny()
    args: dict[str, object] = {
        "epochs": 2, "input_size": 8, "batch_size": 64, "lr": 0.1, "threads": 1, "val_fraction": VAL_FRACTION,
    }  # fmt: skip
    args.update(kwargs)
    return train(model, "digits", **args)  # type: ignore[arg-type]


def without_times(history: list[EpochRecord]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.to_dict().items() if k not in TIMES} for row in history]


# --- settings and augmentations ---------------------------------------------------------------


def test_parse_augment_accepts_commas_lists_and_drops_repeats() -> None:
    assert parse_augment("mask, rotate,mask") == ("mask", "rotate")
    assert parse_augment(["FLIP", "noise"]) == ("flip", "noise")
    assert parse_augment(None) == () == parse_augment("")


def test_unknown_augmentation_suggests_the_close_one() -> None:
    with pytest.raises(InvalidInputError, match="did you mean rotate"):
        parse_augment("rotat")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch size"),
        ({"lr": 0}, "learning rate"),
        ({"strategy": "allreduce"}, "strategy"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"augment": "blur"}, "augmentation"),
        ({"nproc": 4, "batch_size": 2}, "smaller than nproc"),
    ],
)
def test_bad_settings_raise_one_line_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        quick(**kwargs)
    assert "\n" not in str(info.value)


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInputError, match="cannot create"):
        quick(out=str(tmp_path / "file" / "run"))


def test_unknown_model_and_missing_folder_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError):
        train("tiny_alexnett", "digits", epochs=1)
    with pytest.raises(InvalidInputError, match="no such folder"):
        train(Tiny(), str(tmp_path / "absent"), epochs=1, input_size=8)


def test_channel_stats_by_hand() -> None:
    # Channel 0: half the pixels 0, half 1 -> mean 0.5, std 0.5. Channel 1: constant 0.3
    # -> std 0, which would divide by zero, so it is left at 1. Channel 2: 0.25 and 0.75.
    images = torch.zeros(2, 3, 2, 2)
    images[1, 0] = 1.0
    images[:, 1] = 0.3
    images[0, 2], images[1, 2] = 0.25, 0.75
    mean, std, n = channel_stats(TensorDataset(images, torch.zeros(2)))
    assert n == 2
    assert mean == pytest.approx([0.5, 0.3, 0.5])
    assert std == pytest.approx([0.5, 1.0, 0.25])


def test_plain_transform_is_exactly_the_normalisation() -> None:
    x = torch.rand(3, 5, 5)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    expected = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    torch.testing.assert_close(train_transform((), mean, std)(x), expected)
    torch.testing.assert_close(val_transform(mean, std)(x), expected)


def test_flip_gives_the_image_or_its_mirror_and_both_happen() -> None:
    x = torch.arange(3 * 4 * 4, dtype=torch.float32).reshape(3, 4, 4) / 48
    flip = train_transform(("flip",), [0.0] * 3, [1.0] * 3)
    torch.manual_seed(0)
    outs = [flip(x) for _ in range(20)]
    mirrored = [bool(torch.equal(o, x.flip(-1))) for o in outs]
    assert all(m or torch.equal(o, x) for o, m in zip(outs, mirrored))
    assert 0 < sum(mirrored) < 20


def test_noise_stays_within_the_normalised_unit_range() -> None:
    mean, std = [0.5] * 3, [0.25] * 3
    noisy = train_transform(("noise",), mean, std)(torch.rand(3, 16, 16))
    assert noisy.min() >= (0 - 0.5) / 0.25 and noisy.max() <= (1 - 0.5) / 0.25


def test_every_augmentation_keeps_the_shape() -> None:
    out = train_transform(("mask", "rotate", "flip", "noise"), [0.3] * 3, [0.3] * 3)(torch.rand(3, 8, 8))
    assert out.shape == (3, 8, 8)


# --- a run -----------------------------------------------------------------------------------


def test_same_seed_same_history_and_weights_other_seed_differs() -> None:
    every = {"augment": "mask,rotate,flip,noise", "val_fraction": 0.9}
    a, b, c = quick(**every), quick(**every), quick(**every, seed=1)
    assert without_times(a.history) == without_times(b.history)
    assert a.module is not None and b.module is not None and c.module is not None
    for (name, x), y in zip(a.module.state_dict().items(), b.module.state_dict().values()):
        assert torch.equal(x, y), name
    assert not torch.equal(a.module.head[2].weight, c.module.head[2].weight)


def test_result_fields_and_the_accuracy_recomputed_from_the_module() -> None:
    r = quick()
    d = r.to_dict()
    json.dumps(d)  # JSON-ready
    assert "module" not in d
    assert [h.epoch for h in r.history] == [1, 2]
    assert set(r.history[0].to_dict()) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", *TIMES}
    assert r.val_accuracy == r.history[-1].val_accuracy
    assert r.settings["train_images"] + r.settings["val_images"] == 1797
    assert r.settings["steps_per_epoch"] == math.ceil(r.settings["train_images"] / 64)
    assert len(r.best_classes) == len(r.worst_classes) == 5
    assert r.checkpoint is None and r.curves is None and r.distributed is None
    # The oracle: the returned module, the training split's statistics, the val split.
    train_set, val_set = digits_split(0, VAL_FRACTION, 8, normalize=False)
    images = torch.stack([train_set[i][0] for i in range(len(train_set))])
    mean, std = images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3), unbiased=False)
    assert r.settings["normalization"]["mean"] == pytest.approx(mean.tolist(), abs=1e-6)
    x = torch.stack([val_set[i][0] for i in range(len(val_set))])
    y = torch.tensor([val_set[i][1] for i in range(len(val_set))])
    with torch.no_grad():
        logits = r.module((x - mean[:, None, None]) / std[:, None, None])  # type: ignore[misc]
    correct = int((logits.argmax(1) == y).sum())
    assert r.val_accuracy == correct / len(y)


def test_the_callers_module_rng_and_threads_are_left_alone() -> None:
    model = Tiny().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    r = quick(model, epochs=1)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert r.module is not model


def test_progress_is_called_for_every_batch_of_every_epoch() -> None:
    calls: list[tuple[int, int, int, int]] = []
    r = quick(progress=lambda *a: calls.append(a))
    batches = r.settings["steps_per_epoch"]
    assert len(calls) == 2 * batches
    assert calls[0] == (1, 2, 1, batches) and calls[-1] == (2, 2, batches, batches)


def test_files_are_written_and_read_back(tmp_path: Path) -> None:
    r = train(
        "tiny_alexnet_dw", "digits", epochs=1, input_size=16, out=str(tmp_path), threads=1, val_fraction=0.8
    )
    assert r.checkpoint == str(tmp_path / "model.safetensors")
    assert Path(r.curves or "").read_bytes()[:4] == PNG_MAGIC
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["history"] == [h.to_dict() for h in r.history]
    assert json.loads((tmp_path / "result.json").read_text())["val_accuracy"] == r.val_accuracy
    side = read_sidecar(r.checkpoint)
    assert side["classes"] == [str(d) for d in range(10)] and side["input_size"] == [3, 16, 16]
    net = load_checkpoint("tiny_alexnet_dw", r.checkpoint)
    x = torch.randn(2, 3, 16, 16)
    assert r.module is not None
    with torch.no_grad():
        torch.testing.assert_close(net(x), r.module.eval()(x))
    other = Tiny()
    with pytest.raises(ModelBuildError, match=r"is a checkpoint of tiny_alexnet_dw .*not of model; evaluate it as"):
        load_weights_file(other, r.checkpoint)
    # evaluate(weights=FILE) reads it (with ImageNet's preprocessing, so no accuracy check).
    ten = create_model("tiny_alexnet_dw", device="cpu", num_classes=10)
    assert evaluate(ten, "digits", weights=r.checkpoint, input_size=16, limit=50).n == 50


def _image_folders(root: Path, classes: dict[str, int], per_class: int) -> None:
    """Grey 8x8 PNGs whose level says the class."""
    for split in ("train", "val"):
        for name, level in classes.items():
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((8, 8, 3), level + i, dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")


def test_a_folder_with_train_and_val(tmp_path: Path) -> None:
    _image_folders(tmp_path, {"dark": 20, "light": 220}, 4)
    r = train(Tiny(classes=2), str(tmp_path), epochs=1, input_size=8, batch_size=4, threads=1)
    assert r.layout == "image-folder" and r.settings["classes"] == 2
    assert r.settings["train_images"] == r.settings["val_images"] == 8
    assert {c.class_name for c in r.per_class} == {"dark", "light"}
    mean = r.settings["normalization"]["mean"][0]
    assert mean == pytest.approx(
        (np.mean([20 + i for i in range(4)] + [220 + i for i in range(4)])) / 255, abs=1e-5
    )


def test_a_folder_whose_splits_disagree_is_refused(tmp_path: Path) -> None:
    _image_folders(tmp_path, {"a": 10, "b": 200}, 1)
    (tmp_path / "val" / "b" / "0.png").rename(tmp_path / "val" / "a" / "1.png")
    (tmp_path / "val" / "b").rmdir()
    with pytest.raises(InvalidInputError, match="same class folders"):
        train(Tiny(classes=2), str(tmp_path), epochs=1, input_size=8)


def test_plot_curves_draws_several_runs(tmp_path: Path) -> None:
    runs = [
        {"model": name, "history": [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e,
                                     "train_accuracy": 1 - 0.5 / e, "val_accuracy": 1 - 0.6 / e}
                                    for e in (1, 2, 3)]}
        for name in ("a", "b")
    ]  # fmt: skip
    path = plot_curves(runs, tmp_path / "all.png")
    assert path.read_bytes()[:4] == PNG_MAGIC


def _fake_run(world: int, seconds: float, accuracy: float) -> TrainResult:
    dist = {"world_size": world, "strategy": "average", "average_every": 4, "threads_per_process": 1}
    history = [EpochRecord(epoch=1, train_loss=0.5, train_accuracy=0.9, val_loss=0.4, val_accuracy=accuracy,
                           epoch_s=seconds, val_s=0.1)]
    best, worst = ClassAccuracy(7, "7", None, 3, 4, 0.75), ClassAccuracy(1, "1", None, 1, 4, 0.25)
    return TrainResult(
        model="m", data="digits", layout="digits", settings={"batch_size": 64}, history=history,
        train_accuracy=0.9, val_accuracy=accuracy, val_loss=0.4, per_class=[worst, best], best_classes=[best],
        worst_classes=[worst], checkpoint=None, curves=None, history_file=None, seconds=seconds,
        distributed=dist if world > 1 else None, environment={"torch_threads": 1},
    )  # fmt: skip


def test_text_tables_show_the_figures_and_the_speed_up() -> None:
    from rich.console import Console

    from dnnmeter.report.train_text import classes_table, comparison_table, history_table

    console = Console(width=200, record=True)
    single, averaged = _fake_run(1, 10.0, 0.9916), _fake_run(2, 4.0, 0.9889)
    console.print(comparison_table([single, averaged]))
    console.print(history_table(averaged), classes_table(single))
    text = console.export_text()
    assert "m (1 process, 1 thread)" in text and "m average x2, every 4 steps, 1 thread each" in text
    assert "2.50x" in text and "99.16%" in text and "98.89%" in text
    assert "75.00%" in text and "25.00%" in text


def test_tiny_imagenet_layout_trains_on_train_and_scores_on_val(tmp_path: Path) -> None:
    """The seed's data set, in its real layout: train/<wnid>/images and val/ with its annotations."""
    from dnnmeter.training.settings import FOLDER_EPOCHS, default_epochs

    wnids = {"n02000002": 30, "n01000001": 200}  # listed out of order: classes follow sorted wnids
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for wnid, level in wnids.items():
        (tmp_path / "train" / wnid / "images").mkdir(parents=True)
        for i in range(3):
            pixels = np.full((8, 8, 3), level + i, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "train" / wnid / "images" / f"{wnid}_{i}.JPEG")
        (tmp_path / "val" / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8)).save(tmp_path / "val" / "images" / f"val_{wnid}.JPEG")
        lines.append(f"val_{wnid}.JPEG\t{wnid}\t0\t0\t8\t8")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    r = train(Tiny(classes=2), str(tmp_path), epochs=1, input_size=8, batch_size=2, threads=1)
    assert r.layout == "tiny-imagenet" and r.settings["split"] == "Tiny ImageNet train/ and val/"
    assert (r.settings["train_images"], r.settings["val_images"]) == (6, 2)
    assert [c.class_name for c in r.per_class] == sorted(wnids)
    assert default_epochs(str(tmp_path)) == FOLDER_EPOCHS == 100  # the seed's run, unless told otherwise
