"""The compute layers of a model as shape records, found on the meta device.

Every product a network computes (convolution, linear, batched matmul, attention) is one
:class:`LayerShape` in the notation of Sze et al. (*Efficient Processing of Deep Neural
Networks*, 2017) that Eyeriss uses: N images of C channels of H x W, M filters of
C/groups x R x S, stride U, an output of E x F. Linear and matmul layers are written as the
same 1 x 1 convolution-like GEMM (see :func:`linear_layer`, :func:`matmul_layer`), so that one
set of formulas (``dnnmeter.hardware.accesses``, ``.systolic``) covers every layer.

>>> from dnnmeter.hardware import extract_layers
>>> layers = extract_layers("alexnet")
>>> [(l.name, l.kind, l.macs) for l in layers][:2]
[('features.0', 'conv', 70276800), ('features.3', 'conv', 223948800)]
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from dnnmeter._serial import Record
from dnnmeter.analysis import parse_input_size
from dnnmeter.analysis import fast_shapes
from dnnmeter.analysis.meta_pass import ScopedMode, run_on_meta
from dnnmeter.errors import InvalidInputError
from dnnmeter.zoo import create_model, is_onnx_path, resolve

__all__ = [
    "LAYER_KINDS",
    "LayerShape",
    "conv_layer",
    "extract_layers",
    "gemm_shape",
    "linear_layer",
    "matmul_layer",
    "original_alexnet_layers",
]

LAYER_KINDS: tuple[str, ...] = ("conv", "depthwise_conv", "linear", "matmul")
Pair = tuple[int, int]


@dataclass(frozen=True, slots=True)
class LayerDims(Record):
    """A product layer's name, kind and dimensions in the notation of Sze et al.: what
    :class:`LayerShape` and the stored :class:`~dnnmeter.hardware.records.HardwareLayer` begin with."""

    name: str
    kind: str
    N: int
    C: int
    H: int
    W: int
    M: int
    R: int
    S: int
    E: int
    F: int


@dataclass(frozen=True, slots=True)
class LayerShape(LayerDims):
    """One product layer. Counts are for the whole batch; ``U``, ``pad`` and ``dilation`` are
    (height, width) pairs; H and W are the *unpadded* input.

    Linear (input rows x in_features -> out_features) is a 1 x 1 convolution of ``N = rows``
    one-pixel images: C = in_features, M = out_features, H = W = R = S = E = F = 1.
    A batched matmul of ``b`` products (m x k) @ (k x n) is a grouped 1 x 1 convolution with
    ``groups = b``: N = 1, C = b*k, M = b*n, H = E = m, W = F = 1, so that each group is one
    product, its "weights" (the right operand) are used E = m times and its inputs M/groups = n
    times, as the reuse formulas expect.
    """

    U: Pair = (1, 1)
    pad: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1

    _derived: ClassVar[tuple[str, ...]] = ("macs",)

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise InvalidInputError(f"{self.name}: unknown layer kind {self.kind!r}; use one of {LAYER_KINDS}")
        if self.C % self.groups or self.M % self.groups:
            raise InvalidInputError(
                f"{self.name}: channels C={self.C} and M={self.M} must both divide by groups={self.groups}"
            )
        sizes = (self.N, self.C, self.H, self.W, self.M, self.R, self.S, self.E, self.F, self.groups)
        if min(sizes) < 1 or min(*self.U, *self.dilation) < 1 or min(self.pad) < 0:
            raise InvalidInputError(f"{self.name}: every size, stride and dilation must be >= 1")

    @property
    def macs(self) -> int:
        """N * M * (C/groups) * R * S * E * F, as dnnmeter.analysis counts a convolution."""
        return self.N * self.M * (self.C // self.groups) * self.R * self.S * self.E * self.F



def gemm_shape(layer: LayerShape) -> tuple[int, int, int, int]:
    """The layer as ``groups`` matrix products, each (P x K) @ (K x Q), by im2col:
    P = N*E*F output pixels, K = C/groups*R*S window, Q = M/groups filters.
    Returns (P, K, Q, groups)."""
    return (layer.N * layer.E * layer.F, layer.C // layer.groups * layer.R * layer.S,
            layer.M // layer.groups, layer.groups)


def _pair(value: int | tuple[int, ...] | list[int]) -> Pair:
    if isinstance(value, int):
        return (value, value)
    items = tuple(int(v) for v in value)
    return (items[0], items[-1]) if items else (1, 1)


def _conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def conv_layer(name: str, C: int, H: int, W: int, M: int, R: int, S: int | None = None,
               stride: int | Pair = 1, pad: int | Pair = 0, dilation: int | Pair = 1,
               groups: int = 1, N: int = 1) -> LayerShape:
    """A convolution from its input and kernel; E and F follow torch's output-size rule."""
    S = R if S is None else S
    U, P, D = _pair(stride), _pair(pad), _pair(dilation)
    E, F = _conv_out(H, R, U[0], P[0], D[0]), _conv_out(W, S, U[1], P[1], D[1])
    if E < 1 or F < 1:
        raise InvalidInputError(f"{name}: a {R}x{S} kernel does not fit a {H}x{W} input with padding {P}")
    kind = "depthwise_conv" if groups > 1 and groups == C else "conv"
    return LayerShape(name, kind, N, C, H, W, M, R, S, E, F, U, P, D, groups)


