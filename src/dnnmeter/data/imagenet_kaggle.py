"""ImageNet validation, flat, with Kaggle's ground truth (the ImageNet Object Localization
Challenge download)::

    ROOT/LOC_val_solution.csv        ImageId,PredictionString  (first token: the WNID)
    ROOT/LOC_synset_mapping.txt      'n01440764 tench, Tinca tinca', one class a line
    ROOT/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000001.JPEG ...   (or ROOT/val/, or ROOT/)

Classes are the mapping's WNIDs in sorted order (the standard order). Images are taken in
ImageId order. Rows whose file is absent are left out with a warning.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

from dnnmeter.data.files import LabelledImages, Transform
from dnnmeter.data.synsets import MAPPING_FILE, read_synset_list, sorted_classes
from dnnmeter.errors import InvalidInputError

NAME = "imagenet-kaggle"
SOLUTION_FILE = "LOC_val_solution.csv"
IMAGE_DIRS = ("ILSVRC/Data/CLS-LOC/val", "val", ".")


def matches(root: Path) -> bool:
    return (root / SOLUTION_FILE).is_file()


def read_solution(path: Path) -> dict[str, str]:
    """ImageId -> WNID. Every box of a validation image carries the image's one class."""
    labels: dict[str, str] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            tokens = (row.get("PredictionString") or "").split()
            if not row.get("ImageId") or not tokens:
                raise InvalidInputError(f"{path}: expected rows 'ImageId,PredictionString', got {row}")
            labels[row["ImageId"]] = tokens[0]
    return labels


def image_dir(root: Path, names: set[str]) -> Path:
    """The first candidate folder holding any of the listed images."""
    for rel in IMAGE_DIRS:
        folder = root / rel
        if folder.is_dir() and any((folder / name).is_file() for name in sorted(names)[:50]):
            return folder
    raise InvalidInputError(
        f"{root}: no images of {SOLUTION_FILE} found in {', '.join(IMAGE_DIRS)} (expected ILSVRC2012_val_*.JPEG)"
    )


def present(folder: Path, wanted: dict[str, str], source: Path) -> dict[str, str]:
    """The listed files that exist; warn about the rest (a partial copy still evaluates)."""
    on_disk = {p.name for p in folder.iterdir()}
    found = {name: wnid for name, wnid in wanted.items() if name in on_disk}
    if len(found) < len(wanted):
        warnings.warn(
            f"{len(wanted) - len(found)} of the {len(wanted)} images in {source} are not in "
            f"{folder}; evaluating the {len(found)} present",
            stacklevel=3,
        )
    return found


def load(root: Path, transform: Transform | None = None) -> LabelledImages:
    mapping = root / MAPPING_FILE
    if not mapping.is_file():
        raise InvalidInputError(f"{root}: {SOLUTION_FILE} needs {MAPPING_FILE} beside it (the class list)")
    classes, descriptions = sorted_classes(read_synset_list(mapping))
    index = {wnid: i for i, wnid in enumerate(classes)}
    solution = read_solution(root / SOLUTION_FILE)
    unknown = sorted({w for w in solution.values() if w not in index})
    if unknown:
        raise InvalidInputError(f"{root / SOLUTION_FILE}: classes {unknown[:3]} are not in {mapping}")
    wanted = {f"{image_id}.JPEG": wnid for image_id, wnid in sorted(solution.items())}
    folder = image_dir(root, set(wanted))
    found = present(folder, wanted, root / SOLUTION_FILE)
    samples = [(str(folder / name), index[wnid]) for name, wnid in found.items()]
    return LabelledImages(samples, classes, NAME, root, descriptions, transform)
