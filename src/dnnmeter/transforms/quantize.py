"""Quantization: real int8 on the CPU through torch.ao, and fake-quantised fixed point.

Two different questions, two tools:

- :func:`quantize_int8` builds a module that *runs* int8 kernels (fbgemm/oneDNN behind
  torch's ``x86`` engine), so its size and latency are measured. It tries torchao's pt2e
  path with the X86 inductor quantizer, then torch.ao's FX graph mode, then eager mode,
  and records why each earlier path failed.
- :func:`fake_quantize` rounds weights (and optionally activations) to ``bits``-bit fixed
  point but computes in float, so it answers "how much accuracy survives b bits" for any
  b; its size is the packed size it *would* take (estimated) and it has no fixed-point
  latency to measure.

>>> from dnnmeter.transforms.quantize import quantization_sweep
>>> points = quantization_sweep(model, "digits", input_size=32, eval_limit=300)  # model: yours  # doctest: +SKIP
>>> [(p.kind, p.bits, p.top1, p.size_bytes) for p in points]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from dnnmeter._serial import Record
from dnnmeter.errors import DnnmeterError, InvalidInputError
from dnnmeter.measure.threads import torch_flag
from dnnmeter.transforms import _compress_common as common

__all__ = [
    "FLOAT_BITS",
    "Int8Result",
    "QuantPoint",
    "QuantizationError",
    "fake_quantize",
    "model_size_bytes",
    "packed_size_bytes",
    "quantization_sweep",
    "quantize_int8",
    "sqnr_db",
]

FLOAT_BITS = 32
INT8_PATHS: tuple[str, ...] = ("pt2e", "fx", "eager")
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class QuantizationError(DnnmeterError):
    """No int8 path could quantize the model; the message lists why each one failed."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("no int8 path worked: " + "; ".join(reasons))
        self.reasons = reasons


# --- measures -------------------------------------------------------------------------------


def sqnr_db(reference: torch.Tensor, output: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - out)^2).

    ``math.inf`` when the outputs are identical. Each 1-bit step of a uniform quantizer
    on a full-range signal is worth about 6.02 dB.
    """
    if reference.shape != output.shape:
        raise InvalidInputError(f"SQNR needs outputs of one shape, got {tuple(reference.shape)} and {tuple(output.shape)}")
    ref = reference.detach().double()
    signal = float(ref.pow(2).sum())
    noise = float((ref - output.detach().double()).pow(2).sum())
    if signal == 0.0:
        raise InvalidInputError("SQNR: the reference output is all zeros; compare on real inputs")
    return math.inf if noise == 0.0 else 10.0 * math.log10(signal / noise)


def model_size_bytes(module: nn.Module) -> int:
    """Measured: the bytes of ``torch.save(module.state_dict())``.

    For an int8 module the state dict holds the packed int8 weights and their scales; for a
    fake-quantised module it holds float32 weights (use :func:`packed_size_bytes`)."""
    return common.serialized_bytes(module)


def packed_size_bytes(model: nn.Module, bits: int) -> int:
    """Estimated: the serialized size if conv and linear weights were stored packed at ``bits``.

    The measured float size, with each of those weights' bytes replaced by ``bits`` / 8 per
    element plus one float32 scale per output channel; biases, norms and the container
    (the pickle around the tensors) keep their measured size, so the figure compares with
    :func:`model_size_bytes` of the float and int8 models.
    """
    _check_bits(bits)
    saved = 0.0
    seen: set[int] = set()
    for module in model.modules():
        if isinstance(module, _WEIGHTED) and id(module.weight) not in seen:
            weight = module.weight
            seen.add(id(weight))
            saved += weight.numel() * weight.element_size() - (weight.numel() * bits / 8 + weight.shape[0] * 4)
    if bits == FLOAT_BITS:
        return model_size_bytes(model)
    return math.ceil(model_size_bytes(model) - saved)


# --- int8 -----------------------------------------------------------------------------------


@dataclass
class Int8Result(Record):
    """A module that runs int8 kernels, and how it was made.

    ``path`` is the torch path that worked ("pt2e", "fx" or "eager"); ``fallback_reasons``
    has one line per earlier path that failed. The module runs on torch's quantized
    ``backend`` engine (``torch.backends.quantized.engine``), which must stay selected when
    it is called; "x86" is the default on x86 CPUs.
    """

    module: nn.Module
    path: str
    backend: str
    fallback_reasons: list[str] = field(default_factory=list)

    _omitted: ClassVar[tuple[str, ...]] = ("module",)  # a result's JSON has no weights


class _PathFailed(Exception):
    """One int8 path could not quantize the model (caught to try the next)."""


def _supported(backend: str) -> str:
    if backend not in torch.backends.quantized.supported_engines:
        raise InvalidInputError(
            f"quantized backend {backend!r} is not in this torch build; use one of "
            f"{[e for e in torch.backends.quantized.supported_engines if e != 'none']}"
        )
    return backend


def quantized_engine(backend: str) -> contextlib.AbstractContextManager[None]:
    """torch's quantized engine set to ``backend`` for the block, restored after."""
    return torch_flag(torch.backends.quantized, "engine", backend)


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    # torch 2.14 deprecates torch.ao.quantization in favour of torchao; the FX and eager
    # paths still work and are the only int8 paths without torchao, so the notice is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=".*must run observer before calling calculate_qparams.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*deprecated.*")
        yield


