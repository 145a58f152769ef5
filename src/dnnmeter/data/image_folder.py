"""Any folder of class folders, with torchvision's ``ImageFolder`` semantics: classes are
the sorted sub-folder names, images are the files with an image extension anywhere under
each (case-insensitive), taken in sorted order."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, has_file_allowed_extension, make_dataset

from dnnmeter.data.files import LabelledImages, Transform

NAME = "image-folder"


def _has_image(folder: Path) -> bool:
    return any(p.is_file() and has_file_allowed_extension(p.name, IMG_EXTENSIONS) for p in folder.rglob("*"))


def matches(root: Path) -> bool:
    return any(p.is_dir() and not p.name.startswith(".") and _has_image(p) for p in root.iterdir())


def load(root: Path, transform: Transform | None = None) -> LabelledImages:
    classes, index = find_classes(root)
    samples = make_dataset(root, index, extensions=IMG_EXTENSIONS, allow_empty=True)
    return LabelledImages(samples, classes, NAME, root, None, transform)
