"""Which layout a data folder is in, and opening it.

Layouts are tried in a fixed order, most specific first: their marker files (ground-truth
lists) are unambiguous, while any folder of folders looks like an ImageFolder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dnnmeter.data import image_folder, imagenet_devkit, imagenet_folders, imagenet_kaggle, tiny_imagenet
from dnnmeter.data.digits import DigitsDataset, digits
from dnnmeter.data.files import LabelledImages, Transform
from dnnmeter.errors import InvalidInputError
from dnnmeter.registry import Registry

DIGITS = "digits"


@dataclass(frozen=True)
class Layout:
    name: str
    matches: Callable[[Path], bool]
    load: Callable[..., LabelledImages]
    expects: str  # what the error message lists when no layout matches


# Tried in registration order, most specific first.
LAYOUTS: Registry[Layout] = Registry("data layout")
for _layout in (
    Layout(tiny_imagenet.NAME, tiny_imagenet.matches, tiny_imagenet.load,
           "Tiny ImageNet (wnids.txt, val/val_annotations.txt)"),
    Layout(imagenet_kaggle.NAME, imagenet_kaggle.matches, imagenet_kaggle.load,
           "ImageNet val with LOC_val_solution.csv + LOC_synset_mapping.txt"),
    Layout(imagenet_devkit.NAME, imagenet_devkit.matches, imagenet_devkit.load,
           "ImageNet val with ILSVRC2012_validation_ground_truth.txt + meta.mat or synsets.txt"),
    Layout(imagenet_folders.NAME, imagenet_folders.matches, imagenet_folders.load,
           "ImageNet class folders (n01440764/*.JPEG)"),
    Layout(image_folder.NAME, image_folder.matches, image_folder.load,
           "class folders (CLASS/*.jpg)"),
):  # fmt: skip
    LAYOUTS.register(_layout.name, _layout)
del _layout


def detect(path: str | Path) -> str:
    """The layout name of ``path`` ('digits' for the built-in data set).

    Raises InvalidInputError, one line, listing the layouts expected when none matches.
    """
    if str(path) == DIGITS:
        return DIGITS
    root = Path(path)
    if not root.is_dir():
        raise InvalidInputError(f"{path}: no such folder; give a data folder or '{DIGITS}'")
    for layout in LAYOUTS.values():
        if layout.matches(root):
            return layout.name
    expected = "; ".join(layout.expects for layout in LAYOUTS.values())
    raise InvalidInputError(f"{path}: no data set layout recognised; expected one of: {expected}; or '{DIGITS}'")


def open_data(
    path: str | Path, transform: Transform | None, input_size: int,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> LabelledImages | DigitsDataset:
    """The data set at ``path`` (or the digits at ``input_size``), its files read through
    ``transform``; the digits normalised with ``normalization`` (mean, std) when given."""
    name = detect(path)
    if name == DIGITS:
        return digits(input_size, normalize=normalization or True)
    layout = LAYOUTS.get(name)
    dataset = layout.load(Path(path), transform)
    if len(dataset) == 0:
        raise InvalidInputError(f"{path}: the {name} layout was recognised but holds no images")
    return dataset
