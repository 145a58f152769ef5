"""Where models come from: torchvision, timm, seed architectures, ONNX files, user callables.

>>> from dnnmeter.zoo import create_model
>>> model = create_model("resnet50")            # on the meta device: shapes, no storage
>>> model = create_model("resnet50", device="cpu")
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from dnnmeter.errors import ModelBuildError
from dnnmeter.zoo import python_source, seed, timm_source, torchvision_source
from dnnmeter.zoo.meta_init import meta_init
from dnnmeter.zoo.registry import (
    REGISTRY,
    SOURCES,
    ModelEntry,
    Published,
    list_models,
    register_model,
    unknown_model,
)

__all__ = [
    "SEED_MODELS",
    "SOURCES",
    "ModelEntry",
    "Published",
    "create_model",
    "expand_names",
    "is_onnx_path",
    "list_models",
    "meta_init",
    "register_model",
    "resolve",
]

REGISTRY.add_lazy_source(torchvision_source.populate)
REGISTRY.add_lazy_source(seed.populate)

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


def is_onnx_path(name: str) -> bool:
    return name.lower().endswith(".onnx") or (os.path.isfile(name) and not name.endswith(".py"))


def resolve(name: str) -> ModelEntry:
    """The entry for ``name``; raises UnknownModelError naming the closest matches."""
    entry = REGISTRY.get(name)
    if entry is not None:
        return entry
    if name.startswith(timm_source.PREFIX):
        found = timm_source.entry(name)
        if found is not None:
            return found
        raise unknown_model(name)
    if is_onnx_path(name):
        from dnnmeter.zoo import onnx_source

        return onnx_source.entry(name)
    if python_source.looks_like_callable(name):
        return python_source.entry(name)
    raise unknown_model(name)


def expand_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand the alias ``seed`` into the seed list; keep every other name as given."""
    out: list[str] = []
    for name in names:
        out.extend(SEED_MODELS if name == "seed" else [name])
    return out


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
        with meta_init():
            model = entry.build(**kwargs)
    else:
        model = entry.build(weights=weights, **kwargs) if weights else entry.build(**kwargs)
        model = model.to(device)
    return model.eval()
