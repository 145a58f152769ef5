"""Cost formulas: pure functions of shapes, one registry, keyed by aten op.

Each formula returns ``(macs, elementwise_flops, kind)`` for one call of an op, from the
shapes of its tensor arguments and of its output. MAC formulas follow
``torch.utils.flop_counter`` exactly (convolution, mm, addmm, bmm, baddbmm, attention), so
that dnnmeter's MACs equal torchvision's published "GFLOPS" (which are GMACs); element-wise
costs follow the table in docs/conventions.md. Ops in :data:`FREE_OPS` cost nothing
(views, copies, indexing); any other op without a formula is *unsupported*: counted and
reported by name, never silently dropped.

Register a formula for your own op with::

    @register_formula(torch.ops.mylib.fused_gemm)
    def _fused_gemm(a, b, *_, out):        # shapes, not tensors
        return Cost(macs=a[0] * a[1] * b[1], kind="linear")

and replace one with ``register_formula(op, override=True)``, or ignore one (it then costs
nothing, like the ops in :data:`FREE_OPS`) with ``FORMULAS.register(op, None)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from typing import Any, NamedTuple

import torch

from dnnmeter.registry import Registry, decorator

aten = torch.ops.aten
Shape = tuple[int, ...]


class Cost(NamedTuple):
    macs: int = 0
    elementwise_flops: int = 0
    kind: str = "other"


# A formula receives the op's positional arguments with every tensor replaced by its shape
# (lists of tensors become lists of shapes) and the output's shape as ``out``. A packet
# registered with None is ignored: it costs nothing, like the ops in FREE_OPS (fvcore's
# ``set_op_handle(op, None)``).
Formula = Callable[..., Cost]
FORMULAS: Registry[Formula | None] = Registry("cost formula for aten op")


def register_formula(*packets: Any, override: bool = False) -> Callable[[Formula], Formula]:
    """Register ``formula`` for the given aten op packets; registering an op twice is an error
    unless ``override=True``. ``FORMULAS.register(packet, None)`` ignores an op instead."""
    return decorator(FORMULAS, *packets, override=override)


# --- products: the MACs -------------------------------------------------------------------


def conv_macs(x: Shape, w: Shape, out: Shape, transposed: bool = False) -> int:
    """N * C_out * (C_in / groups) * prod(kernel) * prod(spatial); spatial is the output's,
    or the input's for a transposed convolution (as torch.utils.flop_counter counts)."""
    c_out, c_in_per_group, *kernel = w
    spatial = (x if transposed else out)[2:]
    return x[0] * c_out * c_in_per_group * prod(kernel) * prod(spatial)


def mm_macs(a: Shape, b: Shape) -> int:
    return a[0] * a[1] * b[1]


def bmm_macs(a: Shape, b: Shape) -> int:
    return a[0] * a[1] * a[2] * b[2]


def attention_macs(q: Shape, k: Shape, v: Shape) -> int:
    """Q K^T and (softmax) V for q = (B, H, L, E), k = (B, Hk, S, E), v = (B, Hk, S, Ev)."""
    batch, heads, q_len, _ = q
    s_len = k[-2]
    return batch * heads * q_len * s_len * (q[-1] + v[-1])


@register_formula(aten.convolution, aten._convolution, aten.cudnn_convolution,
                  aten._slow_conv2d_forward, aten.convolution_overrideable)
def _convolution(x: Shape, w: Shape, bias: Any, stride: Any, padding: Any, dilation: Any,
                 transposed: bool = False, output_padding: Any = None, groups: int = 1,
                 *_: Any, out: Shape) -> Cost:
    depthwise = groups > 1 and w[1] == 1 and x[1] == groups
    return Cost(conv_macs(x, w, out, bool(transposed)), 0, "depthwise_conv" if depthwise else "conv")


