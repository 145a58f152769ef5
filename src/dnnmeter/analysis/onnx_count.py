"""Static cost of an ONNX file, counted from its graph (no runtime; external weights unread).

The first data input is given the shape ``(batch_size, *input_size)``, ONNX shape inference
gives every value its shape, and each node is costed by a pure function of those shapes,
registered in :data:`COST_FORMULAS` under its op type. Conventions are those of
:mod:`dnnmeter.analysis.result`: MACs for Conv/ConvTranspose/Gemm/MatMul/Einsum (bias terms
not counted), element-wise FLOPs apart.

Ops in :data:`IGNORED_OPS` cost nothing (reshapes, copies, indexing). Any other op without a
formula is counted in ``Analysis.unsupported_ops`` -- so is a known op whose shapes could not
be inferred (key ``"Op (unknown shape)"``) -- and its cost is not in the totals.

Parameters are the elements of the floating-point initializers (and 8-bit-or-less integer
ones: quantized weights) that nodes consume; each is attributed to the first node that
consumes it, seen through ``Identity`` nodes. Integer shape constants are not parameters.

>>> a = analyze_onnx("resnet18.onnx", batch_size=8)   # doctest: +SKIP
>>> a.macs, a.unsupported_ops                         # doctest: +SKIP
(14512586752, {})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnmeter.analysis.result import Analysis, LayerCost
from dnnmeter.errors import InvalidInputError, ModelBuildError
from dnnmeter.registry import Registry, decorator
from dnnmeter.zoo.onnx_source import (
    DEFAULT_INPUT_SIZE,
    declared_dims,
    first_input,
    load_model,
    onnx_module,
)

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class OpShapes:
    """What a cost formula sees: input and output shapes (None: unknown) and attributes."""

    inputs: tuple[Shape | None, ...]
    outputs: tuple[Shape | None, ...]
    attrs: Mapping[str, Any]

    def pick(self, *indices: int) -> OpShapes:
        """The same op seen with only the inputs at ``indices`` (for QLinear* layouts)."""
        picked = tuple(self.inputs[i] if i < len(self.inputs) else None for i in indices)
        return OpShapes(picked, self.outputs, self.attrs)


class NotCountable(Exception):
    """A formula cannot cost this node; the message says why (e.g. ``unknown shape``)."""


Cost = tuple[int, int]  # (macs, elementwise_flops)
Formula = Callable[[OpShapes], Cost]

# An op type registered with None is ignored: it costs nothing, like IGNORED_OPS.
COST_FORMULAS: Registry[Formula | None] = Registry("cost formula for ONNX op")
KIND_OF: dict[str, str] = {}


def register_cost(*op_types: str, kind: str, override: bool = False) -> Callable[[Formula], Formula]:
    """Register ``formula`` for ``op_types`` (ONNX default domain); a duplicate is an error
    unless ``override=True``."""
    register = decorator(COST_FORMULAS, *op_types, override=override)

    def add(formula: Formula) -> Formula:
        for op in op_types:
            if op in IGNORED_OPS:
                raise ValueError(f"ONNX op {op!r} is in IGNORED_OPS and cannot have a formula")
        register(formula)
        KIND_OF.update(dict.fromkeys(op_types, kind))
        return formula

    return add


# Ops that move, index or describe data: no arithmetic, so no cost.
IGNORED_OPS: frozenset[str] = frozenset(
    """Reshape Flatten Transpose Concat Shape Size Gather GatherElements GatherND Constant
    ConstantOfShape Identity Squeeze Unsqueeze Slice Dropout Cast CastLike Pad Split Expand
    Tile Range NonZero DepthToSpace SpaceToDepth ScatterND ScatterElements Trilu OneHot
    EyeLike Compress ReverseSequence""".split()
)
# Ignored ops whose output is a view or metadata: no row (unless they own parameters) and
# no activations.
VIEW_OPS: frozenset[str] = frozenset(
    "Reshape Flatten Squeeze Unsqueeze Identity Dropout Shape Size Constant".split()
)


def _need(shape: Shape | None) -> tuple[int, ...]:
    if shape is None or any(d is None for d in shape):
        raise NotCountable("unknown shape")
    return tuple(int(d) for d in shape)  # type: ignore[arg-type]


def _input(s: OpShapes, i: int) -> tuple[int, ...]:
    return _need(s.inputs[i] if i < len(s.inputs) else None)


def _output(s: OpShapes) -> tuple[int, ...]:
    return _need(s.outputs[0] if s.outputs else None)


# --- MACs -----------------------------------------------------------------------------


@register_cost("Conv", "ConvInteger", kind="conv")
def conv_macs(s: OpShapes) -> Cost:
    """N * M * prod(output spatial) * (C / group) * prod(kernel); weight is (M, C/group, k...)."""
    w = _input(s, 1)
    return math.prod(_output(s)) * math.prod(w[1:]), 0


@register_cost("ConvTranspose", kind="conv")
def conv_transpose_macs(s: OpShapes) -> Cost:
    """N * C * prod(input spatial) * (M / group) * prod(kernel); weight is (C, M/group, k...)."""
    return math.prod(_input(s, 0)) * math.prod(_input(s, 1)[1:]), 0


@register_cost("Gemm", kind="linear")
def gemm_macs(s: OpShapes) -> Cost:
    """M * K * N; the bias C is not counted."""
    a = _input(s, 0)
    k = a[0] if s.attrs.get("transA", 0) else a[-1]
    return math.prod(_output(s)) * k, 0


@register_cost("MatMul", "MatMulInteger", kind="matmul")
def matmul_macs(s: OpShapes) -> Cost:
    """prod(broadcast batch) * M * K * N, with numpy's rules for 1-D operands."""
    a, b = _input(s, 0), _input(s, 1)
    a = (1, *a) if len(a) == 1 else a
    b = (*b, 1) if len(b) == 1 else b
    batch = _broadcast(a[:-2], b[:-2])
    return math.prod(batch) * a[-2] * a[-1] * b[-1], 0


