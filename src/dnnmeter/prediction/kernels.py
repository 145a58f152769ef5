"""Calibration kernels: one layer at one shape, built as a small module that can be timed.

Every group of :mod:`dnnmeter.prediction.features` has a builder and a grid of shapes drawn
from a fixed seed (the same grid on every machine and every rerun, so a resumed calibration
finds what it has measured). The grid mixes the shapes of the torchvision zoo (channels
3 to 1024, spatial 7 to 224, batches 1 to 32, tokens 1 to 256 and 3136 for the norms of Swin's
first stage) with odd sizes between them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

MAX_MACS = 4e9  # VGG's 3x3 convs at 112x112 and 56x56 (1.85 GMACs) are calibrated, not extrapolated
MAX_ELEMENTS = 2e7  # inputs, outputs or weights: keeps every kernel within a few hundred MB


@dataclass(frozen=True)
class KernelSpec:
    """One kernel: its group and its shape parameters (sorted name=value pairs)."""

    group: str
    shape: tuple[tuple[str, int], ...]

    @property
    def id(self) -> str:
        return self.group + ":" + ",".join(f"{k}={v}" for k, v in self.shape)

    @property
    def p(self) -> dict[str, int]:
        return dict(self.shape)


@dataclass
class Kernel:
    """What is timed (``call``), what is analysed (``module`` at ``input_size``, ``batch``)."""

    module: nn.Module
    input_size: tuple[int, ...]
    batch: int
    timed: nn.Module  # the leaf module itself, or the functional wrapper


class _Holder(nn.Module):
    """A module kernel: the analysis sees the leaf ``op``; the timer calls ``op`` directly."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _Functional(nn.Module):
    """An op run in a parent's forward (``x + y``, ``q @ k``); ``other`` is its second operand."""

    def __init__(self, fn: Callable[..., torch.Tensor], other: torch.Tensor | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.anchor = nn.Identity()  # never called: keeps this module a parent, so the op gets its own row
        self.register_buffer("other", other)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) if self.other is None else self.fn(x, self.other)


def _pick(rng: random.Random, values: list[int]) -> int:
    return values[rng.randrange(len(values))]


_BATCH = [1, 1, 1, 2, 4, 8, 16, 32]
_CHANNELS = [3, 8, 16, 24, 32, 40, 48, 64, 72, 80, 96, 112, 120, 128, 160, 168, 192, 232, 256, 320, 384, 408,
             512, 640, 672, 768, 912, 1024]
_SIZES = [7, 14, 14, 28, 28, 56, 56, 112, 224]
_TOKENS = [1, 16, 49, 50, 64, 196, 197, 256]
_WIDTHS = [64, 96, 128, 192, 256, 384, 512, 768, 1024, 1280, 1536, 2048, 3072, 4096]


PLAIN_CONV_SHARE = 0.3  # of the conv grid drawn from the plain family below


def _conv(rng: random.Random) -> dict[str, int]:
    if rng.random() < PLAIN_CONV_SHARE:
        # The plain family most CNN stages are built of (VGG, ResNet's basic blocks, U-Nets): as many
        # channels out as in, 3x3 (or 1x1), stride 1, no groups. Drawn from the whole space alone it
        # was rare, and the fit overestimated it by about 20% (VGG16's 13 convs: 337 ms predicted,
        # 279 ms timed one by one, 274 ms in the network).
        c = _pick(rng, _CHANNELS[3:])
        return {"b": _pick(rng, _BATCH), "cin": c, "cout": c, "hw": _pick(rng, _SIZES), "k": _pick(rng, [3, 3, 1]),
                "s": 1, "g": 1}
    cin, cout, k = _pick(rng, _CHANNELS), _pick(rng, _CHANNELS), _pick(rng, [1, 1, 1, 3, 3, 3, 5, 7, 11])
    groups = _pick(rng, [1, 1, 1, 1, 1, 1, 2, 4, 32, 0, 0])
    if groups == 0:  # ResNeXt and RegNet: as many channels out as in, a fixed width per group
        width, cout = _pick(rng, [8, 16, 24, 32, 48, 64]), cin
        groups = cin // width if cin % width == 0 else 1
    groups = groups if cin % groups == 0 and cout % groups == 0 and groups < cin else 1
    return {"b": _pick(rng, _BATCH), "cin": cin, "cout": cout, "hw": _pick(rng, _SIZES), "k": k,
            "s": _pick(rng, [1, 1, 1, 2]), "g": groups}