@register_formula(aten.mkldnn_convolution)
def _mkldnn_convolution(x: Shape, w: Shape, bias: Any, padding: Any, stride: Any,
                        dilation: Any, groups: int = 1, *_: Any, out: Shape) -> Cost:
    depthwise = groups > 1 and w[1] == 1 and x[1] == groups
    return Cost(conv_macs(x, w, out), 0, "depthwise_conv" if depthwise else "conv")


def _product(macs: Callable[[Shape, Shape], int], kind: str, first: int) -> Formula:
    """A matrix product: ``macs`` of its two factors, at ``first`` and ``first + 1`` among the
    arguments (addmm and baddbmm take the added term first)."""

    def formula(*args: Any, out: Shape) -> Cost:
        return Cost(macs(args[first], args[first + 1]), 0, kind)

    return formula


for _op, _macs, _kind, _first in ((aten.mm, mm_macs, "linear", 0), (aten.addmm, mm_macs, "linear", 1),
                                   (aten.bmm, bmm_macs, "matmul", 0), (aten.baddbmm, bmm_macs, "matmul", 1)):
    register_formula(_op)(_product(_macs, _kind, _first))


@register_formula(aten._scaled_dot_product_efficient_attention,
                  aten._scaled_dot_product_flash_attention,
                  aten._scaled_dot_product_cudnn_attention,
                  aten._scaled_dot_product_flash_attention_for_cpu,
                  aten._efficient_attention_forward, aten._flash_attention_forward)
def _attention(q: Shape, k: Shape, v: Shape, *_: Any, out: Any) -> Cost:
    return Cost(attention_macs(q, k, v), 0, "matmul")


# --- element-wise work: FLOPs per output element -----------------------------------------

# One FLOP per output element: arithmetic, comparisons and activation functions alike.
_PER_ELEMENT_1 = {
    "activation": (
        "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_",
        "elu", "elu_", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh",
        "tanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "mish", "mish_",
        "_prelu_kernel", "prelu", "softplus", "log_sigmoid_forward", "threshold",
        "threshold_", "glu", "erf", "exp", "exp_", "log", "sqrt", "rsqrt", "reciprocal",
        "abs", "neg", "sin", "cos", "pow", "square",
    ),
    "other": (
        "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "rsub", "addcmul",
        "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "maximum", "minimum",
        "where", "eq", "ne", "gt", "lt", "ge", "le", "logical_not", "bitwise_not",
        "floor", "ceil", "round", "sign", "lerp",
    ),
}
# Several FLOPs per output element (documented in docs/conventions.md).
_PER_ELEMENT_N = {
    "_native_batch_norm_legit_no_training": (2, "norm"),  # scale and shift (folded)
    "batch_norm": (2, "norm"),
    "_softmax": (3, "activation"),  # exp, sum, divide
    "_log_softmax": (3, "activation"),
    "_safe_softmax": (3, "activation"),
}


def _per_output_element(factor: int, kind: str) -> Formula:
    def formula(*_: Any, out: Any) -> Cost:
        first = out[0] if out and isinstance(out[0], (tuple, list)) else out
        return Cost(0, factor * prod(first), kind)

    return formula


for _kind, _names in _PER_ELEMENT_1.items():
    _formula = _per_output_element(1, _kind)
    for _name in _names:
        if hasattr(aten, _name):
            register_formula(getattr(aten, _name))(_formula)
for _name, (_factor, _kind) in _PER_ELEMENT_N.items():
    if hasattr(aten, _name):
        register_formula(getattr(aten, _name))(_per_output_element(_factor, _kind))


@register_formula(aten._native_batch_norm_legit, aten.native_batch_norm)
def _batch_norm(x: Shape, weight: Any, bias: Any, *rest: Any, out: Any) -> Cost:
    """Inference folds the statistics into a scale and shift (2); training computes them
    from the batch, as layer norm does (4, and 1 for the affine step)."""
    training = next((a for a in rest if isinstance(a, bool)), False)
    return _norm_cost(x, weight, bias) if training else Cost(0, 2 * prod(x), "norm")


