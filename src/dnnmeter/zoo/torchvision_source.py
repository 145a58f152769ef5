"""Every torchvision classification model, built the way its default weights build it.

torchvision's builders change the architecture when weights are given (vit_h_14 is built
for 518 px, googlenet and inception_v3 set ``transform_input``, googlenet drops its
auxiliary heads). To get those architectures without downloading anything, the builder is
called with the default weights while ``get_state_dict`` returns an empty marker that
``load_state_dict`` then ignores. The weights' metadata (parameters, GFLOPS, accuracy) is
part of torchvision's code, so it is read offline.

The builders refuse a ``num_classes`` other than the weights' 1,000 categories; to build the
same architecture with another head (one output per class of the user's data), the
weights' category list is stood in for by one of that length while the builder runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

from torch import nn

from dnnmeter.errors import ModelBuildError
from dnnmeter.zoo.registry import ModelEntry, ModelRegistry, Published


class _NoWeights(dict):  # type: ignore[type-arg]
    """Stands in for a state dict; builders may rename its (absent) keys in place."""


@contextlib.contextmanager
def _categories(weights: Any, num_classes: int | None) -> Iterator[None]:
    """``weights.meta["categories"]`` of length ``num_classes`` for the block, restored after."""
    meta = weights.meta
    before = meta.get("categories")
    if num_classes is None or before is None or num_classes == len(before):
        yield
        return
    meta["categories"] = [str(i) for i in range(num_classes)]
    try:
        yield
    finally:
        meta["categories"] = before


@contextlib.contextmanager
def _architecture_only() -> Iterator[None]:
    from torchvision.models._api import WeightsEnum

    get_state_dict = WeightsEnum.get_state_dict
    load_state_dict = nn.Module.load_state_dict

    def _load_state_dict(self: nn.Module, state_dict: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(state_dict, _NoWeights):
            return None
        return load_state_dict(self, state_dict, *args, **kwargs)

    WeightsEnum.get_state_dict = lambda self, *a, **k: _NoWeights()  # type: ignore[method-assign]
    nn.Module.load_state_dict = _load_state_dict  # type: ignore[method-assign]
    try:
        yield
    finally:
        WeightsEnum.get_state_dict = get_state_dict  # type: ignore[method-assign]
        nn.Module.load_state_dict = load_state_dict  # type: ignore[method-assign]


def build(name: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    """Build torchvision model ``name`` with the architecture of its default weights.

    ``weights=None`` leaves the parameters at their initial values; ``"default"`` loads the
    default weights from the local torch hub cache (never downloading).
    """
    from torchvision import models

    default = models.get_model_weights(name).DEFAULT
    if weights is None:
        with _architecture_only(), _categories(default, kwargs.get("num_classes")):
            return models.get_model(name, weights=default, **kwargs)
    from dnnmeter.zoo.weights import load_torchvision_weights

    _check_default_classes(name, default, kwargs.get("num_classes"))
    return load_torchvision_weights(name, default, **kwargs)


def _check_default_classes(name: str, default: Any, num_classes: int | None) -> None:
    categories = default.meta.get("categories")
    if num_classes is not None and categories is not None and num_classes != len(categories):
        raise ModelBuildError(
            f"{name}: its default weights have {len(categories)} classes, not {num_classes}; "
            "train it on your data (dnnmeter train) and pass that checkpoint with --weights"
        )


def _published(weights: Any, input_size: tuple[int, int, int]) -> Published:
    meta = weights.meta
    metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
    top1, top5 = metrics.get("acc@1"), metrics.get("acc@5")
    return Published(
        params=meta.get("num_params"),
        gmacs=meta.get("_ops"),
        top1=None if top1 is None else top1 / 100.0,
        top5=None if top5 is None else top5 / 100.0,
        file_size_mb=meta.get("_file_size"),
        input_size=input_size,
        weights=str(weights),
        source="published (torchvision weights metadata)",
    )


def _input_size(weights: Any) -> tuple[int, int, int]:
    crop = getattr(weights.transforms(), "crop_size", None) or [weights.meta["min_size"][0]]
    return (3, int(crop[0]), int(crop[-1]))


def populate(registry: ModelRegistry) -> None:
    from torchvision import models

    for name in models.list_models(module=models):
        builder = models.get_model_builder(name)
        weights = models.get_model_weights(name).DEFAULT
        size = _input_size(weights)
        registry.add(
            ModelEntry(
                name=name,
                source="torchvision",
                input_size=size,
                build=partial(build, name),
                family=builder.__module__.rsplit(".", 1)[-1],
                published=_published(weights, size),
                description=f"torchvision {name} ({weights})",
            )
        )
