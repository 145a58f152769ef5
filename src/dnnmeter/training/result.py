"""What a training run returns: settings, the per-epoch history and the final scores.

Every figure is measured on this machine (``label = "measured"``). ``history`` holds one dict
per epoch: ``epoch`` (1-based), ``train_loss`` and ``train_accuracy`` (running means over the
epoch's batches, with augmentation, on every process's shard), ``val_loss`` and
``val_accuracy`` (the whole validation split, after the epoch), ``epoch_s`` (training time
of the epoch, the slowest process's when distributed) and ``val_s`` (validation time).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from torch import nn


@dataclass
class TrainResult:
    """A finished training run. ``module`` is the trained network (not serialised)."""

    model: str
    data: str
    layout: str
    settings: dict[str, Any]
    history: list[dict[str, Any]]
    train_accuracy: float | None
    val_accuracy: float | None
    val_loss: float | None
    per_class: list[dict[str, Any]]
    best_classes: list[dict[str, Any]]
    worst_classes: list[dict[str, Any]]
    checkpoint: str | None
    curves: str | None
    history_file: str | None
    seconds: float
    distributed: dict[str, Any] | None
    environment: dict[str, Any]
    label: str = "measured"
    module: nn.Module | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        # replace() first: asdict would deep-copy the module.
        out = asdict(replace(self, module=None))
        del out["module"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Rebuild from :meth:`to_dict` (e.g. a ``result.json``); unknown keys are ignored."""
        names = {f.name for f in fields(cls)} - {"module"}
        return cls(**{k: v for k, v in data.items() if k in names})
