"""Construct models on the meta device: shapes without storage, init without arithmetic.

Why by hand: ``with torch.device("meta")`` breaks constructors that compute with tensors
(torchvision's RegNet calls ``.tolist()`` on a tensor while building), and torch's meta
kernels for the init functions (``normal_``, ``uniform_``, ...) run Python decompositions
that made building the zoo several times slower than building it on the CPU. So, as
accelerate's ``init_empty_weights`` does, parameters and buffers are moved to the meta
device as they are registered, and in-place init ops on meta tensors return at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten

# In-place ops that constructors use only to fill parameters with initial values.
_INIT_OPS = frozenset(
    {
        _aten.normal_.default,
        _aten.uniform_.default,
        _aten.zero_.default,
        _aten.fill_.Scalar,
        _aten.fill_.Tensor,
        _aten.bernoulli_.float,
        _aten.exponential_.default,
        _aten.erfinv_.default,
        _aten.clamp_.default,
        _aten.copy_.default,
        _aten.mul_.Scalar,
        _aten.mul_.Tensor,
        _aten.add_.Scalar,
        _aten.add_.Tensor,
        _aten.sub_.Scalar,
        _aten.div_.Scalar,
        _aten.div_.Tensor,
        _aten.random_.default,
        getattr(_aten.random_, "from"),
        _aten.log_normal_.default,
        _aten.geometric_.default,
        _aten.cauchy_.default,
    }
)


class _SkipInitOnMeta(TorchDispatchMode):
    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in _INIT_OPS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


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

    nn.Module.register_parameter = _register_parameter  # type: ignore[method-assign]
    nn.Module.register_buffer = _register_buffer  # type: ignore[method-assign]
    try:
        with _SkipInitOnMeta():
            yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]
