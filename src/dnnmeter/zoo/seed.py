"""Seed architectures that neither torchvision nor timm has.

BN-AlexNet, NIN, BN-NIN and ENet are networks of Canziani, Paszke & Culurciello (2017),
*An Analysis of Deep Neural Network Models for Practical Applications*; the Tiny-ImageNet
AlexNet family is the network of the hardware-perspective study, made depthwise-separable
and then residual. docs/seed-models.md gives each one's source, parameter count, MACs and
deviations.

>>> from dnnmeter.zoo import create_model
>>> model = create_model("tiny_alexnet_dw", device="cpu", num_classes=10)

Constructors only register modules: no arithmetic on parameter values, so that
``dnnmeter.zoo.meta_init()`` can build them on the meta device.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dnnmeter.errors import ModelBuildError
from dnnmeter.zoo.registry import ModelEntry, ModelRegistry

# Torch7's SpatialBatchNormalization(n, 1e-3), used by the Torch models these follow.
_TORCH7_BN_EPS = 1e-3


# --- BN-AlexNet ---------------------------------------------------------------------------


class BNAlexNet(nn.Module):
    """BN-AlexNet, as measured by Canziani et al. (2017).

    Follows ``models/alexnetowtbn_cudnn.lua`` of soumith/imagenet-multiGPU.torch: the
    single-tower AlexNet of Krizhevsky, *One weird trick for parallelizing convolutional
    neural networks* (2014, arXiv:1404.5997), with batch norm (eps 1e-3) after every conv
    and after the first two fully connected layers.

    conv  11x11/4 pad 2, 64               224 -> 55
    pool  max 3/2                         55 -> 27
    conv  5x5 pad 2, 192                  27
    pool  max 3/2                         27 -> 13
    conv  3x3 pad 1, 384 then 256, 256    13
    pool  max 3/2                         13 -> 6
    fc    dropout, 9216 -> 4096, BN; dropout, 4096 -> 4096, BN; 4096 -> classes

    Returns logits (the Torch model ends in LogSoftMax).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(3, 64, 11, stride=4, padding=2),
            nn.MaxPool2d(3, 2),
            *_conv_bn_relu(64, 192, 5, padding=2),
            nn.MaxPool2d(3, 2),
            *_conv_bn_relu(192, 384, 3, padding=1),
            *_conv_bn_relu(384, 256, 3, padding=1),
            *_conv_bn_relu(256, 256, 3, padding=1),
            nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            *_linear_bn_relu(256 * 6 * 6, 4096),
            nn.Dropout(dropout),
            *_linear_bn_relu(4096, 4096),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn_relu(
    cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0
) -> list[nn.Module]:
    # Torch7 convolutions keep their bias even when batch norm follows.
    return [
        nn.Conv2d(cin, cout, kernel, stride, padding),
        nn.BatchNorm2d(cout, eps=_TORCH7_BN_EPS),
        nn.ReLU(inplace=True),
    ]


def _linear_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.BatchNorm1d(cout, eps=_TORCH7_BN_EPS), nn.ReLU(inplace=True)]


# --- Network in Network ---------------------------------------------------------------------


def _mlpconv(
    cin: int,
    cout: int,
    kernel: int,
    stride: int,
    padding: int,
    batch_norm: bool,
    last: int | None = None,
) -> list[nn.Module]:
    """One NIN mlpconv block: a k x k conv and two 1x1 convs, each followed by ReLU."""
    widths = [(cin, cout, kernel), (cout, cout, 1), (cout, last or cout, 1)]
    layers: list[nn.Module] = []
    for i, (a, b, k) in enumerate(widths):
        layers.append(nn.Conv2d(a, b, k, stride if i == 0 else 1, padding if i == 0 else 0))
        if batch_norm:
            layers.append(nn.BatchNorm2d(b, eps=_TORCH7_BN_EPS))
        layers.append(nn.ReLU(inplace=True))
    return layers


