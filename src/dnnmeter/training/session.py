"""One process's part of a training run, from data to result.

The same function runs alone (``Sync()``) or as one rank of a distributed run (a
``dnnmeter.training.distributed`` sync, which also wraps the model for DDP or local SGD).
Rank 0 validates, writes the files and assembles the result; every rank returns it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from dnnmeter.atomic import write_json
# per_class_rows: the rows eval reports, so a trained model's table reads like dnnmeter eval's.
from dnnmeter.accuracy.result import Tally, best_and_worst, per_class_rows
from dnnmeter.training import augment as aug
from dnnmeter.training.curves import plot_curves
from dnnmeter.training.data import (
    Mapped,
    Splits,
    channel_stats,
    describe_stats,
    loader_kwargs,
    open_splits,
)
from dnnmeter.training.loop import EpochFigures, Sync, train_epoch, validate
from dnnmeter.training.result import EpochRecord, TrainResult
from dnnmeter.training.settings import TrainSettings
from dnnmeter.zoo.weights import CHECKPOINT, save_checkpoint

Progress = Callable[[int, int, int, int], None]  # (epoch, epochs, batch, batches)
HISTORY = "history.json"
CURVES = "curves.png"
RESULT = "result.json"


def model_name(model: str | nn.Module) -> str:
    return model if isinstance(model, str) else type(model).__name__


def build_module(model: str | nn.Module, n_classes: int, device: str) -> nn.Module:
    """A fresh trainable module: built by name, or a deep copy of the caller's."""
    if isinstance(model, str):
        from dnnmeter.zoo import create_model

        module = create_model(model, device="cpu", num_classes=n_classes)
    else:
        module = copy.deepcopy(model)
    return module.to(device).train()


