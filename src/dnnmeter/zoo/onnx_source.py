"""ONNX files as models (onnx is the optional extra ``dnnmeter[onnx]``).

An ONNX file is never built as an ``nn.Module``: its cost is counted from the graph by
:func:`dnnmeter.analysis.onnx_count.analyze_onnx`. This module loads and checks the file
and reads the input size the graph declares.

>>> entry("resnet18.onnx").input_size   # doctest: +SKIP
(3, 224, 224)
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from dnnmeter.errors import MissingDependencyError, ModelBuildError
from dnnmeter.zoo.registry import FunctionSource, InputSize, ModelEntry

DEFAULT_INPUT_SIZE: InputSize = (3, 224, 224)


def is_onnx_path(name: str) -> bool:
    """A ``.onnx`` name, or an existing file that is not Python source."""
    return name.lower().endswith(".onnx") or (os.path.isfile(name) and not name.endswith(".py"))


def is_available() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_module() -> Any:
    """The ``onnx`` package, or MissingDependencyError naming the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError(
            "ONNX models need onnx: pip install 'dnnmeter[onnx]'"
        ) from exc
    return onnx


def load_model(path: str) -> Any:
    """The ``onnx.ModelProto`` in ``path``, without its external weight data (not needed to count).

    Raises ModelBuildError when the file is missing or is not an ONNX model.
    """
    onnx = onnx_module()
    if not os.path.isfile(path):
        raise ModelBuildError(f"{path}: no such file")
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelBuildError(f"{path}: not an ONNX model ({reason})") from exc
    if model.ir_version == 0 or not model.HasField("graph"):
        raise ModelBuildError(f"{path}: not an ONNX model (no graph)")
    return model


def first_input(model: Any) -> Any:
    """The graph's first input that is not an initializer (the data input)."""
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name not in initializers:
            return value
    raise ModelBuildError(f"{model.graph.name or 'model'}: the ONNX graph has no data input")


def declared_dims(value: Any) -> list[int | None]:
    """The dims of a graph input; None for a dynamic (symbolic or unset) dim."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]


def declared_input_size(model: Any) -> InputSize:
    """(C, H, W) of the first data input; (3, 224, 224) fills dynamic dims or a non-4-D input."""
    dims = declared_dims(first_input(model))
    if len(dims) != 4:
        return DEFAULT_INPUT_SIZE
    c, h, w = (d if d is not None else f for d, f in zip(dims[1:], DEFAULT_INPUT_SIZE))
    return (c, h, w)


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def build(path: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    raise ModelBuildError(
        f"{path}: ONNX files are analysed from their graph and cannot be built as nn.Module"
    )


def entry(path: str) -> ModelEntry:
    """The entry of ONNX file ``path``; raises ModelBuildError if it is missing or not ONNX."""
    model = load_model(path)
    return ModelEntry(
        name=path,
        source="onnx",
        input_size=declared_input_size(model),
        build=lambda weights=None, **kw: build(path, weights, **kw),
        family="onnx",
        description=f"ONNX file {os.path.basename(path)} (opset {_opset(model)})",
        meta_ok=False,
    )


# ONNX files, recognised by their path; never listed.
SOURCE = FunctionSource("onnx", "", False, entry, is_available, recognises=is_onnx_path)
