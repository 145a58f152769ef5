"""Any user model as ``package.module:callable`` (the callable returns an ``nn.Module``)."""

from __future__ import annotations

import importlib
import re
from typing import Any

from torch import nn

from dnnmeter.errors import ModelBuildError
from dnnmeter.zoo.registry import ModelEntry

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def looks_like_callable(name: str) -> bool:
    return bool(_SPEC.match(name)) and not name.startswith("timm:")


def _resolve(spec: str) -> Any:
    module_name, attr_path = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelBuildError(f"{spec}: cannot import module {module_name!r} ({exc})") from exc
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ModelBuildError(f"{spec}: {module_name} has no attribute {attr_path!r}") from exc
    return obj


def build(spec: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    obj = _resolve(spec)
    model = obj if isinstance(obj, nn.Module) else obj(**kwargs) if callable(obj) else None
    if not isinstance(model, nn.Module):
        raise ModelBuildError(f"{spec}: expected an nn.Module or a callable returning one")
    return model


def entry(spec: str) -> ModelEntry:
    obj = _resolve(spec)  # fail early, before any measuring
    size = getattr(obj, "input_size", None) or getattr(obj, "default_input_size", None)
    input_size = tuple(size) if size else (3, 224, 224)
    return ModelEntry(
        name=spec,
        source="python",
        input_size=(int(input_size[0]), int(input_size[1]), int(input_size[2])),
        build=lambda weights=None, **kw: build(spec, weights, **kw),
        family=spec.split(":", 1)[1].split(".")[-1],
        description=f"user model {spec}",
    )
