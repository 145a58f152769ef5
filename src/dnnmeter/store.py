"""The results store: every measurement, with its environment, in one SQLite file.

One row per measurement (an analysis, a benchmark point, an accuracy figure), committed as
soon as it exists, so a study killed at any moment (Ctrl-C or kill -9) loses nothing that
was written, and a rerun skips every row whose key is already there. Results of several
runs and machines can share a store: each row carries its machine and time.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dnnmeter._version import __version__
from dnnmeter.errors import DnnmeterError

SCHEMA_VERSION = 1
KINDS = ("analysis", "bench", "accuracy", "training", "hardware", "compression", "deploy", "prediction")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    batch_size INTEGER,
    device TEXT,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    environment TEXT,
    machine TEXT NOT NULL,
    dnnmeter_version TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_model ON measurements (model, kind);
"""


class StoreError(DnnmeterError):
    """The store cannot be used: unreadable, or written by an incompatible dnnmeter."""


@dataclass(frozen=True)
class Row:
    key: str
    kind: str
    model: str
    batch_size: int | None
    device: str | None
    status: str
    data: dict[str, Any]
    environment: dict[str, Any] | None
    machine: str
    created_utc: str


def machine_id() -> str:
    return socket.gethostname()


def measurement_key(kind: str, model: str, **identity: Any) -> str:
    """What makes two measurements the same one: kind, model and the settings that matter."""
    payload = json.dumps({"kind": kind, "model": model, **identity}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise StoreError(f"no study store at {path}; run `dnnmeter study --out {path.parent}` first")
    if path.stat().st_size == 0:  # SQLite would take it as a new, empty store and write into it
        raise StoreError(f"{path} is empty (0 bytes), not a study's store; run `dnnmeter study --out "
                         f"{path.parent}` to measure again, or restore the file")


class Store:
    """``Store(path)`` opens or creates the store; use it as a context manager.
    ``create=False`` opens only a store a study wrote: a missing or empty file is refused, not made one."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create:
            _check_exists(self.path)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA synchronous = FULL")  # a commit survives kill -9
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a dnnmeter store ({exc}); use another --out") from exc

    def _check_schema(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path}: not a dnnmeter store; use another --out")
        if "meta" in tables:
            found = self.get_meta("schema_version")
            if found != str(SCHEMA_VERSION):
                raise StoreError(
                    f"{self.path}: written by an incompatible dnnmeter (store schema {found}, this "
                    f"dnnmeter reads {SCHEMA_VERSION}); use another --out or move the file away"
                )
            return
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def has(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM measurements WHERE key = ?", (key,)).fetchone() is not None

    def add(self, key: str, kind: str, model: str, data: dict[str, Any], status: str = "ok",
            batch_size: int | None = None, device: str | None = None,
            environment: dict[str, Any] | None = None) -> None:
        """Write one measurement and commit it at once. A key already present is kept."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO measurements (key, kind, model, batch_size, device, status, data,"
                " environment, machine, dnnmeter_version, created_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key, kind, model, batch_size, device, status, json.dumps(data),
                 None if environment is None else json.dumps(environment), machine_id(), __version__, now),
            )

    def rows(self, kind: str | None = None, keys: set[str] | None = None) -> Iterator[Row]:
        query, args = "SELECT key, kind, model, batch_size, device, status, data, environment, machine, created_utc FROM measurements", ()
        if kind is not None:
            query, args = query + " WHERE kind = ?", (kind,)
        for r in self._db.execute(query + " ORDER BY id", args):
            if keys is None or r[0] in keys:
                yield Row(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]),
                          None if r[7] is None else json.loads(r[7]), r[8], r[9])
