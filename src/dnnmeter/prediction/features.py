"""What the latency model sees of one layer: its group (which fitted model) and its features.

Calibration kernels and a model's layers go through the same functions, on the same
:class:`~dnnmeter.analysis.LayerCost` rows from the meta-device analysis, so the features a
fit was made on are exactly those it is later asked about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from math import prod

from dnnmeter.analysis import LayerCost
from dnnmeter.analysis.counter import COPY_KIND
from dnnmeter.measure.heap import MMAP_THRESHOLD_BYTES

PAGE_BYTES = 4096

# Op or module names (lower case, without "aten." and a trailing "_") of layers whose cost per
# element differs enough from their kind's average to deserve a fit of their own.
ALIASES: dict[str, str] = {
    "relu": "relu", "relu6": "relu6", "hardtanh": "relu6", "gelu": "gelu", "silu": "silu",
    "sigmoid": "sigmoid", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "tanh": "tanh",
    "_safe_softmax": "softmax", "_softmax": "softmax", "softmax": "softmax",
    "batchnorm2d": "batchnorm", "layernorm": "layernorm", "layernorm2d": "layernorm",
    "maxpool2d": "maxpool", "max_pool2d_with_indices": "maxpool",
    "avgpool2d": "avgpool", "avg_pool2d": "avgpool", "adaptiveavgpool2d": "adaptiveavgpool",
    "add": "add", "sub": "add", "mul": "mul", "div": "mul",
}  # fmt: skip

# Kinds whose cost is set by their MACs and shapes, whatever module or op runs them.
MAC_KINDS = ("conv", "depthwise_conv", "linear", "matmul")

FEATURES = (
    "log_macs", "log_elementwise_flops", "log_input_elements", "log_output_elements", "log_params",
    "log_batch", "log_input_channels", "log_output_channels", "log_output_spatial", "log_last_dim",
    "log_macs_per_output", "log_bytes_per_mac",
)  # fmt: skip


def is_patchify(layer: LayerCost) -> bool:
    """A patch embedding: an image (at most 4 channels) cut into non-overlapping patches of 4 x 4
    or more (kernel = stride, no padding, no groups), as ViT, Swin and ConvNeXt begin. Its kernel
    is far from the padded, overlapping convs of the conv grid (ViT-B/32's 32 x 32 patches ran
    at 13 GMAC/s where the conv fit said 29), so it has a group of its own."""
    if layer.kind != "conv" or len(layer.input_shapes) != 1 or len(layer.output_shapes) != 1:
        return False
    x, y = layer.input_shapes[0], layer.output_shapes[0]
    if len(x) != 4 or len(y) != 4 or x[1] > 4 or not y[2] or not y[3]:
        return False
    s = x[2] // y[2]
    whole = s >= 4 and x[2] == s * y[2] and x[3] == s * y[3]
    return whole and layer.macs == y[0] * y[1] * y[2] * y[3] * x[1] * s * s


def group_of(layer: LayerCost) -> str:
    """The fitted model a layer's latency comes from (a kernel group, e.g. ``conv``, ``gelu``)."""
    if is_patchify(layer):
        return "patchify"
    if layer.kind in MAC_KINDS:
        return layer.kind
    if layer.kind == COPY_KIND:
        return "copy"  # cat, roll, padding, a clone after a permute: bytes moved, no arithmetic
    if layer.kind == "other" and layer.macs == 0 and layer.elementwise_flops == 0:
        return "free"  # views, dropout and identities in eval mode: only the call itself costs
    name = layer.type.removeprefix("aten.").lower()
    return ALIASES.get(name, ALIASES.get(name.rstrip("_"), layer.kind))


def _numel(shapes: Sequence[Sequence[int]]) -> int:
    return sum(prod(s) for s in shapes)


def _dim(shapes: Sequence[Sequence[int]], index: int) -> int:
    return shapes[0][index] if shapes and len(shapes[0]) > abs(index) else 1


def work(layer: LayerCost, itemsize: int) -> tuple[float, float, float]:
    """MACs, element-wise FLOPs and bytes moved (inputs, outputs and parameters, once each)."""
    elements = _numel(layer.input_shapes) + _numel(layer.output_shapes) + layer.params
    return float(layer.macs), float(layer.elementwise_flops), float(elements * itemsize)


def mapped_pages(layer: LayerCost, itemsize: int) -> int:
    """Pages a layer faults in on every call: a convolution's weights reordered for the CPU
    kernel (oneDNN's blocked layout) into a buffer of their size, allocated on each call. Above
    glibc's largest mmap threshold (32 MiB: a 1024 x 1024 x 3 x 3 conv of the wide ResNets)
    that buffer is always a fresh mapping, whatever the heap setting, and each of its pages is
    faulted in and zeroed: 1024 x 1024 x 3 x 3 at 7 x 7 took 34 ms in wide_resnet50_2 and
    17 ms where the calibration's heap happened to hold a free block that large. Below the
    threshold the heap reuses the freed buffer and nothing is faulted."""
    weight_bytes = layer.params * itemsize
    if layer.kind != "conv" or weight_bytes <= MMAP_THRESHOLD_BYTES:
        return 0
    return -(-weight_bytes // PAGE_BYTES)


def features(layer: LayerCost) -> list[float]:
    """The shape features of :data:`FEATURES`, as logs (the fit works on ratios, not sizes)."""
    out = layer.output_shapes
    n_in, n_out = _numel(layer.input_shapes), _numel(out)
    raw = (
        layer.macs, layer.elementwise_flops, n_in, n_out, layer.params,
        _dim(out, 0), _dim(layer.input_shapes, 1), _dim(out, 1),
        prod(out[0][2:]) if out and len(out[0]) > 2 else 1, out[0][-1] if out and out[0] else 1,
        # the depth of each output's reduction (C_in/groups x k x k for a conv) and the
        # arithmetic intensity: ratios a tree cannot form from the logs above on its own
        layer.macs / max(n_out, 1), (n_in + n_out + layer.params) / max(layer.macs, 1),
    )  # fmt: skip
    return [math.log1p(float(v)) for v in raw]
