"""Which ways of running a model exist here, and why each one that does not is skipped.

A :class:`Config` is one way to run the model (a kind such as ``int8`` or ``ort-all-float32``
at a thread count). :func:`plan` lists them for a device from a :class:`Capabilities`,
which :func:`probe` reads from this machine; tests pass fakes (a GPU, no onnxruntime).
Nothing here imports onnxruntime on the CPU, nor openvino: the probe asks only whether they can be found.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field

from dnnmeter.errors import InvalidInputError

BASELINE_KIND = "eager-float32"
ORT_LEVELS = ("disabled", "basic", "extended", "all")
ORT_PIP = "pip install 'dnnmeter[deploy]' (or: pip install onnxruntime)"
# 2: percentile ranges, the first and last layers in float32 (build._ort_int8); 1 was min/max, all int8
ORT_INT8_RECIPE = 2
OPENVINO_PIP = "pip install 'dnnmeter[deploy]' (or: pip install openvino)"
# OpenVINO's kinds and the CPU plugin's INFERENCE_PRECISION_HINT for each (asked for explicitly: the
# plugin's default is bf16 on CPUs with AVX512-BF16 or AMX)
OPENVINO_PRECISIONS = {"openvino-float32": "f32", "openvino-bfloat16": "bf16"}
# Every kind, in the order they are measured (the baseline first: the others are compared with it).
CPU_KINDS = (BASELINE_KIND, "channels_last", "bfloat16", "int8", "compile", "compile-frozen",
             *(f"ort-{level}-{dtype}" for dtype in ("float32", "int8") for level in ORT_LEVELS),
             *OPENVINO_PRECISIONS)
# On a GPU half precision runs on the tensor cores in NHWC: cuDNN transposes NCHW half-precision
# maps around each conv (resnet50 at batch 8 on an H200: float16 0.51x, bfloat16 0.73x eager
# float32), so each comes in channels_last too, and captured in a CUDA graph with it. The order
# is the search's: a budget cut leaves out the last, so the likeliest winners come first (at
# batch 8 an H200 waits on the host's kernel launches, which a CUDA graph removes: 1.85x).
CUDA_KINDS = (BASELINE_KIND, "cuda-graphs", "cuda-graphs-float16", "float16-channels_last", "bfloat16-channels_last",
              "cudnn-benchmark", "channels_last", "float16", "bfloat16", "compile", "compile-frozen",
              *(f"ort-{level}-float32" for level in ORT_LEVELS))
COMPILED_KINDS = ("compile", "compile-frozen")  # inductor's: a C++ compiler on the CPU, a compile at first call


@dataclass(frozen=True)
class Config:
    """One configuration: ``kind`` run with ``threads`` CPU threads (None: torch's default on a GPU)."""

    kind: str
    threads: int | None

    @property
    def name(self) -> str:
        return self.kind if self.threads is None else f"{self.kind}@t{self.threads}"

    @property
    def is_ort(self) -> bool:
        return self.kind.startswith("ort-")

    @property
    def ort_level(self) -> str | None:
        return self.kind.split("-")[1] if self.is_ort else None

    @property
    def recipe(self) -> int | None:
        """The revision of this kind's build, where it changed in a way its figures depend on:
        part of the store key, so a row measured with an older build is measured again."""
        return ORT_INT8_RECIPE if self.is_ort and self.kind.endswith("-int8") else None


@dataclass(frozen=True)
class Capabilities:
    """What this machine offers; each ``*_missing`` is None when present, else the reason."""

    cores: int
    cpu_flags: tuple[str, ...] = ()
    c_compiler: str | None = None
    onnxruntime_missing: str | None = None
    openvino_missing: str | None = None
    cuda_available: bool = False
    cuda_bf16: bool = False
    cuda_providers: tuple[str, ...] = field(default=())


def bf16_missing(caps: Capabilities, device: str) -> str | None:
    """Why bfloat16 has no native kernels here (None: it has)."""
    if device.startswith("cuda"):
        return None if caps.cuda_bf16 else "this GPU has no native bfloat16 (needs compute capability 8.0+)"
    native = [f for f in ("amx_bf16", "avx512_bf16") if f in caps.cpu_flags]
    if native:
        return None
    return ("this CPU has neither AMX-BF16 nor AVX512-BF16: bfloat16 would be emulated in float32 "
            "and only slower")


def compile_missing(caps: Capabilities, device: str) -> str | None:
    if caps.c_compiler is None and not device.startswith("cuda"):
        return "torch.compile's inductor needs a C++ compiler on the CPU and none was found (install gcc or clang)"
    return None


def ort_missing(caps: Capabilities, kind: str, device: str) -> str | None:
    if caps.onnxruntime_missing:
        return caps.onnxruntime_missing
    if device.startswith("cuda") and "CUDAExecutionProvider" not in caps.cuda_providers:
        return "onnxruntime has no CUDAExecutionProvider here; pip install onnxruntime-gpu"
    return None


def openvino_missing(caps: Capabilities, kind: str, device: str) -> str | None:
    if device.startswith("cuda"):
        return "OpenVINO runs on the CPU here (its GPU plugin is for Intel GPUs)"
    if caps.openvino_missing:
        return caps.openvino_missing
    return bf16_missing(caps, device) if kind == "openvino-bfloat16" else None


def skip_reason(config: Config, caps: Capabilities, device: str) -> str | None:
    """Why ``config`` cannot run here, or None when it can."""
    if config.kind in ("bfloat16", "bfloat16-channels_last"):
        return bf16_missing(caps, device)
    if config.kind in COMPILED_KINDS:
        return compile_missing(caps, device)
    if config.is_ort:
        return ort_missing(caps, config.kind, device)
    if config.kind in OPENVINO_PRECISIONS:
        return openvino_missing(caps, config.kind, device)
    return None


def thread_counts(caps: Capabilities, threads: int | None) -> list[int]:
    """1 to the available cores, or just ``threads`` when the user gave one."""
    if threads is not None:
        return [threads]
    return list(range(1, caps.cores + 1))


def plan(device: str, caps: Capabilities, threads: int | None = None,
         kinds: list[str] | None = None) -> list[Config]:
    """Every configuration for ``device``, the baseline first at each thread count.

    ``kinds`` keeps only those kinds (the baseline is always kept: the others are measured
    against it). On a GPU the thread count is torch's default (one configuration per kind).
    """
    table = CUDA_KINDS if device.startswith("cuda") else CPU_KINDS
    chosen = table if kinds is None else [k for k in table if k in kinds or k == BASELINE_KIND]
    if kinds is not None:
        unknown = sorted(set(kinds) - set(table))
        if unknown:
            raise InvalidInputError(f"unknown configuration(s) {', '.join(unknown)} on {device}; "
                                    f"choose from {', '.join(table)}")
    counts: list[int | None] = [None] if device.startswith("cuda") else list(thread_counts(caps, threads))
    return [Config(kind, n) for n in counts for kind in chosen]


def _onnxruntime_missing() -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return f"onnxruntime is not installed; {ORT_PIP}"
    if importlib.util.find_spec("onnx") is None:
        return "onnx is not installed (torch.onnx.export needs it); pip install 'dnnmeter[onnx]'"
    return None


def _openvino_missing() -> str | None:
    if importlib.util.find_spec("openvino") is None:
        return f"openvino is not installed; {OPENVINO_PIP}"
    return None


def probe(device: str = "cpu") -> Capabilities:
    """This machine's capabilities (reads the CPU's flags as every stored measurement does)."""
    from dnnmeter.measure.environment import capture_environment
    from dnnmeter.measure.threads import available_cores

    cuda_bf16, providers = False, ()
    if device.startswith("cuda"):
        import torch

        cuda_bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    missing = _onnxruntime_missing()
    if missing is None and device.startswith("cuda"):
        import onnxruntime

        providers = tuple(onnxruntime.get_available_providers())
    return Capabilities(
        cores=available_cores(), cpu_flags=tuple(capture_environment("cpu")["cpu_flags"]),
        c_compiler=shutil.which("c++") or shutil.which("g++") or shutil.which("clang++"),
        onnxruntime_missing=missing, openvino_missing=_openvino_missing(), cuda_available=device.startswith("cuda"),
        cuda_bf16=cuda_bf16, cuda_providers=providers,
    )
