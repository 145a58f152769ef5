"""The inputs of an evaluation: argument checks, preprocessing, and the data set opened for
the model and its weights (only the held-out part of a checkpoint's training data)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

from dnnmeter.data import DIGITS, eval_transform, open_data, resize_size
from dnnmeter.data.transforms import describe
from dnnmeter.errors import InvalidInputError
from dnnmeter.accuracy.held_out import HeldOut, held_out_part
from dnnmeter.measure.threads import available_cores
from dnnmeter.zoo import ModelEntry
from dnnmeter.zoo.weights import check_weights_path, checkpoint_meta, read_sidecar

DEFAULT_INPUT_SIZE = 224  # for an nn.Module passed without input_size


def default_workers(device: str = "cpu") -> int:
    """DataLoader worker processes for a caller (the CLI) that does not choose.

    On the CPU the forward pass runs on torch's threads, so a worker only helps on a core
    torch leaves free: one worker per such core, at most 4 (0 on 2 cores with torch's
    default of 2 threads). On CUDA the CPU is otherwise idle: one worker per core but the
    main process's, at most 8. BENCHMARKS.md (eval_throughput) has the measured effect.
    """
    cores = available_cores()
    if device.startswith("cuda"):
        return min(8, max(1, cores - 1))
    return max(0, min(4, cores - torch.get_num_threads()))


def subset_indices(n: int, limit: int | None) -> list[int]:
    """Every index, or ``limit`` of them spread evenly over the data set's order.

    Evenly spread rather than the first ``limit``: class folders are listed class by class,
    and their first images would all be of the first classes.
    """
    if limit is None or limit >= n:
        return list(range(n))
    return [i * n // limit for i in range(limit)]


def check_args(batch_size: int, workers: int, limit: int | None, input_size: int | None, device: str) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch size {batch_size!r} must be a positive integer")
    if not isinstance(workers, int) or workers < 0:
        raise InvalidInputError(f"workers {workers!r} must be 0 (decode in this process) or more")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidInputError(f"limit {limit!r} must be a positive integer (or None for all images)")
    if input_size is not None and (not isinstance(input_size, int) or input_size < 1):
        raise InvalidInputError(f"input size {input_size!r} must be a positive integer, e.g. 224")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device}: no CUDA device is available; use cpu")


# --- Preprocessing and data -----------------------------------------------------------------


def _default_weights_transform(entry: ModelEntry | None, weights: str | None, input_size: int | None) -> Any:
    """torchvision's own preprocessing for its default weights, or None when it does not apply."""
    if entry is None or entry.source != "torchvision" or weights != "default":
        return None
    from torchvision import models

    transform = models.get_model_weights(entry.name).DEFAULT.transforms()
    if input_size not in (None, transform.crop_size[0]):
        return None  # the caller asked for another size: the generic rule applies
    return transform


def preprocessing_for(
    entry: ModelEntry | None, weights: str | None, input_size: int | None
) -> tuple[Callable[[Any], torch.Tensor], int, str]:
    """The transform, the input size and a one-line description of the preprocessing."""
    meta = checkpoint_meta(weights)
    if meta:  # a dnnmeter checkpoint: its own input size and normalisation
        size = input_size or int(meta["input_size"][-1])
        mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
        return eval_transform(size, mean, std), size, describe(resize_size(size), size, "the checkpoint's training")
    tv = _default_weights_transform(entry, weights, input_size)
    if tv is not None:
        crop, resize = tv.crop_size[0], tv.resize_size[0]
        return tv, crop, describe(resize, crop, "torchvision weights transforms")
    size = input_size or (entry.input_size[1] if entry is not None else DEFAULT_INPUT_SIZE)
    return eval_transform(size), size, describe(resize_size(size), size, "dnnmeter default")


def _preprocessing_text(data: Any, dataset: Any, files: str, size: int) -> str:
    """What was done to the images: the digits and a caller's Dataset bring their own."""
    if isinstance(data, Dataset):
        return "the Dataset's own"
    if getattr(dataset, "layout", None) == DIGITS:
        stats = "ImageNet" if getattr(dataset, "normalize", True) is True else "the checkpoint's training"
        return f"8x8 digits resized bilinearly to {size}, 3 channels, {stats} mean/std"
    return files


def open_for_eval(data: str | Dataset, transform: Callable[[Any], torch.Tensor], size: int,  # type: ignore[type-arg]
          meta: Mapping[str, Any]) -> Any:
    """Our data set for a path or 'digits'; a Dataset is used as is (already preprocessed)."""
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise InvalidInputError(f"data {data!r}: give a folder, 'digits' or a torch Dataset")
    norm = meta.get("normalization")
    return open_data(data, transform, size, None if not norm else (norm["mean"], norm["std"]))




def sidecar_of(weights: str | None) -> dict[str, Any]:
    """The whole sidecar of a weights file ({} for none, ``"default"`` or no sidecar)."""
    if weights is None or weights == "default" or os.path.isdir(weights):
        return {}
    return read_sidecar(weights)


def opened_data(
    entry: ModelEntry | None, data: str | Dataset, weights: str | None, input_size: int | None,  # type: ignore[type-arg]
) -> tuple[Any, int, str, HeldOut]:
    """The data set to score (the held-out part where known), the input size, the
    preprocessing in words and what is known about held-out images."""
    if weights is not None and weights != "default":
        check_weights_path(weights)  # a folder or a missing file: said before anything is read
    transform, size, preprocessing = preprocessing_for(entry, weights, input_size)
    dataset = open_for_eval(data, transform, size, checkpoint_meta(weights))
    dataset, held = held_out_part(dataset, data, weights, sidecar_of(weights))
    return dataset, size, _preprocessing_text(data, dataset, preprocessing, size), held
