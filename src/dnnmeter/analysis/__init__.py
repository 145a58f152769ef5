"""Static cost: parameters, MACs, FLOPs and activations per layer, counted on the meta device.

>>> from dnnmeter.analysis import analyze
>>> a = analyze("resnet50")
>>> a.params, a.macs           # 25557032, 4089184256
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dnnmeter.analysis.counter import CostCounter, _Row
from dnnmeter.analysis.kinds import module_kind, resolve_kind
from dnnmeter.analysis.meta_pass import run_on_meta
from dnnmeter.analysis.result import KINDS, Analysis, KindTotals, LayerCost
from dnnmeter.errors import InvalidInputError
from dnnmeter.zoo import create_model, is_onnx_path, resolve
from dnnmeter.zoo.registry import Published

__all__ = ["KINDS", "Analysis", "KindTotals", "LayerCost", "analyze", "parse_input_size"]


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
    batch_size: int = 1,
    name: str | None = None,
) -> Analysis:
    """Count ``model``'s cost at ``batch_size`` x ``input_size`` without running it for real.

    ``model`` is a zoo name (``resnet50``, ``timm:inception_v4``, ``my.pkg:build``), an ONNX
    file path, or an ``nn.Module`` (left untouched: it is not moved, copied or mutated).
    ``input_size`` is N, (C, H, W) or "C,H,W"; it defaults to the model's own.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"bad batch size {batch_size!r}: give an integer >= 1")
    size = parse_input_size(input_size)
    published: Published | None = None
    source = "module"
    if isinstance(model, str):
        if is_onnx_path(model):
            from dnnmeter.analysis.onnx_count import analyze_onnx

            return analyze_onnx(model, input_size=size, batch_size=batch_size)  # type: ignore[arg-type]
        entry = resolve(model)
        name = name or entry.name
        size = size or entry.input_size
        published, source = entry.published, entry.source
        module = create_model(model)
    else:
        module = model
        name = name or type(model).__name__
        default = getattr(model, "input_size", None) or (3, 224, 224)
        size = size or tuple(default)
    return _count(module, name, size, batch_size, source, published)


def _count(
    model: nn.Module,
    name: str,
    size: tuple[int, ...],
    batch_size: int,
    source: str,
    published: Published | None,
) -> Analysis:
    named = list(model.named_modules())
    params, buffers = _tensors(named)
    on_meta = all(t.is_meta for t in params.values()) and all(t.is_meta for t in buffers.values())
    counter = CostCounter(named)
    run_on_meta(model, named, counter, name, size, batch_size, on_meta)
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
        weight_bytes=sum(t.numel() * t.element_size() for t in [*params.values(), *buffers.values()]),
        layers=layers,
        unsupported_ops=dict(sorted(counter.unsupported.items())),
        source=source,
        published=published,
    )


def _layers_with_params(named: list[tuple[str, nn.Module]], counter: CostCounter) -> list[LayerCost]:
    """Finish the rows: resolve kinds, give each parameter to exactly one row."""
    first_row: dict[str, _Row] = {}
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
        executed = mod_name in counter._calls
        layers.append(
            LayerCost(name=mod_name, kind=module_kind(module), type=type(module).__name__,
                      params=count, executed=executed)
        )
    return layers
