"""One codec for every result: dataclasses to plain JSON-ready data and back.

``to_dict(obj)`` walks dataclasses, tuples, lists, dicts, enums and paths into dicts, lists
and scalars; ``from_dict(cls, data)`` rebuilds ``cls`` from its type hints (nested
dataclasses, ``X | None``, ``tuple[int, ...]``, ``list[T]``, ``dict[K, V]``, enums). Data
written by another version is tolerated: keys the class does not know are ignored, and a
missing key takes the field's default. A missing key without a default is an error.

A class can shape its dict with two class attributes:

- ``_derived``: names of properties (or argument-less methods) written after the fields,
  for readers of the JSON (``flops`` beside ``macs``); ignored when reading back;
- ``_omitted``: fields never written (kept elsewhere, e.g. a bench point's environment);
- ``_omitted_if_none``: fields written only when they hold a value.

>>> from dataclasses import dataclass
>>> @dataclass
... class Point:
...     size: tuple[int, ...]
...     label: str | None = None
>>> to_dict(Point((3, 224, 224)))
{'size': [3, 224, 224], 'label': None}
>>> from_dict(Point, {"size": [3, 224, 224], "added_later": 1})
Point(size=(3, 224, 224), label=None)
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
import warnings
from pathlib import PurePath
from typing import Any, TypeVar

from dnnmeter.errors import DnnmeterError

T = TypeVar("T")

__all__ = ["ItemAccess", "Record", "SerialError", "from_dict", "to_dict"]


class SerialError(DnnmeterError, ValueError):
    """Stored data that does not fit its result type (a missing field, a wrong kind of value)."""


def to_dict(obj: Any) -> Any:
    """``obj`` as JSON-ready data: dataclasses become dicts, tuples lists, enums their values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _dataclass_to_dict(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_dict(value) for key, value in obj.items()}
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def _dataclass_to_dict(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    omitted = getattr(cls, "_omitted", ())
    if_none = getattr(cls, "_omitted_if_none", ())
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in omitted or (value is None and f.name in if_none):
            continue
        out[f.name] = to_dict(value)
    for name in getattr(cls, "_derived", ()):
        value = getattr(obj, name)
        out[name] = to_dict(value() if callable(value) else value)
    return out


def from_dict(cls: type[T], data: Any) -> T:
    """An instance of the dataclass ``cls`` from ``data`` as :func:`to_dict` wrote it."""
    return _decode(cls, data, cls.__name__)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, data: Any, where: str) -> Any:
    if tp is Any or data is None and _allows_none(tp):
        return data
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(tp, data, where)
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if origin in (list, tuple, dict) or tp in (list, tuple, dict):
        return _decode_container(tp, origin or tp, data, where)
    if origin is typing.Literal:
        return data
    return data  # scalars as stored: an int in a float field stays an int, so output matches input


def _allows_none(tp: Any) -> bool:
    return tp is type(None) or (typing.get_origin(tp) in (typing.Union, types.UnionType)
                                and type(None) in typing.get_args(tp))


def _decode_union(tp: Any, data: Any, where: str) -> Any:
    options = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(options) == 1:
        return _decode(options[0], data, where)
    for option in options:  # the first that fits: dataclasses from dicts, else the data as is
        if dataclasses.is_dataclass(option) and isinstance(data, dict):
            return _decode_dataclass(option, data, where)
        if isinstance(option, type) and isinstance(data, option):
            return data
    return data


def _decode_container(tp: Any, origin: Any, data: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if origin is dict:
        if not isinstance(data, dict):
            raise SerialError(f"{where}: expected a mapping, found {type(data).__name__}")
        value_tp = args[1] if len(args) == 2 else Any
        return {key: _decode(value_tp, value, f"{where}[{key!r}]") for key, value in data.items()}
    if not isinstance(data, (list, tuple)):
        raise SerialError(f"{where}: expected a list, found {type(data).__name__}")
    if origin is list:
        item_tp = args[0] if args else Any
        return [_decode(item_tp, item, f"{where}[{i}]") for i, item in enumerate(data)]
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
    if args and len(args) == len(data):
        return tuple(_decode(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, data)))
    return tuple(data)


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SerialError(f"{where}: expected a mapping for {cls.__name__}, found {type(data).__name__}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SerialError(f"{where}: no {f.name!r} in the stored data; it was written by an "
                              "incompatible version: measure it again")
    return cls(**kwargs)


class Record:
    """``to_dict()`` and ``from_dict()`` for a result dataclass, both through this codec."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return from_dict(cls, data)


class ItemAccess:
    """``row["count"]`` on a record that was a dict in earlier versions: it still reads, with a
    DeprecationWarning naming the attribute (``row.count``)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        warnings.warn(f'row["{key}"] is deprecated: read the attribute, row.{key}', DeprecationWarning,
                      stacklevel=2)
        if key not in {f.name for f in dataclasses.fields(self)}:  # type: ignore[arg-type]
            raise KeyError(key)
        return to_dict(getattr(self, key))
