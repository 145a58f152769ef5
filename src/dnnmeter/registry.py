"""One mechanism for every by-name table: models and sources, cost formulas, ops, layouts.

A :class:`Registry` maps names to objects. Registering a name twice is an error unless
``override=True`` (fvcore's ``set_op_handle`` and torch's ``register_flop_formula`` behave the
same way); an unknown name raises :class:`UnknownNameError` suggesting the closest names. The
module imports nothing heavy, so the CLI can read names at parse time.

>>> OPS: Registry[int] = Registry("op")
>>> @OPS.register("double")
... def double(x): return 2 * x
>>> OPS.get("doubel")
Traceback (most recent call last):
...
dnnmeter.registry.UnknownNameError: unknown op 'doubel'; did you mean 'double'?
"""

from __future__ import annotations

import builtins
import difflib
import fnmatch
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from dnnmeter.errors import DnnmeterError, InvalidInputError

T = TypeVar("T")

_MISSING: Any = object()


class UnknownNameError(InvalidInputError, KeyError):
    """A name that no entry of a registry has. The message names the closest matches.

    It is an InvalidInputError (a DnnmeterError: one line, exit status 2 in the CLI) and a
    KeyError (what a missing key raises)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def close_matches(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """The names among ``candidates`` closest to ``name`` (difflib's ratio of 0.6 or more)."""
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


def did_you_mean(name: str, candidates: list[str], n: int = 3) -> str:
    """``"; did you mean 'a', 'b'?"`` for the closest ``candidates``, or ``""`` when none is close."""
    return suggest(close_matches(name, candidates, n))


def suggest(close: list[str]) -> str:
    """``"; did you mean 'a', 'b'?"`` for names found close already, or ``""`` for none."""
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class DuplicateNameError(DnnmeterError, ValueError):
    """A name registered twice without ``override=True``."""


class Registry(Generic[T]):
    """Objects by name, in registration order. ``kind`` names an entry in error messages.

    Names are usually strings; any hashable works (the aten formulas are keyed by op packet),
    and "did you mean" compares their ``str``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[Hashable, T] = {}
        self._loaders: builtins.list[Callable[[Registry[T]], None]] = []

    def add_loader(self, populate: Callable[[Registry[T]], None]) -> None:
        """Call ``populate(self)`` the first time a name is missed or the names are listed
        (for tables that are expensive to build, such as every torchvision model)."""
        self._loaders.append(populate)

    def _load(self) -> None:
        while self._loaders:
            self._loaders.pop(0)(self)

    def register(self, name: Hashable, obj: T = _MISSING, *, override: bool = False) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator that does.

        A name registered already is an error unless ``override=True``.
        """
        if obj is _MISSING:

            def decorate(fn: T) -> T:
                self.register(name, fn, override=override)
                return fn

            return decorate
        if name in self._entries and not override:
            raise DuplicateNameError(f"{self.kind} {name!r} is registered already (a name registered twice needs override=True)")
        self._entries[name] = obj
        return obj

    def unregister(self, name: Hashable) -> None:
        """Remove ``name`` if registered (to restore a table after a temporary entry)."""
        self._entries.pop(name, None)

    def get(self, name: Hashable) -> T:
        """The entry for ``name``; :class:`UnknownNameError` with close matches when there is none."""
        found = self.lookup(name, _MISSING)
        if found is _MISSING:
            raise self.unknown(name)
        return found  # type: ignore[no-any-return]

    def unknown(self, name: Hashable, choose: bool = False) -> UnknownNameError:
        """The error for a name this registry lacks; ``choose`` also lists every name."""
        names = [str(n) for n in self.names()]
        hint = did_you_mean(str(name), names)
        if choose:
            hint += f"{'' if hint else ';'} choose from {', '.join(names)}"
        return UnknownNameError(f"unknown {self.kind} {name!r}{hint}")

    def names(self) -> builtins.list[Hashable]:
        self._load()
        return list(self._entries)

    def list(self, pattern: str = "*") -> builtins.list[Hashable]:
        """Names whose ``str`` matches the shell-style ``pattern`` (case-sensitive), in order."""
        return [n for n in self.names() if fnmatch.fnmatchcase(str(n), pattern)]

    def items(self) -> builtins.list[tuple[Hashable, T]]:
        self._load()
        return list(self._entries.items())

    def values(self) -> builtins.list[T]:
        self._load()
        return list(self._entries.values())

    def lookup(self, name: Hashable, default: Any = None) -> Any:
        """The entry for ``name``, or ``default`` when it is not registered (no error)."""
        found = self._entries.get(name, _MISSING)
        if found is _MISSING:  # the hot path (a fast-shape rule per aten call) stops here
            if not self._loaders:
                return default
            self._load()
            found = self._entries.get(name, default)
        return found

    def __getitem__(self, name: Hashable) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return self.lookup(name, _MISSING) is not _MISSING

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def decorator(registry: Registry[Any], *names: Hashable, override: bool = False) -> Callable[[T], T]:
    """A decorator registering one object under several ``names`` (an op and its aliases)."""

    def decorate(obj: T) -> T:
        taken = [n for n in names if n in registry]
        if taken and not override:  # check all first: register every name or none
            raise DuplicateNameError(
                f"{registry.kind} {taken[0]!r} is registered already (a name registered twice needs override=True)"
            )
        for name in names:
            registry.register(name, obj, override=override)
        return obj

    return decorate
