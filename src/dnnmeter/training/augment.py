"""The seed study's training augmentations, and channel-wise normalisation.

``mask`` is random erasing, ``rotate`` a random rotation, ``flip`` a horizontal mirror and
``noise`` additive Gaussian noise, all from ``torchvision.transforms.v2``. They draw from
torch's global generator, which the training loop seeds, so a run is repeatable.

Order: rotate, flip and noise act on [0, 1] images (rotation fills with 0, noise is clipped
to [0, 1]); then the channel-wise normalisation; then mask, which erases to 0, i.e. to the
channel mean. Mirroring a digit changes its meaning: ``flip`` is the user's choice.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from torchvision.transforms import v2

from dnnmeter.errors import InvalidInputError

AUGMENTATIONS: tuple[str, ...] = ("mask", "rotate", "flip", "noise")

# Strengths: moderate values for small images; the seed study does not publish its own.
ROTATE_DEGREES = 15.0
NOISE_SIGMA = 0.05  # on [0, 1] pixel values
MASK_P = 0.5

PARAMETERS = {
    "mask": f"random erasing p={MASK_P}, area 2-33%, to the channel mean",
    "rotate": f"random rotation within +-{ROTATE_DEGREES:g} degrees, fill 0",
    "flip": "horizontal mirror p=0.5",
    "noise": f"Gaussian noise sigma={NOISE_SIGMA} on [0, 1], clipped",
}


def parse_augment(augment: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"mask,rotate"`` or ``["mask", "rotate"]`` -> ``("mask", "rotate")``, checked, no repeats."""
    if augment is None:
        return ()
    items = augment.split(",") if isinstance(augment, str) else list(augment)
    names: list[str] = []
    for raw in items:
        name = str(raw).strip().lower()
        if not name:
            continue
        if name not in AUGMENTATIONS:
            close = difflib.get_close_matches(name, AUGMENTATIONS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InvalidInputError(
                f"augmentation {raw!r}{hint}: choose from {', '.join(AUGMENTATIONS)}, comma-separated"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def train_transform(augment: Sequence[str], mean: Sequence[float], std: Sequence[float]) -> v2.Transform:
    """[0, 1] image tensor -> augmented, normalised tensor."""
    steps: list[v2.Transform] = []
    if "rotate" in augment:
        steps.append(v2.RandomRotation(ROTATE_DEGREES, fill=0.0))
    if "flip" in augment:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if "noise" in augment:
        steps.append(v2.GaussianNoise(sigma=NOISE_SIGMA, clip=True))
    steps.append(v2.Normalize(list(mean), list(std)))
    if "mask" in augment:
        steps.append(v2.RandomErasing(p=MASK_P, value=0.0))
    return v2.Compose(steps)


def val_transform(mean: Sequence[float], std: Sequence[float]) -> v2.Transform:
    return v2.Normalize(list(mean), list(std))


def describe(augment: Sequence[str]) -> list[str]:
    return [f"{name}: {PARAMETERS[name]}" for name in augment]
