"""ImageNet validation, flat, with the ILSVRC2012 devkit's ground truth::

    ROOT/ILSVRC2012_val_00000001.JPEG ...                (or ROOT/val/)
    ROOT/ILSVRC2012_validation_ground_truth.txt          (or ROOT/data/, ROOT/ILSVRC2012_devkit_t12/data/)
    ROOT/meta.mat  or  ROOT/synsets.txt                  beside the ground truth, or in ROOT

Line ``n`` of the ground truth is the ILSVRC2012_ID (1 to 1000) of image
``ILSVRC2012_val_{n:08d}.JPEG``. Those IDs follow the devkit's ``meta.mat``, which is NOT
the sorted order: ID 1 is n02119789 (kit fox) while sorted index 0 is n01440764 (tench).
The mapping used here: ILSVRC2012_ID -> WNID from ``meta.mat`` (the synsets with no children,
read with scipy) or from ``synsets.txt`` (one WNID a line, line ``i`` = ILSVRC2012_ID ``i``,
e.g. written from meta.mat), then WNID -> its position among the sorted WNIDs, which is the
standard class index. A sorted 1,000-line list cannot be the devkit's order, so it is
refused rather than silently mislabelling every image.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from dnnmeter.data.files import LabelledImages, Transform
from dnnmeter.data.synsets import read_synset_list, sorted_classes
from dnnmeter.errors import InvalidInputError, MissingDependencyError

NAME = "imagenet-devkit"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
GT_DIRS = (".", "data", "ILSVRC2012_devkit_t12/data")
ID_LISTS = ("meta.mat", "synsets.txt")


def ground_truth_file(root: Path) -> Path | None:
    for rel in GT_DIRS:
        if (root / rel / GROUND_TRUTH).is_file():
            return root / rel / GROUND_TRUTH
    return None


def matches(root: Path) -> bool:
    return ground_truth_file(root) is not None


Synset = tuple[str, str | None]  # WNID, words


def read_meta_mat(path: Path) -> dict[int, Synset]:
    """ILSVRC2012_ID -> (WNID, words) of the 1,000 leaf synsets in the devkit's meta.mat."""
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise MissingDependencyError(f"{path}: reading meta.mat needs scipy: pip install scipy") from exc
    synsets = loadmat(str(path), squeeze_me=True)["synsets"]
    return {
        int(s["ILSVRC2012_ID"]): (str(s["WNID"]), str(s["words"]) or None)
        for s in synsets
        if int(s["num_children"]) == 0
    }


def read_id_list(path: Path) -> dict[int, Synset]:
    """ILSVRC2012_ID -> (WNID, words) from a text list in ID order (line i = ID i)."""
    entries = read_synset_list(path)
    wnids = [wnid for wnid, _ in entries]
    if len(wnids) == 1000 and wnids == sorted(wnids):
        raise InvalidInputError(
            f"{path} is in sorted WNID order, but {GROUND_TRUTH} uses the devkit's ILSVRC2012_ID "
            "order; use meta.mat or a list in ILSVRC2012_ID order"
        )
    return dict(enumerate(entries, 1))


def id_map(root: Path, gt: Path) -> dict[int, Synset]:
    for folder in dict.fromkeys((gt.parent, root)):
        for name in ID_LISTS:
            if (folder / name).is_file():
                path = folder / name
                return read_meta_mat(path) if name == "meta.mat" else read_id_list(path)
    raise InvalidInputError(
        f"{gt} gives devkit IDs; put the devkit's meta.mat or synsets.txt (WNIDs in ILSVRC2012_ID order) beside it"
    )


def read_ground_truth(path: Path, ids: dict[int, Synset]) -> list[str]:
    """WNID of image n (list position n - 1)."""
    wnids: list[str] = []
    for number, line in enumerate(path.read_text().split(), 1):
        if not line.isdigit() or int(line) not in ids:
            raise InvalidInputError(f"{path}: line {number}: {line!r} is not an ILSVRC2012_ID of the synset list")
        wnids.append(ids[int(line)][0])
    return wnids


def image_dir(root: Path) -> Path:
    for folder in (root / "val", root):
        if (folder / "ILSVRC2012_val_00000001.JPEG").is_file() or any(folder.glob("ILSVRC2012_val_*.JPEG")):
            return folder
    raise InvalidInputError(f"{root}: no ILSVRC2012_val_*.JPEG images in {root} or {root / 'val'}")


def load(root: Path, transform: Transform | None = None) -> LabelledImages:
    gt = ground_truth_file(root)
    assert gt is not None, "load() called without matches()"
    ids = id_map(root, gt)
    classes, descriptions = sorted_classes(list(ids.values()))
    index = {wnid: i for i, wnid in enumerate(classes)}
    folder = image_dir(root)
    on_disk = {p.name for p in folder.iterdir()}
    labelled = [(f"ILSVRC2012_val_{n:08d}.JPEG", w) for n, w in enumerate(read_ground_truth(gt, ids), 1)]
    samples = [(str(folder / name), index[wnid]) for name, wnid in labelled if name in on_disk]
    if len(samples) < len(labelled):
        warnings.warn(
            f"{len(labelled) - len(samples)} of the {len(labelled)} images in {gt} are not in {folder}; "
            f"evaluating the {len(samples)} present",
            stacklevel=2,
        )
    return LabelledImages(samples, classes, NAME, root, descriptions, transform)