def _patchify(rng: random.Random) -> dict[str, int]:
    """The patch embeddings of ViT (16 x 16 and 32 x 32 patches), Swin and ConvNeXt (4 x 4): an
    image cut into non-overlapping patches, kernel = stride, no padding (the "patchify" group of
    :func:`~dnnmeter.prediction.features.group_of`). Extrapolated from the conv grid (kernels up
    to 11, padded), ViT-B/32's 32 x 32 patches were predicted 4.0 ms against 9.1 ms timed, in the
    network or alone (13 GMAC/s at batch 1, against 45-50 for 16 x 16 patches)."""
    k = _pick(rng, [4, 4, 8, 14, 16, 16, 32, 32, 32])
    b = _pick(rng, [1, 1, 1, 1, 2, 4, 8, 16])
    cout = _pick(rng, [64, 96, 128, 192, 256, 384, 512, 768, 1024, 1280])
    return {"b": b, "cin": 3, "cout": cout, "hw": 224, "k": k, "s": k, "g": 1, "pad": 0}


def _depthwise(rng: random.Random) -> dict[str, int]:
    return {"b": _pick(rng, _BATCH), "c": _pick(rng, _CHANNELS[3:] + [1152, 1536]), "hw": _pick(rng, _SIZES),
            "k": _pick(rng, [3, 3, 3, 5, 7]), "s": _pick(rng, [1, 1, 2])}


def _linear(rng: random.Random) -> dict[str, int]:
    return {"b": _pick(rng, _BATCH), "t": _pick(rng, [0, 0, *_TOKENS]), "fin": _pick(rng, _WIDTHS + [9216, 25088]),
            "fout": _pick(rng, _WIDTHS + [10, 100, 1000])}


def _matmul(rng: random.Random) -> dict[str, int]:
    m = _pick(rng, _TOKENS[1:] + [1024])
    return {"bh": _pick(rng, [1, 4, 8, 12, 16, 24, 32, 48, 96, 192]), "m": m, "k": _pick(rng, [32, 64, 96, m]),
            "n": _pick(rng, [32, 64, 96, m])}


def _image(rng: random.Random) -> dict[str, int]:
    return {"b": _pick(rng, _BATCH), "c": _pick(rng, _CHANNELS[1:] + [1280, 2048]), "hw": _pick(rng, _SIZES)}


def _tensor(rng: random.Random) -> dict[str, int]:
    """A 4-d activation (``t=0``) or a token sequence (b, t, c): where element-wise ops run."""
    shape = _image(rng)
    shape["t"] = _pick(rng, [0, 0, 0, *_TOKENS[1:]])
    return shape


def _activation(p: dict[str, int]) -> list[int]:
    return [p["b"], p["t"], p["c"]] if p.get("t") else [p["b"], p["c"], p["hw"], p["hw"]]


def _build_activation(op: nn.Module) -> Callable[[dict[str, int]], Kernel]:
    def build(p: dict[str, int]) -> Kernel:
        shape = _activation(p)
        return Kernel(_Holder(op), tuple(shape[1:]), shape[0], op)

    return build


