"""evaluate(): top-k arithmetic, per-class ranking, skipped files, weights, limit.

Oracles: hand-made logits (the data set yields the logits rows and the model is the
identity, so every count is known by hand); grey images whose level gives the class
(see tests/test_data.py); a corrupt file written as garbage bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from dnnmeter.data import IMAGENET_MEAN, IMAGENET_STD, open_data
from dnnmeter.errors import InvalidInputError, ModelBuildError
from dnnmeter.accuracy import Tally, evaluate, subset_indices
from dnnmeter.accuracy.inputs import preprocessing_for
from dnnmeter.zoo import resolve

N_CLASSES = 8


def ranked(target: int, rank: int, n: int = N_CLASSES) -> torch.Tensor:
    """A logits row in which ``target`` is the ``rank``-th highest (1 = top), no ties."""
    others = [c for c in range(n) if c != target]
    order = others[: rank - 1] + [target] + others[rank - 1 :]
    row = torch.zeros(n)
    for position, c in enumerate(order):
        row[c] = float(n - position)
    return row


# class: ranks of its images' true class. Worked by hand:
#   top-1 (rank 1): 4 + 2 + 3 + 1 + 2 + 0 + 0 = 12 of 20   -> 0.6
#   top-5 (rank <= 5): 12 + class 2's 2, class 4's 3, class 5's 5, class 6's 2 = 16 -> 0.8
#   accuracy: c0 4/4, c1 2/2, c2 3/4, c3 1/2, c4 2/4, c5 0/1, c6 0/3, c7 no images
RANKS = {
    0: [1, 1, 1, 1],
    1: [1, 1],
    2: [1, 1, 1, 2],
    3: [1, 6],
    4: [3, 1, 8, 1],
    5: [5],
    6: [6, 7, 2],
}


class Rows(Dataset):  # type: ignore[type-arg]
    """Yields (logits row, target); with nn.Identity as the model the rows are the outputs."""

    def __init__(self) -> None:
        self.items = [(ranked(c, r), c) for c, ranks in RANKS.items() for r in ranks]
        self.classes = [f"class{c}" for c in range(N_CLASSES)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.items[i]


def test_top_k_per_class_best_and_worst_by_hand() -> None:
    result = evaluate(nn.Identity(), Rows(), batch_size=3)
    assert (result.n, result.top1, result.top5, result.top5_k) == (20, 0.6, 0.8, 5)
    rows = {row.class_index: row for row in result.per_class}
    assert [(rows[c].correct, rows[c].count) for c in range(8)] == [
        (4, 4), (2, 2), (3, 4), (1, 2), (2, 4), (0, 1), (0, 3), (0, 0)
    ]  # fmt: skip
    assert rows[2].accuracy == 0.75 and rows[7].accuracy is None
    assert rows[3].class_name == "class3"
    # Accuracy, then more images first, then lower index; class 7 (no images) in neither.
    assert [r.class_index for r in result.best_classes] == [0, 1, 2, 4, 3]
    assert [r.class_index for r in result.worst_classes] == [6, 5, 4, 3, 2]
    assert result.label == "measured" and result.weights == "as passed (the caller's nn.Module)"
    assert result.layout == "dataset" and result.skipped == []
    d = result.to_dict()
    assert d["top1"] == 0.6 and len(d["per_class"]) == 8 and d["settings"]["batch_size"] == 3


def test_top5_with_fewer_than_five_outputs_is_top_all() -> None:
    tally = Tally.empty(3)
    logits = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    tally.add(logits, torch.tensor([0, 2, 1]))
    assert tally.k == 3
    assert tally.count.tolist() == [1, 1, 1]
    assert tally.correct1.tolist() == [1, 0, 0]
    assert tally.correctk.tolist() == [1, 1, 1]  # every label is among the 3 outputs


def test_ties_go_to_the_lower_class_index() -> None:
    tally = Tally.empty(0)
    logits = torch.zeros(4, 10)
    tally.add(logits, torch.tensor([0, 1, 4, 5]))
    assert tally.correct1.tolist() == [1, 0, 0, 0, 0, 0]  # grew to the largest label seen
    assert tally.correctk.tolist() == [1, 1, 0, 0, 1, 0]  # top-5 = outputs 0..4


def test_tallies_of_disjoint_shards_add_up() -> None:
    data = Rows()
    whole, first, second = Tally.empty(8), Tally.empty(8), Tally.empty(0)
    for i, (row, target) in enumerate(data.items):
        t = torch.tensor([target])
        whole.add(row[None], t)
        (first if i % 2 else second).add(row[None], t)
    merged = first.merge(second)
    for name in ("count", "correct1", "correctk"):
        assert getattr(merged, name).tolist() == getattr(whole, name).tolist()


def test_subset_indices_spread_over_the_order() -> None:
    assert subset_indices(10, 4) == [0, 2, 5, 7]
    assert subset_indices(3, None) == [0, 1, 2] == subset_indices(3, 5)


# --- Files: skipped, strict, limit ------------------------------------------------------------


class Brightness(nn.Module):
    """Class k = grey level LEVELS[k] (as in tests/test_data.py)."""

    LEVELS = (20, 120, 220)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("levels", torch.tensor(self.LEVELS, dtype=torch.float) / 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x[:, 0].mean(dim=(1, 2)) * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        return -((grey[:, None] - self.levels[None]) ** 2)


def folder_with_a_corrupt_file(root: Path) -> Path:
    for k, name in enumerate(("a", "b", "c")):
        (root / name).mkdir(parents=True)
        for i in range(4):
            level = Brightness.LEVELS[k]
            Image.new("RGB", (20, 20), (level,) * 3).save(root / name / f"{i}.JPEG")
    bad = root / "b" / "2.JPEG"
    bad.write_bytes(os.urandom(64))
    return bad


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_file_is_skipped_and_listed(tmp_path: Path, workers: int) -> None:
    bad = folder_with_a_corrupt_file(tmp_path)
    seen: list[tuple[int, int]] = []
    result = evaluate(Brightness(), str(tmp_path), input_size=16, batch_size=5, workers=workers,
                      progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    assert (result.n, result.top1) == (11, 1.0)
    assert [s["path"] for s in result.skipped] == [str(bad)]
    assert result.skipped[0]["reason"].startswith("UnidentifiedImageError")
    assert [r.count for r in result.per_class] == [4, 3, 4]
    assert seen == [(5, 12), (10, 12), (12, 12)]


def test_strict_makes_the_first_unreadable_file_fatal(tmp_path: Path) -> None:
    bad = folder_with_a_corrupt_file(tmp_path)
    with pytest.raises(InvalidInputError) as info:
        evaluate(Brightness(), str(tmp_path), input_size=16, strict=True)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_limit_evaluates_that_many_spread_over_classes(tmp_path: Path) -> None:
    folder_with_a_corrupt_file(tmp_path)
    result = evaluate(Brightness(), str(tmp_path), input_size=16, limit=6)
    # indices 0, 2, 4, 6, 8, 10 of the 12 files: 2 of each class, the corrupt file (6) among them
    assert result.n == 5 and len(result.skipped) == 1
    assert [r.count for r in result.per_class] == [2, 1, 2]
    assert result.settings["images_requested"] == 6


def test_caller_module_is_restored(tmp_path: Path) -> None:
    model = Brightness().train()
    with pytest.warns(UserWarning, match="3 outputs"):
        evaluate(model, "digits", input_size=8, limit=10)
    assert model.training


def test_more_classes_than_outputs_warns() -> None:
    with pytest.warns(UserWarning, match="can never be predicted"):
        result = evaluate(Brightness(), "digits", input_size=8, limit=20)
    assert result.top5_k == 3 and len(result.per_class) == 10


# --- Models by name and their weights ----------------------------------------------------------


def test_digits_with_a_named_model_and_initial_weights() -> None:
    result = evaluate("tiny_alexnet", "digits", limit=40, batch_size=16)
    assert result.n == 40 and result.weights == "none (initial values)"
    assert result.settings["input_size"] == 64 and result.settings["outputs"] == 200
    assert sum(r.count for r in result.per_class) == 40
    assert 0.0 <= result.top1 <= result.top5 <= 1.0  # type: ignore[operator]
    assert result.images_per_s is not None and result.images_per_s > 0


def test_weights_file_is_loaded_and_named(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from dnnmeter.zoo import create_model

    source = create_model("tiny_alexnet", device="cpu")
    with torch.no_grad():
        for p in source.parameters():
            p.fill_(0.01)
    pt, st = tmp_path / "w.pt", tmp_path / "w.safetensors"
    torch.save({"state_dict": source.state_dict()}, pt)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(st))
    expected = evaluate(source, "digits", limit=8)
    for path in (pt, st):
        result = evaluate("tiny_alexnet", "digits", weights=str(path), limit=8)
        assert result.weights == str(path)
        assert result.per_class == expected.per_class and result.top5 == expected.top5


def test_weights_file_that_does_not_fit_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(ModelBuildError) as info:
        evaluate("tiny_alexnet", "digits", weights=str(path), limit=1)
    message = str(info.value)
    assert "\n" not in message and "does not fit tiny_alexnet" in message
    assert "missing:" in message and "unexpected: weight, bias" in message
    with pytest.raises(ModelBuildError, match="no such weights file"):
        evaluate("tiny_alexnet", "digits", weights=str(tmp_path / "absent.pt"), limit=1)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelBuildError, match="not a loadable state dict"):
        evaluate("tiny_alexnet", "digits", weights=str(tmp_path / "junk.pt"), limit=1)


def test_default_weights_never_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelBuildError, match="default weights not found") as info:
        evaluate("resnet18", "digits", weights="default", limit=1)
    assert str(tmp_path) in str(info.value)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_default_weights_use_their_own_transforms() -> None:
    transform, size, text = preprocessing_for(resolve("inception_v3"), "default", None)
    assert (size, transform.resize_size, transform.crop_size) == (299, [342], [299])
    assert "torchvision weights transforms" in text
    _, size, text = preprocessing_for(resolve("inception_v3"), None, None)
    assert size == 299 and text.startswith("resize 341, centre crop 299")
    _, size, text = preprocessing_for(resolve("tiny_alexnet"), None, None)
    assert size == 64 and text.startswith("resize 73, centre crop 64")


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"workers": -1}, {"limit": 0}, {"input_size": 0}],
)
def test_bad_arguments_are_one_line_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidInputError):
        evaluate(nn.Identity(), "digits", **kwargs)  # type: ignore[arg-type]


def test_outputs_are_counted_even_when_all_images_fail(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.JPEG").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="no image could be evaluated"):
        result = evaluate(Brightness(), str(tmp_path), input_size=16)
    assert result.n == 0 and result.top1 is None and result.images_per_s is None
    assert len(result.skipped) == 1 and np.isclose(result.seconds, result.seconds)


def test_a_dnnmeter_checkpoint_brings_its_classes_size_and_normalisation(tmp_path: Path) -> None:
    from dnnmeter.training.checkpoint import save_checkpoint
    from dnnmeter.zoo import create_model

    meta = {"model": "tiny_alexnet", "classes": [str(d) for d in range(10)], "input_size": [3, 32, 32],
            "normalization": {"mean": [0.3] * 3, "std": [0.3] * 3}}
    path = save_checkpoint(create_model("tiny_alexnet", device="cpu", num_classes=10), tmp_path / "model.safetensors", meta)
    result = evaluate("tiny_alexnet", "digits", weights=str(path), limit=20)
    assert result.settings["outputs"] == 10 and result.settings["input_size"] == 32
    assert "the checkpoint's training mean/std" in result.settings["preprocessing"]
    x, _ = open_data("digits", None, 32, ([0.3] * 3, [0.3] * 3))[0]
    assert float(x.min()) == pytest.approx(-1.0)  # (0 - 0.3) / 0.3: the checkpoint's statistics, not ImageNet's


def test_a_class_row_read_as_a_dict_still_works_with_a_warning() -> None:
    row = evaluate(nn.Identity(), Rows(), batch_size=3).per_class[2]
    with pytest.warns(DeprecationWarning, match="row.accuracy"):
        assert row["accuracy"] == row.accuracy == 0.75
    with pytest.raises(KeyError), pytest.warns(DeprecationWarning):
        row["no_such_field"]