@register_formula(aten.native_dropout)
def _dropout(x: Shape, p: float, train: Any = None, *_: Any, out: Any) -> Cost:
    """Training multiplies by the random mask and the 1/(1-p) scale; inference passes the
    input through."""
    return Cost(0, 2 * prod(x) if train else 0, "other")


def _norm_cost(x: Shape, weight: Any, bias: Any) -> Cost:
    """Mean, subtract, variance, normalise per element, plus the affine step only when the
    norm has affine parameters (elementwise_affine=False / affine=False has none)."""
    affine = 1 if weight is not None or bias is not None else 0
    return Cost(0, (4 + affine) * prod(x), "norm")


@register_formula(aten.native_layer_norm)
def _layer_norm(x: Shape, normalized: Any, weight: Any = None, bias: Any = None, *_: Any, out: Any) -> Cost:
    return _norm_cost(x, weight, bias)


@register_formula(aten.native_group_norm)
def _group_norm(x: Shape, weight: Any = None, bias: Any = None, *_: Any, out: Any) -> Cost:
    return _norm_cost(x, weight, bias)


# Interpolation: each output element is a weighted sum of its taps (2 per interpolated
# dimension, 4 per dimension for bicubic): one multiply and one add per tap, less the first
# add. The weights depend on the output position only and are shared by every channel, so
# they are not counted (docs/conventions.md).
_INTERPOLATION_TAPS = {
    "upsample_linear1d": 2, "upsample_bilinear2d": 4, "upsample_trilinear3d": 8,
    "upsample_bicubic2d": 16,
}


def _interpolation(taps: int) -> Formula:
    def formula(*_: Any, out: Any) -> Cost:
        return Cost(0, (2 * taps - 1) * prod(out), "other")

    return formula


for _name, _taps in _INTERPOLATION_TAPS.items():
    register_formula(getattr(aten, _name))(_interpolation(_taps))


@register_formula(aten.max_pool1d, aten.max_pool2d, aten.max_pool3d,
                  aten.max_pool2d_with_indices, aten.max_pool3d_with_indices,
                  aten.avg_pool1d, aten.avg_pool2d, aten.avg_pool3d)
def _pool(x: Shape, kernel: Sequence[int], *_: Any, out: Any) -> Cost:
    """One comparison or addition per window element, for every output element."""
    first = out[0] if out and isinstance(out[0], (tuple, list)) else out
    kernel = list(kernel) * (len(x) - 2) if len(kernel) == 1 else kernel
    return Cost(0, prod(first) * prod(kernel), "pool")


@register_formula(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d,
                  aten.adaptive_max_pool2d, aten.adaptive_max_pool3d, aten.adaptive_avg_pool1d)
def _adaptive_pool(x: Shape, *_: Any, out: Any) -> Cost:
    """Every input element is read into exactly one window (for the usual divisible sizes)."""
    return Cost(0, prod(x), "pool")


@register_formula(aten.mean, aten.sum, aten.amax, aten.amin, aten.var, aten.std,
                  aten.var_mean, aten.logsumexp, aten.norm, aten.linalg_vector_norm,
                  aten.cumsum, aten.max, aten.min, aten.argmax)
def _reduction(x: Any, *_: Any, out: Any) -> Cost:
    shape = x if isinstance(x, tuple) else ()
    return Cost(0, prod(shape), "other")


# --- ops that cost nothing ----------------------------------------------------------------

