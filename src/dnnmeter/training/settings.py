"""The settings of a training run: defaults, checks, and the one-line errors for bad ones.

Defaults for the built-in digits were chosen so that the three tiny AlexNet variants train
in a few minutes on 2 CPU cores and the plain one passes 90% validation accuracy (measured
figures in docs/train.md). With a folder (Tiny ImageNet), the seed study's 100 epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.training.augment import parse_augment

STRATEGIES = ("ddp", "average")
DIGITS_EPOCHS = 8
FOLDER_EPOCHS = 100  # the seed study's Tiny ImageNet run
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 0.05
DIGITS_INPUT_SIZE = 32  # the 8x8 digits upsampled 4x; 64 costs 4x the time for nothing
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4


@dataclass(frozen=True)
class TrainSettings:
    """Everything a process needs to run its part (picklable, sent to spawned processes).

    ``batch_size`` is the global batch: each of ``nproc`` processes takes
    ``batch_size // nproc`` per step, so one and several processes make the same number of
    optimiser steps per epoch.
    """

    data: str
    epochs: int
    batch_size: int
    lr: float
    augment: tuple[str, ...]
    out: str | None
    seed: int
    device: str
    val_fraction: float
    input_size: int
    nproc: int
    strategy: str
    average_every: int | None
    threads: int | None
    workers: int = 0
    optimizer: str = f"SGD momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}, cosine schedule per epoch"
    momentum: float = MOMENTUM
    weight_decay: float = WEIGHT_DECAY

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive_int(name: str, value: Any, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} {value!r} must be a positive integer, e.g. {hint}")
    return value


def _make_folder(out: Any) -> None:
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(
            f"out {out}: cannot create this folder ({exc.strerror}); choose a writable one"
        ) from exc


OUTPUTS = ("model.safetensors", "model.json", "history.json", "result.json")  # what a run writes in out


def _check_overwrite(out: Any, overwrite: bool) -> None:
    """Refuse to replace an earlier run's files unless asked: a checkpoint may be hours of training."""
    if overwrite:
        return
    for name in OUTPUTS:
        if (Path(out) / name).exists():
            raise InvalidInputError(
                f"{Path(out) / name} exists (an earlier run's); choose another --out, or pass --overwrite "
                "(overwrite=True) to replace it"
            )


def default_epochs(data: str) -> int:
    return DIGITS_EPOCHS if str(data) == "digits" else FOLDER_EPOCHS


def check_settings(
    data: str, *, epochs: int | None, batch_size: int, lr: float, augment: str | Sequence[str] | None,
    out: Any, seed: int, device: str, val_fraction: float, input_size: int, nproc: int,
    strategy: str, average_every: int | None, threads: int | None, workers: int, overwrite: bool = False,
) -> TrainSettings:  # fmt: skip
    """Checked settings, with data-dependent defaults filled in."""
    epochs = default_epochs(data) if epochs is None else _positive_int("epochs", epochs, "10")
    _positive_int("batch size", batch_size, "64")
    _positive_int("input size", input_size, "32")
    _positive_int("nproc", nproc, "2")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise InvalidInputError(f"learning rate {lr!r} must be a positive number, e.g. {DEFAULT_LR}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InvalidInputError(f"seed {seed!r} must be an integer")
    if not 0.0 < float(val_fraction) < 1.0:
        raise InvalidInputError(f"val_fraction {val_fraction!r} must be between 0 and 1, e.g. 0.2")
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"strategy {strategy!r}: choose ddp (synchronous) or average (local SGD)")
    if average_every is not None:
        _positive_int("average_every", average_every, "8 (steps)")
    if threads is not None:
        _positive_int("threads", threads, "1")
    if not isinstance(workers, int) or workers < 0:
        raise InvalidInputError(f"workers {workers!r} must be 0 (load in the training process) or more")
    if batch_size < nproc:
        raise InvalidInputError(
            f"batch size {batch_size} is smaller than nproc {nproc}: each process needs a sample"
        )
    if out is not None:
        _check_overwrite(out, overwrite)
        _make_folder(out)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InvalidInputError(f"device {device}: no CUDA device is available; use cpu")
    return TrainSettings(
        data=str(data), epochs=epochs, batch_size=batch_size, lr=float(lr), augment=parse_augment(augment),
        out=None if out is None else str(out), seed=seed, device=device, val_fraction=float(val_fraction),
        input_size=input_size, nproc=nproc, strategy=strategy, average_every=average_every,
        threads=threads, workers=workers,
    )  # fmt: skip
