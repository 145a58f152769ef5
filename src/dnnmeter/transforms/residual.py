"""``residual``: shortcut connections around conv blocks whose input and output shapes match.

A **block** is one conv unit and the norm right after it: a conv (a separable,
factorised or asymmetric conv built by this package counts as one; so does a depthwise
conv whose output goes, through at most a norm and an activation, to a 1x1 conv), then
an optional norm. The shortcut is added after the norm and before whatever follows
(the activation), as in ResNet and ``tiny_alexnet_dw_res``: ``act(bn(conv(x)) + x)``.

- Identity shortcut when the block's input and output shapes are equal; with
  ``projection`` a 1x1 conv (stride from the size ratio) and a batch norm otherwise.
- A block whose output already goes into an addition (an existing shortcut, as in
  ResNet's second conv) is left alone.
- fx path (the model traces): shapes from ShapeProp, the add inserted into the graph; the
  result is a ``torch.fx.GraphModule`` keeping the original's module names.
- Surgery path (it does not trace): blocks are found inside ``nn.Sequential`` containers
  only, shapes come from forward hooks, and each block is wrapped in :class:`Residual`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from dnnmeter.transforms.context import Context
from dnnmeter.transforms.convs import COMPOSITES
from dnnmeter.transforms.select import selected
from dnnmeter.transforms.shapes import Shape, io_shapes, propagate
from dnnmeter.transforms.structure import NORMS, is_norm_node, trace

OP = "residual"
ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.SiLU, nn.GELU, nn.Hardswish)
_ADDS = {operator.add, operator.iadd, torch.add}


class Residual(nn.Module):
    """``body(x) + shortcut(x)``: the surgery path's wrapper."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def residual(model: nn.Module, ctx: Context) -> nn.Module:
    gm, _ = trace(model, keep_composites=True)
    if gm is None:
        return _surgery(model, ctx)
    return _fx(gm, ctx)


# --- deciding on a shortcut -----------------------------------------------------------------