def linear_layer(name: str, in_features: int, out_features: int, rows: int = 1) -> LayerShape:
    """``rows`` x in_features times in_features x out_features, as a 1 x 1 convolution."""
    return LayerShape(name, "linear", rows, in_features, 1, 1, out_features, 1, 1, 1, 1)


def matmul_layer(name: str, batch: int, m: int, k: int, n: int) -> LayerShape:
    """``batch`` products (m x k) @ (k x n), as a grouped 1 x 1 convolution (groups = batch)."""
    return LayerShape(name, "matmul", 1, batch * k, m, 1, batch * n, 1, 1, m, 1, groups=batch)


def original_alexnet_layers(batch_size: int = 1) -> list[LayerShape]:
    """The two-tower AlexNet of Krizhevsky et al. (2012) on a 227 x 227 x 3 input.

    conv2, conv4 and conv5 see only their own tower's half of the channels (groups = 2);
    this is what makes its 724.4M MACs differ from torchvision's single-tower 714M.
    """
    n = batch_size
    return [
        conv_layer("conv1", 3, 227, 227, 96, 11, stride=4, N=n),            # -> 55 x 55
        conv_layer("conv2", 96, 27, 27, 256, 5, pad=2, groups=2, N=n),      # -> 27 x 27
        conv_layer("conv3", 256, 13, 13, 384, 3, pad=1, N=n),               # -> 13 x 13
        conv_layer("conv4", 384, 13, 13, 384, 3, pad=1, groups=2, N=n),
        conv_layer("conv5", 384, 13, 13, 256, 3, pad=1, groups=2, N=n),
        linear_layer("fc6", 256 * 6 * 6, 4096, rows=n),
        linear_layer("fc7", 4096, 4096, rows=n),
        linear_layer("fc8", 4096, 1000, rows=n),
    ]


# --- extraction on the meta device ---------------------------------------------------------

aten = torch.ops.aten
_CONV_OPS = {aten.convolution, aten._convolution, aten.convolution_overrideable}
# Attention kernels: the scaled_dot_product ones take (B, heads, L, E); the lower-level
# forward kernels take (B, L, heads, E).
_ATTENTION_OPS = {
    getattr(aten, n) for n in (
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
    ) if hasattr(aten, n)
}
_ATTENTION_BLHE_OPS = {
    getattr(aten, n) for n in ("_efficient_attention_forward", "_flash_attention_forward") if hasattr(aten, n)
}
_MATMUL_OPS = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm} | _ATTENTION_OPS | _ATTENTION_BLHE_OPS


def _conv_record(args: tuple[Any, ...], out: torch.Tensor) -> LayerShape | str:
    x, w = args[0], args[1]
    stride, padding, dilation = args[3], args[4], args[5]
    transposed = bool(args[6]) if len(args) > 6 else False
    groups = int(args[8]) if len(args) > 8 else 1
    if transposed:
        return "transposed convolution"
    if x.dim() not in (3, 4):
        return f"{x.dim() - 2}-d convolution"
    kind = "depthwise_conv" if groups > 1 and w.shape[1] == 1 and x.shape[1] == groups else "conv"
    if x.dim() == 3:  # 1-d: the length is the height, the width is 1
        return LayerShape("", kind, x.shape[0], x.shape[1], x.shape[2], 1, w.shape[0], w.shape[2], 1,
                          out.shape[2], 1, (_pair(stride)[0], 1), (_pair(padding)[0], 0),
                          (_pair(dilation)[0], 1), groups)
    n, c, h, wd = x.shape
    m, _, r, s = w.shape
    return LayerShape("", kind, n, c, h, wd, m, r, s, out.shape[2], out.shape[3],
                      _pair(stride), _pair(padding), _pair(dilation), groups)


