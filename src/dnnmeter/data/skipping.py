"""Unreadable images are skipped and listed, not fatal.

One corrupt JPEG among 50,000 should not end an evaluation, so the dataset wrapper returns a
:class:`Skipped` record instead of raising, and the collate function drops those records
from the tensors and hands them on inside the batch. Carrying them in the batch (rather than
in a list on the wrapper) is what makes them reach the main process when DataLoader
workers, which are separate processes, decode the files. ``strict`` is applied by the
consumer of the batches, for the same reason: an exception raised in a worker reaches the
main process as a multi-line traceback, not a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset

from dnnmeter.data.files import DECODE_ERRORS, UnreadableImageError, one_line


@dataclass(frozen=True, order=True)
class Skipped:
    """An item that could not be read: its index in the data set, its path and why."""

    index: int
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class Batch(NamedTuple):
    """Readable images (None when none in the batch was), their targets and indices."""

    images: torch.Tensor | None
    targets: torch.Tensor
    indices: torch.Tensor
    skipped: list[Skipped]


def source_of(dataset: Any, index: int) -> str:
    """The path of item ``index`` when the dataset knows it (ours, torchvision's folders)."""
    if hasattr(dataset, "source"):
        return str(dataset.source(index))
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return str(samples[index][0])
    return f"item {index}"


class SkipUnreadable(Dataset):  # type: ignore[type-arg]
    """``dataset[i]`` as ``(image, target, i)``, or a :class:`Skipped` record if unreadable."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int, int] | Skipped:
        try:
            image, target = self.dataset[index]
        except UnreadableImageError as exc:
            return Skipped(index, exc.path, exc.reason)
        except DECODE_ERRORS as exc:  # a user's dataset (e.g. torchvision's ImageFolder)
            return Skipped(index, source_of(self.dataset, index), one_line(exc))
        return image, int(target), index


def collate_skipping(items: list[tuple[Any, int, int] | Skipped]) -> Batch:
    """Stack the readable items; keep the skipped ones as records."""
    skipped = [item for item in items if isinstance(item, Skipped)]
    good = [item for item in items if not isinstance(item, Skipped)]
    images = torch.stack([image for image, _, _ in good]) if good else None
    targets = torch.tensor([target for _, target, _ in good], dtype=torch.long)
    indices = torch.tensor([index for _, _, index in good], dtype=torch.long)
    return Batch(images, targets, indices, skipped)