@register_cost("QLinearConv", kind="conv")
def qlinear_conv_macs(s: OpShapes) -> Cost:
    return conv_macs(s.pick(0, 3))


@register_cost("QLinearMatMul", kind="matmul")
def qlinear_matmul_macs(s: OpShapes) -> Cost:
    return matmul_macs(s.pick(0, 3))


@register_cost("Einsum", kind="matmul")
def einsum_macs(s: OpShapes) -> Cost:
    """Two operands: the product of every index's size (the naive loop nest)."""
    equation = s.attrs.get("equation", "").replace(" ", "")
    terms = equation.split("->")[0].split(",")
    if len(terms) != 2:
        raise NotCountable(f"{len(terms)} operands")
    sizes: dict[str, int] = {}
    ellipses: list[tuple[int, ...]] = []
    for term, shape in zip(terms, (_input(s, 0), _input(s, 1))):
        head, ellipsis, tail = term.partition("...")
        n_ell = len(shape) - len(head) - len(tail) if ellipsis else 0
        ellipses.append(shape[len(head) : len(head) + n_ell])
        dims = shape[: len(head)] + shape[len(head) + n_ell :]
        for letter, dim in zip(head + tail, dims):
            sizes[letter] = max(sizes.get(letter, 1), dim)
    return math.prod(sizes.values()) * math.prod(_broadcast(*ellipses)), 0


def _broadcast(*shapes: Sequence[int]) -> tuple[int, ...]:
    rank = max((len(x) for x in shapes), default=0)
    padded = [(1,) * (rank - len(x)) + tuple(x) for x in shapes]
    return tuple(max(dims) for dims in zip(*padded))


# --- element-wise work ----------------------------------------------------------------


def _per_output_element(flops: int) -> Formula:
    def formula(s: OpShapes) -> Cost:
        return 0, flops * math.prod(_output(s))

    formula.__doc__ = f"{flops} FLOP(s) per output element."
    return formula


def _register_elementwise(ops: str, flops: int, kind: str) -> None:
    register_cost(*ops.split(), kind=kind)(_per_output_element(flops))


_register_elementwise(
    """Relu LeakyRelu PRelu Sigmoid HardSigmoid HardSwish Tanh Clip Erf Elu Selu Celu Gelu
    Softplus Softsign Mish ThresholdedRelu""",
    1,
    "activation",
)
_register_elementwise(
    """Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Reciprocal Max Min Sum Mean Where Equal
    Greater Less GreaterOrEqual LessOrEqual Not And Or Xor Sign Floor Ceil Round Sin Cos
    Mod IsNaN IsInf""",
    1,
    "other",
)
_register_elementwise("QuantizeLinear DequantizeLinear", 2, "other")
_register_elementwise("BatchNormalization", 2, "norm")
_register_elementwise("RMSNormalization", 4, "norm")
_register_elementwise("LayerNormalization InstanceNormalization GroupNormalization", 5, "norm")
_register_elementwise("Softmax LogSoftmax", 3, "activation")


