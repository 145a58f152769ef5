"""OpenVINO's CPU plugin: the ``openvino-float32`` and ``openvino-bfloat16`` kinds (run in the worker).

The torch module is converted directly (``openvino.convert_model``, which traces it; no ONNX on
the way) with the batch dimension dynamic, so one IR serves the timed batch, the throughput batch
and the accuracy batch. The IR is saved with float32 weights (``save_model`` would otherwise
compress them to float16) and compiled from that file, so what is measured is what ``--export``
copies. The precision is always asked for: the CPU plugin defaults to bfloat16 on CPUs with
AVX512-BF16 or AMX, which would make "float32" a bfloat16 run.

The module is not named ``openvino.py``: run from this folder, that name would shadow the package.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dnnmeter.deployment.prepared import BuildContext, Prepared
from dnnmeter.deployment.configs import OPENVINO_PIP, OPENVINO_PRECISIONS
from dnnmeter.errors import MissingDependencyError

IR_NAME = "model-openvino.xml"  # its weights are the .bin beside it


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise MissingDependencyError(f"openvino is not installed; {OPENVINO_PIP}") from exc
    return openvino


def version() -> str:
    """The installed openvino's release (``2026.4.1``; the module's own string adds a build tag)."""
    from importlib import metadata

    return metadata.version("openvino")


def ir_files(xml: Path) -> list[Path]:
    """The IR's two files: the graph (.xml) and its weights (.bin)."""
    return [xml, xml.with_suffix(".bin")]


def save_ir(ov: Any, model: nn.Module, ctx: BuildContext) -> Path:
    """The IR of ``model`` in the artefact folder, converted once for every OpenVINO configuration."""
    xml = ctx.artefact_dir / IR_NAME
    if all(p.is_file() for p in ir_files(xml)):
        return xml
    shape = [-1, *ctx.example.shape[1:]]  # -1: any batch size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation, raised by the conversion
        converted = ov.convert_model(model, example_input=ctx.example.cpu(), input=[shape])
    # written under another name, then renamed, the .xml last: a worker killed while saving leaves
    # no IR that looks whole (the .xml holds offsets into the .bin, not its name)
    partial = xml.with_name(f"partial-{xml.name}")
    ov.save_model(converted, str(partial), compress_to_fp16=False)
    for done, final in reversed(list(zip(ir_files(partial), ir_files(xml)))):
        done.replace(final)
    return xml


def compile_properties(kind: str, threads: int | None) -> dict[str, Any]:
    """The CPU plugin's settings for ``kind`` at ``threads`` (0: the plugin's default)."""
    return {"INFERENCE_NUM_THREADS": threads or 0, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[kind]}


def build_openvino(model: nn.Module, ctx: BuildContext) -> Prepared:
    """``ctx.config``'s OpenVINO configuration of ``model``: float32 in, float32 logits out."""
    if ctx.device.type != "cpu":
        raise MissingDependencyError("OpenVINO runs on the CPU here (its GPU plugin is for Intel GPUs)")
    ov = _import_openvino()
    xml = save_ir(ov, model, ctx)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(xml)), "CPU",
                                  compile_properties(ctx.config.kind, ctx.config.threads))
    request = compiled.create_infer_request()
    used = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()

    def call(x: torch.Tensor) -> torch.Tensor:
        # share_inputs: no copy of a contiguous float32 batch; the outputs are copied out (the
        # request reuses its output buffer on the next call)
        out = request.infer({0: x.detach().cpu().numpy()}, share_inputs=True)[0]
        return torch.from_numpy(out).float()

    asked = OPENVINO_PRECISIONS[ctx.config.kind]
    notes = [f"openvino {version()} CPU plugin, inference precision {used}"
             + ("" if used == asked else f" (asked for {asked})"),
             "IR converted from the torch module (batch dimension dynamic), float32 weights"]
    return Prepared(call, sum(p.stat().st_size for p in ir_files(xml)), str(xml), notes)
