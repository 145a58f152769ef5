"""What a model is fed during a count: tensor specs (shape and dtype), never real data.

A :class:`TensorSpec` is a full shape, batch included, and a dtype; ``dtype=None`` means a
floating input in the model's own dtype. :class:`Inputs` holds the positional and keyword
arguments of one forward call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's shape (batch included) and dtype; ``dtype=None`` follows the model."""

    shape: tuple[int, ...]
    dtype: torch.dtype | None = None

    def meta(self, default_dtype: torch.dtype) -> torch.Tensor:
        return torch.empty(self.shape, dtype=self.dtype or default_dtype, device="meta")


@dataclass(frozen=True)
class Inputs:
    """The arguments of one forward call: ``model(*args, **kwargs)``."""

    args: tuple[TensorSpec, ...] = ()
    kwargs: dict[str, TensorSpec] = field(default_factory=dict)

    def meta(self, default_dtype: torch.dtype) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        return (tuple(s.meta(default_dtype) for s in self.args),
                {k: s.meta(default_dtype) for k, s in self.kwargs.items()})

    @property
    def first(self) -> TensorSpec:
        return self.args[0] if self.args else next(iter(self.kwargs.values()))


def model_dtype(tensors: Any) -> torch.dtype:
    """The dtype of the model's first floating parameter or buffer, else float32."""
    for t in tensors:
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def describe(inputs: Inputs) -> str:
    """``(1, 3, 224, 224)`` for one float input, else every spec with its name and dtype."""
    if len(inputs.args) == 1 and not inputs.kwargs and inputs.args[0].dtype is None:
        return str(tuple(inputs.args[0].shape))
    parts = [_spec_text(s) for s in inputs.args] + [f"{k}={_spec_text(s)}" for k, s in inputs.kwargs.items()]
    return ", ".join(parts)


def _spec_text(spec: TensorSpec) -> str:
    text = "x".join(str(d) for d in spec.shape)
    return f"{text}:{str(spec.dtype).removeprefix('torch.')}" if spec.dtype else text