def _matmul_records(func: Any, args: tuple[Any, ...]) -> list[LayerShape]:
    packet = func.overloadpacket
    if packet in (aten.mm, aten.addmm):
        a, b = (args[0], args[1]) if packet is aten.mm else (args[1], args[2])
        return [linear_layer("", a.shape[1], b.shape[1], rows=a.shape[0])]
    if packet in (aten.bmm, aten.baddbmm):
        a, b = (args[0], args[1]) if packet is aten.bmm else (args[1], args[2])
        return [matmul_layer("", a.shape[0], a.shape[1], a.shape[2], b.shape[2])]
    # attention: Q K^T (L x E by E x S), then the weights times V (L x S by S x Ev)
    q, k, v = args[0], args[1], args[2]
    seq_dim = 1 if packet in _ATTENTION_BLHE_OPS else 2
    batch = q.shape[0] * q.shape[3 - seq_dim]
    length, s_len = q.shape[seq_dim], k.shape[seq_dim]
    return [matmul_layer("", batch, length, q.shape[-1], s_len),
            matmul_layer("", batch, length, s_len, v.shape[-1])]

class _LayerRecorder(ScopedMode):
    """Records every product op, named by the innermost module running it."""

    def __init__(self, named_modules: list[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.names = {id(m): name for name, m in named_modules}
        self.layers: list[LayerShape] = []
        self.skipped: dict[str, int] = {}
        self._stack: list[str] = []
        self._used: dict[str, int] = {}

    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        self._stack.append(self.names.get(id(module), self._stack[-1] if self._stack else ""))

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._stack:
            self._stack.pop()

    def _label(self, op: str) -> str:
        base = (self._stack[-1] if self._stack else "") or op
        count = self._used.get(base, 0) + 1
        self._used[base] = count
        return base if count == 1 else f"{base}#{count}"

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = fast_shapes.run(func, args, kwargs)
        packet = func.overloadpacket
        records: list[LayerShape] = []
        if packet in _CONV_OPS:
            found = _conv_record(args, out)
            if isinstance(found, str):
                self.skipped[found] = self.skipped.get(found, 0) + 1
            else:
                records = [found]
        elif packet in _MATMUL_OPS:
            records = _matmul_records(func, args)
        for record in records:
            self.layers.append(_renamed(record, self._label(packet.__name__)))
        return out


def _renamed(layer: LayerShape, name: str) -> LayerShape:
    fields = asdict(layer)
    fields["name"] = name
    return LayerShape(**fields)


def extract_layers(model: str | nn.Module, input_size: Any = None, batch_size: int = 1) -> list[LayerShape]:
    """The product layers of ``model`` in execution order, found by a forward pass on the
    meta device (nothing is computed or allocated).

    ``model`` is a zoo name or an ``nn.Module`` (left untouched, as by ``dnnmeter.analyze``);
    ``input_size`` is N, (C, H, W) or "C,H,W" and defaults to the model's own. A layer is
    named after the module that ran it (``name#2`` for a second record in the same module).
    Products this model cannot express (transposed and 3-d convolutions) are left out with
    a warning naming them.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"bad batch size {batch_size!r}: give an integer >= 1")
    size = parse_input_size(input_size)
    if isinstance(model, str):
        if is_onnx_path(model):
            raise InvalidInputError(f"{model}: layer extraction needs a torch model; give a zoo name or nn.Module")
        label = model
        size = size or resolve(model).input_size
        module = create_model(model)
    else:
        label, module = type(model).__name__, model
        size = size or tuple(getattr(model, "input_size", None) or (3, 224, 224))
    return _record(module, label, tuple(size), batch_size)


def _record(model: nn.Module, label: str, size: tuple[int, ...], batch_size: int) -> list[LayerShape]:
    named = list(model.named_modules())
    on_meta = all(t.is_meta for t in model.state_dict(keep_vars=True).values())
    recorder = _LayerRecorder(named)
    run_on_meta(model, named, recorder, label, size, batch_size, on_meta)
    if recorder.skipped:
        found = ", ".join(f"{k} x{v}" for k, v in sorted(recorder.skipped.items()))
        warnings.warn(f"{label}: left out of the hardware model (not expressible as LayerShape): {found}",
                      stacklevel=3)
    return recorder.layers