@register_cost("MaxPool", "AveragePool", "LpPool", kind="pool")
def window_pool_flops(s: OpShapes) -> Cost:
    """Output elements * prod(kernel)."""
    return 0, math.prod(_output(s)) * math.prod(s.attrs.get("kernel_shape", ()))


def _input_elements(s: OpShapes) -> Cost:
    """One FLOP per input element."""
    return 0, math.prod(_input(s, 0))


register_cost("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", kind="pool")(_input_elements)
register_cost(
    *"""ReduceMean ReduceMax ReduceMin ReduceSum ReduceProd ReduceL1 ReduceL2 ReduceSumSquare
    ReduceLogSum ReduceLogSumExp ArgMax ArgMin""".split(),
    kind="other",
)(_input_elements)


# --- the graph walk -------------------------------------------------------------------

_DEFAULT_DOMAINS = ("", "ai.onnx")
_WEIGHT_BITS = {
    "FLOAT": 32, "FLOAT16": 16, "DOUBLE": 64, "BFLOAT16": 16,
    "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
    "FLOAT8E8M0": 8, "FLOAT6E2M3": 6, "FLOAT6E3M2": 6, "FLOAT4E2M1": 4,
    "INT8": 8, "UINT8": 8, "INT4": 4, "UINT4": 4, "INT2": 2, "UINT2": 2,
}  # fmt: skip
_KEEP_VALUES_UP_TO = 1024  # elements; smaller float initializers keep their values


@dataclass(frozen=True)
class _Weight:
    elements: int
    bytes: int
    rank: int


def analyze_onnx(
    path: str, input_size: tuple[int, ...] | None = None, batch_size: int = 1
) -> Analysis:
    """Count the parameters, MACs, element-wise FLOPs and activations of ONNX file ``path``.

    ``input_size`` (without the batch dim; ``(C, H, W)`` for images) overrides the shape the
    graph declares; when None, the declared one is used, with (3, 224, 224) for dynamic dims
    of a 4-D input. Only the first data input is shaped: values that depend on other
    dynamically shaped inputs end up in ``unsupported_ops`` as ``"Op (unknown shape)"``.
    """
    model = load_model(path)
    graph_input = first_input(model)
    dims = _input_dims(path, graph_input, input_size, batch_size)
    weights = _weights(model.graph)
    graph = _Graph(
        shapes=_infer_shapes(path, model, graph_input.name, dims),
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
    path: str, value: Any, input_size: tuple[int, ...] | None, batch_size: int
) -> list[int]:
    if batch_size < 1:
        raise InvalidInputError(f"batch size must be at least 1, got {batch_size}")
    declared = declared_dims(value)
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


def _infer_shapes(path: str, model: Any, input_name: str, dims: list[int]) -> dict[str, Shape]:
    """Every value's shape once ``input_name`` has ``dims`` (stale shapes in the file dropped)."""
    onnx = onnx_module()
    graph = model.graph
    for value in graph.input:
        if value.name == input_name:
            shape = value.type.tensor_type.shape
            del shape.dim[:]
            for d in dims:
                shape.dim.add().dim_value = d
    del graph.value_info[:]
    _drop_weight_values(graph)
    for value in graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise ModelBuildError(f"{path}: ONNX shape inference failed ({exc})") from exc
    g = inferred.graph
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in g.initializer}
    for value in [*g.input, *g.value_info, *g.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(declared_dims(value))
    return shapes


def _drop_weight_values(graph: Any) -> None:
    """Drop large float initializers' values: shape inference needs only their dims, and
    copying the weights into it is most of its time. Small ones stay (Resize scales decide
    shapes). Only ever called on a model this module loaded itself."""
    onnx = onnx_module()
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    for tensor in graph.initializer:
        if tensor.data_type in floats and math.prod(tensor.dims) > _KEEP_VALUES_UP_TO:
            for data in ("raw_data", "float_data", "double_data", "int32_data"):
                tensor.ClearField(data)


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
        if node.op_type == "Identity" and node.domain in _DEFAULT_DOMAINS and node.input:
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
        op = node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}:{node.op_type}"
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
