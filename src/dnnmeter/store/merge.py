"""Stores into one: ``merge_stores`` copies rows (with their machines) from other stores, e.g. a
Jetson's SQLite file into the fleet's PostgreSQL store; ``store_info`` says what a store holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError
from dnnmeter.store.database import Store
from dnnmeter.store.machine import MachineIdentity

# Settings of the last studies: copied where the destination has none, so that
# `dnnmeter report --store INTO` renders a store merged into an empty one.
_COPIED_META = ("last_study", "last_modifications")


@dataclass
class MergedSource(Record):
    source: str  # as messages show it: the file, or the URL with its password masked
    copied: int = 0
    skipped: int = 0  # keys the destination already held


@dataclass
class MergeResult(Record):
    into: str
    sources: list[MergedSource] = field(default_factory=list)

    _derived: ClassVar[tuple[str, ...]] = ("copied", "skipped")

    @property
    def copied(self) -> int:
        return sum(s.copied for s in self.sources)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.sources)


def merge_stores(sources: Sequence[str | Path], into: str | Path) -> MergeResult:
    """Copy every row of ``sources`` (paths or URLs) into ``into``, skipping keys already
    there; idempotent: a second merge copies nothing. Each source must be a store (it is
    upgraded in place first if an older dnnmeter wrote it); ``into`` is created if needed."""
    if not sources:
        raise InvalidInputError("no store to merge; give one or more SRC (a path or a URL) before --into")
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(Store(source, create=False)) for source in sources]  # all checked first
        if "://" not in str(into):  # a new SQLite file's folder is made, as a study makes its --out
            Path(into).parent.mkdir(parents=True, exist_ok=True)
        target = stack.enter_context(Store(into))
        result = MergeResult(into=target.where)
        for source in opened:
            merged = MergedSource(source.where)
            for batch in source.raw_rows():
                copied = target.add_raw(batch)
                merged.copied += copied
                merged.skipped += len(batch) - copied
            for key in _COPIED_META:
                value = source.get_meta(key)
                if value is not None and target.get_meta(key) is None:
                    target.set_meta(key, value)
            result.sources.append(merged)
    return result


@dataclass
class MachineRows(Record):
    machine: MachineIdentity | None  # None: rows whose machine is unknown
    rows: int


@dataclass
class StoreInfo(Record):
    store: str
    schema_version: int
    rows: int
    rows_per_kind: dict[str, int]
    machines: list[MachineRows]


def store_info(target: str | Path) -> StoreInfo:
    """What the store at ``target`` holds: its schema version, rows per kind and per machine."""
    from dnnmeter.store.schema import SCHEMA_VERSION

    with Store(target, create=False) as store:
        kinds, machines = store.counts()
        return StoreInfo(store.where, SCHEMA_VERSION, sum(kinds.values()), kinds,
                         [MachineRows(identity, n) for identity, n in machines])
