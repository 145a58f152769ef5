"""Structured pruning: removing whole conv output channels (and the matching inputs of the
layer that reads them), found with torch.fx; the layers are rebuilt smaller, so MACs, size,
latency and the hardware model all see the new shapes. :func:`dnnmeter.transforms.prune.prune`
is the door in; this module is its channel surgery.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

# --- structured: finding removable channels with torch.fx -----------------------------------
#
# Hand-written rather than torch-pruning (not a dependency): we only remove channels whose
# removal is a local change. A conv's output channels can go when its output flows, through
# per-channel ops only, into exactly one conv or linear. Anything that mixes or shares
# channels (a residual add, a concatenation, a second user) is skipped with the reason:
# removing those channels would need every tensor they meet to lose the same channels.
# A depthwise conv (one filter per channel) is per-channel too: it loses the same channels
# and the chain goes on to its consumer, so depthwise-separable networks can be pruned.
_PER_CHANNEL = (
    nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish,
    nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout2d, nn.Identity,
)
_PER_CHANNEL_FUNCTIONS = {
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.hardswish, torch.sigmoid, torch.tanh,
    F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.dropout,
}
_PER_CHANNEL_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous"}


@dataclass
class _Chain:
    conv: str
    norms: list[str]
    consumer: str
    flattened: bool
    depthwise: list[str] = field(default_factory=list)


def _is_depthwise(conv: nn.Module) -> bool:
    """One filter per channel: output channel c depends on input channel c alone."""
    return isinstance(conv, nn.Conv2d) and conv.groups == conv.in_channels == conv.out_channels > 1


def _is_flatten_1(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Flattening (N, C, H, W) from dim 1: channel c becomes a block of H*W features."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        return isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1
    is_flatten = (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten")
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return is_flatten and start == 1 and end == -1


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{type(modules[str(node.target)]).__name__} {node.target}"
    if node.target in (operator.add, torch.add, operator.iadd) or node.target in ("add", "add_"):
        return "a residual add"
    if node.target is torch.cat:
        return "a concatenation"
    return f"{getattr(node.target, '__name__', node.target)}"


def _per_channel_call(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in _PER_CHANNEL_FUNCTIONS
    return node.op == "call_method" and node.target in _PER_CHANNEL_METHODS


def _step(node: fx.Node, user: fx.Node, modules: dict[str, nn.Module], chain: _Chain) -> str | None:
    """Follow one edge of the chain: None to go on, 'stop' at the consumer, else a reason."""
    if user.op == "call_module":
        module = modules[str(user.target)]
        if _is_depthwise(module) and not chain.flattened and user.args[0] is node:
            chain.depthwise.append(str(user.target))
            return None
        if isinstance(module, nn.Conv2d) and not chain.flattened:
            if module.groups != 1:
                return f"feeds a grouped conv {user.target}"
            if user.args[0] is not node:
                return f"reaches {user.target} other than as its input"
            chain.consumer = str(user.target)
            return "stop"
        if isinstance(module, nn.Linear) and chain.flattened:
            chain.consumer = str(user.target)
            return "stop"
        if isinstance(module, nn.BatchNorm2d):
            chain.norms.append(str(user.target))
            return None
        if isinstance(module, _PER_CHANNEL):
            return None
    elif _per_channel_call(user):
        return None
    if _is_flatten_1(user, modules) and not chain.flattened:
        chain.flattened = True
        return None
    return f"feeds {_describe(user, modules)}" if user.op != "output" else "is the model's output"


def _follow(conv: fx.Node, modules: dict[str, nn.Module]) -> _Chain | str:
    """The chain from ``conv`` to its one consumer, or why its channels cannot be removed."""
    chain = _Chain(str(conv.target), [], "", False)
    node = conv
    while True:
        users = list(node.users)
        if len(users) != 1:
            kinds = sorted({_describe(u, modules) for u in users})
            return f"its output has {len(users)} users ({', '.join(kinds)})"
        verdict = _step(node, users[0], modules, chain)
        if verdict == "stop":
            return chain
        if verdict is not None:
            return verdict
        node = users[0]


def _chains(model: nn.Module) -> tuple[list[_Chain], dict[str, str]]:
    modules = dict(model.named_modules())
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as exc:  # noqa: BLE001 - tracing fails in many ways on dynamic control flow
        reason = f"torch.fx cannot trace the model ({type(exc).__name__}); nothing removed"
        return [], {name: reason for name, m in modules.items() if isinstance(m, nn.Conv2d)}
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    chains, skipped = [], {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[str(node.target)], nn.Conv2d):
            continue
        found = _follow(node, modules)
        if isinstance(found, str):
            skipped[str(node.target)] = found
        elif modules[found.conv].groups != 1:
            skipped[found.conv] = "a grouped conv (its channels are tied to its input's)"
        elif any(calls[n] > 1 for n in [found.conv, *found.norms, *found.depthwise, found.consumer]):
            skipped[found.conv] = "a module on its path is called more than once"
        else:
            chains.append(found)
    for chain in chains:  # a depthwise conv pruned inside a chain is not "skipped"
        for name in chain.depthwise:
            skipped.pop(name, None)
    return chains, skipped


# --- structured: shrinking the layers -------------------------------------------------------


def _kept_channels(conv: nn.Conv2d, sparsity: float) -> torch.Tensor:
    """Indices (ascending) of the output channels with the largest L1 norms."""
    channels = conv.out_channels
    keep = max(1, channels - round(sparsity * channels))
    norms = conv.weight.detach().abs().flatten(1).sum(dim=1)
    return torch.topk(norms, keep, sorted=False).indices.sort().values


def _conv_copy(conv: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> nn.Conv2d:
    weight = conv.weight.detach()
    weight = weight if out_idx is None else weight[out_idx]
    weight = weight if in_idx is None else weight[:, in_idx]
    new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding,  # type: ignore[arg-type]
                    conv.dilation, 1, conv.bias is not None, conv.padding_mode,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach() if out_idx is None else conv.bias.detach()[out_idx])  # type: ignore[union-attr]
    return new


def _depthwise_copy(conv: nn.Conv2d, idx: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(len(idx), len(idx), conv.kernel_size, conv.stride, conv.padding,  # type: ignore[arg-type]
                    conv.dilation, len(idx), conv.bias is not None, conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(conv.weight.detach()[idx])
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach()[idx])  # type: ignore[union-attr]
    return new


def _norm_copy(norm: nn.BatchNorm2d, idx: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(idx), norm.eps, norm.momentum, norm.affine, norm.track_running_stats,  # type: ignore[arg-type]
                         device=idx.device)
    state = {k: (v[idx] if v.dim() == 1 else v) for k, v in norm.state_dict().items()}
    new.load_state_dict(state)
    return new


def _linear_copy(linear: nn.Linear, channels: int, idx: torch.Tensor) -> nn.Linear:
    block = linear.in_features // channels  # features per channel after flatten(1)
    columns = (idx[:, None] * block + torch.arange(block)[None]).flatten()
    weight = linear.weight.detach()[:, columns]
    new = nn.Linear(weight.shape[1], linear.out_features, linear.bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach())  # type: ignore[union-attr]
    return new


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def remove_channels(model: nn.Module, sparsity: float) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Remove channels from ``model`` (already a copy) in place; returns (pruned, skipped)."""
    chains, skipped = _chains(model)
    modules = dict(model.named_modules())
    keep_out: dict[str, torch.Tensor] = {}
    keep_in: dict[str, torch.Tensor] = {}
    for chain in chains:
        conv, consumer = modules[chain.conv], modules[chain.consumer]
        if isinstance(consumer, nn.Linear) and consumer.in_features % conv.out_channels:  # type: ignore[union-attr]
            skipped[chain.conv] = f"{chain.consumer}'s inputs are not whole blocks per channel"
            continue
        keep_out[chain.conv] = keep_in[chain.consumer] = _kept_channels(conv, sparsity)  # type: ignore[arg-type]
    # Decided on the unchanged model first, then applied, because one conv can lose both
    # output channels (as a producer) and input channels (as a consumer).
    for chain in chains:
        if chain.conv not in keep_out:
            continue
        for norm in chain.norms:
            _replace(model, norm, _norm_copy(modules[norm], keep_out[chain.conv]))  # type: ignore[arg-type]
        for name in chain.depthwise:
            _replace(model, name, _depthwise_copy(modules[name], keep_out[chain.conv]))  # type: ignore[arg-type]
    for name in {*keep_out, *keep_in}:
        module = modules[name]
        if isinstance(module, nn.Linear):
            producer = next(c.conv for c in chains if c.consumer == name)
            new: nn.Module = _linear_copy(module, modules[producer].out_channels, keep_in[name])  # type: ignore[arg-type]
        else:
            new = _conv_copy(module, keep_out.get(name), keep_in.get(name))  # type: ignore[arg-type]
        _replace(model, name, new)
    pruned = {n: [modules[n].out_channels, len(keep_out[n])] for n in keep_out}  # type: ignore[misc]
    for chain in chains:
        if chain.conv in keep_out:
            kept = len(keep_out[chain.conv])
            pruned.update({n: [modules[n].out_channels, kept] for n in chain.depthwise})  # type: ignore[misc]
    return pruned, skipped
