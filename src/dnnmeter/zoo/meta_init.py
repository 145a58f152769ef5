"""Construct models on the meta device: shapes without storage, init without arithmetic.

Why by hand: ``with torch.device("meta")`` breaks constructors that compute with tensors
(torchvision's RegNet calls ``.tolist()`` on a tensor while building), and torch's meta
kernels for the random init methods run Python decompositions (``normal_`` takes about
1 ms a call on meta, against 3 us to create the tensor), which made building the zoo
several times slower than counting it. So, as accelerate's ``init_empty_weights`` does,
parameters and buffers move to the meta device as they are registered, and the random
init methods return at once on meta tensors. Everything is restored on exit.

Not thread-safe: it patches ``nn.Module`` and ``torch.Tensor`` methods while it is open.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

# Tensor methods that only fill values: on a meta tensor there is nothing to fill.
_FILL_METHODS = (
    "normal_", "uniform_", "erfinv_", "exponential_", "bernoulli_", "log_normal_",
    "cauchy_", "geometric_", "random_", "fill_", "zero_", "clamp_", "mul_", "add_",
    "sub_", "div_", "copy_",
)


def _skip_on_meta(original: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.is_meta:
            return self
        return original(self, *args, **kwargs)

    return method


@contextlib.contextmanager
def _patched(owner: type, replacements: dict[str, Any]) -> Iterator[None]:
    missing = object()
    saved = {name: owner.__dict__.get(name, missing) for name in replacements}
    for name, value in replacements.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


@contextlib.contextmanager
def meta_init() -> Iterator[None]:
    """Within this context, every module built has its parameters and buffers on ``meta``."""
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def _register_parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not param.is_meta:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def _register_buffer(
        self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True
    ) -> None:
        if tensor is not None and not tensor.is_meta:
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    fills = {name: _skip_on_meta(getattr(torch.Tensor, name)) for name in _FILL_METHODS}
    module_methods = {"register_parameter": _register_parameter, "register_buffer": _register_buffer}
    with _patched(nn.Module, module_methods), _patched(torch.Tensor, fills):
        yield