class NIN(nn.Module):
    """Network in Network for ImageNet (Lin, Chen & Yan, *Network In Network*, ICLR 2014).

    Follows the ImageNet NIN of the Caffe model zoo (``nin_imagenet`` train_val.prototxt):
    four mlpconv blocks and a global average pool, no fully connected layer; the last 1x1
    conv has one channel per class. Caffe rounds pooled sizes up, hence ``ceil_mode``.

    block 1  conv 11x11/4 96, 1x1 96, 1x1 96; max 3/2    224 -> 54 -> 27
    block 2  conv 5x5 pad 2 256, 1x1 256, 1x1 256; max   27 -> 13
    block 3  conv 3x3 pad 1 384, 1x1 384, 1x1 384; max   13 -> 6
             dropout 0.5
    block 4  conv 3x3 pad 1 1024, 1x1 1024, 1x1 classes  6
    head     global average pool (6x6)

    Every conv is followed by ReLU, the last one too, as in the prototxt.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_mlpconv(3, 96, 11, 4, 0, batch_norm=False),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_mlpconv(96, 256, 5, 1, 2, batch_norm=False),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_mlpconv(256, 384, 3, 1, 1, batch_norm=False),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Dropout(dropout),
            *_mlpconv(384, 1024, 3, 1, 1, batch_norm=False, last=num_classes),
        )
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BNNIN(nn.Module):
    """BN-NIN, as measured by Canziani et al. (2017).

    Follows ``models/ninbn.lua`` of soumith/imagenet-multiGPU.torch, the Torch7 NIN with
    batch norm (eps 1e-3) after every conv. It differs from the Caffe NIN (:class:`NIN`)
    beyond batch norm: conv1 and the pools are padded, the last 1x1 conv keeps 1024
    channels, and a linear layer maps the pooled 1024 features to the classes.

    block 1  conv 11x11/4 pad 5 96, 1x1 96, 1x1 96      224 -> 56
             max 3/2 pad 1                               56 -> 28
    block 2  conv 5x5 pad 2 256, 1x1 256, 1x1 256; max   28 -> 14
    block 3  conv 3x3 pad 1 384, 1x1 384, 1x1 384; max   14 -> 7
    block 4  conv 3x3 pad 1 1024, 1x1 1024, 1x1 1024     7
    head     average pool 7x7, linear 1024 -> classes
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_mlpconv(3, 96, 11, 4, 5, batch_norm=True),
            nn.MaxPool2d(3, 2, padding=1),
            *_mlpconv(96, 256, 5, 1, 2, batch_norm=True),
            nn.MaxPool2d(3, 2, padding=1),
            *_mlpconv(256, 384, 3, 1, 1, batch_norm=True),
            nn.MaxPool2d(3, 2, padding=1),
            *_mlpconv(384, 1024, 3, 1, 1, batch_norm=True),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# --- ENet -----------------------------------------------------------------------------------