# Data movement and metadata: no arithmetic. (Copies cost memory traffic, which the
# hardware model counts; they are not FLOPs.)
FREE_OPS = frozenset(
    getattr(aten, name)
    for name in (
        "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t",
        "expand", "squeeze", "unsqueeze", "flatten", "unflatten", "select", "slice",
        "narrow", "split", "split_with_sizes", "chunk", "unbind", "cat", "stack", "clone",
        "contiguous", "_to_copy", "copy_", "detach", "alias", "lift_fresh", "empty",
        "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros",
        "zeros_like", "ones", "ones_like", "full", "full_like", "new_zeros", "new_ones",
        "new_full", "arange", "fill_", "zero_", "index", "index_select", "gather",
        "constant_pad_nd", "pad", "roll", "flip", "repeat", "expand_as", "as_strided",
        "dropout", "feature_dropout", "alpha_dropout", "_assert_async",
        "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "is_contiguous",
        "masked_fill", "masked_fill_", "scalar_tensor", "lift_fresh_copy", "linspace",
        "channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "tril", "triu", "unfold",
        "im2col", "col2im", "upsample_nearest2d", "_local_scalar_dense", "item",
        "resize_", "set_", "as_strided_", "diagonal", "movedim", "index_put_", "index_put", "scatter",
        "meshgrid", "ravel", "view_as", "detach_", "bernoulli_", "dim", "numel", "size",
        "stride", "unsafe_split", "unsafe_chunk", "unsafe_split_with_sizes", "transpose_",
        # lookups, padding that copies edge values, packing, unpooling (a scatter)
        "embedding", "_pack_padded_sequence", "_pad_packed_sequence", "reflection_pad1d",
        "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
        "replication_pad3d", "_pad_circular", "max_unpool2d", "max_unpool3d",
        "upsample_nearest1d", "upsample_nearest3d", "_upsample_nearest_exact1d",
        "_upsample_nearest_exact2d", "_upsample_nearest_exact3d",
        # tensor creation: random numbers are generated, not computed from the input
        "randn", "randn_like", "rand", "rand_like", "randint", "randint_like", "randperm",
        "normal", "normal_", "uniform_", "bernoulli", "eye", "one_hot",
        # backward of views (mode="train"): place the gradient into zeros
        "select_backward", "slice_backward", "diagonal_backward", "unfold_backward",
        "as_strided_scatter", "slice_scatter", "select_scatter", "diagonal_scatter",
    )
    if hasattr(aten, name)
) | frozenset(
    getattr(torch.ops.profiler, name)  # record_function markers
    for name in ("_record_function_enter", "_record_function_enter_new", "_record_function_exit")
)


# The free ops that really copy memory: they cost no arithmetic (counting leaves them free, as
# above), but they read and write every element, so a latency prediction must see them.
# ``analyze(..., copies=True)`` gives each call a row of kind "copy" (no MACs, no FLOPs, its
# input and output shapes: the bytes it moves); the default leaves them out, as counting always has.
# Views (view, reshape of a contiguous tensor, permute, transpose, expand, select, slice, split,
# chunk, squeeze...) stay free: they move nothing. ``contiguous()`` and ``reshape`` are not
# listed: at the aten level they dispatch nothing for a tensor that needs no copy, and a
# ``clone`` (listed) when it does, so only real copies are seen.
COPY_OPS = frozenset(
    getattr(aten, name)
    for name in (
        "cat", "stack",  # concatenation: DenseNet, GoogLeNet, ShuffleNet's branches
        "clone",  # contiguous()/reshape() after a permute or transpose (Swin, ViT heads), x.clone()
        "_to_copy",  # a dtype or device conversion (a .to() that changes nothing dispatches nothing)
        "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "replication_pad1d",
        "replication_pad2d",  # padding: a new, larger tensor (Swin pads to whole windows)
        "roll",  # Swin's shifted windows
        "flip", "repeat",  # reversed or tiled copies
        "channel_shuffle", "pixel_shuffle", "pixel_unshuffle",  # ShuffleNet; sub-pixel upsampling
        "index_select", "gather", "index",  # gathers: Swin's relative position bias (aten.index)
        "upsample_nearest2d",  # nearest upsampling is a gather of the input's elements
    )
    if hasattr(aten, name)
)
assert COPY_OPS <= FREE_OPS  # counting keeps them free: only the copies=True rows tell them apart
