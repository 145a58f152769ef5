"""Training: the loop, augmentations, checkpoints, curves, and distributed training.

>>> from dnnmeter.training import train, plot_curves, load_checkpoint
>>> r = train("tiny_alexnet", "digits", epochs=10, augment=["rotate", "noise"], out="train-out")  # minutes  # doctest: +SKIP
>>> r.val_accuracy, r.worst_classes, r.checkpoint  # doctest: +SKIP
>>> r2 = train("tiny_alexnet", "digits", nproc=2, strategy="average", average_every=8)  # doctest: +SKIP
>>> plot_curves([r, r2], "curves.png")  # doctest: +SKIP
>>> net = load_checkpoint("tiny_alexnet", r.checkpoint)  # doctest: +SKIP

docs/train.md has the defaults, the measured times and the distributed strategies.
"""

from __future__ import annotations

from dnnmeter.distributed import launched_by_torchrun
from dnnmeter.training.api import train
from dnnmeter.training.augment import AUGMENTATIONS, parse_augment
from dnnmeter.training.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from dnnmeter.training.curves import plot_curves
from dnnmeter.training.distributed import DistributedTrainingError
from dnnmeter.training.result import TrainResult
from dnnmeter.training.settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    DIGITS_EPOCHS,
    DIGITS_INPUT_SIZE,
    FOLDER_EPOCHS,
    STRATEGIES,
    TrainSettings,
)

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LR",
    "DIGITS_EPOCHS",
    "DIGITS_INPUT_SIZE",
    "FOLDER_EPOCHS",
    "STRATEGIES",
    "DistributedTrainingError",
    "TrainResult",
    "TrainSettings",
    "launched_by_torchrun",
    "load_checkpoint",
    "parse_augment",
    "plot_curves",
    "read_sidecar",
    "save_checkpoint",
    "train",
]