def _optimizer(module: nn.Module, s: TrainSettings) -> torch.optim.SGD:
    return torch.optim.SGD(module.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def _loaders(
    splits: Splits, s: TrainSettings, sync: Sync, mean: list[float], std: list[float]
) -> tuple[DataLoader, DataLoader, DistributedSampler]:  # type: ignore[type-arg]
    train = Mapped(splits.train, aug.train_transform(s.augment, mean, std))
    # One sampler for one process or many: its shuffle depends on (seed, epoch) only,
    # not on torch's global generator.
    sampler = DistributedSampler(
        train, num_replicas=sync.world_size, rank=sync.rank, shuffle=True, seed=s.seed
    )
    extra = loader_kwargs(s.device, s.workers)
    train_loader = DataLoader(train, batch_size=s.batch_size // sync.world_size, sampler=sampler, **extra)
    val = Mapped(splits.val, aug.val_transform(mean, std))
    return train_loader, DataLoader(val, batch_size=s.batch_size, shuffle=False, **extra), sampler


def _epoch_row(epoch: int, fit: EpochFigures, val_loss: float, tally: Tally) -> EpochRecord:
    n = int(tally.count.sum())
    return EpochRecord(
        epoch=epoch, train_loss=fit.loss, train_accuracy=fit.accuracy,
        val_loss=val_loss, val_accuracy=int(tally.correct1.sum()) / n if n else None,
        epoch_s=fit.seconds, val_s=tally.seconds,
    )  # fmt: skip


class _Run:
    """The state of one process's run, so each step is a short method."""

    def __init__(
        self, model: str | nn.Module, s: TrainSettings, sync: Sync, progress: Progress | None
    ) -> None:
        self.s, self.sync, self.progress = s, sync, progress
        self.name = model_name(model)
        self.out = Path(s.out) if s.out and sync.rank == 0 else None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(s.seed)  # the same initial weights on every rank
        self.splits = open_splits(s.data, s.input_size, s.seed, s.val_fraction)
        self.mean, self.std, self.stats_images = channel_stats(self.splits.train)
        self.module = build_module(model, len(self.splits.classes), s.device)
        self.train_loader, self.val_loader, self.sampler = _loaders(self.splits, s, sync, self.mean, self.std)
        self.net, self.optimizer = sync.wrap(self.module, _optimizer(self.module, s), len(self.train_loader))
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            sync.inner(self.optimizer), T_max=s.epochs
        )
        torch.manual_seed(s.seed + sync.rank)  # augmentations differ between ranks
        self.history: list[EpochRecord] = []
        self.tally: Tally | None = None

    def settings(self) -> dict[str, Any]:
        return {
            **self.s.to_dict(),
            "classes": len(self.splits.classes), "train_images": len(self.splits.train),  # type: ignore[arg-type]
            "val_images": len(self.splits.val), "split": self.splits.split,  # type: ignore[arg-type]
            "normalization": describe_stats(self.mean, self.std, self.stats_images),
            "augmentations": aug.describe(self.s.augment), "steps_per_epoch": len(self.train_loader),
            "batch_size_per_process": self.s.batch_size // self.sync.world_size,
            "deterministic": "same seed, same device and thread count: same history and weights",
        }  # fmt: skip

    def epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        report = None
        if self.progress is not None and self.sync.rank == 0:
            progress = self.progress
            report = lambda b, n: progress(epoch, self.s.epochs, b, n)
        fit = train_epoch(self.net, self.train_loader, self.optimizer, self.s.device, report, self.sync)
        self.scheduler.step()
        self.sync.end_epoch(self.module)
        if self.sync.rank == 0:
            val_loss, self.tally = validate(
                self.module, self.val_loader, self.s.device, len(self.splits.classes)
            )
            self.history.append(_epoch_row(epoch, fit, val_loss, self.tally))
            if self.out is not None:
                write_json(
                    self.out / HISTORY,
                    {"model": self.name, "settings": self.settings(), "history": self.history_rows()},
                )

    def files(self) -> tuple[str | None, str | None]:
        if self.out is None:
            return None, None
        checkpoint = save_checkpoint(self.module, self.out / CHECKPOINT, self.sidecar())
        curves = plot_curves(
            [{"model": self.name, "history": self.history_rows(), "distributed": self.sync.describe()}],
            self.out / CURVES,
        )
        return str(checkpoint), str(curves)

    def sidecar(self) -> dict[str, Any]:
        return {
            "model": self.name, "classes": self.splits.classes, "layout": self.splits.layout,
            "input_size": [3, self.s.input_size, self.s.input_size],
            "normalization": describe_stats(self.mean, self.std, self.stats_images),
            "split": self.splits.record, "settings": self.settings(), "history": self.history_rows(),
        }  # fmt: skip

    def history_rows(self) -> list[dict[str, Any]]:
        """The history as the files keep it (history.json, the checkpoint's sidecar)."""
        return [row.to_dict() for row in self.history]

    def result(self, seconds: float) -> TrainResult:
        from dnnmeter.measure.environment import capture_environment

        assert self.tally is not None
        per_class = per_class_rows(self.tally, self.splits.classes, self.splits.descriptions)
        best, worst = best_and_worst(per_class)
        checkpoint, curves = self.files()
        last = self.history[-1]
        return TrainResult(
            model=self.name, data=self.s.data, layout=self.splits.layout, settings=self.settings(),
            history=list(self.history), train_accuracy=last.train_accuracy, val_accuracy=last.val_accuracy,
            val_loss=last.val_loss, per_class=per_class, best_classes=best, worst_classes=worst,
            checkpoint=checkpoint, curves=curves,
            history_file=str(self.out / HISTORY) if self.out is not None else None, seconds=seconds,
            distributed=self.sync.describe(), environment=capture_environment(self.s.device, self.s.threads),
        )  # fmt: skip


def run(
    model: str | nn.Module, s: TrainSettings, sync: Sync, progress: Progress | None = None
) -> TrainResult:
    """Train on this process; every rank returns rank 0's result, with its own module."""
    start = time.perf_counter()
    state = _Run(model, s, sync, progress)
    for epoch in range(1, s.epochs + 1):
        state.epoch(epoch)
    sync.finish(state.module)
    seconds = time.perf_counter() - start
    result = state.result(seconds) if sync.rank == 0 else None
    if s.out is not None and result is not None:
        write_json(Path(s.out) / RESULT, result.to_dict())
    shared = sync.broadcast_object(result.to_dict() if result is not None else None)
    final = TrainResult.from_dict(shared)
    final.module = state.module.eval()
    return final
