"""The evaluation loop: batches through the model, a :class:`Tally` per shard, the result.

Under torchrun each rank evaluates a contiguous block of the indices
(:func:`evaluate_indices` returns a :class:`Tally` of per-class counts), the tallies are
gathered and added with :meth:`Tally.merge`, and every rank returns the result a single
process would have returned (dnnmeter.distributed).
"""

from __future__ import annotations

import functools
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from dnnmeter.data import Skipped, SkipUnreadable, UnreadableImageError, collate_skipping
from dnnmeter.data.files import one_line
from dnnmeter.distributed import Group, process_group
from dnnmeter.errors import DnnmeterError, ModelForwardError
from dnnmeter.accuracy.held_out import HeldOut
from dnnmeter.accuracy.inputs import check_args, opened_data, subset_indices
from dnnmeter.accuracy.model import prepared_module, warn_initial_weights
from dnnmeter.accuracy.result import EvalResult, Tally, best_and_worst, per_class_rows
from dnnmeter.zoo import ModelEntry, resolve

log = logging.getLogger(__name__)


class DistributedError(DnnmeterError):
    """Another rank of a distributed evaluation failed; its message says which and why."""


@dataclass(frozen=True)
class Run:
    """What every batch of one evaluation needs."""

    name: str
    batch_size: int
    workers: int
    device: str
    strict: bool
    progress: Callable[[int, int], None] | None
    num_classes: int | None = None



def _loader(dataset: Any, indices: Sequence[int], run: Run) -> DataLoader:  # type: ignore[type-arg]
    """Batches in index order; with workers > 0 the files are decoded in other processes
    while the model runs. Pinned memory only helps copies to a GPU."""
    return DataLoader(
        Subset(SkipUnreadable(dataset), list(indices)),
        batch_size=run.batch_size,
        shuffle=False,
        num_workers=run.workers,
        collate_fn=collate_skipping,
        pin_memory=run.device.startswith("cuda"),
        persistent_workers=run.workers > 0,
    )


def _logits(output: Any, name: str) -> torch.Tensor:
    """The class scores of a forward's output (a tensor, a tuple's first item, or ``.logits``)."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    output = getattr(output, "logits", output)
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelForwardError(f"{name}: expected class scores of shape (batch, classes), got {shape}")
    return output


def _forward(module: nn.Module, images: torch.Tensor, name: str) -> torch.Tensor:
    try:
        return _logits(module(images), name)
    except RuntimeError as exc:
        raise ModelForwardError(
            f"{name}: forward failed on a batch of shape {tuple(images.shape)}: {one_line(exc)}"
        ) from exc


def _check_skipped(skipped: list[Skipped], strict: bool) -> None:
    if strict and skipped:
        first = skipped[0]
        raise UnreadableImageError(first.path, first.reason)


def evaluate_indices(module: nn.Module, dataset: Any, indices: Sequence[int], run: Run) -> Tally:
    """Evaluate the items ``indices`` of ``dataset``: the unit a distributed run would shard."""
    tally = Tally.empty(len(getattr(dataset, "classes", None) or []))
    loader: DataLoader | None = _loader(dataset, indices, run)  # type: ignore[type-arg]
    done = 0
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for batch in loader:  # type: ignore[union-attr]
                _check_skipped(batch.skipped, run.strict)
                tally.skipped.extend(batch.skipped)
                if batch.images is not None:
                    images = batch.images.to(run.device, non_blocking=True)
                    tally.add(_forward(module, images, run.name).float().cpu(), batch.targets)
                done += len(batch.targets) + len(batch.skipped)
                if run.progress is not None:
                    run.progress(done, len(indices))
    finally:
        loader = None  # persistent workers stop when the loader goes, even if we raised
    tally.seconds = time.perf_counter() - start
    return tally


def evaluate_shard(
    model: str | nn.Module, entry: ModelEntry | None, weights: str | None, dataset: Any,
    group: Group, indices: Sequence[int], run: Run,
) -> tuple[Tally, str]:
    """This rank's block of ``indices``, merged with every other rank's: the whole tally.

    A failure on one rank is shared with all (a rank that raised alone would leave the
    others waiting in the gather forever); every rank raises the lowest failing rank's
    error, which is the one a single process would have met first.
    """
    tally: Tally | None = None
    failure: Exception | None = None
    weights_label = ""
    try:
        with prepared_module(model, entry, weights, run.device, run.num_classes) as (module, weights_label):
            tally = evaluate_indices(module, dataset, group.shard(indices), run)
    except Exception as exc:  # noqa: BLE001 - re-raised below, after the other ranks know
        if group.world_size == 1:
            raise
        failure = exc
    outcomes = group.gather((tally, None if failure is None else f"rank {group.rank}: {one_line(failure)}"))
    errors = [message for _, message in outcomes if message is not None]
    if failure is not None and errors[0].startswith(f"rank {group.rank}:"):
        raise failure
    if errors:
        raise DistributedError(errors[0])
    return functools.reduce(Tally.merge, [t for t, _ in outcomes]), weights_label


def _warn_outputs(tally: Tally, n_classes: int, name: str) -> None:
    if tally.outputs is None or tally.outputs == n_classes:
        return
    if tally.outputs < n_classes:
        warnings.warn(
            f"{name} has {tally.outputs} outputs but the data has {n_classes} classes: "
            f"classes {tally.outputs} and up can never be predicted",
            stacklevel=3,
        )
    else:
        log.info("%s has %d outputs and the data %d classes: data class i is scored as output i",
                 name, tally.outputs, n_classes)


def _result(tally: Tally, dataset: Any, head: dict[str, Any], settings: dict[str, Any], held: HeldOut) -> EvalResult:
    from dnnmeter.measure.environment import capture_environment

    classes = list(getattr(dataset, "classes", None) or [])
    per_class = per_class_rows(tally, classes, getattr(dataset, "descriptions", None) or [])
    _warn_outputs(tally, len(per_class), head["model"])
    best, worst = best_and_worst(per_class)
    n = int(tally.count.sum())
    if tally.skipped:
        log.warning("%d unreadable images skipped (listed in the result's skipped)", len(tally.skipped))
    if n == 0:
        warnings.warn(f"{head['data']}: no image could be evaluated", stacklevel=3)
    return EvalResult(
        **head,
        n=n,
        top1=int(tally.correct1.sum()) / n if n else None,
        top5=int(tally.correctk.sum()) / n if n else None,
        top5_k=tally.k,
        per_class=per_class,
        best_classes=best,
        worst_classes=worst,
        images_per_s=n / tally.seconds if n and tally.seconds > 0 else None,
        seconds=tally.seconds,
        skipped=[s.to_dict() for s in tally.skipped],
        settings={**settings, "outputs": tally.outputs, "classes": len(per_class)},
        environment=capture_environment(settings["device"]),
        held_out=held.held_out,
        held_out_note=held.note,
    )


def held_out_data(model: str, data: str, weights: str | None = None,
                  input_size: int | None = None) -> tuple[Any, HeldOut]:
    """The data set :func:`evaluate` would read for ``model`` with ``weights``, preprocessed
    alike and held out alike, and what is known about it: for other tools (quantization and
    pruning sweeps) that score a model as eval does. A warning says when the images may
    include training images."""
    dataset, _, _, held = opened_data(resolve(model), data, weights, input_size)
    held.warn_if_needed()
    return dataset, held


def prepared_data(model: str, data: str, weights: str | None = None, input_size: int | None = None) -> Any:
    """:func:`held_out_data`'s data set alone."""
    return held_out_data(model, data, weights, input_size)[0]


