"""ImageNet synset lists: the class order every ImageNet layout shares.

The standard class order is the sorted WNIDs (``n01440764`` ... ``n15075141``). It is the
order of Kaggle's ``LOC_synset_mapping.txt``, of torchvision's ``ImageFolder`` over the 1,000
class folders and of torchvision's ImageNet weights, so index ``i`` of the data is output
``i`` of a torchvision model.
"""

from __future__ import annotations

import re
from pathlib import Path

from dnnmeter.errors import InvalidInputError

WNID = re.compile(r"n\d{8}")
MAPPING_FILE = "LOC_synset_mapping.txt"


def is_wnid(name: str) -> bool:
    return WNID.fullmatch(name) is not None


def read_synset_list(path: Path) -> list[tuple[str, str | None]]:
    """Lines ``WNID [words]`` in file order: ``n01440764 tench, Tinca tinca``."""
    entries: list[tuple[str, str | None]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, words = line.strip().partition(" ")
        if not is_wnid(wnid):
            raise InvalidInputError(f"{path}:{number}: expected 'WNID [words]', got {line.strip()!r}")
        entries.append((wnid, words.strip() or None))
    return entries


def sorted_classes(entries: list[tuple[str, str | None]]) -> tuple[list[str], list[str | None]]:
    """Class ids in the standard (sorted WNID) order and their words."""
    words = dict(entries)
    classes = sorted(words)
    return classes, [words[wnid] for wnid in classes]


def find_mapping(*folders: Path) -> Path | None:
    """The first ``LOC_synset_mapping.txt`` in ``folders``."""
    for folder in folders:
        if (folder / MAPPING_FILE).is_file():
            return folder / MAPPING_FILE
    return None
