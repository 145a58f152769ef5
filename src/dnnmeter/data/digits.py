"""scikit-learn's handwritten digits: 1,797 real 8x8 images of 10 classes, offline.

They ship inside scikit-learn (``sklearn.datasets.load_digits``), so tests and the default
study evaluate on real images without a download. Each image (16 grey levels) is scaled to
[0, 1], resized bilinearly to ``input_size`` (no crop: the digits fill their 8x8 frame),
replicated to 3 channels and normalised with the ImageNet mean and standard deviation, so
an ImageNet network sees the input statistics it expects.

>>> from dnnmeter.data import digits, digits_split
>>> data = digits(input_size=32); data[0][0].shape
torch.Size([3, 32, 32])
>>> train, val = digits_split(seed=0, val_fraction=0.2, input_size=32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from dnnmeter.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from dnnmeter.errors import InvalidInputError, MissingDependencyError

NAME = "digits"
SOURCE = "sklearn.datasets.load_digits"


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8) float32 in [0, 1] and targets (1797,) int64."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MissingDependencyError("the digits data set needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


class DigitsDataset(Dataset):  # type: ignore[type-arg]
    """``dataset[i]`` is ``(image (3, input_size, input_size), digit)``; ``indices`` into the 1,797."""

    def __init__(
        self, images: np.ndarray, targets: np.ndarray, input_size: int,
        indices: Sequence[int] | None = None, normalize: bool | tuple[Sequence[float], Sequence[float]] = True,
    ) -> None:  # fmt: skip
        if input_size < 1:
            raise InvalidInputError(f"digits: input size {input_size} must be positive")
        self.layout, self.root = NAME, SOURCE
        self.classes = [str(d) for d in range(10)]
        self.descriptions: list[str | None] = [None] * 10
        self.images, self.all_targets = images, targets
        self.indices = list(range(len(targets))) if indices is None else [int(i) for i in indices]
        self.input_size = input_size
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = self.indices[i]
        x = torch.from_numpy(self.images[j])[None, None]
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        x = x[0].expand(3, -1, -1)
        if self.normalize:
            # True: ImageNet's statistics; (mean, std): those a checkpoint was trained with.
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if self.normalize is True else self.normalize
            x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
        return x.contiguous(), int(self.all_targets[j])

    @property
    def targets(self) -> list[int]:
        return [int(self.all_targets[j]) for j in self.indices]

    def source(self, i: int) -> str:
        return f"{SOURCE}()[{self.indices[i]}]"


def digits(input_size: int = 224, normalize: bool | tuple[Sequence[float], Sequence[float]] = True) -> DigitsDataset:
    """All 1,797 digits at ``input_size``."""
    images, targets = load_arrays()
    return DigitsDataset(images, targets, input_size, normalize=normalize)


def split_indices(targets: np.ndarray, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """Stratified: each class gives round(val_fraction * its count) images to val.

    A numpy ``Generator(PCG64(seed))`` permutation per class, so the split depends on the
    seed only, not on scikit-learn's version.
    """
    if not 0.0 < val_fraction < 1.0:
        raise InvalidInputError(f"val_fraction {val_fraction} must be between 0 and 1")
    rng = np.random.Generator(np.random.PCG64(seed))
    train: list[int] = []
    val: list[int] = []
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label))
        cut = int(round(val_fraction * len(members)))
        val.extend(members[:cut].tolist())
        train.extend(members[cut:].tolist())
    return sorted(train), sorted(val)


def digits_split(
    seed: int = 0, val_fraction: float = 0.2, input_size: int = 224, normalize: bool = True
) -> tuple[DigitsDataset, DigitsDataset]:
    """A deterministic (train, val) split of the digits, disjoint and covering all 1,797."""
    images, targets = load_arrays()
    train, val = split_indices(targets, seed, val_fraction)
    return (
        DigitsDataset(images, targets, input_size, train, normalize),
        DigitsDataset(images, targets, input_size, val, normalize),
    )
