"""timm models as ``timm:NAME`` (timm is the optional extra ``dnnmeter[timm]``)."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from torch import nn

from dnnmeter import registry
from dnnmeter.errors import MissingDependencyError
from dnnmeter.zoo.registry import FunctionSource, ModelEntry

PREFIX = "timm:"


def _timm() -> Any:
    try:
        import timm
    except ImportError as exc:
        raise MissingDependencyError(
            "timm models need timm: pip install 'dnnmeter[timm]'"
        ) from exc
    return timm


def is_available() -> bool:
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def build(name: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    if weights is not None:
        raise MissingDependencyError(
            f"timm:{name}: loading timm weights needs --weights FILE (dnnmeter does not download)"
        )
    return _timm().create_model(name, pretrained=False, **kwargs)


def entry(name: str) -> ModelEntry | None:
    """The entry for ``timm:NAME``, or None when timm has no such model."""
    timm = _timm()
    bare = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    if not timm.is_model(bare):
        return None
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(bare)
    size = tuple(cfg.input_size) if cfg is not None and cfg.input_size else (3, 224, 224)
    return ModelEntry(
        name=PREFIX + bare,
        source="timm",
        input_size=(int(size[0]), int(size[1]), int(size[2])),
        build=partial(build, bare),
        family=re.match(r"[a-z]*", bare.removeprefix("legacy_")).group(0) or bare,  # type: ignore[union-attr]
        description=f"timm {bare}",
    )


def entries(pattern: str = "*") -> list[ModelEntry]:
    timm = _timm()
    bare = pattern[len(PREFIX) :] if pattern.startswith(PREFIX) else pattern
    found = [entry(n) for n in timm.list_models(bare)]
    return [e for e in found if e is not None]


def close_matches(name: str) -> list[str]:
    if not is_available():
        return []
    bare = name[len(PREFIX) :]
    return [PREFIX + n for n in registry.close_matches(bare, _timm().list_models())]


# ``timm:NAME``, listed by ``dnnmeter models --source timm``.
SOURCE = FunctionSource("timm", PREFIX, True, entry, is_available, entries, close_matches)