def _run(module: nn.Module, inputs: tuple[Any, ...]) -> Any:
    with torch.inference_mode():
        return module(*inputs)


def _calibrate(prepared: nn.Module, calibration: list[tuple[Any, ...]]) -> None:
    for inputs in calibration:
        _run(prepared, inputs)


def _pt2e(model: nn.Module, example: tuple[Any, ...], calibration: list[tuple[Any, ...]], backend: str) -> nn.Module:
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError as exc:
        raise _PathFailed(f"torchao is not installed (no module {exc.name!r}); pip install torchao") from exc
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    exported = torch.export.export(model, example).module()
    prepared = prepare_pt2e(exported, quantizer)  # type: ignore[arg-type]
    _calibrate(prepared, calibration)
    # convert_pt2e leaves quantize/dequantize pairs around float ops; only inductor fuses
    # them into int8 kernels, so the module is compiled before it is used.
    compiled: nn.Module = torch.compile(convert_pt2e(prepared))  # type: ignore[assignment]
    _run(compiled, example)
    return compiled


def _fx(model: nn.Module, example: tuple[Any, ...], calibration: list[tuple[Any, ...]], backend: str) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    prepared = prepare_fx(model, get_default_qconfig_mapping(backend), example)
    _calibrate(prepared, calibration)
    converted = convert_fx(prepared)
    _run(converted, example)
    return converted


def _eager(model: nn.Module, example: tuple[Any, ...], calibration: list[tuple[Any, ...]], backend: str) -> nn.Module:
    from torch.ao.quantization import QuantWrapper, convert, get_default_qconfig, prepare

    # Eager mode quantizes module by module: it fails on functional ops (a residual
    # x + y needs FloatFunctional), which is why it is the last resort.
    wrapped = QuantWrapper(model)
    wrapped.qconfig = get_default_qconfig(backend)  # type: ignore[assignment]
    prepared = prepare(wrapped)
    _calibrate(prepared, calibration)
    converted = convert(prepared)
    _run(converted, example)
    return converted


_PATHS = {"pt2e": _pt2e, "fx": _fx, "eager": _eager}


def _as_inputs(example: Any) -> tuple[Any, ...]:
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def quantize_int8(
    model: nn.Module,
    example_inputs: Any,
    calibration: Iterable[Any] | None = None,
    backend: str = "x86",
    paths: Sequence[str] = INT8_PATHS,
) -> Int8Result:
    """Post-training static int8 (per-channel weights, per-tensor activations) of a copy.

    ``example_inputs`` is a tensor or a tuple of a forward's arguments; ``calibration``
    yields batches (tensors or tuples) whose activation ranges set the scales; without it
    the example alone calibrates, which is poor: pass a few batches of real data.
    ``paths`` are tried in order; the first that quantizes and runs the example wins.
    ``model`` itself is never changed.
    """
    unknown = [p for p in paths if p not in _PATHS]
    if unknown or not paths:
        raise InvalidInputError(f"unknown int8 path(s) {unknown or paths}; use some of {INT8_PATHS}")
    example = _as_inputs(example_inputs)
    batches = [_as_inputs(b) for b in calibration] if calibration is not None else [example]
    reasons: list[str] = []
    with quantized_engine(_supported(backend)), _quiet_deprecations():
        for path in paths:
            try:
                module = _PATHS[path](copy.deepcopy(model).eval(), example, batches, backend)
            except Exception as exc:  # noqa: BLE001 - each path fails in its own ways; all are reported
                reasons.append(f"{path}: {_one_line(exc)}")
                continue
            return Int8Result(module, path, backend, reasons)
    raise QuantizationError(reasons)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300] if isinstance(exc, _PathFailed) else f"{type(exc).__name__}: {text[:300]}"


# --- fake quantization ------------------------------------------------------------------------


def _check_bits(bits: int) -> None:
    if not isinstance(bits, int) or not 2 <= bits <= FLOAT_BITS:
        raise InvalidInputError(f"bits {bits!r} must be an integer from 2 to 32 (32 = float, unchanged)")


