"""Cost formulas of the ops autograd runs in a backward pass (``analyze(mode="train")``).

Products (the gradients of mm, bmm, linear) run as ordinary mm/bmm ops and are costed by
the forward formulas; this module adds convolution and attention backward, whose kernels
compute several products at once, and the element-wise backward kernels. Per-element
costs are in docs/conventions.md ("Training").
"""

from __future__ import annotations

from math import prod
from typing import Any

import torch

from dnnmeter.analysis.formulas import Cost, Formula, Shape, conv_macs, register_formula

aten = torch.ops.aten


@register_formula(aten.convolution_backward)
def _convolution_backward(grad_out: Shape, x: Shape, w: Shape, bias_sizes: Any, stride: Any,
                          padding: Any, dilation: Any, transposed: bool, output_padding: Any,
                          groups: int, mask: Any, *_: Any, out: Any) -> Cost:
    """The input gradient and the weight gradient each repeat every product of the forward
    (so a frozen weight or an input that needs no gradient saves exactly that); the bias
    gradient sums the output gradient. (torch's FlopCounterMode counts a grouped
    convolution's weight gradient ``groups`` times too high.)"""
    forward = conv_macs(x, w, grad_out, bool(transposed))
    macs = forward * (int(bool(mask[0])) + int(bool(mask[1])))
    depthwise = groups > 1 and w[1] == 1 and x[1] == groups
    return Cost(macs, prod(grad_out) if mask[2] else 0, "depthwise_conv" if depthwise else "conv")


def _attention_backward_macs(grad_out: Shape, q: Shape, k: Shape, v: Shape) -> int:
    """torch's count: the scores recomputed (E), their gradient (Ev), the gradients of V
    (Ev), Q (E) and K (E), for every query-key pair."""
    batch, heads, q_len, e = q
    return batch * heads * q_len * k[-2] * (3 * e + 2 * v[-1])


@register_formula(aten._scaled_dot_product_efficient_attention_backward,
                  aten._scaled_dot_product_flash_attention_backward,
                  aten._scaled_dot_product_cudnn_attention_backward,
                  aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _attention_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, *_: Any, out: Any) -> Cost:
    return Cost(_attention_backward_macs(grad_out, q, k, v), 0, "matmul")


def _per_grad_element(factor: int, kind: str) -> Formula:
    """``factor`` FLOPs per element of the incoming gradient (the op's first argument)."""

    def formula(grad: Any, *_: Any, out: Any) -> Cost:
        return Cost(0, factor * prod(grad), kind)

    return formula


# FLOPs per element of the incoming gradient (docs/conventions.md).
_PER_GRAD_ELEMENT = {
    "activation": (2, (  # the derivative at the input, times the incoming gradient
        "gelu_backward", "silu_backward", "sigmoid_backward", "tanh_backward",
        "hardswish_backward", "hardsigmoid_backward", "hardtanh_backward", "leaky_relu_backward",
        "elu_backward", "softplus_backward", "mish_backward", "log_sigmoid_backward",
        "_prelu_kernel_backward")),
    "activation1": (1, ("threshold_backward",)),  # ReLU: keep or zero
    "softmax": (4, ("_softmax_backward_data", "_log_softmax_backward_data")),
    "norm": (9, ("native_batch_norm_backward", "native_layer_norm_backward",
                 "native_group_norm_backward")),
    "other": (2, ("native_dropout_backward",)),  # the mask, the scale
    "pool": (1, ("max_pool2d_with_indices_backward", "max_pool3d_with_indices_backward",
                 "adaptive_max_pool2d_backward", "adaptive_max_pool3d_backward")),
    "nearest": (1, ("upsample_nearest1d_backward", "upsample_nearest2d_backward",
                    "upsample_nearest3d_backward")),  # each copy's gradient added back
    "embedding": (1, ("embedding_dense_backward",)),  # each row's gradient added into its weight row
}
_KIND = {"activation1": "activation", "softmax": "activation", "embedding": "other", "nearest": "other"}
for _group, (_factor, _names) in _PER_GRAD_ELEMENT.items():
    _formula = _per_grad_element(_factor, _KIND.get(_group, _group))
    for _name in _names:
        if hasattr(aten, _name):
            register_formula(getattr(aten, _name))(_formula)


@register_formula(aten.avg_pool2d_backward, aten.avg_pool3d_backward)
def _avg_pool_backward(grad: Shape, x: Shape, kernel: Any, *_: Any, out: Any) -> Cost:
    kernel = list(kernel) * (len(x) - 2) if len(kernel) == 1 else kernel
    return Cost(0, prod(grad) * prod(kernel), "pool")


@register_formula(aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward)
def _adaptive_avg_pool_backward(grad: Shape, x: Shape, *_: Any, out: Any) -> Cost:
    return Cost(0, prod(x), "pool")


@register_formula(aten.reflection_pad1d_backward, aten.reflection_pad2d_backward,
                  aten.reflection_pad3d_backward, aten.replication_pad1d_backward,
                  aten.replication_pad2d_backward, aten.replication_pad3d_backward)
def _pad_backward(grad: Shape, x: Shape, *_: Any, out: Any) -> Cost:
    """Each padded element's gradient is added into the element it copied."""
    return Cost(0, prod(grad) - prod(x), "other")


_TAPS = {"upsample_linear1d_backward": 2, "upsample_bilinear2d_backward": 4,
         "upsample_trilinear3d_backward": 8, "upsample_bicubic2d_backward": 16}


def _interpolation_backward(taps: int) -> Formula:
    def formula(grad: Shape, *_: Any, out: Any) -> Cost:
        return Cost(0, 2 * taps * prod(grad), "other")  # a multiply and an add per tap

    return formula


for _name, _taps in _TAPS.items():
    register_formula(getattr(aten, _name))(_interpolation_backward(_taps))
