"""The conv-level ops: each replaces selected convs with a module of the same shapes.

The structure (execution order, what follows a conv) comes from :mod:`structure`: the fx
graph when the model traces, the module tree when it does not. The replacement itself is
module substitution on the copy in both cases, so the model keeps its class, its forward
and the names of everything not replaced (weights load across the change; see
docs/modify.md). ``residual``, which changes the data flow, lives in :mod:`residual`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from dnnmeter.transforms import convs
from dnnmeter.transforms.context import Context
from dnnmeter.transforms.select import selected
from dnnmeter.transforms.structure import View, view

Build = Callable[[nn.Conv2d, Context], tuple[nn.Module, str]]
DefaultSkip = Callable[[str, nn.Conv2d, View], "str | None"]

STEM = "the network's first conv (its input has the image's few channels); name it in layers to change it"


def _stem(name: str, conv: nn.Conv2d, v: View) -> str | None:
    return STEM if v.convs and name == v.convs[0] else None


def _xception_half(name: str, conv: nn.Conv2d, v: View) -> str | None:
    if conv.groups > 1 and conv.groups == conv.in_channels and name in v.followed_by_conv:
        return "depthwise half of a separable conv (nothing between it and the pointwise); name it in layers to add one"
    return None


def _followed_by_norm(name: str, conv: nn.Conv2d, v: View) -> str | None:
    return "already followed by a norm" if name in v.followed_by_norm else None


def substitute(model: nn.Module, ctx: Context, op: str, build: Build, default_skip: DefaultSkip | None) -> nn.Module:
    """Replace each selected conv by ``build(conv)``; record changes and skips.

    ``default_skip`` applies only when no layers were named: naming a layer asks for it.
    """
    v = view(model)
    for name in v.convs:
        if not selected(name, ctx.patterns):
            continue
        conv = model.get_submodule(name)
        reason = default_skip(name, conv, v) if default_skip and ctx.patterns is None else None
        if reason is None and op == "batchnorm":
            reason = _followed_by_norm(name, conv, v)  # even when named: a second norm is never wanted
        elif reason is None and type(conv) is not nn.Conv2d:
            # e.g. timm's Conv2dSame pads in its forward: its attributes do not tell its shapes
            reason = f"{type(conv).__name__} is a Conv2d subclass with a forward of its own"
        if reason:
            ctx.skip(name, op, reason)
            continue
        try:
            new, detail = build(conv, ctx)
        except convs.NotApplicable as exc:
            ctx.skip(name, op, str(exc))
            continue
        new.train(conv.training)
        model.set_submodule(name, new)
        ctx.change(name, op, detail, v.method)
    return model


def depthwise_separable(model: nn.Module, ctx: Context) -> nn.Module:
    between = "none" if ctx.options.xception else ctx.options.between
    return substitute(model, ctx, "depthwise-separable", lambda c, _: convs.separable(c, between), _stem)


def factorize(model: nn.Module, ctx: Context) -> nn.Module:
    return substitute(model, ctx, "factorize", lambda c, x: convs.factorized(c, x.options.between), _stem)


def asymmetric(model: nn.Module, ctx: Context) -> nn.Module:
    return substitute(model, ctx, "asymmetric", lambda c, x: convs.asymmetric(c, x.options.between), _stem)


def batchnorm(model: nn.Module, ctx: Context) -> nn.Module:
    return substitute(model, ctx, "batchnorm", lambda c, _: convs.with_norm(c), _xception_half)
