"""Static cost of an ONNX file, counted from its graph (no runtime; external weights unread).

The first data input is given the shape ``(batch_size, *input_size)``, ONNX shape inference
(with the graph's shape arithmetic folded: :mod:`dnnmeter.analysis.onnx_shapes`) gives every
value its shape, and each node is costed by a pure function of those shapes,
registered in :data:`COST_FORMULAS` under its op type (the table is
:mod:`dnnmeter.analysis.onnx_formulas`, re-exported here). Conventions are those of
:mod:`dnnmeter.analysis.result`: MACs for Conv/ConvTranspose/Gemm/MatMul/Einsum (bias terms
not counted), element-wise FLOPs apart.

Ops in :data:`IGNORED_OPS` cost nothing (reshapes, copies, indexing). Any other op without a
formula is counted in ``Analysis.unsupported_ops`` -- so is a known op whose shapes could not
be inferred (key ``"Op (unknown shape)"``) -- and its cost is not in the totals.

Parameters are the elements of the floating-point initializers (and 8-bit-or-less integer
ones: quantized weights) that nodes consume; each is attributed to the first node that
consumes it, seen through ``Identity`` nodes. Integer shape constants are not parameters.

A file exported at a fixed input shape whose graph hard-codes shapes (a constant Reshape
target) is counted at that shape only; another batch or input size is refused
(InvalidInputError) rather than counted half at one shape and half at the other.

>>> a = analyze_onnx("resnet18.onnx", batch_size=8)   # doctest: +SKIP
>>> a.macs, a.unsupported_ops                         # doctest: +SKIP
(14512586752, {})
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnmeter.analysis.onnx_formulas import (
    COST_FORMULAS,
    DEFAULT_DOMAINS,
    IGNORED_OPS,
    KIND_OF,
    VIEW_OPS,
    NotCountable,
    OpShapes,
    Shape,
    einsum_macs,
    register_cost,
)
from dnnmeter.analysis.onnx_shapes import infer_shapes, refuse_baked_resize, refuse_inconsistent_reshapes
from dnnmeter.analysis.result import Analysis, LayerCost
from dnnmeter.errors import InvalidInputError
from dnnmeter.zoo.onnx_source import (
    DEFAULT_INPUT_SIZE,
    declared_dims,
    first_input,
    load_model,
    onnx_module,
)

__all__ = ["COST_FORMULAS", "IGNORED_OPS", "NotCountable", "OpShapes", "analyze_onnx",
           "einsum_macs", "register_cost"]

# --- the graph walk -------------------------------------------------------------------

_WEIGHT_BITS = {
    "FLOAT": 32, "FLOAT16": 16, "DOUBLE": 64, "BFLOAT16": 16,
    "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
    "FLOAT8E8M0": 8, "FLOAT6E2M3": 6, "FLOAT6E3M2": 6, "FLOAT4E2M1": 4,
    "INT8": 8, "UINT8": 8, "INT4": 4, "UINT4": 4, "INT2": 2, "UINT2": 2,
}  # fmt: skip


@dataclass(frozen=True)
class _Weight:
    elements: int
    bytes: int
    rank: int


def analyze_onnx(
    path: str, input_size: tuple[int, ...] | None = None, batch_size: int | None = None
) -> Analysis:
    """Count the parameters, MACs, element-wise FLOPs and activations of ONNX file ``path``.

    ``input_size`` (without the batch dim; ``(C, H, W)`` for images) overrides the shape the
    graph declares; when None, the declared one is used, with (3, 224, 224) for dynamic dims
    of a 4-D input. ``batch_size`` defaults to the batch the file fixes, else 1. Only the
    first data input is shaped: values that depend on other
    dynamically shaped inputs end up in ``unsupported_ops`` as ``"Op (unknown shape)"``.

    Raises InvalidInputError when the batch or input size changes a dim the file fixed and
    the graph hard-codes shapes, or when the inferred shapes contradict themselves (a
    Reshape that changes the number of elements): the message says how to re-export.
    """
    model = load_model(path)
    graph_input = first_input(model)
    dims = _input_dims(path, graph_input, input_size, batch_size)
    weights = _weights(model.graph)
    refuse_baked_resize(path, model, graph_input, dims)
    shapes = infer_shapes(path, model, graph_input.name, dims)
    refuse_inconsistent_reshapes(path, model.graph, shapes, dims)
    graph = _Graph(
        shapes=shapes,
        weights=weights,
        aliases=_aliases(model.graph, weights),
        constants=frozenset(t.name for t in model.graph.initializer),
    )
    layers, unsupported, owned = _count(model.graph, graph)
    params = sum(layer.params for layer in layers)
    return Analysis(
        model=Path(path).stem,
        input_size=tuple(dims[1:]),
        batch_size=dims[0],
        params=params,
        trainable_params=params,
        macs=sum(layer.macs for layer in layers),
        elementwise_flops=sum(layer.elementwise_flops for layer in layers),
        activations=sum(layer.activations for layer in layers),
        weight_bytes=sum(weights[n].bytes for n in owned),
        layers=layers,
        unsupported_ops=unsupported,
        source="onnx",
        counted_by="dnnmeter (ONNX graph)",
    )


def _input_dims(
    path: str, value: Any, input_size: tuple[int, ...] | None, batch_size: int | None
) -> list[int]:
    declared = declared_dims(value)
    if batch_size is None:  # the file's own batch, when it fixes one
        batch_size = declared[0] if declared and declared[0] is not None else 1
    if batch_size < 1:
        raise InvalidInputError(f"batch size must be at least 1, got {batch_size}")
    if input_size is not None:
        if declared and len(declared) != len(input_size) + 1:
            raise InvalidInputError(
                f"{path}: input {value.name!r} has {len(declared)} dims (with the batch); "
                f"input size {tuple(input_size)} does not fit"
            )
        return [batch_size, *(int(d) for d in input_size)]
    if not declared or len(declared) == 4:
        rest = declared[1:] or [None, None, None]
        return [batch_size, *(d or f for d, f in zip(rest, DEFAULT_INPUT_SIZE))]
    if any(d is None for d in declared[1:]):
        raise InvalidInputError(
            f"{path}: input {value.name!r} has dynamic dims {declared}; give an input size"
        )
    return [batch_size, *(int(d) for d in declared[1:])]  # type: ignore[arg-type]


def _weights(graph: Any) -> dict[str, _Weight]:
    """The initializers that are parameters: floating point, or integers of 8 bits or less."""
    onnx = onnx_module()
    bits = {
        getattr(onnx.TensorProto, name): b
        for name, b in _WEIGHT_BITS.items()
        if hasattr(onnx.TensorProto, name)  # older onnx lacks the newest types
    }
    out: dict[str, _Weight] = {}
    for t in graph.initializer:
        if t.data_type in bits:
            n = math.prod(t.dims)
            out[t.name] = _Weight(n, math.ceil(n * bits[t.data_type] / 8), len(t.dims))
    return out


def _consumed(node: Any) -> Iterator[str]:
    """Names a node reads, including those read inside its subgraphs (If, Loop, Scan)."""
    yield from (name for name in node.input if name)
    for attr in node.attribute:
        subgraphs = [attr.g] if attr.HasField("g") else []
        for sub in [*subgraphs, *attr.graphs]:
            for inner in sub.node:
                yield from _consumed(inner)


def _aliases(graph: Any, weights: Mapping[str, _Weight]) -> dict[str, str]:
    """Outputs of Identity nodes that are initializers under another name -> that initializer."""
    aliases: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "Identity" and node.domain in DEFAULT_DOMAINS and node.input:
            source = aliases.get(node.input[0], node.input[0])
            if source in weights:
                aliases[node.output[0]] = source
    return aliases


@dataclass(frozen=True)
class _Graph:
    """What the walk knows about the graph's values."""

    shapes: Mapping[str, Shape]
    weights: Mapping[str, _Weight]
    aliases: Mapping[str, str]  # Identity outputs -> the weight they copy
    constants: frozenset[str]  # every initializer, weights and integer constants alike

    def weight(self, name: str) -> _Weight | None:
        return self.weights.get(self.aliases.get(name, name))


