"""Data layouts: each built in tmp_path in its real layout, its labels checked by a model
that can read the class from the image.

Oracle: the image of class index k is a solid grey of level LEVELS[k], where k is the
class's position in the standard order (sorted WNIDs / sorted folders). ``Brightness``
(fixed, no training) predicts the nearest level, so it scores 100% top-1 exactly when the
layout's loader gives every image the index the standard order says.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dnnmeter.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Skipped,
    SkipUnreadable,
    collate_skipping,
    detect,
    digits,
    digits_split,
    eval_transform,
    open_data,
)
from dnnmeter.errors import InvalidInputError
from dnnmeter.accuracy import evaluate

LEVELS = (20, 70, 120, 170, 220)  # grey level of class index 0, 1, 2, ...
# Deliberately not in sorted order: loaders must sort them.
WNIDS = ("n04000000", "n01000000", "n03000000", "n02000000")
SORTED = sorted(WNIDS)
SIZE = 16


class Brightness(nn.Module):
    """Scores class k by how close the image's mean brightness is to LEVELS[k]."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("levels", torch.tensor(LEVELS[:n_classes], dtype=torch.float) / 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x[:, 0].mean(dim=(1, 2)) * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # undo normalisation
        return -((grey[:, None] - self.levels[None]) ** 2)


def write_image(path: Path, level: int, size: tuple[int, int] = (24, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (level, level, level)).save(path, format="JPEG")
    return path


def check_all_correct(root: Path, layout: str, n: int, classes: list[str]) -> None:
    assert detect(root) == layout
    result = evaluate(Brightness(len(classes)), str(root), input_size=SIZE, batch_size=4)
    assert result.layout == layout
    assert [row.class_name for row in result.per_class] == classes
    assert (result.n, result.top1) == (n, 1.0)


# --- Layouts ----------------------------------------------------------------------------------


def test_image_folder_classes_are_sorted_folders(tmp_path: Path) -> None:
    names = ["zebra", "apple", "Mango"]  # sorted: Mango, apple, zebra (case-sensitive, as torchvision)
    for name in names:
        k = sorted(names).index(name)
        for i in range(2):
            write_image(tmp_path / name / "sub" / f"{i}.jpg", LEVELS[k])
    (tmp_path / "notes.txt").write_text("not an image")
    check_all_correct(tmp_path, "image-folder", 6, sorted(names))


def test_imagenet_class_folders_sorted(tmp_path: Path) -> None:
    for wnid in WNIDS:
        for i in range(2):
            write_image(tmp_path / "val" / wnid / f"ILSVRC2012_val_{i}.JPEG", LEVELS[SORTED.index(wnid)])
    check_all_correct(tmp_path, "imagenet-folders", 8, SORTED)  # found under ROOT/val


def test_imagenet_folder_subset_keeps_indices_of_the_synset_list(tmp_path: Path) -> None:
    # Only two of the four classes' folders: the mapping file keeps their full-list indices.
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} words of {w}\n" for w in WNIDS))
    for wnid in SORTED[2:]:
        write_image(tmp_path / wnid / "a.JPEG", LEVELS[SORTED.index(wnid)])
    check_all_correct(tmp_path, "imagenet-folders", 2, SORTED)
    data = open_data(tmp_path, None, SIZE)
    assert sorted(data.targets) == [2, 3]
    assert data.descriptions[0] == f"words of {SORTED[0]}"


def test_imagenet_kaggle_layout(tmp_path: Path) -> None:
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} class {w}\n" for w in WNIDS))
    val = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    rows, rng = [], random.Random(0)
    for n in range(1, 11):
        wnid = rng.choice(WNIDS)
        image_id = f"ILSVRC2012_val_{n:08d}"
        write_image(val / f"{image_id}.JPEG", LEVELS[SORTED.index(wnid)])
        rows.append((image_id, f"{wnid} 1 2 30 40 {wnid} 5 6 7 8"))
    with (tmp_path / "LOC_val_solution.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("ImageId", "PredictionString"), *reversed(rows)])
    check_all_correct(tmp_path, "imagenet-kaggle", 10, SORTED)
    data = open_data(tmp_path, None, SIZE)
    first = [Path(p).name for p, _ in data.samples][:2]
    assert first == ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]


