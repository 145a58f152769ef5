"""The real images every configuration is compared on, chosen once in the parent.

With ``--data`` (digits or a folder) the images are opened as ``dnnmeter eval`` opens them
(same preprocessing, held-out part of a dnnmeter checkpoint) and carry their labels. Without
it, the digit-trained tiny family gets the digits; an ImageNet model gets crops of the two
natural photographs scikit-learn ships (``load_sample_images``: a temple in China and a
flower), at several positions and scales, normalised as ImageNet's models expect. They have
no labels, so only agreement with float32 is measured, and they are few: the note says so.
Calibration images (int8) come from images not compared where the data set has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

SMALL = 500  # fewer compared images than this: agreement to better than ~0.2% cannot be shown
CALIBRATION_IMAGES = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Images:
    images: torch.Tensor
    labels: torch.Tensor | None
    calibration: torch.Tensor
    note: str


def default_data(model: str) -> str | None:
    """``digits`` for the digit-trained tiny family, None (sample photographs) otherwise."""
    from dnnmeter.zoo import resolve

    entry = resolve(model)
    return "digits" if entry.source == "seed" and entry.name.startswith("tiny_") else None


def _stack(dataset: Any, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [dataset[i] for i in indices]
    return torch.stack([p[0] for p in pairs]).float(), torch.tensor([int(p[1]) for p in pairs])


def from_data(model: str, data: str, weights: str | None, limit: int) -> Images:
    from dnnmeter.accuracy import held_out_data, subset_indices

    dataset, _ = held_out_data(model, data, weights)
    compared = subset_indices(len(dataset), limit)
    rest = sorted(set(range(len(dataset))) - set(compared))
    calib_idx = subset_indices(len(rest), CALIBRATION_IMAGES)
    images, labels = _stack(dataset, compared)
    if rest:
        calibration, _ = _stack(dataset, [rest[i] for i in calib_idx])
        where = f"int8 calibrated on {len(calib_idx)} other images"
    else:
        calibration, where = images[:CALIBRATION_IMAGES], "int8 calibrated on compared images (no others)"
    note = f"{len(compared)} images of {data} with labels; {where}"
    return Images(images, labels, calibration, _small(note, len(compared)))


def _small(note: str, n: int) -> str:
    return note + (f"; only {n} images: agreement figures are rough (below {SMALL})" if n < SMALL else "")


def sample_photographs(size: int, count: int) -> Images:
    """``count`` crops of scikit-learn's two sample photographs, ``size`` x ``size``, normalised."""
    from sklearn.datasets import load_sample_images

    # resized in uint8, as an 8-bit photograph is (PIL, torchvision's transforms): ten times faster
    # than in float, which matters for the 1,000 crops a search compares by default
    photos = [torch.from_numpy(p.copy()).permute(2, 0, 1) for p in load_sample_images().images]
    generator = torch.Generator().manual_seed(0)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(torch.randint(min(photo.shape[1:]) // 3, min(photo.shape[1:]) + 1, (1,), generator=generator))
        top = int(torch.randint(0, photo.shape[1] - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, photo.shape[2] - side + 1, (1,), generator=generator))
        crop = photo[:, top:top + side, left:left + side].unsqueeze(0)
        crops.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True)[0])
    images = torch.stack(crops).float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    images = (images - mean) / std
    note = (f"{count} random crops of scikit-learn's 2 sample photographs (no labels: agreement with "
            "float32 only; pass --data for an accuracy change)")
    return Images(images, None, images[:CALIBRATION_IMAGES], _small(note, count))


def choose(model: str, data: str | None, weights: str | None, limit: int) -> Images:
    data = data or default_data(model)
    if data is not None:
        return from_data(model, data, weights, limit)
    from dnnmeter.zoo import resolve

    return sample_photographs(resolve(model).input_size[-1], limit)