def _projection(cin: int, cout: int, hin: int, hout: int, like: nn.Module) -> nn.Module | None:
    """A 1x1 conv + batch norm mapping cin x hin to cout x hout, or None if no stride does."""
    stride = max(1, -(-hin // hout))
    if (hin - 1) // stride + 1 != hout:
        return None
    p = next(like.parameters())
    conv = nn.Conv2d(cin, cout, 1, stride, bias=False, device=p.device, dtype=p.dtype)
    return nn.Sequential(conv, nn.BatchNorm2d(cout, device=p.device, dtype=p.dtype))


def _shortcut(shape_in: Shape, shape_out: Shape, like: nn.Module,
              ctx: Context) -> tuple[nn.Module | None, str | None]:
    """(None, None): identity. (module, None): projection. (None, reason): no shortcut."""
    if shape_in == shape_out:
        return None, None
    where = f"input {'x'.join(map(str, shape_in[1:]))} != output {'x'.join(map(str, shape_out[1:]))}"
    if not ctx.options.projection:
        return None, f"{where}; pass projection=True (--projection) for a 1x1 conv shortcut"
    if len(shape_in) != 4 or len(shape_out) != 4:
        return None, f"{where}: not an image feature map"
    proj = _projection(shape_in[1], shape_out[1], shape_in[2], shape_out[2], like)
    if proj is None or (shape_in[3] - 1) // proj[0].stride[0] + 1 != shape_out[3]:
        return None, f"{where}: no 1x1 stride maps one to the other"
    proj.train(like.training)
    return proj, None


def _detail(proj: nn.Module | None, shape: Shape) -> str:
    if proj is None:
        return f"identity shortcut ({'x'.join(map(str, shape[1:]))})"
    return f"1x1/{proj[0].stride[0]} projection shortcut {proj[0].in_channels}->{proj[0].out_channels} + BatchNorm2d"


# --- fx path --------------------------------------------------------------------------------


@dataclass
class _Block:
    name: str
    start: fx.Node
    end: fx.Node


def _is_conv_unit(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return node.op == "call_module" and isinstance(modules.get(str(node.target)), (nn.Conv2d, *COMPOSITES))


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _is_activation(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), ACTIVATIONS)
    return node.op in ("call_function", "call_method") and getattr(node.target, "__name__", node.target) in (
        "relu", "relu_", "relu6", "silu", "gelu", "hardswish", "leaky_relu")


def _pointwise_after(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The 1x1 conv completing a depthwise conv, through at most a norm and an activation."""
    conv = modules.get(str(node.target))
    if not (isinstance(conv, nn.Conv2d) and conv.groups > 1 and conv.groups == conv.in_channels):
        return None
    nxt = _only_user(node)
    for check in (is_norm_node, _is_activation):
        if nxt is not None and check(nxt, modules):
            nxt = _only_user(nxt)
    if nxt is None or nxt.op != "call_module":
        return None
    pw = modules.get(str(nxt.target))
    return nxt if isinstance(pw, nn.Conv2d) and pw.kernel_size == (1, 1) and pw.groups == 1 else None


def _fx_blocks(gm: fx.GraphModule) -> list[_Block]:
    modules = dict(gm.named_modules())
    blocks: list[_Block] = []
    used: set[fx.Node] = set()
    for node in list(gm.graph.nodes):
        if node in used or not _is_conv_unit(node, modules) or not isinstance(node.args[0], fx.Node):
            continue
        end = _pointwise_after(node, modules) or node
        nxt = _only_user(end)
        if nxt is not None and is_norm_node(nxt, modules):
            end = nxt
        cur = node
        while cur is not end:  # mark the block's chain so its pointwise is not a block of its own
            used.add(cur)
            cur = next(iter(cur.users))
        used.add(end)
        blocks.append(_Block(str(node.target), node, end))
    return blocks


def _fx(gm: fx.GraphModule, ctx: Context) -> nn.Module:
    propagate(gm, ctx.options.input_size)
    modules = dict(gm.named_modules())
    for block in _fx_blocks(gm):
        if not selected(block.name, ctx.patterns):
            continue
        if any(u.op in ("call_function", "call_method") and u.target in (*_ADDS, "add", "add_") for u in block.end.users):
            ctx.skip(block.name, OP, "its output already goes into an addition (an existing shortcut)")
            continue
        x = block.start.args[0]
        shape_in, shape_out = (tuple(n.meta["tensor_meta"].shape) for n in (x, block.end))
        proj, reason = _shortcut(shape_in, shape_out, modules[block.name], ctx)
        if reason:
            ctx.skip(block.name, OP, reason)
            continue
        _insert_add(gm, block, x, proj)
        ctx.change(block.name, OP, _detail(proj, shape_out), "fx")
    gm.graph.lint()
    gm.recompile()
    return gm


def _insert_add(gm: fx.GraphModule, block: _Block, x: Any, proj: nn.Module | None) -> None:
    graph = gm.graph
    with graph.inserting_after(block.end):
        if proj is not None:
            target = _free_name(gm, block.name.replace(".", "_") + "_shortcut")
            gm.add_submodule(target, proj)
            x = graph.call_module(target, (x,))
    with graph.inserting_after(x if proj is not None else block.end):
        add = graph.call_function(operator.add, (block.end, x))
    add.meta["tensor_meta"] = block.end.meta["tensor_meta"]  # later blocks may start here
    block.end.replace_all_uses_with(add, delete_user_cb=lambda user: user is not add)


def _free_name(module: nn.Module, base: str) -> str:
    names = dict(module.named_children())
    name, i = base, 1
    while name in names:
        name, i = f"{base}_{i}", i + 1
    return name


# --- surgery path ---------------------------------------------------------------------------


def _is_conv_module(m: nn.Module) -> bool:
    """A conv, a composite of this package, or a plain Sequential of convs (a separable
    conv written by hand, as in tiny_alexnet_dw)."""
    if isinstance(m, (nn.Conv2d, *COMPOSITES)):
        return True
    return type(m) is nn.Sequential and len(m) > 0 and all(isinstance(c, nn.Conv2d) for c in m)


def _sequential_blocks(model: nn.Module) -> list[tuple[str, nn.Sequential, list[str]]]:
    """(name, container, child keys of the block) for each block inside an nn.Sequential."""
    found = []
    for seq_name, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential) or isinstance(seq, COMPOSITES) or _is_conv_module(seq):
            continue
        keys = list(seq._modules)
        i = 0
        while i < len(keys):
            if not _is_conv_module(seq._modules[keys[i]]):  # type: ignore[arg-type]
                i += 1
                continue
            j = i + 2 if i + 1 < len(keys) and isinstance(seq._modules[keys[i + 1]], NORMS) else i + 1
            found.append((f"{seq_name}.{keys[i]}" if seq_name else keys[i], seq, keys[i:j]))
            i = j
    return found


def _surgery(model: nn.Module, ctx: Context) -> nn.Module:
    blocks = [b for b in _sequential_blocks(model) if selected(b[0], ctx.patterns)]
    members = [seq._modules[k] for _, seq, keys in blocks for k in keys]
    shapes = io_shapes(model, members, ctx.options.input_size)  # type: ignore[arg-type]
    for name, seq, keys in blocks:
        first, last = seq._modules[keys[0]], seq._modules[keys[-1]]
        if id(first) not in shapes or id(last) not in shapes:
            ctx.skip(name, OP, "did not run in the forward pass at this input size")
            continue
        shape_in, shape_out = shapes[id(first)][0], shapes[id(last)][1]
        proj, reason = _shortcut(shape_in, shape_out, first, ctx)  # type: ignore[arg-type]
        if reason:
            ctx.skip(name, OP, reason)
            continue
        body = first if len(keys) == 1 else nn.Sequential(*(seq._modules[k] for k in keys))
        wrapper = Residual(body, proj)  # type: ignore[arg-type]
        wrapper.train(first.training)  # type: ignore[union-attr]
        _replace_run(seq, keys, wrapper)
        ctx.change(name, OP, _detail(proj, shape_out), "surgery")
    return model


def _replace_run(seq: nn.Sequential, keys: list[str], wrapper: nn.Module) -> None:
    """Put ``wrapper`` where ``keys[0]`` was and drop the rest of the run, keeping order."""
    items = [(k, wrapper if k == keys[0] else m) for k, m in seq._modules.items() if k not in keys[1:]]
    seq._modules.clear()
    seq._modules.update(items)
