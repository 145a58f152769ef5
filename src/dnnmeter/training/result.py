"""What a training run returns: settings, the per-epoch history and the final scores.

Every figure is measured on this machine (``label = "measured"``). ``history`` holds one
:class:`EpochRecord` per epoch; the per-class rows are ``dnnmeter eval``'s
(:class:`~dnnmeter.accuracy.result.ClassAccuracy`). Both serialise through the codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from dnnmeter._serial import ItemAccess, Record
from dnnmeter.accuracy.result import ClassAccuracy


@dataclass
class EpochRecord(ItemAccess, Record):
    """One epoch: ``train_loss`` and ``train_accuracy`` are running means over the epoch's
    batches (with augmentation, on every process's shard); ``val_loss`` and ``val_accuracy``
    are on the whole validation split after the epoch; ``epoch_s`` is the epoch's training
    time (the slowest process's when distributed), ``val_s`` the validation's."""

    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float | None
    epoch_s: float
    val_s: float


@dataclass
class TrainResult(Record):
    """A finished training run. ``module`` is the trained network (not serialised)."""

    model: str
    data: str
    layout: str
    settings: dict[str, Any]
    history: list[EpochRecord]
    train_accuracy: float | None
    val_accuracy: float | None
    val_loss: float | None
    per_class: list[ClassAccuracy]
    best_classes: list[ClassAccuracy]
    worst_classes: list[ClassAccuracy]
    checkpoint: str | None
    curves: str | None
    history_file: str | None
    seconds: float
    distributed: dict[str, Any] | None
    environment: dict[str, Any]
    label: str = "measured"
    module: nn.Module | None = field(default=None, repr=False, compare=False)

    _omitted: ClassVar[tuple[str, ...]] = ("module",)
