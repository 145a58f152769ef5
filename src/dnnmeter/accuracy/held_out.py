"""Which images to score: only those the weights were not trained on, where that is known.

``dnnmeter train`` records its split in the checkpoint's sidecar (``model.json``, key
``split``): for the digits the seed, the fraction and the indices of the validation images;
for a folder its ``train/`` and ``val/`` paths. Evaluating such a checkpoint on the digits
scores only the recorded validation images; on its training folder it warns. Where nothing
is recorded, the result says so (``held_out`` None) and a warning says the score may
include training images.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

from dnnmeter.data import DIGITS
from dnnmeter.errors import ModelBuildError
from dnnmeter.zoo.weights import sidecar_path


@dataclass(frozen=True)
class HeldOut:
    """``held_out``: True (only unseen images), False (the training images), None (unknown);
    ``warn``: the note is one the user must see (the score may include training images)."""

    held_out: bool | None
    note: str
    warn: bool = False

    def warn_if_needed(self, stacklevel: int = 2) -> None:
        if self.warn:
            warnings.warn(self.note, stacklevel=stacklevel + 1)


def _bad_split(weights: str, what: str) -> ModelBuildError:
    return ModelBuildError(f"{sidecar_path(weights)}: its split's val_indices {what}; restore the file from the "
                           "training run, or move it away to score every image")


def _digits_val(meta: dict[str, Any], weights: str) -> tuple[list[int], str] | None:
    """The validation indices of a checkpoint trained on the digits, and how they are known."""
    split = meta.get("split")
    if isinstance(split, dict) and split.get("data") == DIGITS:
        indices = split.get("val_indices")
        if not isinstance(indices, list) or not all(isinstance(i, int) and 0 <= i for i in indices):
            raise _bad_split(weights, "are not a list of image indices")
        return indices, f"seed {split.get('seed')}, {split.get('val_fraction')} to val"
    settings = meta.get("settings") or {}
    if settings.get("data") == DIGITS and "seed" in settings and "val_fraction" in settings:
        # Older checkpoints: the split depends on the seed and the fraction only (data.digits).
        from dnnmeter.data.digits import load_arrays, split_indices

        _, targets = load_arrays()
        _, val = split_indices(targets, int(settings["seed"]), float(settings["val_fraction"]))
        return val, f"seed {settings['seed']}, {settings['val_fraction']} to val, re-derived from the settings"
    return None


def _digits_subset(dataset: Any, indices: list[int], weights: str) -> Any:
    from dnnmeter.data.digits import DigitsDataset

    if indices and max(indices) >= len(dataset.all_targets):
        raise _bad_split(weights, f"name digit {max(indices)}, past the {len(dataset.all_targets)} digits")
    return DigitsDataset(dataset.images, dataset.all_targets, dataset.input_size, indices, dataset.normalize)


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and os.path.realpath(a) == os.path.realpath(b)


def _folder(data: str, dataset: Any, meta: dict[str, Any]) -> HeldOut:
    split = meta.get("split")
    if not isinstance(split, dict) or split.get("data") == DIGITS:
        trained_on = (meta.get("settings") or {}).get("data")
        if trained_on is not None and not _same(trained_on, data):
            return HeldOut(None, f"trained on {trained_on}: other data than this, whose overlap dnnmeter cannot know")
        note = f"{data}: no record of which images trained these weights; the score may include training images"
        return HeldOut(None, note, warn=True)
    if _same(data, split.get("val")) or (_same(data, split.get("data")) and dataset.layout == "tiny-imagenet"):
        return HeldOut(True, f"the training run's validation images ({split.get('val')})")
    if _same(data, split.get("train")) or _same(data, split.get("data")):
        note = (f"{data} holds the images these weights were trained on: the score is not on held-out data; "
                f"evaluate on {split.get('val')}")
        return HeldOut(False, note, warn=True)
    return HeldOut(None, f"trained on {split.get('data')}: other data than this, whose overlap dnnmeter cannot know")


def held_out_part(dataset: Any, data: Any, weights: str | None, meta: dict[str, Any]) -> tuple[Any, HeldOut]:
    """The part of ``dataset`` the weights were not trained on (where known), and what is known.

    ``meta`` is the checkpoint's sidecar ({} when there is none).
    """
    if weights is None:
        return dataset, HeldOut(None, "initial weights: trained on nothing")
    if weights == "default":
        return dataset, HeldOut(None, "torchvision's default weights: trained on ImageNet's training images")
    if not isinstance(data, (str, os.PathLike)):
        return dataset, HeldOut(None, "a Dataset passed in: dnnmeter cannot tell whether it holds training images")
    if str(data) != DIGITS:
        return dataset, _folder(str(data), dataset, meta)
    found = _digits_val(meta, weights)
    if found is None:
        note = (f"{weights}: no record of the digits these weights were trained on ({sidecar_path(weights).name} "
                "with a split); the score includes any training images")
        return dataset, HeldOut(None, note, warn=True)
    indices, how = found
    return _digits_subset(dataset, indices, weights), HeldOut(True, f"the {len(indices)} digits held out in training ({how})")
