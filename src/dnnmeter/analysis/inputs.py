"""What a model is fed during a count: tensor specs (shape and dtype), never real data.

A :class:`TensorSpec` is a full shape, batch included, and a dtype; ``dtype=None`` means a
floating input in the model's own dtype. :class:`Inputs` holds the positional and keyword
arguments of one forward call. :func:`to_inputs` accepts what a user has at hand::

    to_inputs((1, 3, 224, 224))                              # one positional input
    to_inputs(TensorSpec((1, 128), torch.int64))             # token ids
    to_inputs(((1, 128), TensorSpec((1, 128), torch.bool)))  # two positional inputs
    to_inputs({"ids": "1x128:int64", "mask": "1x128:bool"})  # keyword inputs
    to_inputs(torch.zeros(2, 10))                            # its shape and dtype only
    to_inputs(lambda: {"x": (1, 8)})                         # called once, then as above

and :func:`parse_specs` reads the CLI's ``--input [NAME=]DxDx..[:DTYPE]`` (repeatable).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from dnnmeter.errors import InvalidInputError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "double": torch.float64, "fp64": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
GRAMMAR = ("[NAME=]DIMxDIMx...[:DTYPE], batch first, e.g. 1x3x224x224 or ids=1x128:int64; "
           "DTYPE one of float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool "
           "(default: the model's dtype)")


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

    args: tuple[Any, ...] = ()  # TensorSpecs, or literals (None, bools, floats) passed as they are
    kwargs: dict[str, Any] = field(default_factory=dict)

    def meta(self, default_dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        def make(v: Any) -> Any:
            return v.meta(default_dtype) if isinstance(v, TensorSpec) else v

        return tuple(make(v) for v in self.args), {k: make(v) for k, v in self.kwargs.items()}

    def real(self, batch_size: int, device: Any, default_dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Tensors to run a model on (bench): each spec's batch (first dimension) set to
        ``batch_size``; floating ones random, integer ones zeros (a token id every
        vocabulary has), booleans true (a mask that keeps every position)."""
        def make(v: Any) -> Any:
            if not isinstance(v, TensorSpec):
                return v
            shape, dtype = (batch_size, *v.shape[1:]) if v.shape else (), v.dtype or default_dtype
            if dtype.is_floating_point:
                return torch.randn(shape, dtype=dtype, device=device)
            return (torch.ones if dtype == torch.bool else torch.zeros)(shape, dtype=dtype, device=device)

        return tuple(make(v) for v in self.args), {k: make(v) for k, v in self.kwargs.items()}

    @property
    def first(self) -> TensorSpec | None:
        """The first tensor input: its shape gives the analysis's batch and input size."""
        return next((v for v in [*self.args, *self.kwargs.values()] if isinstance(v, TensorSpec)), None)


def model_dtype(tensors: Any) -> torch.dtype:
    """The dtype of the model's first floating parameter or buffer, else float32."""
    for t in tensors:
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def describe(inputs: Inputs) -> str:
    """``(1, 3, 224, 224)`` for one input of the model's dtype, else :func:`spec_text`."""
    if len(inputs.args) == 1 and not inputs.kwargs and isinstance(inputs.args[0], TensorSpec) \
            and inputs.args[0].dtype is None:
        return str(tuple(inputs.args[0].shape))
    return spec_text(inputs)


def spec_text(inputs: Inputs) -> str:
    """The inputs in the CLI's grammar: ``ids=1x128:int64, mask=1x128:bool``."""
    parts = [_one_text(v) for v in inputs.args] + [f"{k}={_one_text(v)}" for k, v in inputs.kwargs.items()]
    return ", ".join(parts)


def _one_text(value: Any) -> str:
    if not isinstance(value, TensorSpec):
        return repr(value)
    text = "x".join(str(d) for d in value.shape)
    return f"{text}:{str(value.dtype).removeprefix('torch.')}" if value.dtype else text


# --- reading what the user gives ---------------------------------------------------------


def _bad(given: Any, why: str) -> InvalidInputError:
    return InvalidInputError(f"bad input spec {given!r}: {why}; give {GRAMMAR}")


