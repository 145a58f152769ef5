"""Accuracy: top-1, top-5 and per-class, on one centre crop per image.

Both seed studies rank networks by top-1 and top-5 on a single centre crop, and the
Tiny-ImageNet study looks at the five best and five worst classes; :func:`evaluate` measures
all three on this machine and labels them ``measured`` (published figures are labelled
``published`` elsewhere).

>>> from dnnmeter.evaluate import evaluate
>>> r = evaluate("resnet18", "digits", input_size=64, limit=20)   # initial weights
>>> r.n, [c["class_name"] for c in r.worst_classes][:1]
(20, [...])
>>> r = evaluate("resnet50", "/data/imagenet/val", weights="default")   # needs ImageNet and the hub cache  # doctest: +SKIP

Under torchrun the same call runs distributed: each rank evaluates a contiguous block of the
indices (:func:`_evaluate_indices` returns a :class:`Tally` of per-class counts), the tallies
are gathered and added with :meth:`Tally.merge`, and every rank returns the result a single
process would have returned (dnnmeter.distributed).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from dnnmeter.data import (
    DIGITS,
    Skipped,
    SkipUnreadable,
    UnreadableImageError,
    collate_skipping,
    eval_transform,
    open_data,
    resize_size,
)
from dnnmeter.data.files import one_line
from dnnmeter.data.transforms import describe
from dnnmeter.distributed import Group, process_group
from dnnmeter.errors import (
    DnnmeterError,
    InvalidInputError,
    MissingDependencyError,
    ModelBuildError,
    ModelForwardError,
)
from dnnmeter.measure.threads import available_cores
from dnnmeter.zoo import ModelEntry, create_model, resolve

__all__ = ["TOP_K", "EvalResult", "Tally", "build_with_weights", "default_workers", "evaluate", "load_weights_file",
           "prepared_data", "subset_indices"]

log = logging.getLogger(__name__)

TOP_K = 5
RANKED = 5  # classes in best_classes and in worst_classes
WEIGHTS_NONE = "none (initial values)"
WEIGHTS_AS_PASSED = "as passed (the caller's nn.Module)"
DEFAULT_INPUT_SIZE = 224  # for an nn.Module passed without input_size

Row = dict[str, Any]  # one class of per_class


@dataclass
class EvalResult:
    """Accuracy of ``model`` on ``data``, measured.

    ``top1`` and ``top5`` are fractions of the ``n`` images evaluated (unreadable ones are in
    ``skipped``, not in ``n``). ``top5`` is top-``top5_k`` with ``top5_k = min(5, outputs)``:
    a model with fewer than 5 outputs is scored on all of them (top5 is then 1.0 for every
    label it can output). ``per_class`` holds one row per class: ``class_index``,
    ``class_name`` (folder or WNID), ``description`` (words, when the data set ships them),
    ``correct`` (top-1), ``count`` and ``accuracy`` (None when the class had no image).
    ``images_per_s`` is end to end: reading, decoding, preprocessing and the forward pass.
    """

    model: str
    data: str
    layout: str
    n: int
    top1: float | None
    top5: float | None
    top5_k: int | None
    per_class: list[dict[str, Any]]
    best_classes: list[dict[str, Any]]
    worst_classes: list[dict[str, Any]]
    images_per_s: float | None
    seconds: float
    skipped: list[dict[str, str]]
    weights: str
    label: str = "measured"
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DistributedError(DnnmeterError):
    """Another rank of a distributed evaluation failed; its message says which and why."""


# --- Counting ------------------------------------------------------------------------------


def _padded(counts: np.ndarray, size: int) -> np.ndarray:
    return np.pad(counts, (0, size - len(counts))) if len(counts) < size else counts


@dataclass
class Tally:
    """Per-class counts from evaluating some of a data set's indices.

    ``count[c]`` images of class ``c`` were scored; ``correct1[c]`` had ``c`` as the highest
    output, ``correctk[c]`` among the ``k`` highest. Ties between outputs go to the lower
    class index (a stable sort), so the counts are exact and repeatable.
    """

    count: np.ndarray
    correct1: np.ndarray
    correctk: np.ndarray
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    outputs: int | None = None  # the model's number of outputs, once seen

    @classmethod
    def empty(cls, n_classes: int) -> Tally:
        zeros = np.zeros(n_classes, dtype=np.int64)
        return cls(zeros, zeros.copy(), zeros.copy())

    @property
    def k(self) -> int | None:
        return None if self.outputs is None else min(TOP_K, self.outputs)

    def _grow(self, size: int) -> None:
        self.count, self.correct1, self.correctk = (
            _padded(a, size) for a in (self.count, self.correct1, self.correctk)
        )

    def add(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Score one batch: ``logits`` (N, outputs), ``targets`` (N,) class indices."""
        self.outputs = int(logits.shape[1])
        order = torch.sort(logits, dim=1, descending=True, stable=True).indices[:, : self.k]
        hits = (order == targets[:, None]).numpy()
        labels = targets.numpy()
        self._grow(int(labels.max()) + 1)
        size = len(self.count)
        self.count += np.bincount(labels, minlength=size)
        self.correct1 += np.bincount(labels[hits[:, 0]], minlength=size)
        self.correctk += np.bincount(labels[hits.any(axis=1)], minlength=size)

    def merge(self, other: Tally) -> Tally:
        """The tally of both (disjoint) subsets; ``seconds`` is the longer, as shards run at once."""
        size = max(len(self.count), len(other.count))

        def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            total: np.ndarray = _padded(a, size) + _padded(b, size)
            return total

        return Tally(
            add(self.count, other.count),
            add(self.correct1, other.correct1),
            add(self.correctk, other.correctk),
            skipped=sorted(self.skipped + other.skipped),
            seconds=max(self.seconds, other.seconds),
            outputs=self.outputs if self.outputs is not None else other.outputs,
        )


