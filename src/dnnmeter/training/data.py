"""Training data: a (train, val) pair of [0, 1] image sets, their channel statistics, and
the augmented, normalised views the loop reads.

``digits`` is split by :func:`dnnmeter.data.digits_split` (deterministic, stratified, by the
seed). A folder is Tiny ImageNet (``train/`` and ``val/`` as Tiny ImageNet ships them) or
any folder with ``train/`` and ``val/`` class folders; its images are resized (shorter side)
and centre-cropped to the input size.

The normalisation is channel-wise, with the mean and standard deviation of the training
split measured here (the digits are read unnormalised, so it is applied once): on every
training image for the digits, on an evenly spread sample of at most ``STATS_IMAGES``
for a folder (a full pass over Tiny ImageNet's 100,000 files would cost an epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from dnnmeter.data import detect, digits_split, image_folder, tiny_imagenet
from dnnmeter.errors import InvalidInputError

DIGITS = "digits"
STATS_IMAGES = 2048


@dataclass
class Splits:
    """The two splits as [0, 1] tensors ``(3, size, size)``, before normalisation."""

    train: Dataset  # type: ignore[type-arg]
    val: Dataset  # type: ignore[type-arg]
    classes: list[str]
    descriptions: list[str | None]
    layout: str
    split: str  # how train and val were obtained, for the settings
    # The split exactly, for the checkpoint's sidecar: eval scores only what training held out.
    record: dict[str, Any] = field(default_factory=dict)


class Mapped(Dataset):  # type: ignore[type-arg]
    """``(transform(x), y)`` for each ``(x, y)`` of ``base``."""

    def __init__(self, base: Dataset, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:  # type: ignore[type-arg]
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[i]
        return self.transform(x), int(y)


def _file_transform(size: int) -> v2.Transform:
    return v2.Compose([
        v2.PILToTensor(),
        v2.Resize(size, antialias=True),
        v2.CenterCrop(size),
        v2.ToDtype(torch.float32, scale=True),
    ])  # fmt: skip


def _folder_splits(root: Path, size: int) -> Splits:
    transform = _file_transform(size)
    record = {"data": str(root.resolve()), "train": str((root / "train").resolve()),
              "val": str((root / "val").resolve())}
    if tiny_imagenet.matches(root):
        train = tiny_imagenet.load(root, transform, split="train")
        val = tiny_imagenet.load(root, transform, split="val")
        split = "Tiny ImageNet train/ and val/"
    elif (root / "train").is_dir() and (root / "val").is_dir():
        train = image_folder.load(root / "train", transform)
        val = image_folder.load(root / "val", transform)
        if val.classes != train.classes:
            missing = sorted(set(train.classes) ^ set(val.classes))[:3]
            raise InvalidInputError(
                f"{root}: train/ and val/ must hold the same class folders (differ in {missing})"
            )
        split = "folder train/ and val/"
    else:
        raise InvalidInputError(
            f"{root}: training needs Tiny ImageNet (wnids.txt, train/, val/) or train/ and val/ class folders"
        )
    for name, part in (("train", train), ("val", val)):
        if len(part) == 0:
            raise InvalidInputError(f"{root}: the {name} split holds no images")
    return Splits(train, val, train.classes, train.descriptions, train.layout, split, record)


def open_splits(data: str, input_size: int, seed: int, val_fraction: float) -> Splits:
    """The (train, val) splits of ``data``: ``"digits"`` or a folder."""
    if str(data) == DIGITS:
        train, val = digits_split(seed, val_fraction, input_size, normalize=False)
        split = f"stratified, {val_fraction:g} to val, seed {seed}"
        record = {"data": DIGITS, "seed": seed, "val_fraction": val_fraction, "val_indices": list(val.indices)}
        return Splits(train, val, train.classes, train.descriptions, DIGITS, split, record)
    root = Path(data)
    detect(root)  # one-line error for a missing or unrecognised folder
    return _folder_splits(root, input_size)


def channel_stats(dataset: Dataset, limit: int = STATS_IMAGES) -> tuple[list[float], list[float], int]:  # type: ignore[type-arg]
    """Per-channel mean and standard deviation over (at most ``limit``, evenly spread) images."""
    n = len(dataset)  # type: ignore[arg-type]
    indices = list(range(n)) if n <= limit else [i * n // limit for i in range(limit)]
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    pixels = 0
    for x, _ in DataLoader(Subset(dataset, indices), batch_size=256):
        x = x.double()
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
        pixels += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / pixels
    # A constant channel would divide by zero: leave its scale alone.
    std = (squares / pixels - mean * mean).clamp_min(0).sqrt()
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return mean.tolist(), std.tolist(), len(indices)


def loader_kwargs(device: str, workers: int) -> dict[str, Any]:
    return {
        "num_workers": workers,
        "pin_memory": device.startswith("cuda"),
        "persistent_workers": workers > 0,
    }


def describe_stats(mean: Sequence[float], std: Sequence[float], images: int) -> dict[str, Any]:
    return {"mean": [round(m, 6) for m in mean], "std": [round(s, 6) for s in std], "images": images}