def _fake_weight(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-output-channel rounding to ``bits`` bits: levels -qmax..qmax."""
    qmax = 2 ** (bits - 1) - 1
    scale = weight.detach().abs().flatten(1).amax(dim=1) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays zero
    zero = torch.zeros(weight.shape[0], dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight.detach().float(), scale.float(), zero, 0, -qmax, qmax)


class _InputQuantizer:
    """A forward pre-hook rounding a layer's input to ``bits``-bit affine fixed point over
    a calibrated [low, high] range. A plain class (not a closure) so that the module can
    be deep-copied and pickled."""

    def __init__(self, low: float, high: float, bits: int) -> None:
        low, high = min(low, 0.0), max(high, 0.0)  # zero must be exact (padding, ReLU zeros)
        self.qmax = 2**bits - 1
        self.scale = (high - low) / self.qmax if high > low else 1.0
        self.zero_point = int(min(self.qmax, max(0, round(-low / self.scale))))

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        q = torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, 0, self.qmax)
        return (q, *args[1:])


def _input_ranges(model: nn.Module, calibration: Iterable[Any]) -> dict[str, tuple[float, float]]:
    """min and max of every conv/linear input over the calibration batches."""
    ranges: dict[str, tuple[float, float]] = {}
    handles = []

    def recorder(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach()
            low, high = ranges.get(name, (math.inf, -math.inf))
            ranges[name] = (min(low, float(x.min())), max(high, float(x.max())))

        return hook

    for name, module in model.named_modules():
        if isinstance(module, _WEIGHTED):
            handles.append(module.register_forward_pre_hook(recorder(name)))
    try:
        with common.eval_mode(model), torch.inference_mode():
            for batch in calibration:
                model(*_as_inputs(batch))
    finally:
        for handle in handles:
            handle.remove()
    return ranges


def fake_quantize(model: nn.Module, bits: int, calibration: Iterable[Any] | None = None,
                  activations: bool = True) -> nn.Module:
    """A copy of ``model`` whose conv and linear layers compute on ``bits``-bit fixed point.

    Weights: symmetric, per output channel (scale = max |w| / (2^(b-1) - 1)). Activations
    (``activations=True``): the input of every conv and linear layer, per tensor, affine
    over the range seen on ``calibration`` (unsigned b-bit levels, zero exactly
    representable). Biases and norms stay float, as int8 kernels keep biases in int32.
    The arithmetic itself is float ("fake" quantization): the accuracy is that of b-bit
    storage and b-bit operands, not a fixed-point speed. ``bits=32`` is an unchanged copy.
    """
    _check_bits(bits)
    copied = copy.deepcopy(model)
    if bits == FLOAT_BITS:
        return copied
    if activations and calibration is None:
        raise InvalidInputError("fake_quantize with activations needs calibration batches; pass calibration= "
                                "or activations=False for weights only")
    ranges = _input_ranges(copied, calibration) if activations else {}  # type: ignore[arg-type]
    with torch.no_grad():
        for name, module in copied.named_modules():
            if not isinstance(module, _WEIGHTED):
                continue
            module.weight.copy_(_fake_weight(module.weight, bits))
            if name in ranges:
                module.register_forward_pre_hook(_InputQuantizer(*ranges[name], bits))
    return copied


# --- the sweep --------------------------------------------------------------------------------


@dataclass
class QuantPoint(Record):
    """One model variant of a quantization sweep.

    ``kind``: "float" (the reference, ``bits`` 32), "fake" (fake-quantised at ``bits``) or
    "int8" (torch's int8 kernels). ``size_kind`` says whether ``size_bytes`` was measured
    (serialized state dict) or estimated (packed size of a fake-quantised model); an int8
    point whose every path failed has None figures, "not measured" and the reasons.
    ``latency_s`` is a median at ``latency_batch_size`` with ``latency_threads`` threads,
    or None with ``latency_reason``. ``sqnr_db`` compares the outputs with the float
    model's on the same batches (None for the reference itself). ``accuracy_delta`` is
    ``top1`` minus the float model's top-1 (fractions).
    """

    bits: int
    kind: str
    size_bytes: int | None
    size_kind: str
    latency_s: float | None
    latency_reason: str | None
    latency_threads: int | None
    sqnr_db: float | None
    sqnr_reason: str | None
    top1: float | None
    accuracy_delta: float | None
    activations_quantized: bool = False
    int8_path: str | None = None
    fallback_reasons: list[str] = field(default_factory=list)



@dataclass(frozen=True)
class _Context:
    """What every point of a sweep is measured with."""

    dataset: Any
    calibration: list[torch.Tensor]
    compare: list[torch.Tensor]
    reference: torch.Tensor
    latency_input: torch.Tensor
    eval_limit: int | None
    latency: bool
    threads: int | None
    budget_s: float


def _latency(module: nn.Module, ctx: _Context, reason_if_not: str | None = None) -> common.Latency:
    if reason_if_not is not None:
        return common.Latency(None, reason_if_not)
    if not ctx.latency:
        return common.Latency(None, "not requested (latency=False)")
    return common.measure_latency(module, ctx.latency_input, ctx.threads, ctx.budget_s)


def _sqnr(module: nn.Module, ctx: _Context) -> float | None:
    value = sqnr_db(ctx.reference, common.outputs(module, ctx.compare))
    return None if math.isinf(value) else value


def _point(module: nn.Module, ctx: _Context, bits: int, kind: str, size: tuple[int, str],
           float_top1: float | None, latency: common.Latency, **extra: Any) -> QuantPoint:
    top1 = common.top1(module, ctx.dataset, ctx.eval_limit)
    sqnr = None if kind == "float" else _sqnr(module, ctx)
    reason = "the float reference itself" if kind == "float" else (None if sqnr is not None else "outputs identical to float")
    base = top1 if kind == "float" else float_top1
    delta = None if top1 is None or base is None else top1 - base
    return QuantPoint(bits, kind, size[0], size[1], latency.latency_s, latency.reason, latency.threads,
                      sqnr, reason, top1, delta, **extra)


_FAKE_LATENCY = "fake quantization computes in float: its time is not a fixed-point latency"


def quantization_sweep(
    model: nn.Module,
    data: str | Dataset = "digits",  # type: ignore[type-arg]
    bits: Sequence[int] = (32, 16, 8, 6, 4),
    int8: bool = True,
    eval_limit: int | None = None,
    latency: bool = True,
    input_size: int | None = None,
    activations: bool = True,
    calibration_batches: int = 4,
    batch_size: int = 32,
    latency_batch_size: int = 1,
    threads: int | None = 1,
    time_budget_s: float = 1.0,
    backend: str = "x86",
    int8_paths: Sequence[str] = INT8_PATHS,
) -> list[QuantPoint]:
    """Size, latency, output SQNR and accuracy of ``model`` at each of ``bits`` and in int8.

    ``data`` is a Dataset of preprocessed ``(image, label)``, ``"digits"`` or a folder
    (opened at ``input_size``, default 64). The first ``calibration_batches`` batches
    (spread over the data) calibrate activation ranges and are the inputs the SQNR is
    measured on; accuracy is :func:`dnnmeter.accuracy.evaluate` on ``eval_limit`` images.
    Latency is measured for the float and int8 models only, in this process with
    ``threads`` threads (restored after). The float point is always included.
    """
    for b in bits:
        _check_bits(b)
    if latency_batch_size > batch_size:
        raise InvalidInputError(f"latency batch size {latency_batch_size} must not exceed batch_size {batch_size}")
    dataset = common.open_dataset(data, input_size)
    found = common.batches(dataset, 2 * calibration_batches, batch_size)
    if not found:
        raise InvalidInputError("quantization_sweep: the data set is empty")
    # SQNR on other batches than those that set the ranges, unless the data set is one batch.
    calibration, compare = found[::2], (found[1::2] or found)
    reference_model = copy.deepcopy(model).eval()
    reference = common.outputs(reference_model, compare)
    ctx = _Context(dataset, calibration, compare, reference, calibration[0][:latency_batch_size],
                   eval_limit, latency, threads, time_budget_s)
    float_point = _point(reference_model, ctx, FLOAT_BITS, "float", (model_size_bytes(reference_model), "measured"),
                         None, _latency(reference_model, ctx))
    base = float_point.top1
    points = [float_point]
    for b in sorted({b for b in bits if b != FLOAT_BITS}, reverse=True):
        fake = fake_quantize(reference_model, b, calibration if activations else None, activations)
        points.append(_point(fake, ctx, b, "fake", (packed_size_bytes(reference_model, b), "estimated"), base,
                             _latency(fake, ctx, _FAKE_LATENCY), activations_quantized=activations))
    if int8:
        points.append(_int8_point(reference_model, ctx, base, backend, int8_paths))
    return points


def _int8_point(model: nn.Module, ctx: _Context, base: float | None, backend: str, paths: Sequence[str]) -> QuantPoint:
    try:
        result = quantize_int8(model, (ctx.calibration[0],), ctx.calibration, backend, paths)
    except QuantizationError as exc:
        why = "no int8 path worked (see fallback_reasons)"
        return QuantPoint(8, "int8", None, "not measured", None, why, None, None, why, None, None,
                          activations_quantized=True, fallback_reasons=exc.reasons)
    with quantized_engine(_supported(backend)), _quiet_deprecations():
        return _point(result.module, ctx, 8, "int8", (model_size_bytes(result.module), "measured"), base,
                      _latency(result.module, ctx), activations_quantized=True,
                      int8_path=result.path, fallback_reasons=result.fallback_reasons)
