"""Cost formulas of ONNX ops: pure functions of shapes, registered under their op type.

:func:`register_cost` adds a formula for one or more op types of the default domain (a
second registration for the same op is an error); :data:`IGNORED_OPS` cost nothing. A
formula returns ``(macs, elementwise_flops)`` for one node, and raises
:class:`NotCountable` when the shapes it needs are unknown. Conventions are those of
docs/conventions.md: MACs for the products (bias terms not counted), element-wise FLOPs
apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dnnmeter.registry import Registry, decorator

Shape = tuple[int | None, ...]
DEFAULT_DOMAINS = ("", "ai.onnx")  # the ONNX default domain, under both of its names


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


# --- recurrent layers -----------------------------------------------------------------
# Per time step, batch element and direction, with G gates of hidden size H and input size
# I: G*H*(I + H) MACs for the input and recurrent products (biases not counted, as for Gemm),
# and the element-wise work of the cell, counted as dnnmeter counts torch's own cell
# (tests/test_onnx.py checks the two agree):
#   RNN  (G=1):  2H  -- sum of the two products, activation
#   GRU  (G=3): 10H  -- r, z: add + sigmoid (4H); n: r*(.), add, tanh (3H); h: sub, mul, add (3H)
#   LSTM (G=4): 13H  -- sum of products (4H), 3 sigmoids + tanh (4H), c = f*c + i*g (3H),
#                       h = o*tanh(c) (2H); peepholes (input P) add a mul and an add per gate (6H)


def _recurrent(gates: int, flops_per_hidden: int) -> Formula:
    def formula(s: OpShapes) -> Cost:
        # X: (T, N, I), or (N, T, I) with layout=1; W: (directions, gates * H, I).
        x, w = _input(s, 0), _input(s, 1)
        if len(x) != 3 or len(w) != 3:
            raise NotCountable(f"input of rank {len(x)}, weight of rank {len(w)}")
        directions, gates_hidden, inputs = w
        steps, batch = (x[1], x[0]) if s.attrs.get("layout", 0) else (x[0], x[1])
        hidden = gates_hidden // gates
        flops = flops_per_hidden * hidden
        if gates == 4 and len(s.inputs) > 7 and s.inputs[7] is not None:
            flops += 6 * hidden  # peepholes
        cells = steps * batch * directions
        return cells * gates_hidden * (inputs + hidden), cells * flops

    formula.__doc__ = f"{gates} gate(s): T*N*D*{gates}H*(I+H) MACs, {flops_per_hidden}H FLOPs per cell."
    return formula


register_cost("RNN", kind="linear")(_recurrent(1, 2))
register_cost("GRU", kind="linear")(_recurrent(3, 10))
register_cost("LSTM", kind="linear")(_recurrent(4, 13))
