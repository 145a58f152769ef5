"""Evaluation preprocessing: one centre crop, as both seed studies measured accuracy.

The default is the ImageNet convention that torchvision's weights use: resize the shorter
side to ``input_size * 256 / 224`` (rounded down), crop the centre ``input_size`` square,
scale to [0, 1] and normalise with the ImageNet mean and standard deviation. The operations
and their order are those of ``torchvision.transforms._presets.ImageClassification`` (what
``weights.transforms()`` returns), so at 224 px the two give the same tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision import transforms as T

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def resize_size(input_size: int) -> int:
    """The shorter side before the centre crop: 256 for 224, 73 for 64, 341 for 299."""
    return input_size * 256 // 224


def eval_transform(input_size: int, mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD) -> Callable[[Any], torch.Tensor]:
    """PIL image -> normalised (3, input_size, input_size) float tensor (ImageNet mean/std
    unless a trained checkpoint says otherwise)."""
    transform: Callable[[Any], torch.Tensor] = T.Compose(
        [
            T.Resize(resize_size(input_size), interpolation=T.InterpolationMode.BILINEAR, antialias=True),
            T.CenterCrop(input_size),
            T.PILToTensor(),
            T.ConvertImageDtype(torch.float),
            T.Normalize(list(mean), list(std)),
        ]
    )
    return transform


def describe(resize: int, crop: int, origin: str) -> str:
    """One line for a result's settings, e.g. 'resize 256, centre crop 224, ImageNet mean/std'."""
    return f"resize {resize}, centre crop {crop}, ImageNet mean/std, bilinear ({origin})"
