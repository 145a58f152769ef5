"""Write the recommended configuration where the user asked (``--export DIR``).

The folder gets ``deploy.json`` (the recommended configuration's figures and the whole
search's verdict) and the artefact: the ONNX file for an ONNX Runtime configuration, the IR
(``model.xml`` and its weights ``model.bin``, with the snippet that compiles it) for an OpenVINO
one, the int8 state dict for torch.ao int8 (with the snippet that rebuilds the module to load it
into), and for the others ``run_model.py``, a short Python snippet that rebuilds the
configuration from the model's name and weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dnnmeter.deployment.result import ConfigResult, DeployResult

_PREPARE = {
    "eager-float32": "model = model",
    "channels_last": "model = model.to(memory_format=torch.channels_last)\n"
                     "# call: model(x.contiguous(memory_format=torch.channels_last))",
    "bfloat16": "model = model.to(torch.bfloat16)\n# call: model(x.to(torch.bfloat16)).float()",
    "float16": "model = model.to(torch.float16)\n# call: model(x.to(torch.float16)).float()",
    "float16-channels_last": "model = model.to(dtype=torch.float16, memory_format=torch.channels_last)\n"
                             "# call: model(x.to(dtype=torch.float16, memory_format=torch.channels_last)).float()",
    "bfloat16-channels_last": "model = model.to(dtype=torch.bfloat16, memory_format=torch.channels_last)\n"
                              "# call: model(x.to(dtype=torch.bfloat16, memory_format=torch.channels_last)).float()",
    "compile": "model = torch.compile(model, backend='inductor')",
    "compile-frozen": "torch._inductor.config.freezing = True  # weights folded in at the first call: inference only\n"
                      "model = torch.compile(model, backend='inductor')",
    "cudnn-benchmark": "torch.backends.cudnn.benchmark = True",
    "cuda-graphs": "# capture one torch.cuda.CUDAGraph at the batch size (see dnnmeter.deployment.build._cuda_graphs)",
    "cuda-graphs-float16": "model = model.to(dtype=torch.float16, memory_format=torch.channels_last)\n"
                           "# then capture one torch.cuda.CUDAGraph at the batch size "
                           "(see dnnmeter.deployment.build._cuda_graphs_float16)",
    "int8": "from dnnmeter.transforms.quantize import quantize_int8\n"
            "model = quantize_int8(model, example, calibration_batches).module\n"
            "# or load the exported int8.state_dict.pt into the quantized module",
}


def _openvino_snippet(result: DeployResult, config: ConfigResult) -> str:
    from dnnmeter.deployment.openvino_build import compile_properties

    properties = compile_properties(config.kind, config.threads)
    return ("import openvino as ov\n\ncore = ov.Core()\n"
            f"compiled = core.compile_model(core.read_model('model.xml'), 'CPU', {properties!r})\n"
            "request = compiled.create_infer_request()\n"
            f"logits = request.infer({{0: images_numpy}})[0]  # float32, batch of {result.batch_size} "
            "(the batch dimension is dynamic)\n")


def snippet(result: DeployResult, config: ConfigResult, weights: str | None) -> str:
    """Python that rebuilds ``config`` of the model."""
    if config.kind.startswith("openvino-"):
        return _openvino_snippet(result, config)
    if config.kind.startswith("ort-"):
        level = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                 "all": "ORT_ENABLE_ALL"}[config.kind.split("-")[1]]
        return (f"import onnxruntime as ort\n\noptions = ort.SessionOptions()\n"
                f"options.graph_optimization_level = ort.GraphOptimizationLevel.{level}\n"
                f"options.intra_op_num_threads = {config.threads or 0}\n"
                f"session = ort.InferenceSession('model.onnx', options)\n"
                f"logits = session.run(None, {{'input': images_numpy}})[0]  # batch of {result.batch_size}\n")
    threads = f"torch.set_num_threads({config.threads})\n" if config.threads else ""
    return (f"import torch\nfrom dnnmeter.accuracy import build_with_weights\n\n{threads}"
            f"model = build_with_weights({result.model!r}, {weights!r}, device={result.device!r})\n"
            f"{_PREPARE.get(config.kind, '')}\n"
            "with torch.inference_mode():\n    logits = model(x)\n")


def export_recommended(result: DeployResult, folder: Path, weights: str | None) -> list[Path]:
    """Write the recommended configuration's artefact and JSON into ``folder``; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    config = result.config(result.recommended)
    written = []
    artefact = config.extra.get("artefact")
    if artefact and artefact.endswith(".xml") and Path(artefact).is_file():  # OpenVINO's IR: graph, weights
        for source in (Path(artefact), Path(artefact).with_suffix(".bin")):
            written.append(Path(shutil.copyfile(source, folder / f"model{source.suffix}")))
    elif artefact and Path(artefact).is_file():
        name = "model.onnx" if artefact.endswith(".onnx") else "int8.state_dict.pt"
        written.append(Path(shutil.copyfile(artefact, folder / name)))
    code = folder / "run_model.py"
    code.write_text(snippet(result, config, weights))
    written.append(code)
    figures = folder / "deploy.json"
    figures.write_text(json.dumps({"recommended": config.to_dict(), "model": result.model, "device": result.device,
                                   "batch_size": result.batch_size, "tolerance": result.tolerance,
                                   "baseline": result.baseline, "reason": result.recommendation_reason},
                                  indent=2, default=str) + "\n")
    written.append(figures)
    return written
