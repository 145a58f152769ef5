"""One epoch of training and one pass of validation, for one process.

Distributed runs call the same functions on every process; ``sync`` adds their counters
(loss, correct, seen) across processes so that every process reports the same figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from dnnmeter.data.files import one_line
from dnnmeter.errors import ModelForwardError
from dnnmeter.accuracy.result import Tally

BatchProgress = Callable[[int, int], None]  # (batch, batches)


@dataclass(frozen=True)
class EpochFigures:
    loss: float
    accuracy: float
    seconds: float


class Sync:
    """What a run does with the other processes; this one is a single process, so nothing.

    ``dnnmeter.training.distributed`` subclasses it for DDP and for local SGD.
    """

    rank, world_size = 0, 1

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` added over processes."""
        return t

    def max(self, value: float) -> float:
        return value

    def wrap(
        self, module: nn.Module, optimizer: torch.optim.Optimizer, steps_per_epoch: int
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """The module to call and the optimiser to step."""
        return module, optimizer

    def inner(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """The plain optimiser inside ``optimizer`` (what a learning-rate schedule drives)."""
        return optimizer

    def end_epoch(self, module: nn.Module) -> None:
        """Called after each epoch's training, before validation."""

    def finish(self, module: nn.Module) -> None:
        """Called once after the last epoch."""

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        return obj

    def describe(self) -> dict[str, Any] | None:
        """The distributed settings for the result; None for one process."""
        return None


def _forward(module: nn.Module, images: torch.Tensor) -> torch.Tensor:
    try:
        out = module(images)
    except RuntimeError as exc:
        raise ModelForwardError(
            f"forward failed on a batch of shape {tuple(images.shape)}: {one_line(exc)}"
        ) from exc
    out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "logits", out)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ModelForwardError("the model must return class scores of shape (batch, classes)")
    return out


def train_epoch(
    module: nn.Module,
    loader: DataLoader,  # type: ignore[type-arg]
    optimizer: torch.optim.Optimizer,
    device: str,
    progress: BatchProgress | None = None,
    sync: Sync | None = None,
) -> EpochFigures:
    """One pass over ``loader``; loss and accuracy are means over the samples seen."""
    module.train()
    counts = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, seen
    start = time.perf_counter()
    batches = len(loader)
    for b, (images, targets) in enumerate(loader, 1):
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad(set_to_none=True)
        logits = _forward(module, images)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            counts += torch.tensor([
                float(loss) * len(targets), float((logits.argmax(1) == targets).sum()), len(targets),
            ], dtype=torch.float64)  # fmt: skip
        if progress is not None:
            progress(b, batches)
    seconds = time.perf_counter() - start
    sync = sync or Sync()
    total = sync.sum(counts)
    return EpochFigures(float(total[0] / total[2]), float(total[1] / total[2]), sync.max(seconds))


def validate(
    module: nn.Module,
    loader: DataLoader,
    device: str,
    n_classes: int,  # type: ignore[type-arg]
) -> tuple[float, Tally]:
    """Mean cross-entropy and the per-class tally (top-1, top-5) over ``loader``."""
    module.eval()
    tally = Tally.empty(n_classes)
    loss_sum, seen = 0.0, 0
    start = time.perf_counter()
    with torch.inference_mode():
        for images, targets in loader:
            logits = _forward(module, images.to(device)).float().cpu()
            loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
            seen += len(targets)
            tally.add(logits, targets)
    tally.seconds = time.perf_counter() - start
    return loss_sum / max(seen, 1), tally