def test_imagenet_kaggle_missing_files_warn_and_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "LOC_synset_mapping.txt").write_text(f"{WNIDS[0]} a\n")
    write_image(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG", LEVELS[0])
    rows = [f"ILSVRC2012_val_0000000{n},{WNIDS[0]} 1 1 2 2" for n in (1, 2)]
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(["ImageId,PredictionString", *rows]) + "\n")
    with pytest.warns(UserWarning, match="1 of the 2 images"):
        data = open_data(tmp_path, None, SIZE)
    assert len(data) == 1


def write_devkit(root: Path, id_order: list[str], labels: list[int]) -> None:
    """ground truth (1-based IDs in id_order) and images whose grey level is the sorted index."""
    for n, devkit_id in enumerate(labels, 1):
        wnid = id_order[devkit_id - 1]
        write_image(root / "val" / f"ILSVRC2012_val_{n:08d}.JPEG", LEVELS[sorted(id_order).index(wnid)])
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{i}\n" for i in labels))


def test_imagenet_devkit_with_text_id_list(tmp_path: Path) -> None:
    # Devkit ID i is line i of synsets.txt (an unsorted order, as the real meta.mat's is):
    # ID 1 = n04000000, whose sorted index is 3.
    write_devkit(tmp_path, list(WNIDS), [1, 2, 3, 4, 2, 1, 4])
    (tmp_path / "synsets.txt").write_text("\n".join(WNIDS) + "\n")
    check_all_correct(tmp_path, "imagenet-devkit", 7, SORTED)
    assert open_data(tmp_path, None, SIZE).targets == [3, 0, 2, 1, 0, 3, 1]


