"""Labelled image files: what every folder layout produces.

A layout module only decides which files belong to which class; reading them is here.
Class indices are positions in ``classes``; ``descriptions`` holds human-readable names
where the layout ships them (ImageNet's synset words), else None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from dnnmeter.errors import InvalidInputError

# What PIL raises on a missing, truncated or corrupt file (UnidentifiedImageError is an
# OSError; some plugins raise SyntaxError on malformed headers).
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, Image.DecompressionBombError)


Transform = Callable[[Image.Image], Any]


class UnreadableImageError(InvalidInputError):
    """An image file that cannot be decoded. The message is one line naming the path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: unreadable image ({reason})")
        self.path = path
        self.reason = reason


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_rgb(path: str) -> Image.Image:
    """Decode ``path`` fully (so a truncated file fails here, not in a transform)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except DECODE_ERRORS as exc:
        raise UnreadableImageError(path, one_line(exc)) from exc


class LabelledImages(Dataset):  # type: ignore[type-arg]
    """Image files with class indices; ``dataset[i]`` is ``(transform(image), class_index)``."""

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        classes: Sequence[str],
        layout: str,
        root: str | Path,
        descriptions: Sequence[str | None] | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.layout = layout
        self.root = str(root)
        self.descriptions = list(descriptions) if descriptions is not None else [None] * len(self.classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        image = read_rgb(path)
        return (self.transform(image) if self.transform else image), target

    @property
    def targets(self) -> list[int]:
        return [target for _, target in self.samples]

    def source(self, index: int) -> str:
        """Where item ``index`` comes from (a file path): what a skipped entry names."""
        return self.samples[index][0]