def _count(graph: Any, g: _Graph) -> tuple[list[LayerCost], dict[str, int], set[str]]:
    """One row per node (views without parameters and weight aliases left out), the
    unsupported op counts, and the weights that some row owns."""
    owned: set[str] = set()
    layers: list[LayerCost] = []
    unsupported: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        if node.output and node.output[0] in g.aliases:
            continue  # an Identity of a weight: its consumers own the weight
        resolved = dict.fromkeys(g.aliases.get(n, n) for n in _consumed(node))
        own = [n for n in resolved if n in g.weights and n not in owned]
        owned.update(own)
        op = node.op_type if node.domain in DEFAULT_DOMAINS else f"{node.domain}:{node.op_type}"
        if op in VIEW_OPS and not own:
            continue
        layer = _layer(node, i, op, g)
        layer.params = sum(g.weights[n].elements for n in own)
        reason = _cost(layer, node, op, g.shapes)
        if reason is not None:
            key = op if reason == "" else f"{op} ({reason})"
            unsupported[key] = unsupported.get(key, 0) + 1
        layers.append(layer)
    return layers, unsupported, owned


def _cost(layer: LayerCost, node: Any, op: str, shapes: Mapping[str, Shape]) -> str | None:
    """Fill the layer's cost; return why it could not be costed ("" for no formula), or None."""
    if op in IGNORED_OPS:
        return None
    formula = COST_FORMULAS.lookup(op)
    if formula is None:
        return None if op in COST_FORMULAS else ""
    s = OpShapes(
        tuple(shapes.get(n) for n in node.input),
        tuple(shapes.get(n) for n in node.output),
        {a.name: _attr(a) for a in node.attribute},
    )
    try:
        layer.macs, layer.elementwise_flops = formula(s)
    except NotCountable as exc:
        return str(exc)
    return None


