"""Small networks measured whole during calibration, to fit what single kernels miss.

A model's latency is more than the sum of its layers timed alone: each layer's call costs
Python and dispatch time, and a layer's inputs arrive from the previous one rather than
sitting warm in cache. These networks are built here, not taken from the zoo, so no model
that a benchmark validates on is ever used to calibrate:

- three small ones at 64 x 64 (a plain CNN, a mobile block stack with squeeze-excitation and
  residual additions, a small transformer), at batch 1 and 8;
- three at the zoo's sizes, at batch 1 (224 x 224 images, widths up to 640, 196 tokens of 192):
  a mobile stack (234 rows), a residual CNN and a transformer. In the small ones every layer's
  data stays in the core's cache from one call to the next, so the mobile and transformer ones
  showed 2-5 us a layer beyond their kernels, where networks of the zoo's sizes pay 11-36 us
  (:func:`~dnnmeter.prediction.predictor.fit_overhead`).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


def plain_cnn() -> nn.Module:
    layers: list[nn.Module] = []
    for cin, cout in ((3, 32), (32, 64), (64, 128), (128, 128)):
        layers += [*_conv_bn(cin, cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 100))


class _MobileBlock(nn.Module):
    def __init__(self, c: int, expand: int = 4) -> None:
        super().__init__()
        hidden = c * expand
        self.expand = nn.Sequential(*_conv_bn(c, hidden, 1), nn.Hardswish())
        self.depthwise = nn.Sequential(*_conv_bn(hidden, hidden, 3, groups=hidden), nn.Hardswish())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden, hidden // 4, 1), nn.ReLU(),
                                nn.Conv2d(hidden // 4, hidden, 1), nn.Hardsigmoid())
        self.project = nn.Sequential(*_conv_bn(hidden, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(self.expand(x))
        return x + self.project(h * self.se(h))


def mobile() -> nn.Module:
    return nn.Sequential(*_conv_bn(3, 24, 3, 2), nn.SiLU(), _MobileBlock(24), _MobileBlock(24),
                         *_conv_bn(24, 48, 3, 2), _MobileBlock(48), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(48, 100))


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


def tiny_transformer() -> nn.Module:
    return nn.Sequential(nn.Linear(48, 128), _Attention(128, 4), _Attention(128, 4), nn.LayerNorm(128))


def mobile_224() -> nn.Module:
    layers: list[nn.Module] = [*_conv_bn(3, 16, 3, 2), nn.Hardswish()]
    c = 16
    for width, blocks, stride in ((16, 1, 1), (24, 2, 2), (40, 3, 2), (80, 3, 2), (112, 2, 1), (160, 3, 2)):
        if width != c:
            layers += [*_conv_bn(c, width, 3, stride), nn.Hardswish()]
            c = width
        layers += [_MobileBlock(c) for _ in range(blocks)]
    return nn.Sequential(*layers, *_conv_bn(c, 640, 1), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(640, 1000))


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c, c), nn.ReLU(inplace=True), *_conv_bn(c, c))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def residual_224() -> nn.Module:
    layers: list[nn.Module] = [*_conv_bn(3, 32, 3, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    c = 32
    for width in (32, 64, 128, 256):
        if width != c:
            layers += [*_conv_bn(c, width, 3, 2), nn.ReLU(inplace=True)]
            c = width
        layers += [_Residual(c), _Residual(c)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))


def transformer_196() -> nn.Module:
    return nn.Sequential(nn.Linear(768, 192), *[_Attention(192, 3) for _ in range(6)], nn.LayerNorm(192))


# name -> (builder, input size without the batch, batch sizes measured)
MODELS = {
    "plain_cnn": (plain_cnn, (3, 64, 64), (1, 8)),
    "mobile": (mobile, (3, 64, 64), (1, 8)),
    "tiny_transformer": (tiny_transformer, (64, 48), (1, 8)),
    "mobile_224": (mobile_224, (3, 224, 224), (1,)),
    "residual_224": (residual_224, (3, 224, 224), (1,)),
    "transformer_196": (transformer_196, (196, 768), (1,)),
}