class ENetInitial(nn.Module):
    """ENet's initial block: a 3x3/2 conv (13 maps) beside a 2x2 max pool (3 maps), joined."""

    def __init__(self, in_channels: int = 3, out_channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, 2, 1)
        self.pool = nn.MaxPool2d(2, 2)
        self.bn = nn.BatchNorm2d(out_channels, eps=_TORCH7_BN_EPS)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class ENetBottleneck(nn.Module):
    """ENet's bottleneck: 1x1 projection (2x2/2 when downsampling), a main conv, 1x1 expansion.

    The main conv is a 3x3 (``dilation`` > 1 makes it dilated) or, with ``asymmetric=k``,
    a 1 x k conv followed by a k x 1 conv. Projection and expansion have no bias. The
    shortcut is the identity, max-pooled when downsampling and zero-padded to the new
    width, so it adds no parameters.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        downsample: bool = False,
        dilation: int = 1,
        asymmetric: int = 0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        mid = cout // 4
        stride = 2 if downsample else 1
        self.project = nn.Sequential(
            nn.Conv2d(cin, mid, stride, stride, bias=False), *_bn_prelu(mid)
        )
        self.conv = nn.Sequential(*_enet_main_conv(mid, dilation, asymmetric), *_bn_prelu(mid))
        self.expand = nn.Sequential(
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout, eps=_TORCH7_BN_EPS),
            nn.Dropout2d(dropout),  # spatial dropout: whole feature maps
        )
        self.pool = nn.MaxPool2d(2, 2) if downsample else nn.Identity()
        self.extra_channels = cout - cin
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.pool(x)
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(self.expand(self.conv(self.project(x))) + shortcut)


def _bn_prelu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels, eps=_TORCH7_BN_EPS), nn.PReLU(channels)]


def _enet_main_conv(channels: int, dilation: int, asymmetric: int) -> list[nn.Module]:
    if asymmetric:
        pad = (asymmetric - 1) // 2
        return [
            nn.Conv2d(channels, channels, (1, asymmetric), padding=(0, pad), bias=False),
            nn.Conv2d(channels, channels, (asymmetric, 1), padding=(pad, 0)),
        ]
    return [nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)]


def _enet_stage(channels: int) -> list[nn.Module]:
    """Bottlenecks x.1 to x.8 of stages 2 and 3 (Table 1)."""
    kinds: list[dict[str, int]] = [
        {}, {"dilation": 2}, {"asymmetric": 5}, {"dilation": 4},
        {}, {"dilation": 8}, {"asymmetric": 5}, {"dilation": 16},
    ]  # fmt: skip
    return [ENetBottleneck(channels, channels, **kind) for kind in kinds]


class ENet(nn.Module):
    """ENet's encoder as an ImageNet classifier, as Canziani et al. (2017) measured it.

    Follows Table 1 of Paszke, Chaurasia, Kim & Culurciello, *ENet: A Deep Neural Network
    Architecture for Real-Time Semantic Segmentation* (2016, arXiv:1606.02147), stages
    initial to 3, with the details of the authors' Torch7 encoder: PReLU everywhere,
    projection ratio 4, spatial dropout 0.01 in stage 1 and 0.1 afterwards. The decoder is
    replaced by a global average pool and a linear classifier.

    initial                  16        224 -> 112
    bottleneck1.0 (down)     64        112 -> 56
    4 x bottleneck1.x        64        56
    bottleneck2.0 (down)     128       56 -> 28
    bottleneck2.1 - 2.8      128       regular, dilated 2, asymmetric 5, dilated 4,
                                       regular, dilated 8, asymmetric 5, dilated 16
    bottleneck3.1 - 3.8      128       as stage 2, no downsampling
    head                     classes   global average pool, linear 128 -> classes
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            ENetInitial(3, 16),
            ENetBottleneck(16, 64, downsample=True, dropout=0.01),
            *[ENetBottleneck(64, 64, dropout=0.01) for _ in range(4)],
            ENetBottleneck(64, 128, downsample=True),
            *_enet_stage(128),
            *_enet_stage(128),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# --- The Tiny-ImageNet AlexNet family -------------------------------------------------------


class TinyConv(nn.Module):
    """3x3 conv (or depthwise 3x3 + pointwise 1x1), batch norm, optional identity shortcut, ReLU.

    Convs have no bias since batch norm follows; the separable form has no batch norm
    between its depthwise and pointwise halves (as in Xception and Keras'
    ``SeparableConv2D``). The shortcut is added before the ReLU, as in ResNet.
    """

    def __init__(
        self, cin: int, cout: int, stride: int = 1, depthwise: bool = False, residual: bool = False
    ) -> None:
        super().__init__()
        if residual and (cin != cout or stride != 1):
            raise ValueError(
                f"an identity shortcut needs cin == cout and stride 1, got {cin}->{cout}/{stride}"
            )
        if depthwise:
            self.conv: nn.Module = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                nn.Conv2d(cin, cout, 1, bias=False),
            )
        else:
            self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return F.relu(y + x if self.residual else y)


