"""Static cost: parameters, MACs, FLOPs and activations per layer, counted on the meta device.

>>> from dnnmeter.analysis import analyze
>>> a = analyze("resnet50")
>>> a.params, a.macs
(25557032, 4089184256)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dnnmeter.analysis.counter import CostCounter, Row
from dnnmeter.analysis.folding import FoldedRow, RankedLayer
from dnnmeter.analysis.inputs import DTYPES, Inputs, TensorSpec, parse_specs, spec_text
from dnnmeter.analysis.inputs import resolve as resolve_inputs
from dnnmeter.analysis.kinds import module_kind, resolve_kind
from dnnmeter.analysis.meta_pass import run_on_meta, unwrap
from dnnmeter.analysis.train_memory import OPTIMIZERS, LayerMemory, TrainingMemory, check_optimizer
from dnnmeter.analysis.result import KINDS, Analysis, KindTotals, LayerCost
from dnnmeter.errors import InvalidInputError
from dnnmeter.zoo import create_model, is_onnx_path, resolve
from dnnmeter.zoo.registry import Published

__all__ = ["KINDS", "OPTIMIZERS", "Analysis", "FoldedRow", "Inputs", "KindTotals", "LayerCost", "LayerMemory",
           "RankedLayer", "TensorSpec", "TrainingMemory", "analyze", "parse_input_size", "parse_specs"]


MODES = ("inference", "train")


def parse_input_size(size: Any) -> tuple[int, ...] | None:
    """``224`` or ``"224"`` -> (3, 224, 224); ``"3,32,32"`` or a sequence -> as given
    (a sequence is taken literally, so ``(16,)`` is a 16-feature vector input)."""
    if size is None:
        return None
    if isinstance(size, str):
        try:
            parts = [int(p) for p in size.replace("x", ",").split(",") if p.strip()]
        except ValueError:
            raise InvalidInputError(
                f"bad input size {size!r}: give N (square, 3 channels) or C,H,W"
            ) from None
        parts = [3, parts[0], parts[0]] if len(parts) == 1 else parts
    elif isinstance(size, int):
        parts = [3, size, size]
    else:
        parts = [int(p) for p in size]
    if not parts or any(p < 1 for p in parts):
        raise InvalidInputError(f"bad input size {size!r}: every dimension must be >= 1")
    return tuple(parts)


def _tensors(named: list[tuple[str, nn.Module]]) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Unique parameters and buffers, in one pass (model.parameters() walks the tree again)."""
    params: dict[int, torch.Tensor] = {}
    buffers: dict[int, torch.Tensor] = {}
    for _, module in named:
        for p in module._parameters.values():
            if p is not None:
                params[id(p)] = p
        for b in module._buffers.values():
            if b is not None:
                buffers[id(b)] = b
    return params, buffers


@torch.inference_mode(False)  # under a caller's inference mode the count saw no op and gave 0 MACs
def analyze(
    model: str | nn.Module,
    input_size: Any = None,
    batch_size: int | None = None,
    name: str | None = None,
    inputs: Any = None,
    mode: str = "inference",
    optimizer: str | None = None,
    dtype: str | torch.dtype | None = None,
    seq_len: int | None = None,
    copies: bool = False,
) -> Analysis:
    """Count ``model``'s cost at ``batch_size`` x ``input_size`` without running it for real.

    ``model`` is a zoo name (``resnet50``, ``timm:inception_v4``, ``my.pkg:build``), an ONNX
    file path, or an ``nn.Module`` (left untouched: it is not moved, copied or mutated).
    ``input_size`` is N, (C, H, W) or "C,H,W"; it defaults to the model's own.
    ``batch_size`` defaults to 1, or to the batch an ONNX file fixes.
    ``inputs`` replaces both for any forward signature: a full shape (batch first), a
    :class:`TensorSpec`, a tuple of them (positional), a dict (keyword), example tensors
    (shape and dtype only) or a callable returning one of these (analysis/inputs.py)::

        analyze(model, inputs={"ids": TensorSpec((1, 128), torch.int64), "mask": "1x128:bool"})

    ``mode="train"`` counts one training step: the forward in train mode, then the backward
    through autograd on the meta device (frozen parameters get no weight gradient);
    ``macs`` and ``flops`` are then forward + backward, ``backward_macs`` the latter part.
    With ``optimizer`` (sgd, sgd-momentum, adam, adamw) it runs that optimizer's step as
    well and sets ``training_memory`` (analysis/train_memory.py). ``dtype`` counts the model
    as if cast to it (floating parameters, buffers and inputs); default: its own.
    A model that takes token ids (``hf:NAME``) is fed ``input_ids`` of ``batch_size`` x
    ``seq_len`` (default 128) unless ``inputs`` says otherwise.
    ``copies=True`` adds a row of kind ``copy`` for each call of an op that costs no arithmetic
    but copies memory (``formulas.COPY_OPS``: cat, roll, padding, a clone after a permute...):
    its shapes, no MACs, FLOPs or activations, so every total is unchanged. The latency
    predictor asks for them; an ONNX file is counted without them.
    """
    if mode not in MODES:
        raise InvalidInputError(f"bad mode {mode!r}: give one of {', '.join(MODES)}")
    if optimizer is not None:
        optimizer = check_optimizer(optimizer)
        if mode != "train":
            raise InvalidInputError("an optimizer's memory is for a training step: give mode='train' "
                                    "(--mode train) with it")
    cast = _dtype(dtype)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise InvalidInputError(f"bad batch size {batch_size!r}: give an integer >= 1")
    size = parse_input_size(input_size)
    specs = resolve_inputs(inputs, size, batch_size)
    if specs is not None:
        size, batch_size = _size_of(specs)
    published: Published | None = None
    source = "module"
    if isinstance(model, str):
        if is_onnx_path(model):
            from dnnmeter.analysis.onnx_count import analyze_onnx

            if mode != "inference":
                raise InvalidInputError("an ONNX file is counted for inference only; analyze the nn.Module for "
                                        "mode='train'")
            if specs is not None and (len(specs.args) != 1 or specs.kwargs
                                      or not isinstance(specs.args[0], TensorSpec) or specs.args[0].dtype):
                raise InvalidInputError("an ONNX file takes one input shape (--input 1x3x224x224), "
                                        "without a name or dtype")
            return analyze_onnx(model, input_size=size, batch_size=batch_size)  # type: ignore[arg-type]
        entry = resolve(model)
        name = name or entry.name
        if entry.token_inputs and specs is None:
            specs = token_inputs(batch_size or 1, seq_len or entry.input_size[0])
            size, batch_size = _size_of(specs)
        size = size or entry.input_size
        published, source = entry.published, entry.source
        module = create_model(model)
    else:
        module = model
        name = name or type(model).__name__
        default = getattr(model, "input_size", None) or (3, 224, 224)
        size = size or tuple(default)
    return _count(module, name, size, batch_size or 1, source, published, specs, mode, optimizer, cast, copies)


