"""The modules that replace a convolution, and the builders that make them from one.

Each builder takes an ``nn.Conv2d`` and returns a module with the same input and output
shapes for every input size, or raises :class:`NotApplicable` with the reason. New convs
are freshly initialised (the architecture changes, so no weight carries over), on the
replaced conv's device and dtype. Children are numbered like ``nn.Sequential``'s, so a
separable conv without anything between its halves has the state-dict keys of
``tiny_alexnet_dw``'s (``conv2.conv.0.weight``, ``conv2.conv.1.weight``).

``between`` says what goes between the convs of a chain: ``"bn-relu"`` (MobileNet,
Inception-v3's BasicConv2d), ``"bn"``, ``"relu"`` or ``"none"`` (Xception, Keras'
``SeparableConv2D``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dnnmeter import names

BETWEEN = names.BETWEEN  # what goes between the two convolutions an op makes


class NotApplicable(Exception):
    """The op cannot rewrite this conv; the message is the reason, recorded as a skip."""


class SeparableConv2d(nn.Sequential):
    """Depthwise k x k (the original stride, padding, dilation) then pointwise 1x1."""


class FactorizedConv2d(nn.Sequential):
    """A chain of 3x3 convs with the receptive field of one k x k (Inception-v3)."""


class AsymmetricConv2d(nn.Sequential):
    """1 x n then n x 1 (Inception-v3's asymmetric factorisation)."""


class ConvNorm(nn.Sequential):
    """A conv and the batch norm added after it."""


# Built by these ops; residual blocks treat each as one conv (see residual.py).
COMPOSITES: tuple[type[nn.Module], ...] = (SeparableConv2d, FactorizedConv2d, AsymmetricConv2d, ConvNorm)


def _like(conv: nn.Conv2d) -> dict[str, Any]:
    return {"device": conv.weight.device, "dtype": conv.weight.dtype}


def _conv(like: nn.Conv2d, cin: int, cout: int, kernel: Any, bias: bool, **kw: Any) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, bias=bias, padding_mode=like.padding_mode, **kw, **_like(like))


def _between(channels: int, between: str, like: nn.Conv2d) -> list[nn.Module]:
    norm = [nn.BatchNorm2d(channels, **_like(like))] if between.startswith("bn") else []
    return norm + ([nn.ReLU()] if between.endswith("relu") else [])


def _chain(convs: list[nn.Conv2d], between: str, like: nn.Conv2d) -> list[nn.Module]:
    out: list[nn.Module] = []
    for i, conv in enumerate(convs):
        out.append(conv)
        if i < len(convs) - 1:
            out.extend(_between(conv.out_channels, between, like))
    return out


def _inner_bias(conv: nn.Conv2d, between: str) -> bool:
    # A bias before batch norm is cancelled by its mean; before another linear conv it
    # folds into that conv's bias. Only a ReLU alone makes an inner bias matter.
    return conv.bias is not None and between == "relu"


def _kernel_text(conv: nn.Conv2d) -> str:
    kh, kw = conv.kernel_size
    stride = "" if conv.stride == (1, 1) else f"/{conv.stride[0] if conv.stride[0] == conv.stride[1] else conv.stride}"
    return f"{kh}x{kw}{stride} {conv.in_channels}->{conv.out_channels}"


def separable(conv: nn.Conv2d, between: str) -> tuple[nn.Module, str]:
    """k x k conv -> depthwise k x k (same stride, padding, dilation) + pointwise 1x1."""
    if conv.groups != 1:
        raise NotApplicable(f"already a grouped conv (groups={conv.groups})")
    if conv.kernel_size == (1, 1):
        raise NotApplicable("1x1 conv: no spatial part to separate")
    cin = conv.in_channels
    dw = _conv(conv, cin, cin, conv.kernel_size, _inner_bias(conv, between), stride=conv.stride,
               padding=conv.padding, dilation=conv.dilation, groups=cin)
    pw = _conv(conv, cin, conv.out_channels, 1, conv.bias is not None)
    module = SeparableConv2d(*_chain([dw, pw], between, conv))
    mid = "" if between == "none" else f" + {between}"
    return module, f"{_kernel_text(conv)} -> depthwise {_kernel_text(dw)}{mid} + pointwise 1x1"


