"""Where models come from: torchvision, timm, seed architectures, ONNX files, user callables.

>>> from dnnmeter.zoo import create_model
>>> model = create_model("resnet50")            # on the meta device: shapes, no storage
>>> model = create_model("resnet50", device="cpu")
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dnnmeter.errors import DnnmeterError, ModelBuildError
from dnnmeter.zoo import hf_source, onnx_source, python_source, seed, timm_source, torchvision_source
from dnnmeter.zoo.meta_init import meta_init
from dnnmeter.zoo.registry import (
    MODEL_SOURCES,
    REGISTRY,
    SOURCES,
    FunctionSource,
    ModelEntry,
    Published,
    Source,
    claiming_source,
    list_models,
    register_model,
    register_source,
    unknown_model,
)
from dnnmeter.zoo.onnx_source import is_onnx_path

__all__ = [
    "MODEL_SOURCES",
    "SEED_MODELS",
    "SOURCES",
    "ModelEntry",
    "Published",
    "Source",
    "create_model",
    "expand_names",
    "is_onnx_path",
    "list_models",
    "meta_init",
    "register_model",
    "register_source",
    "resolve",
]

REGISTRY.add_lazy_source(torchvision_source.populate)
REGISTRY.add_lazy_source(seed.populate)


# resolve() asks the sources in this order: a prefix before a shape.
register_source(timm_source.SOURCE)
register_source(hf_source.SOURCE)
register_source(onnx_source.SOURCE)
# ``package.module:callable`` names (python_source.py holds the code).
register_source(FunctionSource("python", "", False, python_source.entry, recognises=python_source.looks_like_callable))

# The networks of the two seed studies (Canziani et al. 2017; the hardware-perspective
# study), in the order of their tables.
SEED_MODELS: tuple[str, ...] = (
    "alexnet",
    "bn_alexnet",
    "bn_nin",
    "enet",
    "googlenet",
    "vgg16",
    "vgg19",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "inception_v3",
    "timm:inception_v4",
    "timm:legacy_xception",
    "tiny_alexnet",
    "tiny_alexnet_dw",
    "tiny_alexnet_dw_res",
)


def resolve(name: str) -> ModelEntry:
    """The entry for ``name``; raises UnknownModelError naming the closest matches.

    Registered names first, then the first source in MODEL_SOURCES that claims the name.
    """
    entry = REGISTRY.lookup(name)
    if entry is not None:
        return entry  # type: ignore[no-any-return]
    source = claiming_source(name)
    found = source.entry(name) if source is not None else None
    if found is None:
        raise unknown_model(name)
    return found


def expand_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand the alias ``seed`` into the seed list; keep every other name as given."""
    out: list[str] = []
    for name in names:
        out.extend(SEED_MODELS if name == "seed" else [name])
    return out


def _build_on_meta(entry: ModelEntry, name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``entry``'s module with every parameter and buffer on ``meta``. meta_init keeps tensors
    made during construction real, which constructors that read values need (an index table
    built with arange, then indexed); a constructor that runs a forward on a tensor it made
    (some timm models size a head that way) needs those on meta too, so torch's meta device
    context is the second try."""
    try:
        with meta_init():
            return entry.build(**kwargs)
    except Exception as exc:  # noqa: BLE001 - a third-party constructor may raise anything
        first = exc
    try:
        with torch.device("meta"):
            return entry.build(**kwargs)
    except Exception:  # noqa: BLE001 - the first failure is the one to report
        pass
    if isinstance(first, DnnmeterError):  # e.g. a user builder's error, already naming its file and line
        raise first
    reason = (str(first).strip().splitlines() or [""])[0]
    raise ModelBuildError(f"{name}: cannot be built on the meta device ({type(first).__name__}: {reason}); "
                          "build it yourself and pass the module: dnnmeter.analyze(model)") from None


def create_model(
    name: str, device: str = "meta", weights: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build model ``name`` in eval mode on ``device``.

    On ``meta`` (the default) no parameter storage is allocated and no init runs, so even
    vit_h_14 builds in a fraction of a second; use it for counting. ``weights`` is None
    (initial values), ``"default"`` (torchvision's default weights from the local torch hub
    cache) or a file path.
    """
    entry = resolve(name)
    if entry.source == "onnx":
        raise ModelBuildError(
            f"{name}: ONNX files are analysed from their graph and cannot be built as nn.Module"
        )
    if device == "meta":
        if weights is not None:
            raise ModelBuildError(f"{name}: weights cannot be loaded on the meta device")
        model = _build_on_meta(entry, name, kwargs)
    else:
        model = entry.build(weights=weights, **kwargs) if weights else entry.build(**kwargs)
        model = model.to(device)
    return model.eval()