def token_inputs(batch_size: int, seq_len: int) -> Inputs:
    """Token ids by keyword, as transformers' models take them."""
    if not isinstance(seq_len, int) or seq_len < 1:
        raise InvalidInputError(f"bad sequence length {seq_len!r}: give an integer >= 1")
    return Inputs((), {"input_ids": TensorSpec((batch_size, seq_len), torch.int64)})


def _dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    found = DTYPES.get(str(dtype).lower())
    if found is None or not found.is_floating_point:
        raise InvalidInputError(f"bad dtype {dtype!r}: give float32, float16, bfloat16 or float64")
    return found


def _size_of(specs: Inputs) -> tuple[tuple[int, ...], int]:
    """The first tensor input's shape as (input size, batch): what tables show."""
    shape = specs.first.shape if specs.first else ()
    return (tuple(shape[1:]), shape[0]) if shape else ((), 1)


def _count(
    model: nn.Module,
    name: str,
    size: tuple[int, ...],
    batch_size: int,
    source: str,
    published: Published | None,
    specs: Inputs | None = None,
    mode: str = "inference",
    optimizer: str | None = None,
    dtype: torch.dtype | None = None,
    copies: bool = False,
) -> Analysis:
    model = unwrap(model)
    named = list(model.named_modules())
    params, buffers = _tensors(named)
    on_meta = all(t.is_meta for t in params.values()) and all(t.is_meta for t in buffers.values())
    counter = CostCounter(named, copies=copies)
    specs = specs or Inputs((TensorSpec((batch_size, *size)),))
    memory = run_on_meta(model, named, counter, name, size, batch_size, on_meta, specs, train=mode == "train",
                         dtype=dtype, optimizer=optimizer)
    layers = _layers_with_params(named, counter)
    return Analysis(
        model=name,
        input_size=tuple(size),
        batch_size=batch_size,
        params=sum(p.numel() for p in params.values()),
        trainable_params=sum(p.numel() for p in params.values() if p.requires_grad),
        macs=sum(layer.macs for layer in layers),
        elementwise_flops=sum(layer.elementwise_flops for layer in layers),
        activations=sum(layer.activations for layer in layers),
        activation_bytes=sum(layer.activation_bytes for layer in layers),
        weight_bytes=sum(t.numel() * _element_size(t, dtype) for t in [*params.values(), *buffers.values()]),
        layers=layers,
        unsupported_ops=dict(sorted(counter.unsupported.items())),
        source=source,
        published=published,
        inputs=spec_text(specs),
        mode=mode,
        backward_macs=sum(layer.backward_macs for layer in layers),
        backward_elementwise_flops=sum(layer.backward_elementwise_flops for layer in layers),
        training_memory=memory,
    )


def _element_size(t: torch.Tensor, dtype: torch.dtype | None) -> int:
    """Bytes per element, as if cast to ``dtype`` (floating tensors only)."""
    return dtype.itemsize if dtype is not None and t.is_floating_point() else t.element_size()


def _layers_with_params(named: list[tuple[str, nn.Module]], counter: CostCounter) -> list[LayerCost]:
    """Finish the rows: resolve kinds, give each parameter to exactly one row."""
    first_row: dict[str, Row] = {}
    for row in counter.rows:
        row.layer.kind = resolve_kind(row.layer.kind, row.macs_by_kind, row.ew_by_kind)
        first_row.setdefault(row.scope, row)
    layers = [row.layer for row in counter.rows]
    seen: set[int] = set()
    for mod_name, module in named:
        own = [p for p in module._parameters.values() if p is not None and id(p) not in seen]
        seen.update(id(p) for p in own)
        count = sum(p.numel() for p in own)
        if not count:
            continue
        row = first_row.get(mod_name)
        if row is not None:
            row.layer.params += count
            continue
        executed = mod_name in counter.calls
        layers.append(
            LayerCost(name=mod_name, kind=module_kind(module), type=type(module).__name__,
                      params=count, executed=executed)
        )
    return layers
