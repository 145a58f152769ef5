"""Tensor shapes inside a model at one input size, without real arithmetic where possible.

fx path: ``torch.fx.passes.shape_prop.ShapeProp``, on the meta device for a meta model and
under a fake tensor mode otherwise, so no weight is read and no FLOP is spent.

Surgery path: forward hooks on a meta-device run (the model's tensors stood in by meta
tensors, as dnnmeter.analysis does); a forward that cannot run on meta (it reads values)
runs once for real on zeros, under no_grad and in eval mode.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import ShapeProp

from dnnmeter.analysis.meta_pass import eval_mode
from dnnmeter.errors import ModelForwardError

Shape = tuple[int, ...]


def _device(model: nn.Module) -> torch.device:
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def propagate(gm: fx.GraphModule, size: Shape) -> None:
    """Fill ``node.meta['tensor_meta']`` for every node of ``gm`` at batch 1 x ``size``."""
    x = torch.empty((1, *size), device=_device(gm))
    modules = list(gm.modules())
    with eval_mode(gm, modules), torch.no_grad():
        try:
            # A meta model runs as is; real weights are copied to fake tensors, never read.
            fake = None if x.is_meta else FakeTensorMode(allow_non_fake_inputs=True)
            ShapeProp(gm, fake_mode=fake).propagate(x)
        except Exception as exc:  # ShapeProp wraps the failing node's error in a RuntimeError
            raise ModelForwardError(f"shape propagation failed at input {tuple(x.shape)}: {_first(exc)}") from exc


def io_shapes(model: nn.Module, modules: list[nn.Module], size: Shape) -> dict[int, tuple[Shape, Shape]]:
    """(input shape, output shape) of the first call of each of ``modules``, by id."""
    shapes: dict[int, tuple[Shape, Shape]] = {}
    wanted = {id(m) for m in modules}

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if id(module) in wanted and id(module) not in shapes and args and isinstance(output, torch.Tensor):
            shapes[id(module)] = (tuple(args[0].shape), tuple(output.shape))

    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with eval_mode(model, list(model.modules())), torch.no_grad():
            _run(model, size)
    finally:
        for h in handles:
            h.remove()
    return shapes


def _run(model: nn.Module, size: Shape) -> None:
    state = {k: torch.empty_like(v, device="meta") for k, v in model.state_dict(keep_vars=True).items()}
    try:
        torch.func.functional_call(model, state, (torch.empty((1, *size), device="meta"),), strict=False)
        return
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        pass  # the forward reads tensor values, which meta tensors do not have
    if _device(model).type == "meta":
        raise ModelForwardError(f"shapes at input {(1, *size)}: the forward needs real values; build the model on cpu")
    try:
        model(torch.zeros((1, *size), device=_device(model)))
    except Exception as exc:
        raise ModelForwardError(f"forward failed at input {(1, *size)}: {_first(exc)}") from exc


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
