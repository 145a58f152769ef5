"""ImageNet validation as class folders: ``ROOT/n01440764/*.JPEG`` (or ``ROOT/val/n...``).

Classes are the sorted folder names, as torchvision's ``ImageFolder`` orders them. With all
1,000 folders that is the standard order. A subset of the folders would be renumbered from
0, so when a ``LOC_synset_mapping.txt`` lies in the folder or its parent its full sorted
list defines the indices instead, keeping a torchvision model's outputs aligned.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from dnnmeter.data.files import LabelledImages, Transform
from dnnmeter.data.synsets import find_mapping, is_wnid, read_synset_list, sorted_classes
from dnnmeter.errors import InvalidInputError

NAME = "imagenet-folders"


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_root(root: Path) -> Path | None:
    """``root`` if its sub-folders are all WNIDs, else ``root/val`` if that one's are."""
    for folder in (root, root / "val"):
        names = _subdirs(folder) if folder.is_dir() else []
        if names and all(is_wnid(name) for name in names):
            return folder
    return None


def matches(root: Path) -> bool:
    return _image_root(root) is not None


def load(root: Path, transform: Transform | None = None) -> LabelledImages:
    folder = _image_root(root)
    assert folder is not None, "load() called without matches()"
    folders = _subdirs(folder)
    mapping = find_mapping(folder, folder.parent)
    descriptions: list[str | None] = [None] * len(folders)
    classes = folders
    if mapping is not None:
        classes, descriptions = sorted_classes(read_synset_list(mapping))
        unknown = sorted(set(folders) - set(classes))
        if unknown:
            raise InvalidInputError(f"{folder}: class folders {unknown[:3]} are not in {mapping}")
    index = {wnid: i for i, wnid in enumerate(classes)}
    samples = make_dataset(folder, index, extensions=IMG_EXTENSIONS, allow_empty=True)
    return LabelledImages(samples, classes, NAME, folder, descriptions, transform)