def test_imagenet_devkit_with_meta_mat(tmp_path: Path) -> None:
    from scipy.io import savemat

    write_devkit(tmp_path, list(WNIDS), [4, 3, 2, 1])
    synsets = np.zeros(5, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    for i, wnid in enumerate(WNIDS):
        synsets[i] = (i + 1, wnid, f"words {i + 1}", 0)
    synsets[4] = (1001, "n00001740", "entity", 3)  # an inner node of the hierarchy: not a class
    savemat(str(tmp_path / "ILSVRC2012_devkit_t12" / "data" / "meta.mat"), {"synsets": synsets})
    check_all_correct(tmp_path, "imagenet-devkit", 4, SORTED)
    data = open_data(tmp_path, None, SIZE)
    assert data.descriptions[SORTED.index(WNIDS[0])] == "words 1"


def test_imagenet_devkit_refuses_a_sorted_1000_class_list(tmp_path: Path) -> None:
    wnids = [f"n{i:08d}" for i in range(1000)]
    write_devkit(tmp_path, wnids[:4], [1])
    (tmp_path / "synsets.txt").write_text("\n".join(wnids))
    with pytest.raises(InvalidInputError, match="sorted WNID order"):
        open_data(tmp_path, None, SIZE)


def test_imagenet_devkit_without_id_list_says_what_is_missing(tmp_path: Path) -> None:
    write_devkit(tmp_path, list(WNIDS), [1])
    with pytest.raises(InvalidInputError, match="meta.mat or synsets.txt"):
        open_data(tmp_path, None, SIZE)


def test_tiny_imagenet_val_in_sorted_wnid_order(tmp_path: Path) -> None:
    (tmp_path / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (tmp_path / "words.txt").write_text("".join(f"{w}\tname {w}\n" for w in WNIDS) + "n09999999\tunused\n")
    lines = []
    for i in range(8):
        wnid = WNIDS[i % 4]
        write_image(tmp_path / "val" / "images" / f"val_{i}.JPEG", LEVELS[SORTED.index(wnid)], (64, 64))
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t10\t10")
        write_image(tmp_path / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", LEVELS[SORTED.index(wnid)])
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    check_all_correct(tmp_path, "tiny-imagenet", 8, SORTED)
    data = open_data(tmp_path, None, SIZE)
    assert data.targets[:4] == [SORTED.index(w) for w in WNIDS]
    assert data.descriptions == [f"name {w}" for w in SORTED]


def test_tiny_imagenet_train_split(tmp_path: Path) -> None:
    from dnnmeter.data import tiny_imagenet

    (tmp_path / "wnids.txt").write_text("\n".join(WNIDS))
    for wnid in WNIDS:
        write_image(tmp_path / "train" / wnid / "images" / f"{wnid}_0.JPEG", LEVELS[0])
    data = tiny_imagenet.load(tmp_path, split="train")
    assert data.targets == [0, 1, 2, 3]
    assert [Path(p).parent.parent.name for p, _ in data.samples] == SORTED


def test_detect_names_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidInputError) as info:
        detect(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for expected in ("wnids.txt", "LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt", "class folders"):
        assert expected in message
    with pytest.raises(InvalidInputError, match="no such folder"):
        detect(tmp_path / "absent")


# --- Preprocessing ----------------------------------------------------------------------------


def test_default_transform_equals_torchvision_weights_transforms() -> None:
    from torchvision import models

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    theirs = models.get_model_weights("resnet18").DEFAULT.transforms()(image)
    ours = eval_transform(224)(image)
    assert ours.shape == (3, 224, 224)
    assert torch.equal(ours, theirs)


# --- Unreadable files -------------------------------------------------------------------------


def test_skip_unreadable_wrapper_and_collate(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "good.JPEG", LEVELS[0])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bad.JPEG").write_bytes(b"\x00garbage, not a JPEG" * 10)
    data = open_data(tmp_path, eval_transform(SIZE), SIZE)
    items = [SkipUnreadable(data)[i] for i in range(len(data))]
    assert isinstance(items[1], Skipped) and items[1].path.endswith("bad.JPEG")
    assert "cannot identify image file" in items[1].reason
    batch = collate_skipping(items)
    assert batch.images is not None and batch.images.shape == (1, 3, SIZE, SIZE)
    assert batch.targets.tolist() == [0] and batch.indices.tolist() == [0]
    assert [s.index for s in batch.skipped] == [1]
    assert collate_skipping([items[1]]).images is None


# --- Digits -----------------------------------------------------------------------------------


def test_digits_are_sklearns_images() -> None:
    from sklearn.datasets import load_digits

    data = digits(input_size=28)
    assert len(data) == 1797 and data.classes == [str(d) for d in range(10)]
    image, label = data[5]
    assert image.shape == (3, 28, 28) and image.dtype == torch.float
    raw = digits(input_size=8, normalize=False)  # same size: interpolation is the identity
    bunch = load_digits()
    x, y = raw[5]
    assert y == label == int(bunch.target[5])
    assert torch.allclose(x[0], torch.tensor(bunch.images[5] / 16.0, dtype=torch.float))
    assert torch.equal(x[0], x[2])
    assert np.bincount(data.targets).tolist() == np.bincount(bunch.target).tolist()


def test_digits_split_is_deterministic_disjoint_and_stratified() -> None:
    train, val = digits_split(seed=0, val_fraction=0.2, input_size=8)
    again_train, again_val = digits_split(seed=0, val_fraction=0.2, input_size=8)
    other_train, _ = digits_split(seed=1, val_fraction=0.2, input_size=8)
    assert train.indices == again_train.indices and val.indices == again_val.indices
    assert train.indices != other_train.indices
    assert not set(train.indices) & set(val.indices)
    assert sorted(train.indices + val.indices) == list(range(1797))
    per_class = np.bincount(val.targets, minlength=10)
    assert per_class.min() >= 35 and per_class.max() <= 37  # 20% of 174 to 183 images a class
    with pytest.raises(InvalidInputError):
        digits_split(val_fraction=1.0)