def _padding(conv: nn.Conv2d) -> tuple[int, int]:
    """Numeric padding; ``'same'`` only when it pads both sides equally."""
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if any(t % 2 for t in total):
            raise NotApplicable("padding='same' with an even kernel pads one side more")
        return (total[0] // 2, total[1] // 2)
    return conv.padding  # type: ignore[return-value]


def _chain_padding(p: int, stride: int, n: int) -> list[int]:
    """Paddings of n stride-1-after-the-first 3x3 convs giving the output size of one
    (2n+1)x(2n+1) conv with padding p and the given stride, for every input size.

    Stride 1: the paddings need only sum to p. Stride s: the later convs pad 1 (keeping
    their size), so the first must pad p - (n - 1).
    """
    if stride == 1:
        return [p // n + (1 if i < p % n else 0) for i in range(n)]
    first = p - (n - 1)
    if first < 0:
        raise NotApplicable(f"stride {stride} with padding {p} < {n - 1}: no chain keeps the output size")
    return [first] + [1] * (n - 1)


def _width(conv: nn.Conv2d) -> int:
    # Inception-v3 factorises at equal input and output widths; with unequal ones the
    # narrower width inside the chain keeps the saving (9 + 9 < 25 per channel pair).
    return min(conv.in_channels, conv.out_channels)


def factorized(conv: nn.Conv2d, between: str) -> tuple[nn.Module, str]:
    """k x k conv (k odd, >= 5) -> (k - 1) / 2 3x3 convs; the first carries the stride,
    the chain runs at the narrower of the input and output widths."""
    kh, kw = conv.kernel_size
    if kh != kw:
        raise NotApplicable(f"non-square kernel {kh}x{kw} (asymmetric handles those)")
    if kh < 5 or kh % 2 == 0:
        raise NotApplicable(f"kernel {kh}x{kw}: factorize needs an odd square kernel >= 5")
    if conv.dilation != (1, 1):
        raise NotApplicable(f"dilated conv (dilation={conv.dilation}) is not factorised")
    n = (kh - 1) // 2
    pads = [_chain_padding(p, s, n) for p, s in zip(_padding(conv), conv.stride)]
    widths = [conv.in_channels] + [_width(conv)] * (n - 1) + [conv.out_channels]
    convs = [
        _conv(conv, widths[i], widths[i + 1], 3,
              conv.bias is not None if i == n - 1 else _inner_bias(conv, between),
              stride=conv.stride if i == 0 else 1, padding=(pads[0][i], pads[1][i]), groups=conv.groups)
        for i in range(n)
    ]
    return FactorizedConv2d(*_chain(convs, between, conv)), f"{_kernel_text(conv)} -> {n} x 3x3 ({between} between)"


def asymmetric(conv: nn.Conv2d, between: str) -> tuple[nn.Module, str]:
    """kh x kw conv -> 1 x kw then kh x 1, meeting at the narrower width. Each dimension's
    stride, padding and dilation go to the conv whose kernel spans that dimension, so every
    output size is kept exactly."""
    kh, kw = conv.kernel_size
    if kh == 1 or kw == 1:
        raise NotApplicable(f"kernel {kh}x{kw} is already one-dimensional")
    same = conv.padding == "same"  # only with stride 1: each half may pad 'same' itself
    (ph, pw), (sh, sw), (dh, dw) = (0, 0) if same else _padding(conv), conv.stride, conv.dilation
    g, mid = conv.groups, _width(conv)
    row = _conv(conv, conv.in_channels, mid, (1, kw), _inner_bias(conv, between), stride=(1, sw),
                padding="same" if same else (0, pw), dilation=(1, dw), groups=g)
    col = _conv(conv, mid, conv.out_channels, (kh, 1), conv.bias is not None, stride=(sh, 1),
                padding="same" if same else (ph, 0), dilation=(dh, 1), groups=g)
    module = AsymmetricConv2d(*_chain([row, col], between, conv))
    return module, f"{_kernel_text(conv)} -> 1x{kw} + {between} + {kh}x1"


def with_norm(conv: nn.Conv2d) -> tuple[nn.Module, str]:
    """The conv itself (its weights kept) followed by a new batch norm."""
    return ConvNorm(conv, nn.BatchNorm2d(conv.out_channels, **_like(conv))), f"{_kernel_text(conv)} + BatchNorm2d"
