"""Output shapes of the common ops on meta tensors, computed without torch's meta kernels.

Why by hand: in torch 2.14 many meta kernels are Python decompositions. Measured per call
on this project's 2-core machine: batch_norm 1.6 ms, layer_norm 2.4 ms, gelu 1.7 ms,
relu 0.76 ms, addmm 1.6 ms, against 3.5 us for ``torch.empty`` on meta. Counting the
torchvision zoo spent over 20 s in them. The rules below cover the ops that dominate real
networks, for the plain case only (contiguous float inputs of one dtype); anything else
returns ``None`` and runs torch's own meta kernel, so a missing or declined rule costs
time, never correctness. tests/test_fast_shapes.py checks every rule against the real
meta kernel (shape, strides, dtype).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from dnnmeter.registry import Registry, decorator

aten = torch.ops.aten
_META = torch.device("meta")
_empty = torch.empty

Rule = Callable[[tuple[Any, ...], dict[str, Any]], Any]
RULES: Registry[Rule] = Registry("fast-shape rule for")


def _rule(*ops: Any) -> Callable[[Rule], Rule]:
    return decorator(RULES, *ops)


def _plain(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.is_meta and t.is_contiguous() and t.is_floating_point()


def _new(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    return _empty(shape, dtype=like.dtype, device=_META)


def broadcast(a: Sequence[int], b: Sequence[int]) -> list[int] | None:
    """NumPy broadcasting of two shapes, or None when they do not broadcast.

    torch.broadcast_shapes is written for symbolic shapes and costs about 150 us a call."""
    if len(a) < len(b):
        a, b = b, a
    out = list(a)
    offset = len(a) - len(b)
    for i, size in enumerate(b):
        mine = out[offset + i]
        if mine == size or size == 1:
            continue
        if mine != 1:
            return None
        out[offset + i] = size
    return out


def run(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], fast: bool = True) -> Any:
    """``func(*args, **kwargs)`` on meta tensors, by a shape rule or a remembered result."""
    if not fast:
        return func(*args, **kwargs)
    rule = RULES.lookup(func)
    if rule is not None:
        out = rule(args, kwargs)
        if out is not None:
            return out
    return _remembered(func, args, kwargs)


# --- remembered kernel results ----------------------------------------------------------------
#
# On the meta device an op's output is a function of its arguments' metadata only, so for
# ops that neither mutate nor alias their inputs the kernel's answer can be remembered:
# the next call with the same shapes, strides, dtypes and arguments gets fresh tensors with
# the same metadata at the cost of a dict lookup. Networks repeat their blocks, so most
# calls of the ops without a rule above are answered this way. The memo is bounded.

_MEMO: dict[Any, Any] = {}
_MEMO_LIMIT = 50_000
_PURE: dict[Any, bool] = {}


def _is_pure(func: Any) -> bool:
    pure = _PURE.get(func)
    if pure is None:
        schema = func._schema
        pure = not schema.is_mutable and all(r.alias_info is None for r in schema.returns) and bool(schema.returns)
        _PURE[func] = pure
    return pure


def _key_part(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if not value.is_meta:
            raise TypeError("not a meta tensor")
        return (tuple(value.shape), value.stride(), value.dtype)
    if isinstance(value, (list, tuple)):
        return tuple(_key_part(v) for v in value)
    hash(value)
    return value


def _template(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), out.stride(), out.dtype) if out.is_meta else None
    if isinstance(out, (list, tuple)):
        parts = [_template(o) for o in out]
        return None if any(p is None for p in parts) else ("seq", tuple(parts))
    return None


def _materialize(template: Any) -> Any:
    if template[0] == "seq":
        return tuple(_materialize(t) for t in template[1])
    shape, stride, dtype = template
    return torch.empty_strided(shape, stride, dtype=dtype, device=_META)


def _remembered(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not _is_pure(func):
        return func(*args, **kwargs)
    try:
        key = (func, _key_part(args), _key_part(tuple(sorted(kwargs.items()))) if kwargs else ())
    except TypeError:  # an unhashable or non-meta argument: just run the kernel
        return func(*args, **kwargs)
    template = _MEMO.get(key)
    if template is not None:
        return _materialize(template)
    out = func(*args, **kwargs)
    template = _template(out)
    if template is not None:
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[key] = template
    return out


# --- element-wise ---------------------------------------------------------------------------

_UNARY = [
    "relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh",
    "elu", "leaky_relu", "mish", "neg", "exp", "sqrt", "rsqrt", "erf", "abs", "clamp",
    "clamp_min", "clamp_max", "softplus", "reciprocal", "_prelu_kernel",
]
_UNARY_INPLACE = [n + "_" for n in _UNARY if not n.startswith("_")] + [
    "add_", "sub_", "mul_", "div_",
]
_BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]


def _overloads(names: Sequence[str]) -> list[Any]:
    found = []
    for name in names:
        packet = getattr(aten, name, None)
        if packet is None:
            continue
        found.extend(getattr(packet, o) for o in packet.overloads() if o in ("default", "Tensor", "Scalar"))
    return found


@_rule(*_overloads(_UNARY))
def _unary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    if not _plain(x):
        return None
    for other in args[1:]:  # e.g. _prelu_kernel's weight, clamp's tensor bounds
        if isinstance(other, torch.Tensor) and other.dtype != x.dtype:
            return None
    return _new(x.shape, x)


@_rule(*_overloads(_UNARY_INPLACE))
def _inplace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    if not _plain(x):
        return None
    other = args[1] if len(args) > 1 else None
    if isinstance(other, torch.Tensor):
        if other.dtype != x.dtype or broadcast(x.shape, other.shape) != list(x.shape):
            return None
    return x


@_rule(*_overloads(_BINARY))
def _binary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = args[0], args[1]
    if not _plain(a):
        return None
    if not isinstance(b, torch.Tensor):
        return _new(a.shape, a) if isinstance(b, (int, float)) and not isinstance(b, bool) else None
    if not _plain(b) or b.dtype != a.dtype:
        return None
    if a.shape == b.shape:
        return _new(a.shape, a)
    shape = broadcast(a.shape, b.shape)
    return None if shape is None else _new(shape, a)


@_rule(aten._softmax.default, aten._safe_softmax.default, aten._log_softmax.default)
def _softmax(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    return _new(x.shape, x) if _plain(x) and not kwargs.get("dtype") else None


@_rule(aten.empty.memory_format)
def _empty_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # torch.batch_norm makes an empty "reserve" tensor on every call.
    device = kwargs.get("device")
    if device is None or torch.device(device).type != "meta" or len(args) != 1:
        return None
    if kwargs.get("layout") not in (None, torch.strided) or kwargs.get("memory_format") not in (
        None, torch.contiguous_format,
    ):
        return None
    return _empty(args[0], dtype=kwargs.get("dtype") or torch.get_default_dtype(), device=_META)


# --- normalisation --------------------------------------------------------------------------


@_rule(aten.native_batch_norm.default, aten._native_batch_norm_legit_no_training.default)
def _batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    if not _plain(x) or x.dim() < 2:
        return None
    for t in args[1:5]:
        if t is not None and (not isinstance(t, torch.Tensor) or t.shape != (x.shape[1],)):
            return None
    if x.dtype not in (torch.float32, torch.float64):
        return None  # reduced precision keeps float32 statistics: leave it to the kernel
    training = args[5] if len(args) > 5 and isinstance(args[5], bool) else False
    if training:
        return None
    channels = (x.shape[1],)
    return _new(x.shape, x), _new(channels, x), _new(channels, x)


@_rule(aten.native_layer_norm.default)
def _layer_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x, normalized = args[0], list(args[1])
    if not _plain(x) or list(x.shape[x.dim() - len(normalized):]) != normalized:
        return None
    if x.dtype not in (torch.float32, torch.float64):
        return None  # reduced precision keeps float32 statistics: leave it to the kernel
    for t in args[2:4]:
        if t is not None and (not isinstance(t, torch.Tensor) or list(t.shape) != normalized):
            return None
    stats = list(x.shape[: x.dim() - len(normalized)]) + [1] * len(normalized)
    return _new(x.shape, x), _new(stats, x), _new(stats, x)


# --- products -------------------------------------------------------------------------------


def _conv_out(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


@_rule(aten.convolution.default)
def _convolution(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x, w, bias, stride, padding, dilation, transposed, _, groups = args[:9]
    if transposed or not _plain(x) or not _plain(w) or w.dtype != x.dtype:
        return None
    spatial = x.dim() - 2
    if spatial < 1 or w.dim() != x.dim() or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        return None
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (w.shape[0],)):
        return None
    stride, padding, dilation = (list(v) * spatial if len(v) == 1 else list(v) for v in (stride, padding, dilation))
    out = [_conv_out(x.shape[2 + i], w.shape[2 + i], stride[i], padding[i], dilation[i]) for i in range(spatial)]
    if min(out) < 1:
        return None  # torch's kernel raises its own message
    return _new([x.shape[0], w.shape[0], *out], x)


def _matrices(*ts: Any) -> bool:
    return all(isinstance(t, torch.Tensor) and t.is_meta and t.is_floating_point() for t in ts) and len(
        {t.dtype for t in ts}
    ) == 1


@_rule(aten.mm.default)
def _mm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = args[0], args[1]
    if not _matrices(a, b) or a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        return None
    return _new([a.shape[0], b.shape[1]], a)


@_rule(aten.addmm.default)
def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bias, a, b = args[0], args[1], args[2]
    if not _matrices(bias, a, b) or a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        return None
    out = [a.shape[0], b.shape[1]]
    return _new(out, a) if broadcast(out, bias.shape) == out else None


@_rule(aten.bmm.default)
def _bmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = args[0], args[1]
    if not _matrices(a, b) or a.dim() != 3 or b.dim() != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        return None
    return _new([a.shape[0], a.shape[1], b.shape[2]], a)


# --- pooling and reductions -----------------------------------------------------------------


def _pool_out(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool_shape(x: torch.Tensor, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil: bool) -> list[int] | None:
    kernel = list(kernel) * 2 if len(kernel) == 1 else list(kernel)
    stride = kernel if not stride else (list(stride) * 2 if len(stride) == 1 else list(stride))
    padding = list(padding) * 2 if len(padding) == 1 else list(padding)
    dilation = list(dilation) * 2 if len(dilation) == 1 else list(dilation)
    if len(kernel) != 2 or any(p * 2 > k for p, k in zip(padding, kernel)):
        return None
    out = [_pool_out(x.shape[-2 + i], kernel[i], stride[i], padding[i], dilation[i], ceil) for i in range(2)]
    return None if min(out) < 1 else [*x.shape[:-2], *out]


@_rule(aten.max_pool2d_with_indices.default)
def _max_pool2d(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    if not _plain(x) or x.dim() != 4 or kwargs:
        return None
    padding = args[3] if len(args) > 3 else (0,)
    dilation = args[4] if len(args) > 4 else (1,)
    ceil = bool(args[5]) if len(args) > 5 else False
    shape = _pool_shape(x, args[1], args[2] if len(args) > 2 else (), padding, dilation, ceil)
    if shape is None:
        return None
    return _new(shape, x), _empty(shape, dtype=torch.int64, device=_META)


@_rule(aten.avg_pool2d.default)
def _avg_pool2d(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    if not _plain(x) or x.dim() != 4 or kwargs:
        return None
    padding = args[3] if len(args) > 3 else (0,)
    ceil = bool(args[4]) if len(args) > 4 else False
    shape = _pool_shape(x, args[1], args[2] if len(args) > 2 else (), padding, (1,), ceil)
    return None if shape is None else _new(shape, x)


@_rule(aten._adaptive_avg_pool2d.default)
def _adaptive_avg_pool2d(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x, size = args[0], list(args[1])
    if not _plain(x) or x.dim() not in (3, 4) or len(size) != 2 or min(size) < 1:
        return None
    return _new([*x.shape[:-2], *size], x)


@_rule(aten.mean.dim, aten.sum.dim_IntList)
def _reduce(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = args[0]
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if not _plain(x) or not dims or kwargs.get("dtype") is not None or len(args) > 3:
        return None
    rank = x.dim()
    dims = {d % rank for d in dims} if rank else set()
    shape = [1 if i in dims else s for i, s in enumerate(x.shape)] if keepdim else [
        s for i, s in enumerate(x.shape) if i not in dims
    ]
    return _new(shape, x)


@_rule(aten.cat.default)
def _cat(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    tensors = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if not tensors or not all(_plain(t) for t in tensors):
        return None
    first = tensors[0]
    rank = first.dim()
    if rank == 0 or any(t.dim() != rank or t.dtype != first.dtype for t in tensors):
        return None
    dim %= rank
    for t in tensors[1:]:
        if any(t.shape[i] != first.shape[i] for i in range(rank) if i != dim):
            return None
    shape = list(first.shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return _new(shape, first)


assert all(isinstance(k, torch._ops.OpOverload) for k in RULES), "rules are keyed by overload"