# --- Settings -------------------------------------------------------------------------------


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


def _check_args(batch_size: int, workers: int, limit: int | None, input_size: int | None, device: str) -> None:
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


def checkpoint_meta(weights: str | None) -> dict[str, Any]:
    """What ``dnnmeter train`` wrote beside its checkpoint (``model.json``: classes, input size,
    the normalisation it was trained with), or {} for any other weights."""
    if weights is None or weights == "default":
        return {}
    from dnnmeter.train.checkpoint import read_sidecar

    try:
        meta = read_sidecar(weights)
    except (OSError, ValueError):
        return {}
    wanted = ("classes", "input_size", "normalization")
    return meta if isinstance(meta, dict) and all(meta.get(k) for k in wanted) else {}


def _preprocessing(
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


def _open(data: str | Dataset, transform: Callable[[Any], torch.Tensor], size: int,  # type: ignore[type-arg]
          meta: Mapping[str, Any]) -> Any:
    """Our data set for a path or 'digits'; a Dataset is used as is (already preprocessed)."""
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise InvalidInputError(f"data {data!r}: give a folder, 'digits' or a torch Dataset")
    norm = meta.get("normalization")
    return open_data(data, transform, size, None if not norm else (norm["mean"], norm["std"]))


# --- Weights --------------------------------------------------------------------------------


def _read_state_dict(path: str, device: str) -> Mapping[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError as exc:
            raise MissingDependencyError(
                f"{path}: .safetensors files need safetensors: pip install safetensors"
            ) from exc
        try:
            return load_file(path, device=device)
        except (SafetensorError, OSError) as exc:
            raise ModelBuildError(f"{path}: not a readable safetensors file ({one_line(exc)})") from exc
    try:
        state = torch.load(path, weights_only=True, map_location=device)
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes fail in many ways (struct, zip, pickle)
        raise ModelBuildError(f"{path}: not a loadable state dict ({one_line(exc)})") from exc
    # Training checkpoints often wrap the state dict; unwrap the two usual keys.
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelBuildError(f"{path}: expected a state dict (names -> tensors), got {type(state).__name__}")
    return state


def _mismatch(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading strictly, in a few words per kind."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected if k in state and state[k].shape != expected[k].shape
    ]  # fmt: skip
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            parts.append(f"{label}: {', '.join(keys[:3])}{more}")
    return parts


def load_weights_file(module: nn.Module, path: str, device: str = "cpu", name: str = "model") -> None:
    """Load a state dict (torch.save or .safetensors) into ``module``, strictly.

    Raises a one-line ModelBuildError when the file is absent, unreadable or does not fit.
    """
    if not os.path.isfile(path):
        raise ModelBuildError(
            f"{path}: no such weights file; give a state dict (.pt, .pth, .safetensors) or 'default'"
        )
    state = _read_state_dict(path, device)
    problems = _mismatch(module.state_dict(), state)
    if problems:
        raise ModelBuildError(f"{path} does not fit {name}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


def _weights_label(entry: ModelEntry, weights: str | None) -> str:
    if weights is None:
        return WEIGHTS_NONE
    if weights != "default":
        return os.path.abspath(weights)
    from torchvision import models

    from dnnmeter.zoo.weights import torch_hub_checkpoint

    url = models.get_model_weights(entry.name).DEFAULT.url
    return f"default (torch hub cache: {torch_hub_checkpoint(url)})"


def _build(entry: ModelEntry, weights: str | None, device: str) -> nn.Module:
    """Build by name; 'default' comes from the hub cache only (create_model never downloads)."""
    if weights == "default":
        return create_model(entry.name, device=device, weights="default")
    classes = checkpoint_meta(weights).get("classes")  # a dnnmeter checkpoint knows its class count
    module = create_model(entry.name, device=device, **({"num_classes": len(classes)} if classes else {}))
    if weights is not None:
        load_weights_file(module, weights, device, entry.name)
    return module


@contextlib.contextmanager
def _borrowed(module: nn.Module, weights: str | None, device: str) -> Iterator[nn.Module]:
    """The caller's module in eval mode on ``device``; its mode and device are restored after.

    With a weights file the caller's module is left alone and a copy is loaded instead.
    """
    if weights is not None:
        if weights == "default":
            raise InvalidInputError("weights='default' needs a model name; load the weights into your module")
        module = copy.deepcopy(module)
        load_weights_file(module, weights, "cpu", type(module).__name__)
    tensors = [*module.parameters(), *module.buffers()]
    devices = {t.device for t in tensors}
    was_training = module.training
    try:
        yield module.to(device).eval()
    finally:
        module.train(was_training)
        if len(devices) == 1:
            module.to(devices.pop())


@contextlib.contextmanager
def _prepared(
    model: str | nn.Module, entry: ModelEntry | None, weights: str | None, device: str
) -> Iterator[tuple[nn.Module, str]]:
    """The module to evaluate and where its weights came from."""
    if entry is not None:
        yield _build(entry, weights, device), _weights_label(entry, weights)
        return
    assert isinstance(model, nn.Module)
    with _borrowed(model, weights, device) as module:
        yield module, os.path.abspath(weights) if weights else WEIGHTS_AS_PASSED


# --- The loop -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    name: str
    batch_size: int
    workers: int
    device: str
    strict: bool
    progress: Callable[[int, int], None] | None


def _loader(dataset: Any, indices: Sequence[int], run: _Run) -> DataLoader:  # type: ignore[type-arg]
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


def _evaluate_indices(module: nn.Module, dataset: Any, indices: Sequence[int], run: _Run) -> Tally:
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


def _evaluate_shard(
    model: str | nn.Module, entry: ModelEntry | None, weights: str | None, dataset: Any,
    group: Group, indices: Sequence[int], run: _Run,
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
        with _prepared(model, entry, weights, run.device) as (module, weights_label):
            tally = _evaluate_indices(module, dataset, group.shard(indices), run)
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


# --- The result -----------------------------------------------------------------------------


def _per_class(tally: Tally, classes: Sequence[str], descriptions: Sequence[str | None]) -> list[Row]:
    rows = []
    for c in range(max(len(tally.count), len(classes))):
        count = int(tally.count[c]) if c < len(tally.count) else 0
        correct = int(tally.correct1[c]) if c < len(tally.correct1) else 0
        rows.append({
            "class_index": c,
            "class_name": classes[c] if c < len(classes) else str(c),
            "description": descriptions[c] if c < len(descriptions) else None,
            "correct": correct,
            "count": count,
            "accuracy": correct / count if count else None,
        })  # fmt: skip
    return rows


def best_and_worst(per_class: list[Row], n: int = RANKED) -> tuple[list[Row], list[Row]]:
    """The ``n`` classes of highest and of lowest top-1 accuracy, among classes with images.

    Ties in accuracy go to the class with more images (the better evidence), then to the
    lower class index.
    """
    scored = [row for row in per_class if row["count"]]
    best = sorted(scored, key=lambda r: (-r["accuracy"], -r["count"], r["class_index"]))
    worst = sorted(scored, key=lambda r: (r["accuracy"], -r["count"], r["class_index"]))
    return best[:n], worst[:n]


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


def _result(tally: Tally, dataset: Any, head: dict[str, Any], settings: dict[str, Any]) -> EvalResult:
    from dnnmeter.measure.environment import capture_environment

    classes = list(getattr(dataset, "classes", None) or [])
    per_class = _per_class(tally, classes, getattr(dataset, "descriptions", None) or [])
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
    )


def prepared_data(model: str, data: str, weights: str | None = None, input_size: int | None = None) -> Any:
    """The data set :func:`evaluate` would read for ``model`` with ``weights``, preprocessed
    alike: for other tools (quantization and pruning sweeps) that score a model as eval does."""
    entry = resolve(model)
    transform, size, _ = _preprocessing(entry, weights, input_size)
    return _open(data, transform, size, checkpoint_meta(weights))


def build_with_weights(model: str, weights: str | None = None, device: str = "cpu") -> nn.Module:
    """``model`` built by name with ``weights`` (None, ``"default"`` or a file), in eval mode."""
    return _build(resolve(model), weights, device).eval()


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
) -> EvalResult:
    """Top-1, top-5 and per-class accuracy of ``model`` on ``data``, one centre crop per image.

    ``model`` is a name (``dnnmeter models``) or an nn.Module (restored to its mode and device
    afterwards). ``data`` is a folder in a known layout (see dnnmeter.data.detect), ``"digits"``
    or a Dataset yielding preprocessed ``(tensor, class index)``. ``weights``: None (as built),
    ``"default"`` (torchvision's, from the local torch hub cache; never downloaded) or a state
    dict file. ``limit`` evaluates that many images spread evenly over the data set.
    Unreadable images are skipped and listed; with ``strict`` the first one raises.
    ``progress(done, total)`` is called after each batch.
    """
    _check_args(batch_size, workers, limit, input_size, device)
    entry = resolve(model) if isinstance(model, str) else None
    transform, size, preprocessing = _preprocessing(entry, weights, input_size)
    dataset = _open(data, transform, size, checkpoint_meta(weights))
    indices = subset_indices(len(dataset), limit)
    name = model if isinstance(model, str) else type(model).__name__
    with process_group(device) as group:
        device = group.device
        run = _Run(name, batch_size, workers, device, strict, progress if group.is_main else None)
        tally, weights_label = _evaluate_shard(model, entry, weights, dataset, group, indices, run)
    head = {
        "model": name,
        "data": str(data) if isinstance(data, (str, os.PathLike)) else type(data).__name__,
        "layout": getattr(dataset, "layout", "dataset"),
        "weights": weights_label,
    }
    settings = {
        "batch_size": batch_size, "workers": workers, "device": device, "input_size": size,
        "preprocessing": _preprocessing_text(data, dataset, preprocessing, size),
        "limit": limit, "strict": strict, "threads": torch.get_num_threads(),
        "pin_memory": device.startswith("cuda"), "images_requested": len(indices),
        "distributed": group.describe(),
    }  # fmt: skip
    return _result(tally, dataset, head, settings)