class TinyAlexNet(nn.Module):
    """The AlexNet-like Tiny-ImageNet network of the hardware-perspective study.

    Five 3x3 convs and one linear layer on 64x64 inputs, 200 classes; ``depthwise`` makes
    conv2-conv5 depthwise-separable (conv1 sees only 3 channels and stays standard), and
    ``residual`` adds identity shortcuts around conv4 and conv5.

    conv1  3x3/2 pad 1, 32, BN, ReLU         64 -> 32
    conv2  3x3/2 pad 1, 64, BN, ReLU         32 -> 16
    conv3  3x3 pad 1, 128, BN, ReLU          16
    pool   max 3/2                           16 -> 7
    conv4  3x3 pad 1, 128, BN, (+x), ReLU    7
    conv5  3x3 pad 1, 128, BN, (+x), ReLU    7
    head   global average pool, linear 128 -> classes

    The study gives channels, strides and the 7x7 maps of conv4/conv5; the pool's place,
    padding, bias and batch norm are chosen so that the parameter count matches the
    study's 415,656 when batch norm's running statistics are counted as Keras counts
    them (see docs/seed-models.md and :func:`keras_total_params`).
    """

    def __init__(
        self, num_classes: int = 200, depthwise: bool = False, residual: bool = False
    ) -> None:
        super().__init__()
        self.conv1 = TinyConv(3, 32, stride=2)
        self.conv2 = TinyConv(32, 64, stride=2, depthwise=depthwise)
        self.conv3 = TinyConv(64, 128, depthwise=depthwise)
        self.pool = nn.MaxPool2d(3, 2)
        self.conv4 = TinyConv(128, 128, depthwise=depthwise, residual=residual)
        self.conv5 = TinyConv(128, 128, depthwise=depthwise, residual=residual)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv3(self.conv2(self.conv1(x))))
        return self.classifier(self.conv5(self.conv4(x)))


def keras_total_params(model: nn.Module) -> int:
    """Parameters plus batch norm's running mean and variance: Keras' "Total params".

    The Tiny-ImageNet study's figures count this way; ``sum(p.numel() for p in
    model.parameters())`` does not include the running statistics.
    """
    stats = sum(
        b.numel()
        for name, b in model.named_buffers()
        if name.rsplit(".", 1)[-1] in ("running_mean", "running_var")
    )
    return sum(p.numel() for p in model.parameters()) + stats


# --- Registration ---------------------------------------------------------------------------


def _build(
    cls: type[nn.Module], fixed: dict[str, Any], weights: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build ``cls``; ``weights`` may be a local state-dict file (none are published)."""
    model = cls(**fixed, **kwargs)
    if weights is None:
        return model
    if not os.path.isfile(weights):
        raise ModelBuildError(
            f"{cls.__name__}: seed models have no published weights; pass --weights FILE "
            f"with a state dict saved from this model ({weights!r} is not a file)"
        )
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


_IMAGENET = (3, 224, 224)
_TINY = (3, 64, 64)

_SEEDS: tuple[tuple[str, type[nn.Module], dict[str, Any], tuple[int, int, int], str, str], ...] = (
    ("bn_alexnet", BNAlexNet, {}, _IMAGENET, "alexnet",
     "AlexNet ('one weird trick' single tower) with batch norm; Torch7 alexnetowtbn"),
    ("nin", NIN, {}, _IMAGENET, "nin",
     "Network in Network for ImageNet (Lin et al. 2014); Caffe model zoo layout"),
    ("bn_nin", BNNIN, {}, _IMAGENET, "nin",
     "Network in Network with batch norm; Torch7 ninbn"),
    ("enet", ENet, {}, _IMAGENET, "enet",
     "ENet encoder (Paszke et al. 2016) with a global-pool linear classifier"),
    ("tiny_alexnet", TinyAlexNet, {}, _TINY, "tiny_alexnet",
     "AlexNet-like Tiny-ImageNet network: 5 convs, 1 linear, 200 classes"),
    ("tiny_alexnet_dw", TinyAlexNet, {"depthwise": True}, _TINY, "tiny_alexnet",
     "tiny_alexnet with depthwise-separable conv2-conv5"),
    ("tiny_alexnet_dw_res", TinyAlexNet, {"depthwise": True, "residual": True}, _TINY,
     "tiny_alexnet",
     "tiny_alexnet_dw with identity shortcuts around conv4 and conv5"),
)  # fmt: skip


def populate(registry: ModelRegistry) -> None:
    for name, cls, fixed, size, family, description in _SEEDS:
        registry.add(
            ModelEntry(
                name=name,
                source="seed",
                input_size=size,
                build=partial(_build, cls, fixed),
                family=family,
                description=description,
            )
        )
