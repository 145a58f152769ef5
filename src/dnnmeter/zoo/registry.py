"""One door in, by name: every model dnnmeter can build is registered here.

Sources register :class:`ModelEntry` objects (a builder plus what is known about the model
before it is built). Names with a prefix or a shape (``timm:NAME``, ``file.onnx``,
``package.module:callable``) are resolved by the source that owns the prefix.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from dnnmeter.errors import InvalidInputError, UnknownModelError

InputSize = tuple[int, int, int]


@dataclass(frozen=True)
class Published:
    """Figures published with a model's weights (labelled ``published``; never measured here).

    ``gmacs`` is torchvision's "GFLOPS" field, which counts multiply-accumulates.
    Accuracies are fractions (0 to 1) on ImageNet-1k validation, single centre crop.
    """

    params: int | None = None
    gmacs: float | None = None
    top1: float | None = None
    top5: float | None = None
    file_size_mb: float | None = None
    input_size: InputSize | None = None
    weights: str | None = None
    source: str = "published"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelEntry:
    """A model that can be built by name. ``build(**kwargs)`` returns a CPU ``nn.Module``."""

    name: str
    source: str
    input_size: InputSize
    build: Callable[..., nn.Module] = field(repr=False, compare=False)
    family: str = ""
    published: Published | None = None
    description: str = ""
    # Builders that honour dnnmeter.zoo.meta_init() need nothing else; the ones that do not
    # (ONNX, user callables) are built on the CPU and their cost comes from elsewhere.
    meta_ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "family": self.family,
            "input_size": list(self.input_size),
            "published": self.published.to_dict() if self.published else None,
            "description": self.description,
        }


class Registry:
    """Models by name. Sources that are expensive to enumerate register lazily."""

    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._lazy_sources: list[Callable[[Registry], None]] = []

    def add(self, entry: ModelEntry) -> None:
        if entry.name in self._entries:
            raise ValueError(f"model {entry.name!r} is registered twice")
        self._entries[entry.name] = entry

    def add_lazy_source(self, populate: Callable[[Registry], None]) -> None:
        self._lazy_sources.append(populate)

    def _load(self) -> None:
        while self._lazy_sources:
            self._lazy_sources.pop(0)(self)

    def get(self, name: str) -> ModelEntry | None:
        if name not in self._entries:
            self._load()
        return self._entries.get(name)

    def entries(self) -> Iterable[ModelEntry]:
        self._load()
        return self._entries.values()

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)


REGISTRY = Registry()


def register_model(entry: ModelEntry) -> ModelEntry:
    REGISTRY.add(entry)
    return entry


def list_models(pattern: str = "*", source: str | None = None) -> list[ModelEntry]:
    """Registered models whose name matches the shell-style ``pattern``, sorted by name.

    ``timm:*`` names are listed only when ``source="timm"`` is asked for (there are over a
    thousand of them).
    """
    from dnnmeter.zoo import timm_source

    entries: list[ModelEntry] = []
    if source == "timm":
        entries = timm_source.entries(pattern)
    else:
        entries = [
            e
            for e in REGISTRY.entries()
            if fnmatch.fnmatchcase(e.name, pattern) and (source is None or e.source == source)
        ]
    if source is not None and source not in SOURCES:
        raise InvalidInputError(
            f"unknown source {source!r}; choose one of {', '.join(SOURCES)}"
        )
    return sorted(entries, key=lambda e: e.name)


SOURCES = ("torchvision", "seed", "timm")


def unknown_model(name: str) -> UnknownModelError:
    """The error for a name nobody knows, naming the closest matches."""
    candidates = REGISTRY.names()
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if not close and name.startswith("timm:"):
        from dnnmeter.zoo import timm_source

        close = timm_source.close_matches(name)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `dnnmeter models` for the list"
    return UnknownModelError(f"unknown model {name!r}{hint}")