def _head(model: str | nn.Module, data: Any, dataset: Any) -> dict[str, Any]:
    return {
        "model": model if isinstance(model, str) else type(model).__name__,
        "data": str(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__,
        "layout": getattr(dataset, "layout", "dataset"),
    }


def evaluate(
    model: str | nn.Module,
    data: str | Dataset,  # type: ignore[type-arg]
    weights: str | None = None,
    input_size: int | None = None,
    batch_size: int = 32,
    workers: int = 0,
    limit: int | None = None,
    strict: bool = False,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    num_classes: int | None = None,
) -> EvalResult:
    """Top-1, top-5 and per-class accuracy of ``model`` on ``data``, one centre crop per image.

    ``model`` is a name (``dnnmeter models``) or an nn.Module (restored to its mode and device
    afterwards). ``data`` is a folder in a known layout (see dnnmeter.data.detect), ``"digits"``
    or a Dataset yielding preprocessed ``(tensor, class index)``. ``weights``: None (as built,
    with a warning), ``"default"`` (torchvision's, from the local torch hub cache; never
    downloaded) or a state dict file; a dnnmeter checkpoint is scored on the images its
    training held out (``held_out``). ``num_classes`` builds a named model with that many
    outputs (a fine-tuned head). ``limit`` evaluates that many images spread evenly over the
    data set. Unreadable images are skipped and listed; with ``strict`` the first one raises.
    ``progress(done, total)`` is called after each batch.
    """
    check_args(batch_size, workers, limit, input_size, device)
    entry = resolve(model) if isinstance(model, str) else None
    dataset, size, preprocessing, held = opened_data(entry, data, weights, input_size)
    indices = subset_indices(len(dataset), limit)
    head = _head(model, data, dataset)
    with process_group(device) as group:
        device = group.device
        run = Run(head["model"], batch_size, workers, device, strict, progress if group.is_main else None, num_classes)
        tally, head["weights"] = evaluate_shard(model, entry, weights, dataset, group, indices, run)
    settings = {
        "batch_size": batch_size, "workers": workers, "device": device, "input_size": size,
        "preprocessing": preprocessing, "limit": limit, "strict": strict, "threads": torch.get_num_threads(),
        "pin_memory": device.startswith("cuda"), "images_requested": len(indices),
        "distributed": group.describe(), "num_classes": num_classes,
    }  # fmt: skip
    # After the model built and the data opened: bad input says only what is wrong.
    if entry is not None and weights is None:
        warn_initial_weights(entry)
    held.warn_if_needed()  # after the weights loaded: a file that does not load says only that
    return _result(tally, dataset, head, settings, held)
