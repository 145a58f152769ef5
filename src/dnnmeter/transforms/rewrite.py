"""``modify``: apply operation modifications, in order, to a copy of a model.

>>> from dnnmeter.transforms import modify
>>> dw = modify("tiny_alexnet", ["depthwise-separable"], layers="conv2,conv3,conv4,conv5",
...             xception=True)          # the architecture of the zoo's tiny_alexnet_dw
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from dnnmeter.analysis import parse_input_size
from dnnmeter.errors import InvalidInputError
from dnnmeter.transforms import ops as conv_ops
from dnnmeter.transforms.context import Context, Options
from dnnmeter.transforms.convs import BETWEEN
from dnnmeter.transforms.residual import residual
from dnnmeter.transforms.result import Rewrite
from dnnmeter.transforms.select import check_patterns, parse_patterns
from dnnmeter.registry import Registry

Op = Callable[[nn.Module, Context], nn.Module]

# Registered in the order of dnnmeter.names.MODIFY_OPS (what the CLI offers).
OPS: Registry[Op] = Registry("op")
OPS.register("depthwise-separable", conv_ops.depthwise_separable)
OPS.register("factorize", conv_ops.factorize)
OPS.register("asymmetric", conv_ops.asymmetric)
OPS.register("residual", residual)
OPS.register("batchnorm", conv_ops.batchnorm)


class NothingToModifyError(InvalidInputError):
    """An op found no layer it could change (raised unless ``strict=False``)."""


class ModifyWarning(UserWarning):
    """An op changed nothing and ``strict=False`` let it pass."""


def check_ops(ops_: Sequence[str] | str) -> list[str]:
    names = [ops_] if isinstance(ops_, str) else list(ops_)
    if not names:
        raise InvalidInputError(f"no op given: choose from {', '.join(OPS)}")
    for name in names:
        if name not in OPS:
            raise OPS.unknown(name, choose=True)
    return names


def _source(model: str | nn.Module, device: str) -> tuple[nn.Module, str, tuple[int, ...] | None]:
    """A private copy of ``model``, its label and its own input size if known."""
    if isinstance(model, nn.Module):
        size = getattr(model, "input_size", None)
        return copy.deepcopy(model), type(model).__name__, tuple(size) if size else None
    if not isinstance(model, str):
        raise InvalidInputError(f"bad model {model!r}: give a zoo name or an nn.Module")
    from dnnmeter.zoo import create_model, resolve

    entry = resolve(model)
    return create_model(model, device=device), entry.name, tuple(entry.input_size)


def rewrite(
    model: str | nn.Module,
    ops: Sequence[str] | str,
    layers: str | None = None,
    *,
    xception: bool = False,
    projection: bool = False,
    between: str = "bn-relu",
    input_size: object = None,
    strict: bool = True,
    device: str = "cpu",
) -> Rewrite:
    """:func:`modify`, returning the model with the record of changes and skipped layers."""
    names = check_ops(ops)
    if between not in BETWEEN:
        raise InvalidInputError(f"bad between {between!r}: choose from {', '.join(BETWEEN)}")
    patterns = parse_patterns(layers)
    module, label, own_size = _source(model, device)
    check_patterns(module, patterns)
    size = parse_input_size(input_size) or own_size or (3, 224, 224)
    ctx = Context(Options(between, xception, projection, size), patterns)
    for name in names:
        before = len(ctx.changes)
        module = OPS[name](module, ctx)
        if len(ctx.changes) == before:
            _nothing_changed(name, label, ctx, strict)
    return Rewrite(module, names, size, ctx.changes, ctx.skipped)


def _nothing_changed(op: str, label: str, ctx: Context, strict: bool) -> None:
    reasons = Counter(s.reason for s in ctx.skipped if s.op == op)
    why = "; ".join(f"{n} x {r}" for r, n in reasons.most_common(3)) or "no conv selected"
    message = f"{op} changed no layer of {label} ({why}); choose other layers or ops"
    if strict:
        raise NothingToModifyError(message)
    warnings.warn(message, ModifyWarning, stacklevel=3)


def modify(model: str | nn.Module, ops: Sequence[str] | str, layers: str | None = None,
           **options: Any) -> nn.Module:
    """A copy of ``model`` with ``ops`` applied in order; ``model`` itself is not touched.

    ``model`` is a zoo name (built on ``device``; ``"meta"`` for counting only) or an
    ``nn.Module`` (deep-copied). ``ops`` are names from :data:`OPS`; ``layers`` an fnmatch
    pattern or comma list on qualified module names (a parent's name selects its
    children); without it each op uses its default targets (docs/modify.md). New layers
    are freshly initialised. ``between`` goes between the convs an op makes (``bn-relu``,
    ``bn``, ``relu``, ``none``); ``xception`` puts nothing between a separable conv's
    halves; ``projection`` lets ``residual`` add 1x1 conv shortcuts where shapes differ;
    ``input_size`` (default: the model's own) is where ``residual`` reads shapes. An op
    that changes nothing raises :class:`NothingToModifyError`, or with ``strict=False``
    warns (:class:`ModifyWarning`). ``options`` are :func:`rewrite`'s keywords (``xception``,
    ``projection``, ``between``, ``input_size``, ``strict``, ``device``), taken as they are there.
    """
    return rewrite(model, ops, layers, **options).module