def _build_conv(p: dict[str, int]) -> Kernel:
    conv = nn.Conv2d(p["cin"], p["cout"], p["k"], p["s"], p.get("pad", p["k"] // 2), groups=p["g"])
    return Kernel(_Holder(conv), (p["cin"], p["hw"], p["hw"]), p["b"], conv)


def _build_depthwise(p: dict[str, int]) -> Kernel:
    conv = nn.Conv2d(p["c"], p["c"], p["k"], p["s"], p["k"] // 2, groups=p["c"])
    return Kernel(_Holder(conv), (p["c"], p["hw"], p["hw"]), p["b"], conv)


def _build_linear(p: dict[str, int]) -> Kernel:
    lin = nn.Linear(p["fin"], p["fout"])
    size = (p["t"], p["fin"]) if p["t"] else (p["fin"],)
    return Kernel(_Holder(lin), size, p["b"], lin)


def _build_matmul(p: dict[str, int]) -> Kernel:
    fn = _Functional(torch.matmul, torch.randn(p["bh"], p["k"], p["n"]))
    return Kernel(fn, (p["m"], p["k"]), p["bh"], fn)


def _build_elementwise(fn: Callable[..., torch.Tensor], broadcast: bool) -> Callable[[dict[str, int]], Kernel]:
    def build(p: dict[str, int]) -> Kernel:
        shape = _activation(p)
        other_shape = [shape[0], shape[1], 1, 1] if broadcast and len(shape) == 4 else shape
        module = _Functional(fn, torch.randn(other_shape))
        return Kernel(module, tuple(shape[1:]), shape[0], module)

    return build


def _build_softmax(p: dict[str, int]) -> Kernel:
    module = _Functional(lambda x: F.softmax(x, dim=-1))
    return Kernel(module, (p["m"], p["n"]), p["bh"], module)


def _build_norm(p: dict[str, int]) -> Kernel:
    if p.get("t"):
        norm: nn.Module = nn.LayerNorm(p["c"])
        side = math.isqrt(p["t"])
        size = (side, side, p["c"]) if p.get("sq") and side * side == p["t"] else (p["t"], p["c"])
        return Kernel(_Holder(norm), size, p["b"], norm)
    norm = nn.BatchNorm2d(p["c"]).eval()
    return Kernel(_Holder(norm), (p["c"], p["hw"], p["hw"]), p["b"], norm)


# Pooling windows of the zoo as (kernel, stride, padding, ceil_mode): the stem's 3x3/2, VGG's 2x2/2,
# the 3x3/1 of GoogLeNet's and Inception's branches (ceil_mode in GoogLeNet and SqueezeNet). Drawn
# as shape parameters of their own: a pool's time per output grows with its window, and a grid
# that picked the window from the channel count's parity calibrated almost only 2x2 windows
# (every channel count but 3 is even), so 3x3 pools were extrapolated 1.6-2.3x too slow.
_MAX_WINDOWS = [(3, 2, 1, 0), (3, 2, 0, 1), (2, 2, 0, 0), (3, 1, 1, 0), (3, 1, 1, 1), (2, 2, 0, 1)]
_AVG_WINDOWS = [(2, 2, 0, 0), (3, 1, 1, 0), (3, 2, 1, 0)]


def _window(windows: list[tuple[int, int, int, int]]) -> Callable[[random.Random], dict[str, int]]:
    def draw(rng: random.Random) -> dict[str, int]:
        shape = _image(rng)
        shape["k"], shape["s"], shape["pad"], shape["ceil"] = windows[rng.randrange(len(windows))]
        return shape

    return draw


def _adaptive(rng: random.Random) -> dict[str, int]:
    shape = _image(rng)
    shape["o"] = _pick(rng, [1, 1, 1, 7])  # global pooling mostly; VGG's and AlexNet's 7x7 (6x6) too
    return shape


def _free_shape(rng: random.Random) -> dict[str, int]:
    shape = _tensor(rng)
    shape["drop"] = _pick(rng, [0, 1])  # an identity or a dropout in eval mode: both only a call
    return shape


def _pool(op: Callable[[dict[str, int]], nn.Module]) -> Callable[[dict[str, int]], Kernel]:
    def build(p: dict[str, int]) -> Kernel:
        module = op(p)
        return Kernel(_Holder(module), (p["c"], p["hw"], p["hw"]), p["b"], module)

    return build


def _free(p: dict[str, int]) -> Kernel:
    op: nn.Module = nn.Dropout(0.1) if p.get("drop", p["c"] % 2) else nn.Identity()
    shape = _activation(p)
    return Kernel(_Holder(op.eval()), tuple(shape[1:]), shape[0], op)


# Copies (the "copy" group): ops that do no arithmetic but read and write every element. Each
# family is what one of the zoo's networks runs: DenseNet's, GoogLeNet's and ShuffleNet's cat of
# 2-4 maps along channels, a (b, c, h, w) -> (b, h, w, c) permute made contiguous, a token tensor
# split into heads (view, transpose, contiguous), Swin's roll and pad of (b, h, w, c) maps and
# its window partition (a 6-d permute), and ShuffleNet's channel shuffle (view, transpose,
# contiguous). Each is one aten copy (cat, roll, constant_pad_nd or clone) among free views, so
# its analysis is one "copy" row; the fit sees its bytes moved.
COPY_FAMILIES = ("cat", "permute", "heads", "roll", "pad", "shuffle", "window")
_COPY_CHANNELS = [24, 32, 48, 58, 64, 96, 116, 128, 192, 232, 256, 384, 464, 512, 768, 1024]


def _copy(rng: random.Random) -> dict[str, int]:
    # cat drawn more often: it alone takes 2-4 inputs, and DenseNet and GoogLeNet run nothing else
    shape = {"op": _pick(rng, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]), "b": _pick(rng, _BATCH),
             "c": _pick(rng, _COPY_CHANNELS), "hw": _pick(rng, [7, 14, 28, 28, 56, 56, 112])}
    family = COPY_FAMILIES[shape["op"]]
    if family == "window" and shape["hw"] == 7:  # one 7 x 7 window: the permute moves nothing, no copy
        shape["hw"] = 14
    if family == "cat":
        shape["n"] = _pick(rng, [2, 2, 3, 4])
    elif family == "heads":
        shape["heads"] = _pick(rng, [h for h in (3, 4, 6, 8, 12, 16, 24, 32) if shape["c"] % h == 0] or [1])
    elif family == "pad":
        shape["pad"] = _pick(rng, [0, 0, 1, 3])  # Swin pads to whole windows: by 0 at 224 x 224, still a copy
    return shape


def _copy_fn(p: dict[str, int]) -> Callable[..., torch.Tensor]:
    b, c, hw, family = p["b"], p["c"], p["hw"], COPY_FAMILIES[p["op"]]
    if family == "cat":
        return lambda x, others: torch.cat([x, *others.unbind(0)], 1)
    if family == "permute":
        return lambda x: x.permute(0, 2, 3, 1).contiguous()
    if family == "heads":
        heads = p["heads"]
        return lambda x: x.view(b, hw * hw, heads, c // heads).transpose(1, 2).contiguous()
    if family == "roll":
        return lambda x: torch.roll(x, (-3, -3), (1, 2))
    if family == "pad":
        return lambda x: F.pad(x, (0, 0, 0, p["pad"], 0, p["pad"]))
    if family == "shuffle":
        return lambda x: x.view(b, 2, c // 2, hw, hw).transpose(1, 2).contiguous().view(b, c, hw, hw)
    w = 7  # "window": Swin's partition of a (b, h, w, c) map into 7 x 7 windows
    return lambda x: x.view(b, hw // w, w, hw // w, w, c).permute(0, 1, 3, 2, 4, 5).contiguous()


def _build_copy(p: dict[str, int]) -> Kernel:
    family = COPY_FAMILIES[p["op"]]
    size = {"cat": (p["c"], p["hw"], p["hw"]), "permute": (p["c"], p["hw"], p["hw"]),
            "heads": (p["hw"] * p["hw"], p["c"]), "shuffle": (p["c"], p["hw"], p["hw"])}.get(
        family, (p["hw"], p["hw"], p["c"]))  # roll, pad, window: Swin's (b, h, w, c) maps
    others = torch.randn(p["n"] - 1, p["b"], *size) if family == "cat" else None
    module = _Functional(_copy_fn(p), others)
    return Kernel(module, size, p["b"], module)


def _layernorm(rng: random.Random) -> dict[str, int]:
    """A transformer's tokens, and the (b, h, w, c) maps of Swin and ConvNeXt: 56x56 = 3136
    positions at the first stage, far more than a ViT's 197 (a grid up to 256 tokens
    extrapolated their norms 2.4x too fast)."""
    return {"b": _pick(rng, _BATCH), "c": _pick(rng, [64, 96, 128, 192, 256, 384, 512, 768, 1024, 1280]),
            "t": _pick(rng, [16, 49, 50, 64, 196, 197, 256, 784, 3136]), "sq": _pick(rng, [0, 1])}


def _batchnorm(rng: random.Random) -> dict[str, int]:
    shape = _image(rng)
    shape["t"] = 0  # kept in the id: the measurements of earlier calibrations stay valid
    return shape


# group -> (how many shapes in the full grid, shape sampler, builder)
GROUPS: dict[str, tuple[int, Callable[[random.Random], dict[str, int]], Callable[[dict[str, int]], Kernel]]] = {
    "conv": (600, _conv, _build_conv),
    "patchify": (30, _patchify, _build_conv),
    "depthwise_conv": (140, _depthwise, _build_depthwise),
    "linear": (160, _linear, _build_linear),
    "matmul": (90, _matmul, _build_matmul),
    "batchnorm": (60, _batchnorm, _build_norm),
    "layernorm": (60, _layernorm, _build_norm),
    "relu": (50, _tensor, _build_activation(nn.ReLU(inplace=True))),
    "relu6": (25, _tensor, _build_activation(nn.ReLU6(inplace=True))),
    "gelu": (35, _tensor, _build_activation(nn.GELU())),
    "silu": (35, _tensor, _build_activation(nn.SiLU(inplace=True))),
    "sigmoid": (30, _tensor, _build_activation(nn.Sigmoid())),
    "hardswish": (25, _tensor, _build_activation(nn.Hardswish())),
    "hardsigmoid": (25, _tensor, _build_activation(nn.Hardsigmoid())),
    "tanh": (15, _tensor, _build_activation(nn.Tanh())),
    "softmax": (35, _matmul, _build_softmax),
    "maxpool": (60, _window(_MAX_WINDOWS), _pool(lambda p: nn.MaxPool2d(p["k"], p["s"], p["pad"],
                                                                         ceil_mode=bool(p["ceil"])))),
    "avgpool": (30, _window(_AVG_WINDOWS), _pool(lambda p: nn.AvgPool2d(p["k"], p["s"], p["pad"],
                                                                        ceil_mode=bool(p["ceil"])))),
    "adaptiveavgpool": (30, _adaptive, _pool(lambda p: nn.AdaptiveAvgPool2d(p["o"]))),
    "add": (50, _tensor, _build_elementwise(torch.add, broadcast=False)),
    "mul": (45, _tensor, _build_elementwise(torch.mul, broadcast=True)),
    "free": (25, _free_shape, _free),
    "copy": (49, _copy, _build_copy),
}  # fmt: skip


def _size_ok(p: dict[str, Any], group: str, macs_scale: int = 1, elements_scale: int = 1) -> bool:
    """Within the grid's limits (larger for a GPU's twins: :func:`gpu_twins`)."""
    max_macs, max_elements = MAX_MACS * macs_scale, MAX_ELEMENTS * elements_scale
    b, hw = p.get("b", p.get("bh", 1)), p.get("hw", 1)
    if group in ("conv", "patchify"):
        out_hw = -(-hw // p["s"])
        macs = b * p["cout"] * out_hw * out_hw * p["cin"] // p["g"] * p["k"] ** 2
        big = max(b * p["cin"] * hw * hw, p["cin"] * p["cout"] * p["k"] ** 2 // p["g"])
        return macs <= max_macs and big <= max_elements
    if group == "linear":
        return b * max(p["t"], 1) * p["fin"] * p["fout"] <= max_macs and p["fin"] * p["fout"] <= max_elements
    if group in ("matmul", "softmax"):
        return p["bh"] * p["m"] * p["k"] * p["n"] <= max_macs and p["bh"] * p["m"] * p["n"] <= max_elements
    if group == "copy":  # a cat's inputs are n maps; a shuffle splits the channels in 2
        shuffle_ok = COPY_FAMILIES[p["op"]] != "shuffle" or p["c"] % 2 == 0
        return b * p["c"] * hw * hw * p.get("n", 1) <= max_elements and shuffle_ok
    return b * p.get("c", 1) * max(hw * hw, p.get("t", 0)) <= max_elements


def grid(per_group: int | None = None, seed: int = 0) -> list[KernelSpec]:
    """Every group's shapes, interleaved so that any prefix of the list covers every group
    in proportion (a calibration cut short by its budget still has all of them)."""
    ranked: list[tuple[float, str, KernelSpec]] = []
    for group, (count, draw, _) in GROUPS.items():
        rng = random.Random(f"{seed}:{group}")
        count = min(count, per_group) if per_group else count
        seen: set[KernelSpec] = set()
        for _attempt in range(count * 20):
            if len(seen) == count:
                break
            p = draw(rng)
            spec = KernelSpec(group, tuple(sorted(p.items())))
            if spec not in seen and _size_ok(p, group):
                ranked.append((len(seen) / count, group, spec))
                seen.add(spec)
    return [spec for _, _, spec in sorted(ranked, key=lambda r: (r[0], r[1]))]


GPU_TWIN_SCALE = 64  # a twin's batch: up to 64x its shape's ...
GPU_TWIN_LIMITS = (64, 16)  # ... within 64x the grid's MACs and 16x its elements (1.3 GB in float32)
GPU_TWIN_MIN = 4  # a twin less than 4x its shape adds little to the fit


def gpu_twins(specs: list[KernelSpec]) -> list[KernelSpec]:
    """Each shape, then its twin at a larger batch, for a GPU.

    The grid is sized for a CPU: on a GPU nearly all of it is bound by the kernel launch (an
    H200 ran the largest linear of a coarse grid at 3 TFLOP/s, where ViT-B/16's at batch 64 runs
    at about 45), so the fit extrapolated the throughput of large layers from launch-bound ones
    and over-predicted ViT-B/16 at batch 64 by 62%. The twin multiplies the batch (``b``, or
    ``bh`` for matmul and softmax) by the largest power of two up to GPU_TWIN_SCALE that keeps
    it within GPU_TWIN_LIMITS; a shape that cannot grow 4x has none. A twin too large for a
    smaller GPU's memory is recorded with its error and left out of the fit, as any kernel is.
    """
    out: list[KernelSpec] = []
    for spec in specs:
        out.append(spec)
        p, key = spec.p, "b" if "b" in spec.p else "bh"
        factor = GPU_TWIN_SCALE
        while factor >= GPU_TWIN_MIN and not _size_ok({**p, key: p[key] * factor}, spec.group, *GPU_TWIN_LIMITS):
            factor //= 2
        if factor >= GPU_TWIN_MIN:
            out.append(KernelSpec(spec.group, tuple(sorted({**p, key: p[key] * factor}.items()))))
    return out


def build(spec: KernelSpec) -> Kernel:
    return GROUPS[spec.group][2](spec.p)
