"""One door in, by name: every model dnnmeter can build is registered here.

Sources register :class:`ModelEntry` objects (a builder plus what is known about the model
before it is built). Names with a prefix or a shape (``timm:NAME``, ``file.onnx``,
``package.module:callable``) are resolved by the source that owns the prefix.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dnnmeter import names
from dnnmeter.errors import InvalidInputError, UnknownModelError
from dnnmeter.registry import Registry, close_matches, did_you_mean, suggest

if TYPE_CHECKING:
    from torch import nn

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
    # The forward takes token ids (input_ids, batch x sequence length) rather than an image;
    # input_size is then (sequence length,), the default --seq-len (zoo/hf_source.py).
    token_inputs: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "family": self.family,
            "input_size": list(self.input_size),
            "published": self.published.to_dict() if self.published else None,
            "description": self.description,
        }


class ModelRegistry(Registry[ModelEntry]):
    """Models by name. Sources that are expensive to enumerate register lazily."""

    def __init__(self) -> None:
        super().__init__("model")

    def add(self, entry: ModelEntry) -> None:
        self.register(entry.name, entry)

    def add_lazy_source(self, populate: Callable[[ModelRegistry], None]) -> None:
        self.add_loader(populate)  # type: ignore[arg-type]

    def entries(self) -> list[ModelEntry]:
        return self.values()


REGISTRY = ModelRegistry()


def register_model(entry: ModelEntry) -> ModelEntry:
    REGISTRY.add(entry)
    return entry


@runtime_checkable
class Source(Protocol):
    """Where names with a prefix or a shape come from (``timm:NAME``, ``file.onnx``,
    ``package.module:callable``). Sources are registered in :data:`MODEL_SOURCES` with
    :func:`register_source` (dnnmeter/zoo/__init__.py, in the order
    :func:`~dnnmeter.zoo.resolve` asks them: a prefix before a shape)."""

    name: str  # the ModelEntry.source of its entries
    prefix: str  # "timm:"; "" for a source that recognises its names by their shape
    listed: bool  # `dnnmeter models --source NAME` lists its entries

    def claims(self, name: str) -> bool:
        """Whether ``name`` is this source's to resolve (prefix or shape)."""

    def is_available(self) -> bool:
        """Whether its optional dependency is installed."""

    def entry(self, name: str) -> ModelEntry | None:
        """The entry of a claimed name, None when the source has no such model."""

    def entries(self, pattern: str) -> list[ModelEntry]:
        """Every entry matching the shell-style ``pattern`` (empty when it cannot list)."""

    def close_matches(self, name: str) -> list[str]:
        """Its names closest to a claimed ``name`` that it does not have."""


def _lists_nothing(pattern: str) -> list[ModelEntry]:
    return []


def _matches_nothing(name: str) -> list[str]:
    return []


def _always_available() -> bool:
    return True


@dataclass(frozen=True)
class FunctionSource:
    """A :class:`Source` made of a source module's functions. It claims the names that start
    with its ``prefix``, or those ``recognises`` accepts (a source known by the names' shape);
    one that cannot list (ONNX files, callables) keeps the empty ``entries`` and ``close_matches``."""

    name: str
    prefix: str
    listed: bool
    entry: Callable[[str], ModelEntry | None]
    is_available: Callable[[], bool] = _always_available
    entries: Callable[[str], list[ModelEntry]] = _lists_nothing
    close_matches: Callable[[str], list[str]] = _matches_nothing
    recognises: Callable[[str], bool] | None = None

    def claims(self, name: str) -> bool:
        if self.recognises is not None:
            return self.recognises(name)
        return name.startswith(self.prefix)


MODEL_SOURCES: Registry[Source] = Registry("model source")


def register_source(source: Source) -> Source:
    MODEL_SOURCES.register(source.name, source)
    return source


# The sources listed by `dnnmeter models --source` (the names the CLI offers: dnnmeter.names):
# the two the REGISTRY holds, then the listed ones among MODEL_SOURCES.
SOURCES: tuple[str, ...] = names.MODEL_SOURCES
_BUILT_IN = ("torchvision", "seed")


def listed_sources() -> list[str]:
    return [*_BUILT_IN, *(s.name for s in MODEL_SOURCES.values() if s.listed)]


def list_models(pattern: str = "*", source: str | None = None) -> list[ModelEntry]:
    """Registered models whose name matches the shell-style ``pattern``, sorted by name.

    A prefixed source's names (``timm:*``) are listed only when that source is asked for
    (timm has over a thousand).
    """
    if source is None or source in _BUILT_IN:
        entries = [
            e
            for e in REGISTRY.entries()
            if fnmatch.fnmatchcase(e.name, pattern) and (source is None or e.source == source)
        ]
    elif source in listed_sources():
        entries = MODEL_SOURCES.get(source).entries(pattern)
    else:
        hint = did_you_mean(source, listed_sources())
        raise InvalidInputError(f"unknown source {source!r}{hint or ';'} choose one of {', '.join(listed_sources())}")
    return sorted(entries, key=lambda e: e.name)


def claiming_source(name: str) -> Source | None:
    """The first source (in registration order) that claims ``name``."""
    return next((s for s in MODEL_SOURCES.values() if s.claims(name)), None)


def unknown_model(name: str) -> UnknownModelError:
    """The error for a name nobody knows, naming the closest matches."""
    close = close_matches(name, [str(n) for n in REGISTRY.names()])
    source = claiming_source(name)
    if not close and source is not None:
        close = source.close_matches(name)
    hint = suggest(close) or "; run `dnnmeter models` for the list"
    return UnknownModelError(f"unknown model {name!r}{hint}")

