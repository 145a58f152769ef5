"""How a model's convs are connected: read from a torch.fx graph where the model traces,
from its module tree where it does not.

The graph gives execution order and data flow (what consumes a conv's output). A model
with shape- or value-dependent control flow does not trace; then module registration
order stands in for execution order and a conv is "followed" by the module registered
next to it in the same parent, which holds for ``nn.Sequential`` and for the usual
``self.conv = ...; self.bn = ...`` blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import fx, nn

from dnnmeter.transforms.convs import COMPOSITES

NORMS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
NORM_FUNCTIONS = (F.batch_norm, F.group_norm, F.layer_norm, F.instance_norm)


class _Tracer(fx.Tracer):
    """Keeps the composites built by this package whole, so a residual block sees a
    separable or factorised conv as one conv."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, COMPOSITES) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module, keep_composites: bool = False) -> tuple[fx.GraphModule | None, str | None]:
    """The model as a GraphModule, or None and why it does not trace."""
    tracer = _Tracer() if keep_composites else fx.Tracer()
    try:
        graph = tracer.trace(model)
    # fx raises TraceError, TypeError, NotImplementedError, ... depending on what the
    # forward does with a Proxy; any of them means "use module surgery instead".
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"{type(exc).__name__}: {first}"
    gm = fx.GraphModule(tracer.root, graph, type(model).__name__)
    gm.training = model.training
    return gm, None


@dataclass
class View:
    """Convs in execution order and what follows each one. ``method`` is ``fx`` or ``surgery``."""

    method: str
    convs: list[str]
    followed_by_norm: set[str]
    followed_by_conv: dict[str, str]  # conv -> the conv that alone consumes its output
    trace_error: str | None = None


def view(model: nn.Module) -> View:
    gm, error = trace(model)
    return _graph_view(gm) if gm is not None else _module_view(model, error)


def is_norm_node(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), NORMS)
    return node.op == "call_function" and node.target in NORM_FUNCTIONS


def _graph_view(gm: fx.GraphModule) -> View:
    modules = dict(gm.named_modules())
    convs: list[str] = []
    norm: set[str] = set()
    then_conv: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(str(node.target)), nn.Conv2d):
            continue
        name = str(node.target)
        if name not in convs:
            convs.append(name)
        users = list(node.users)
        if len(users) == 1 and is_norm_node(users[0], modules):
            norm.add(name)
        if len(users) == 1 and users[0].op == "call_module" and isinstance(modules.get(str(users[0].target)), nn.Conv2d):
            then_conv[name] = str(users[0].target)
    return View("fx", convs, norm, then_conv)


def _module_view(model: nn.Module, error: str | None) -> View:
    modules = dict(model.named_modules())
    convs: list[str] = []
    norm: set[str] = set()
    then_conv: dict[str, str] = {}
    for name, module in modules.items():
        if not name or not isinstance(module, nn.Conv2d):  # a bare conv as the model: nothing to replace it in
            continue
        convs.append(name)
        following = _next_module(modules, name)
        if following is not None and isinstance(modules[following], NORMS):
            norm.add(name)
        if following is not None and isinstance(modules[following], nn.Conv2d):
            then_conv[name] = following
    return View("surgery", convs, norm, then_conv, trace_error=error)


def _next_module(modules: dict[str, nn.Module], name: str) -> str | None:
    """The module registered after ``name`` in its parent; for the last child of an
    ``nn.Sequential``, whatever follows that Sequential (its output is the child's)."""
    parent_name, _, child = name.rpartition(".")
    parent = modules[parent_name]
    keys = list(parent._modules)
    i = keys.index(child)
    if i + 1 < len(keys):
        return f"{parent_name}.{keys[i + 1]}" if parent_name else keys[i + 1]
    if parent_name and isinstance(parent, nn.Sequential):
        return _next_module(modules, parent_name)
    return None
