"""Operation modifications: depthwise-separable, factorised and asymmetric convolutions,
residual shortcuts and batch norm, applied to a copy of a model, and their cost.

>>> from dnnmeter.transforms import compare, modify
>>> model = modify("tiny_alexnet_dw", ["residual"])        # shortcuts around conv4, conv5
>>> compare("vgg11", ["depthwise-separable"]).ratio("macs")
0.139...

What each op changes by default, and how, is in docs/modify.md.
"""

from __future__ import annotations

from dnnmeter.transforms.compare import compare
from dnnmeter.transforms.convs import (
    BETWEEN,
    AsymmetricConv2d,
    ConvNorm,
    FactorizedConv2d,
    SeparableConv2d,
)
from dnnmeter.transforms.residual import Residual
from dnnmeter.transforms.result import (
    COST_FIELDS,
    Change,
    Cost,
    ModifyResult,
    Rewrite,
    Skip,
)
from dnnmeter.transforms.rewrite import (
    OPS,
    ModifyWarning,
    NothingToModifyError,
    modify,
    rewrite,
)

__all__ = [
    "BETWEEN",
    "COST_FIELDS",
    "OPS",
    "AsymmetricConv2d",
    "Change",
    "ConvNorm",
    "Cost",
    "FactorizedConv2d",
    "ModifyResult",
    "ModifyWarning",
    "NothingToModifyError",
    "Residual",
    "Rewrite",
    "SeparableConv2d",
    "Skip",
    "compare",
    "modify",
    "rewrite",
]
