"""Tiny ImageNet (200 classes, 64x64)::

    ROOT/wnids.txt                      the 200 WNIDs (in no particular order)
    ROOT/words.txt                      'WNID<TAB>words' (optional; names only)
    ROOT/train/<wnid>/images/*.JPEG     500 a class
    ROOT/val/images/val_0.JPEG ...      10,000
    ROOT/val/val_annotations.txt        'val_0.JPEG<TAB>n03444034<TAB>x0<TAB>y0<TAB>x1<TAB>y1'

Evaluation uses ``val`` by default (the test split has no labels). Classes are the WNIDs of
``wnids.txt`` in sorted order, not file order: that is the order torchvision's ImageFolder
gives ``train/`` (the usual way Tiny-ImageNet networks are trained), so a network trained
that way lines up with this evaluation.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from dnnmeter.data.files import LabelledImages, Transform
from dnnmeter.errors import InvalidInputError

NAME = "tiny-imagenet"
SPLITS = ("val", "train")


def matches(root: Path) -> bool:
    return (root / "wnids.txt").is_file() and (
        (root / "val" / "val_annotations.txt").is_file() or (root / "train").is_dir()
    )


def read_words(root: Path) -> dict[str, str]:
    path = root / "words.txt"
    if not path.is_file():
        return {}
    pairs = (line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return {wnid.strip(): words.strip() for wnid, words in pairs}


def val_samples(root: Path, index: dict[str, int]) -> list[tuple[str, int]]:
    path = root / "val" / "val_annotations.txt"
    if not path.is_file():
        raise InvalidInputError(f"{root}: Tiny ImageNet val needs {path}")
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise InvalidInputError(f"{path}:{number}: expected 'FILE<TAB>WNID of wnids.txt ...', got {line!r}")
        samples.append((str(root / "val" / "images" / fields[0]), index[fields[1]]))
    return samples


def train_samples(root: Path, index: dict[str, int]) -> list[tuple[str, int]]:
    # train/<wnid>/images/*.JPEG: make_dataset walks each class folder recursively.
    samples: list[tuple[str, int]] = make_dataset(root / "train", index, extensions=IMG_EXTENSIONS, allow_empty=True)
    return samples


def load(root: Path, transform: Transform | None = None, split: str = "val") -> LabelledImages:
    if split not in SPLITS:
        raise InvalidInputError(f"Tiny ImageNet split {split!r}: choose one of {', '.join(SPLITS)}")
    classes = sorted({line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip()})
    index = {wnid: i for i, wnid in enumerate(classes)}
    samples = val_samples(root, index) if split == "val" else train_samples(root, index)
    words = read_words(root)
    descriptions = [words.get(wnid) for wnid in classes]
    return LabelledImages(samples, classes, NAME, root, descriptions, transform)
