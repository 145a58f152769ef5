"""Turn the float32 model into one configuration's callable (run inside the worker process).

Each builder takes the eval-mode float32 model, an example batch and calibration batches, and
returns a :class:`Prepared`: ``call(x)`` maps a float32 batch to float32 logits (the input's
conversion, to channels_last or bfloat16, is part of the call and so of its latency), the
artefact's size in bytes and, where there is one, the artefact's file. The user's model is
never changed: builders work on copies.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dnnmeter.deployment.configs import ORT_INT8_RECIPE, ORT_PIP
from dnnmeter.deployment.prepared import BuildContext, Call, Prepared
from dnnmeter.errors import MissingDependencyError
from dnnmeter.measure.threads import torch_flag

__all__ = ["BUILDERS", "BuildContext", "Call", "Prepared", "build", "cudnn_benchmark"]




def _float_size(model: nn.Module) -> int:
    from dnnmeter.transforms.quantize import model_size_bytes

    return model_size_bytes(model)


def _eager(model: nn.Module, ctx: BuildContext) -> Prepared:
    return Prepared(model, _float_size(model))


def _channels_last(model: nn.Module, ctx: BuildContext) -> Prepared:
    moved = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return Prepared(lambda x: moved(x.contiguous(memory_format=torch.channels_last)), _float_size(moved))


def _converted(model: nn.Module, dtype: torch.dtype, layout: torch.memory_format) -> nn.Module:
    """A copy of ``model`` in ``dtype`` and ``layout`` (preserve_format: as it is)."""
    return copy.deepcopy(model).to(dtype=dtype, memory_format=layout)  # type: ignore[call-overload, no-any-return]


def _cast(dtype: torch.dtype,
          layout: torch.memory_format = torch.preserve_format) -> Callable[[nn.Module, BuildContext], Prepared]:
    def build(model: nn.Module, ctx: BuildContext) -> Prepared:
        cast = _converted(model, dtype, layout)
        return Prepared(lambda x: cast(x.to(dtype=dtype, memory_format=layout)).float(), _float_size(cast))

    return build


def _int8(model: nn.Module, ctx: BuildContext) -> Prepared:
    from dnnmeter.transforms.quantize import model_size_bytes, quantize_int8, quantized_engine

    made = quantize_int8(model, ctx.example, ctx.calibration)
    path = ctx.artefact_dir / f"{ctx.config.kind}.state_dict.pt"
    torch.save(made.module.state_dict(), path)
    notes = [f"torch.ao path {made.path} on the {made.backend} engine"] + made.fallback_reasons
    engine = made.backend

    def call(x: torch.Tensor) -> torch.Tensor:
        with quantized_engine(engine):
            return made.module(x)

    return Prepared(call, model_size_bytes(made.module), str(path), notes)


def _compile(model: nn.Module, ctx: BuildContext) -> Prepared:
    compiled = torch.compile(copy.deepcopy(model), backend="inductor")
    return Prepared(compiled, _float_size(model), notes=["first_call_s includes inductor's compilation"])


def _compile_frozen(model: nn.Module, ctx: BuildContext) -> Prepared:
    """Inductor with weight freezing (PyTorch's recommended CPU inference path): the weights become
    constants, folded, prepacked for oneDNN, conv+bn fused. Needs no grad (the worker's inference_mode).

    The flag is global and read at every compilation, lazily: dynamo reads it while tracing
    (``is_parameter_freezing``), inductor while compiling. Setting it only around the build and a
    first call was tried: the recompile at the next batch size (the throughput or accuracy batch),
    outside it, was not frozen (torch 2.14), so the figures would mix frozen and unfrozen code.
    So every call sets it and restores the previous value after, even on error: then the first
    call at any batch compiles frozen and ``first_call_s`` includes the compilation, as ``compile``'s
    does. ``torch_flag`` costs about 5 us a call here (``config.patch`` about 20 us).
    """
    from torch._inductor import config as inductor_config

    compiled = torch.compile(copy.deepcopy(model), backend="inductor")

    def call(x: torch.Tensor) -> torch.Tensor:
        with torch_flag(inductor_config, "freezing", True):
            return compiled(x)

    return Prepared(call, _float_size(model),
                    notes=["first_call_s includes inductor's compilation (with weight freezing)"])


def cudnn_benchmark(on: bool) -> contextlib.AbstractContextManager[None]:
    return torch_flag(torch.backends.cudnn, "benchmark", on)


def _cuda_graphs(model: nn.Module, ctx: BuildContext) -> Prepared:
    return _captured(model, ctx.example, "")


def _cuda_graphs_float16(model: nn.Module, ctx: BuildContext) -> Prepared:
    half = _converted(model, torch.float16, torch.channels_last)
    return _captured(half, ctx.example.to(dtype=torch.float16, memory_format=torch.channels_last),
                     ", float16 channels_last")


def _captured(model: nn.Module, example: torch.Tensor, what: str) -> Prepared:
    """``model`` replayed from one CUDA graph; the float32 input is copied (and so converted) into
    the captured input, and the output returned as float32, as every configuration's call does."""
    static_in = example.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # capture needs warm-up calls on a side stream
        for _ in range(3):
            model(static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = model(static_in).float()

    def call(x: torch.Tensor) -> torch.Tensor:
        static_in.copy_(x)
        graph.replay()
        return static_out

    return Prepared(call, _float_size(model), notes=[f"one CUDA graph captured at the batch size{what}"],
                    fixed_batch_reason="a CUDA graph replays the one batch size it was captured at")


# --- ONNX Runtime ---------------------------------------------------------------------------


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(f"onnxruntime is not installed; {ORT_PIP}") from exc
    return onnxruntime


def _export(model: nn.Module, ctx: BuildContext) -> Path:
    path = ctx.artefact_dir / "model-float32.onnx"
    if not path.is_file():  # one export serves every ORT configuration of this run
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # a dynamic batch axis: the same file serves the latency batch and the throughput batch
            torch.onnx.export(model, (ctx.example,), str(path), input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    return path


# The layers that meet the outside world: the first reads the image, the last writes the logits.
EDGE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def edge_layers(float_path: Path) -> list[str]:
    """The names of the graph's first and last Conv/Gemm/MatMul nodes (ONNX keeps nodes in
    topological order), the ones ONNX Runtime's int8 leaves in float32."""
    import onnx

    names = [n.name for n in onnx.load(str(float_path), load_external_data=False).graph.node
             if n.op_type in EDGE_OPS and n.name]
    return sorted({names[0], names[-1]}) if names else []


def _ort_int8(float_path: Path, ctx: BuildContext) -> Path:
    """The int8 recipe (``configs.ORT_INT8_RECIPE``): QDQ, int8 weights per channel, uint8
    activations whose ranges are the 99.999th percentile of the calibration images (not their min
    and max), and the first and last layers left in float32.

    Why: on a trained resnet50 (the digits benchmark, 1,000 held-out images) every layer in int8
    with min/max ranges agreed with float32 on 98.5 to 99.4% of the images, depending on which
    images calibrated it (nine sets of 64 to 719), so a 1% tolerance was passed by luck. Percentile
    ranges with the first conv and the fc in float32 agreed on 99.1 to 99.5% over four sets (the
    first conv alone in float32: 99.5%; the fc alone: 98.6 to 99.2%), and on 99.2 to 99.6% on a
    second resnet50 trained with another seed (docs/deploy.md). The cost: about 101 against 88 ms
    at batch 8 on 2 threads, the first conv's 118 MMACs in float32. The first layer sees the raw
    image, the most sensitive input; the last writes the logits top-1 is read from. Percentile
    ranges keep every calibration image's activations in memory until the histograms are made
    (ORT's HistogramCalibrater: 256 images of resnet50 were killed here), so calibration stays at
    :data:`~dnnmeter.deployment.images.CALIBRATION_IMAGES`.
    """
    path = ctx.artefact_dir / "model-int8.onnx"
    if path.is_file():
        return path
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{"input": b.numpy()} for b in ctx.calibration])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice ("consider pre-processing") goes to the root logger
    partial = path.with_name(f"partial-{path.name}")  # a worker killed while quantizing leaves no whole-looking file
    try:
        quantize_static(str(float_path), str(partial), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=edge_layers(float_path))
    finally:
        root.setLevel(level)
    partial.replace(path)
    return path


def _ort(model: nn.Module, ctx: BuildContext) -> Prepared:
    ort = _import_ort()
    path = _export(model, ctx)
    int8 = ctx.config.kind.endswith("-int8")
    if int8:
        path = _ort_int8(path, ctx)
    levels = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, levels[str(ctx.config.ort_level)])
    options.intra_op_num_threads = ctx.config.threads or 0
    options.inter_op_num_threads = 1
    cuda = ctx.device.type == "cuda"
    providers = ["CUDAExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), options, providers=providers)

    def call(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"input": x.detach().cpu().numpy()})[0])

    notes = [f"onnxruntime {ort.__version__}"]
    if int8:  # "int8" is not every layer: say which are left in float32
        notes.append(f"int8 recipe {ORT_INT8_RECIPE}: percentile activation ranges; the first and last "
                     f"{'/'.join(EDGE_OPS)} layers left in float32")
    return Prepared(call, os.path.getsize(path), str(path), notes)


def _openvino(model: nn.Module, ctx: BuildContext) -> Prepared:
    from dnnmeter.deployment.openvino_build import build_openvino  # openvino only when asked for

    return build_openvino(model, ctx)


BUILDERS: dict[str, Callable[[nn.Module, BuildContext], Prepared]] = {
    "eager-float32": _eager,
    "channels_last": _channels_last,
    "bfloat16": _cast(torch.bfloat16),
    "float16": _cast(torch.float16),
    "float16-channels_last": _cast(torch.float16, torch.channels_last),
    "bfloat16-channels_last": _cast(torch.bfloat16, torch.channels_last),
    "int8": _int8,
    "compile": _compile,
    "compile-frozen": _compile_frozen,
    "cudnn-benchmark": _eager,  # the flag is set around the whole measurement (worker.py)
    "cuda-graphs": _cuda_graphs,
    "cuda-graphs-float16": _cuda_graphs_float16,
    "openvino-float32": _openvino,
    "openvino-bfloat16": _openvino,
}


def build(model: nn.Module, ctx: BuildContext) -> Prepared:
    """The configuration ``ctx.config`` of ``model``."""
    if ctx.config.is_ort:
        return _ort(model, ctx)
    return BUILDERS[ctx.config.kind](model, ctx)