def parse_spec(text: str) -> tuple[str | None, TensorSpec]:
    """``"ids=1x128:int64"`` -> ("ids", TensorSpec((1, 128), torch.int64))."""
    name, _, rest = text.rpartition("=") if "=" in text else ("", "", text)
    if name and not name.isidentifier():
        raise _bad(text, f"{name!r} is not an argument name")
    dims, _, dtype_name = rest.partition(":")
    dtype = None
    if dtype_name:
        dtype = DTYPES.get(dtype_name.strip().lower())
        if dtype is None:
            raise _bad(text, f"unknown dtype {dtype_name!r}")
    try:
        shape = tuple(int(d) for d in dims.lower().replace(",", "x").split("x"))
    except ValueError:
        raise _bad(text, "dimensions must be integers") from None
    if any(d < 0 for d in shape):
        raise _bad(text, "dimensions must be >= 0")
    return name or None, TensorSpec(shape, dtype)


def parse_specs(texts: Sequence[str]) -> Inputs:
    """The CLI's repeated ``--input``: unnamed specs are positional, in order; named ones keyword."""
    args: list[TensorSpec] = []
    kwargs: dict[str, TensorSpec] = {}
    for text in texts:
        name, spec = parse_spec(text)
        if name is None:
            if kwargs:
                raise _bad(text, "a positional input after a named one")
            args.append(spec)
        elif name in kwargs:
            raise _bad(text, f"{name} is given twice")
        else:
            kwargs[name] = spec
    if not args and not kwargs:
        raise InvalidInputError(f"no input spec given; give {GRAMMAR}")
    return Inputs(tuple(args), kwargs)


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in value)


def _one(value: Any, keyword: bool = False) -> Any:
    """One argument: a spec, or a literal passed to the forward as it is."""
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, torch.Tensor):  # an example: its shape and dtype, never its values
        return TensorSpec(tuple(value.shape), value.dtype)
    if isinstance(value, str):
        name, spec = parse_spec(value)
        if name is not None:
            raise _bad(value, "a name inside a tuple or dict entry (use the dict's key)")
        return spec
    if _is_shape(value):
        if any(d < 0 for d in value):
            raise _bad(value, "dimensions must be >= 0")
        return TensorSpec(tuple(value))
    if value is None or isinstance(value, (bool, float)) or (keyword and isinstance(value, int)):
        return value
    raise _bad(value, f"a {type(value).__name__} is neither a shape, a TensorSpec nor a tensor")


def to_inputs(given: Any) -> Inputs:
    """Normalise what :func:`dnnmeter.analyze` accepts as ``inputs`` (module docstring)."""
    if isinstance(given, Inputs):
        return given
    if callable(given) and not isinstance(given, (torch.Tensor, TensorSpec)):
        given = given()
        if callable(given) and not isinstance(given, (torch.Tensor, TensorSpec)):
            raise _bad(given, "the callable returned another callable")
    if isinstance(given, str) or (isinstance(given, (tuple, list)) and given
                                   and all(isinstance(v, str) for v in given)):
        return parse_specs([given] if isinstance(given, str) else given)
    if isinstance(given, Mapping):
        if not given:
            raise _bad(given, "an empty dict")
        return Inputs((), {str(k): _one(v, keyword=True) for k, v in given.items()})
    if isinstance(given, (tuple, list)) and not _is_shape(given):
        if not given:
            raise _bad(given, "an empty tuple")
        return Inputs(tuple(_one(v) for v in given))
    if isinstance(given, (tuple, list, torch.Size)) and not given:
        raise _bad(given, "an empty shape")
    return Inputs((_one(given),))


def resolve(inputs: Any, size: tuple[int, ...] | None, batch_size: int | None) -> Inputs | None:
    """``inputs`` normalised, or None to use the input size; ``inputs`` are full shapes, so
    neither an input size nor a batch size may come with them."""
    if inputs is None:
        return None
    if size is not None or batch_size is not None:
        raise InvalidInputError(
            "give either inputs (full shapes, batch first) or input_size and batch_size, not both")
    resolved = to_inputs(inputs)
    if resolved.first is None:
        raise _bad(inputs, "no tensor among the inputs")
    return resolved