def _layer(node: Any, index: int, op: str, g: _Graph) -> LayerCost:
    data_inputs = [n for n in node.input if n and n not in g.constants and n not in g.aliases]
    in_shapes = [g.shapes.get(n) for n in data_inputs]
    out_shapes = [g.shapes.get(n) for n in node.output if n]
    return LayerCost(
        name=node.name or f"{node.op_type}_{index}",
        kind=_kind(node, op, g),
        type=op,
        input_shapes=[_as_list(s) for s in in_shapes if s is not None],
        output_shapes=[_as_list(s) for s in out_shapes if s is not None],
        activations=sum(_elements(s) for s in out_shapes),
    )


def _kind(node: Any, op: str, g: _Graph) -> str:
    kind = KIND_OF.get(op, "other")
    if kind == "conv":
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        x = g.shapes.get(node.input[0]) if node.input else None
        channels = x[1] if x is not None and len(x) > 1 else None
        return "depthwise_conv" if group > 1 and group == channels else "conv"
    if kind == "matmul" and op != "Einsum":
        weights = [g.weight(n) for n in node.input]
        return "linear" if any(w is not None and w.rank == 2 for w in weights) else "matmul"
    return kind


def _attr(attr: Any) -> Any:
    value = onnx_module().helper.get_attribute_value(attr)
    return value.decode() if isinstance(value, bytes) else value


def _elements(shape: Shape | None) -> int:
    """Elements of a known shape; 0 when any dim is unknown (not counted, not guessed)."""
    if shape is None or any(d is None for d in shape):
        return 0
    return math.prod(shape)  # type: ignore[arg-type]


def _as_list(shape: Shape) -> list[int]:
    return [-1 if d is None else int(d) for d in shape]
