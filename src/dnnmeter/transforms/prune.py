"""Pruning: unstructured magnitude pruning, and structured removal of whole conv channels.

- **Unstructured** (``torch.nn.utils.prune``, L1 magnitude) zeroes the smallest weights of
  every conv and linear layer. The tensors keep their shape, so a dense kernel does exactly
  the same work and the file is exactly as large: it saves nothing until the weights are
  stored sparse and run on hardware that skips zeros. The sweep reports both honestly: the
  dense size (measured) beside a sparse-format size (estimated), and the dense MACs beside
  ``effective_macs`` (what a zero-skipping accelerator would do).
- **Structured** removes the output channels of lowest L1 norm (Li et al., *Pruning Filters
  for Efficient ConvNets*, 2017) and physically shrinks the layers, so MACs, size, latency
  and the hardware model all see the smaller shapes.

>>> from dnnmeter.transforms.prune import prune, pruning_sweep
>>> small = prune(model, 0.5, method="structured")       # a copy; model is untouched  # doctest: +SKIP
>>> points = pruning_sweep(model, "digits", method="unstructured", input_size=32)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.utils.data import DataLoader, Dataset

from dnnmeter import names
from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError
from dnnmeter.transforms import _compress_common as common
from dnnmeter.transforms.channels import remove_channels

__all__ = [
    "METHODS",
    "PrunePoint",
    "PruneResult",
    "SparseSize",
    "effective_macs",
    "nonzero_params",
    "prune",
    "prune_model",
    "pruning_sweep",
    "sparse_size",
]

METHODS = names.PRUNE_METHODS
SCOPES = names.PRUNE_SCOPES
DEFAULT_SPARSITIES: tuple[float, ...] = tuple(i / 10 for i in range(10))
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class PruneResult(Record):
    """A pruned copy and what was done to it.

    ``pruned`` maps a layer to ``[before, after]``: weights and non-zero weights
    (unstructured), or output channels (structured). ``skipped`` maps a layer left alone
    to the reason (structured pruning only touches channels it can remove safely).
    """

    module: nn.Module
    method: str
    sparsity: float
    scope: str
    pruned: dict[str, list[int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    _omitted: ClassVar[tuple[str, ...]] = ("module",)  # a result's JSON has no weights


def _check(sparsity: float, method: str, scope: str) -> float:
    if method not in METHODS:
        raise InvalidInputError(f"pruning method {method!r}: use one of {METHODS}")
    if scope not in SCOPES:
        raise InvalidInputError(f"pruning scope {scope!r}: use 'global' (one threshold) or 'layer' (each layer)")
    return common.check_fraction(sparsity, "sparsity")


def prune(model: nn.Module, sparsity: float, method: str = "unstructured", scope: str = "global") -> nn.Module:
    """A pruned copy of ``model`` (see :func:`prune_model`); ``model`` is not changed."""
    return prune_model(model, sparsity, method, scope).module


def prune_model(model: nn.Module, sparsity: float, method: str = "unstructured", scope: str = "global") -> PruneResult:
    """Prune a copy of ``model`` to ``sparsity`` (a fraction in [0, 1)).

    Unstructured: ``round(sparsity * n)`` conv/linear weights set to zero, the smallest in
    magnitude over all those layers together (``scope="global"``) or in each layer
    (``scope="layer"``); biases are kept. Structured: in every conv whose channels can be
    removed safely, ``round(sparsity * channels)`` output channels of lowest L1 norm are
    removed (at least one is kept), with the matching input channels of the next layer.
    """
    sparsity = _check(sparsity, method, scope)
    copied = copy.deepcopy(model)
    if method == "unstructured":
        pruned = _unstructured(copied, sparsity, scope)
        _make_permanent(copied)
        return PruneResult(copied, method, sparsity, scope, pruned)
    pruned, skipped = remove_channels(copied, sparsity)
    return PruneResult(copied, method, sparsity, "layer", pruned, skipped)


# --- unstructured ---------------------------------------------------------------------------


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHTED)]


def _unstructured(model: nn.Module, sparsity: float, scope: str) -> dict[str, list[int]]:
    """Attach torch's L1 masks (``weight_orig`` * ``weight_mask``) to every conv/linear."""
    layers = _weighted_layers(model)
    if scope == "global":
        torch_prune.global_unstructured([(m, "weight") for _, m in layers],
                                        pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    else:
        for _, module in layers:
            torch_prune.l1_unstructured(module, "weight", amount=sparsity)
    return {name: [m.weight.numel(), int(m.weight.count_nonzero())] for name, m in layers}


def _make_permanent(model: nn.Module) -> None:
    """Fold the masks into plain ``weight`` tensors (``prune.remove``)."""
    for _, module in _weighted_layers(model):
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")


# --- what a pruned model costs -------------------------------------------------------------


def nonzero_params(model: nn.Module) -> int:
    """Parameters that are not exactly zero."""
    return sum(int(p.count_nonzero()) for p in model.parameters())


def _csr_bytes(weight: torch.Tensor) -> int:
    """CSR over output channels: values, int32 column indices, int32 row pointers."""
    nnz = int(weight.count_nonzero())
    return nnz * (weight.element_size() + 4) + (weight.shape[0] + 1) * 4


def _bitmask_bytes(weight: torch.Tensor) -> int:
    """A one-bit presence mask per weight, then the non-zero values."""
    return int(weight.count_nonzero()) * weight.element_size() + math.ceil(weight.numel() / 8)


SPARSE_FORMAT = ("each conv/linear weight as the smallest of dense, CSR over output channels "
                 "(int32 column indices and row pointers) or a bitmask (1 bit per weight plus "
                 "the non-zero values); every other tensor and the container as serialized")


@dataclass(frozen=True)
class SparseSize(Record):
    """``dense_bytes`` measured (torch.save); ``compressed_bytes`` estimated in ``format``
    unless no tensor gains from a sparse format, when it equals the measured size."""

    dense_bytes: int
    compressed_bytes: int
    kind: str
    format: str
    formats: dict[str, int]  # layers per chosen format



def sparse_size(model: nn.Module) -> SparseSize:
    """The model's size dense (measured) and with its weights stored sparse (estimated)."""
    dense = common.serialized_bytes(model)
    saved, chosen = 0, {"dense": 0, "csr": 0, "bitmask": 0}
    for _, module in _weighted_layers(model):
        weight = module.weight.detach()
        options = {"dense": weight.numel() * weight.element_size(), "csr": _csr_bytes(weight),
                   "bitmask": _bitmask_bytes(weight)}
        best = min(options, key=options.__getitem__)
        chosen[best] += 1
        saved += options["dense"] - options[best]
    kind = "estimated" if saved else "measured"
    return SparseSize(dense, dense - saved, kind, SPARSE_FORMAT, chosen)


def _module_of(name: str, modules: dict[str, nn.Module]) -> nn.Module | None:
    return modules.get(name.split("#", 1)[0])


def effective_macs(model: nn.Module, input_size: Sequence[int], batch_size: int = 1) -> tuple[int, int]:
    """(MACs, effective MACs) from dnnmeter.analysis: dense hardware does every MAC; a
    zero-skipping accelerator does each conv/linear layer's MACs times its weight density."""
    from dnnmeter.analysis import analyze

    analysis = analyze(model, input_size=tuple(input_size), batch_size=batch_size)
    modules = dict(model.named_modules())
    effective = 0.0
    for layer in analysis.layers:
        module = _module_of(layer.name, modules)
        if isinstance(module, _WEIGHTED) and module.weight.numel():
            effective += layer.macs * int(module.weight.count_nonzero()) / module.weight.numel()
        else:
            effective += layer.macs
    return analysis.macs, round(effective)


def hardware_totals(model: nn.Module, input_size: Sequence[int], array: tuple[int, int] = (32, 32),
                    dataflow: str = "os", batch_size: int = 1) -> dict[str, Any]:
    """The hardware model on the model's (pruned) shapes: access counts and a systolic run."""
    from dnnmeter.hardware.accesses import count_accesses
    from dnnmeter.hardware.layers import extract_layers
    from dnnmeter.hardware.systolic import simulate

    layers = extract_layers(model, tuple(input_size), batch_size)
    accesses = count_accesses(layers)
    run = simulate(layers, array=array, dataflow=dataflow)
    return {
        "unit": "words; cycles", "array": list(array), "dataflow": dataflow, "batch_size": batch_size,
        "macs": accesses.macs, "naive_accesses": accesses.naive_accesses, "lower_bound": accesses.lower_bound,
        "cycles": run.cycles, "dram_accesses": run.dram_accesses, "utilization": run.utilization,
        "label": "estimated",
    }


# --- the sweep --------------------------------------------------------------------------------


@dataclass
class PrunePoint(Record):
    """One sparsity of a pruning sweep.

    ``params`` counts the parameters the pruned model has (fewer after structured
    pruning); ``nonzero_params`` those that are not zero. ``size_bytes`` is the serialized
    dense size (measured); ``compressed_size_bytes`` stores weights sparse where that is
    smaller (``compressed_size_kind`` says if estimated; ``compressed_format`` how).
    ``macs`` are what dense hardware does (dnnmeter.analysis); ``effective_macs`` what a
    zero-skipping accelerator could do. ``hardware`` holds the totals of the hardware
    model re-run on the pruned shapes (unstructured zeros change no shape, so not those).
    ``accuracy_delta`` is ``top1`` minus the unpruned model's (fractions).
    """

    sparsity: float
    method: str
    scope: str
    params: int
    nonzero_params: int
    size_bytes: int
    compressed_size_bytes: int
    compressed_size_kind: str
    compressed_format: str
    macs: int
    effective_macs: int
    latency_s: float | None
    latency_reason: str | None
    latency_threads: int | None
    top1: float | None
    accuracy_delta: float | None
    hardware: dict[str, Any]
    pruned_layers: int = 0
    skipped_layers: dict[str, str] = field(default_factory=dict)
    fine_tune_epochs: int = 0



def _fine_tune(model: nn.Module, data: Dataset, epochs: int, lr: float, batch_size: int = 32) -> None:  # type: ignore[type-arg]
    """A plain SGD loop (the model is our own copy; left in eval mode)."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    model.train()
    for _ in range(epochs):
        for images, targets in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), targets).backward()
            optimizer.step()
    model.eval()


def _pruned(model: nn.Module, sparsity: float, method: str, scope: str, epochs: int,
            train_data: Dataset | None, lr: float) -> PruneResult:  # type: ignore[type-arg]
    if method == "structured" or not epochs:
        result = prune_model(model, sparsity, method, scope)
        if epochs:
            _fine_tune(result.module, train_data, epochs, lr)  # type: ignore[arg-type]
        return result
    # Unstructured with fine-tuning: keep torch's masks while training so pruned weights stay zero.
    copied = copy.deepcopy(model)
    pruned = _unstructured(copied, sparsity, scope)
    _fine_tune(copied, train_data, epochs, lr)  # type: ignore[arg-type]
    _make_permanent(copied)
    return PruneResult(copied, method, sparsity, scope, pruned)


@dataclass(frozen=True)
class _Setup:
    dataset: Any
    input_size: tuple[int, ...]
    latency_input: torch.Tensor
    eval_limit: int | None
    latency: bool
    threads: int | None
    budget_s: float
    array: tuple[int, int]
    dataflow: str


def _measure(result: PruneResult, setup: _Setup, base_top1: float | None, epochs: int) -> PrunePoint:
    module = result.module.eval()
    size = sparse_size(module)
    macs, effective = effective_macs(module, setup.input_size)
    latency = (common.measure_latency(module, setup.latency_input, setup.threads, setup.budget_s)
               if setup.latency else common.Latency(None, "not requested (latency=False)"))
    top1 = common.top1(module, setup.dataset, setup.eval_limit)
    base = top1 if base_top1 is None else base_top1
    return PrunePoint(
        sparsity=result.sparsity, method=result.method, scope=result.scope,
        params=sum(p.numel() for p in module.parameters()), nonzero_params=nonzero_params(module),
        size_bytes=size.dense_bytes, compressed_size_bytes=size.compressed_bytes,
        compressed_size_kind=size.kind, compressed_format=size.format, macs=macs, effective_macs=effective,
        latency_s=latency.latency_s, latency_reason=latency.reason, latency_threads=latency.threads,
        top1=top1, accuracy_delta=None if top1 is None or base is None else top1 - base,
        hardware=hardware_totals(module, setup.input_size, setup.array, setup.dataflow),
        pruned_layers=len(result.pruned), skipped_layers=dict(result.skipped), fine_tune_epochs=epochs,
    )  # fmt: skip


def pruning_sweep(
    model: nn.Module,
    data: str | Dataset = "digits",  # type: ignore[type-arg]
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    method: str = "unstructured",
    scope: str = "global",
    fine_tune_epochs: int = 0,
    train_data: Dataset | None = None,  # type: ignore[type-arg]
    lr: float = 0.01,
    eval_limit: int | None = None,
    latency: bool = True,
    input_size: int | None = None,
    latency_batch_size: int = 1,
    threads: int | None = 1,
    time_budget_s: float = 1.0,
    array: tuple[int, int] = (32, 32),
    dataflow: str = "os",
) -> list[PrunePoint]:
    """Accuracy, parameters, size, MACs, latency and hardware cost of ``model`` pruned to
    each of ``sparsities`` (fractions; 0 is the unpruned reference and is always measured).

    ``data`` is a Dataset of preprocessed ``(image, label)``, ``"digits"`` or a folder
    (opened at ``input_size``, default 64); accuracy is dnnmeter.evaluate on ``eval_limit``
    images. With ``fine_tune_epochs`` > 0 each pruned copy is trained that many epochs on
    ``train_data`` (SGD, ``lr``) before it is measured. Latency is measured in this process
    with ``threads`` threads (restored after), at ``latency_batch_size``.
    """
    _check(0.0, method, scope)
    levels = sorted({0.0, *(common.check_fraction(s, "sparsity") for s in sparsities)})
    if fine_tune_epochs and train_data is None:
        raise InvalidInputError("fine_tune_epochs > 0 needs train_data (a Dataset of (image, label))")
    dataset = common.open_dataset(data, input_size)
    first = common.batches(dataset, 1, max(1, latency_batch_size))
    if not first:
        raise InvalidInputError("pruning_sweep: the data set is empty")
    setup = _Setup(dataset, common.input_size_of(first[0]), first[0][:latency_batch_size], eval_limit,
                   latency, threads, time_budget_s, tuple(array), dataflow)  # type: ignore[arg-type]
    points: list[PrunePoint] = []
    for sparsity in levels:
        epochs = fine_tune_epochs if sparsity > 0 else 0
        result = _pruned(model, sparsity, method, scope, epochs, train_data, lr)
        points.append(_measure(result, setup, points[0].top1 if points else None, epochs))
    return points
