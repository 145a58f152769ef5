"""The results store: every measurement, with its environment and machine, in one database.

One row per measurement (an analysis, a benchmark point, an accuracy figure), committed as
soon as it exists, so a study killed at any moment (Ctrl-C or kill -9) loses nothing that
was written, and a rerun skips every row whose key is already there. Many processes and
machines may write one store at once: the key is unique in the schema and each add is one
``INSERT ... ON CONFLICT DO NOTHING`` transaction, so a race on a key leaves one row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from dnnmeter._version import __version__
from dnnmeter.errors import StoreError
from dnnmeter.store import schema, urls
from dnnmeter.store.machine import MachineIdentity, this_machine
from dnnmeter.store.migrations import ensure_schema

T = TypeVar("T")
_CHUNK = 500  # keys per IN (...) query: far under SQLite's and PostgreSQL's parameter limits


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
    machine: str  # the host name
    created_utc: str
    machine_identity: MachineIdentity | None = None  # None only for a row whose machine is unknown


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise StoreError(f"no study store at {path}; run `dnnmeter study --out {path.parent}` first")
    if path.stat().st_size == 0:  # SQLite would take it as a new, empty store and write into it
        raise StoreError(f"{path} is empty (0 bytes), not a study's store; run `dnnmeter study --out "
                         f"{path.parent}` to measure again, or restore the file")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """``Store(target)`` opens or creates the store at ``target``: a path (an SQLite file) or an
    SQLAlchemy URL (``sqlite:///PATH``, ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``);
    use it as a context manager. Opening connects and creates or upgrades the schema, so a
    store that cannot be used is said here, before anything is measured. ``create=False``
    opens only a store a study wrote: a missing file or an empty database is refused."""

    def __init__(self, target: str | Path, create: bool = True) -> None:
        self.url = urls.store_url(target)
        self.display_url = urls.display_url(self.url)  # the password masked
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.path: Path | None = Path(self.url.database) if self.is_sqlite else None  # type: ignore[arg-type]
        self.where = urls.where(self.url)
        if self.path is not None and not create:
            _check_exists(self.path)
        self.engine = urls.open_engine(self.url)
        self._writer = self.engine.execution_options(dnnmeter_write=True)
        self._machines: set[str] = set()  # fingerprints known to be in the machines table
        try:
            self.found_version = self._open(lambda: ensure_schema(self.engine, self._writer, create, self.where))
            if self.is_sqlite:
                self._open(lambda: urls.use_wal(self.engine))
        except BaseException:
            self.engine.dispose()
            raise

    # --- errors ------------------------------------------------------------------------------

    def _open(self, run: Callable[[], T]) -> T:
        try:
            return run()
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            message = urls.first_line(exc, self.url)
            if self.is_sqlite and "not a database" in message:
                raise StoreError(f"{self.where}: not a dnnmeter store ({message}); use another --out or "
                                 "--store") from None
            raise StoreError(f"cannot open the store {self.where}: {message}; "
                             f"{urls.connect_hint(message, self.url)}") from None

    def _do(self, doing: str, run: Callable[[], T]) -> T:
        """``run`` once more on a fresh connection if the first was found dead; else one line."""
        try:
            try:
                return run()
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                return run()  # the server dropped an idle connection: retried once, adds are idempotent
        except SQLAlchemyError as exc:
            message = urls.first_line(exc, self.url)
            raise StoreError(f"lost the store {self.where} while {doing}: {message}; every measurement "
                             "stored before is kept: rerun the same command to resume") from None

    # --- life --------------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # --- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        def run() -> str | None:
            with self.engine.connect() as conn:
                value = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()
            return None if value is None else str(value)

        return self._do(f"reading {key}", run)

    def set_meta(self, key: str, value: str) -> None:
        def run() -> None:
            with self._writer.begin() as conn:
                statement = self._insert(schema.meta).values(key=key, value=value)
                conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))

        self._do(f"writing {key}", run)

    # --- measurements ------------------------------------------------------------------------

    def has(self, key: str) -> bool:
        def run() -> bool:
            with self.engine.connect() as conn:
                found = conn.execute(select(schema.measurements.c.id).where(schema.measurements.c.key == key)).first()
            return found is not None

        return self._do("looking up a measurement", run)

    def add(self, key: str, kind: str, model: str, data: dict[str, Any], status: str = "ok",
            batch_size: int | None = None, device: str | None = None,
            environment: dict[str, Any] | None = None, machine: MachineIdentity | None = None) -> bool:
        """Write one measurement and commit it at once; True if it was written, False if the
        key was already there (that row is kept). ``machine``: the identity of the machine
        that measured it, where that is not this one (rows sent back by a cluster's worker)."""
        if kind not in schema.KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        identity = machine or this_machine(environment)
        row = {"key": key, "kind": kind, "model": model, "batch_size": batch_size, "device": device,
               "status": status, "data": json.dumps(data),
               "environment": None if environment is None else json.dumps(environment),
               "machine": identity.hostname, "machine_fingerprint": identity.fingerprint,
               "dnnmeter_version": __version__, "created_utc": _now()}

        def run() -> bool:
            with self._writer.begin() as conn:
                self._add_machine(conn, identity)
                return self._insert_row(conn, row)

        inserted = self._do(f"storing the {kind} of {model}", run)
        self._machines.add(identity.fingerprint)
        return inserted

    def rows(self, kind: str | None = None, keys: set[str] | None = None) -> Iterator[Row]:
        """The stored rows in the order they were added, of ``kind`` and among ``keys`` if given.
        They are read at once, so no transaction stays open while the caller works."""
        m, machines = schema.measurements, schema.machines
        query = select(m, *[c.label(f"m_{c.name}") for c in machines.c]).outerjoin(
            machines, m.c.machine_fingerprint == machines.c.fingerprint)
        if kind is not None:
            query = query.where(m.c.kind == kind)

        def run() -> list[Any]:
            with self.engine.connect() as conn:
                if keys is None:
                    return conn.execute(query.order_by(m.c.id)).all()
                wanted, found = sorted(keys), []
                for i in range(0, len(wanted), _CHUNK):
                    found += conn.execute(query.where(m.c.key.in_(wanted[i:i + _CHUNK]))).all()
                return sorted(found, key=lambda r: r.id)

        for r in self._do("reading measurements", run):
            identity = None
            if r.m_fingerprint is not None:
                identity = MachineIdentity(**{f: getattr(r, f"m_{f}") for f in schema.MACHINE_FIELDS})
            yield Row(r.key, r.kind, r.model, r.batch_size, r.device, r.status, json.loads(r.data),
                      None if r.environment is None else json.loads(r.environment), r.machine, r.created_utc,
                      identity)

    # --- copying between stores (dnnmeter store merge) ---------------------------------------

    def raw_rows(self) -> Iterator[list[tuple[dict[str, Any], dict[str, Any] | None]]]:
        """Every row as stored (its columns, and its machine's row), in batches, by insertion order."""
        m, machines = schema.measurements, schema.machines
        last = 0
        while True:
            def run(after: int = last) -> list[Any]:
                with self.engine.connect() as conn:
                    return conn.execute(select(m, *[c.label(f"m_{c.name}") for c in machines.c])
                                        .outerjoin(machines, m.c.machine_fingerprint == machines.c.fingerprint)
                                        .where(m.c.id > after).order_by(m.c.id).limit(_CHUNK)).all()

            batch = self._do("reading measurements", run)
            if not batch:
                return
            last = batch[-1].id
            yield [({c.name: getattr(r, c.name) for c in m.c if c.name != "id"},
                    None if r.m_fingerprint is None else {c.name: getattr(r, f"m_{c.name}") for c in machines.c})
                   for r in batch]

    def add_raw(self, batch: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> int:
        """Copy rows from :meth:`raw_rows` of another store, keys already here skipped, in one
        transaction; the number copied."""
        def run() -> int:
            copied = 0
            with self._writer.begin() as conn:
                for row, machine in batch:
                    if machine is not None and machine["fingerprint"] not in self._machines:
                        conn.execute(self._insert(schema.machines).values(**machine)
                                     .on_conflict_do_nothing(index_elements=["fingerprint"]))
                    copied += self._insert_row(conn, row)
            return copied

        copied = self._do("copying measurements", run)
        self._machines.update(m["fingerprint"] for _, m in batch if m is not None)
        return copied

    def counts(self) -> tuple[dict[str, int], list[tuple[MachineIdentity | None, int]]]:
        """Rows per kind, and rows per machine (most first)."""
        m, machines = schema.measurements, schema.machines

        def run() -> tuple[list[Any], list[Any]]:
            with self.engine.connect() as conn:
                kinds = conn.execute(select(m.c.kind, func.count()).group_by(m.c.kind).order_by(m.c.kind)).all()
                joined = m.outerjoin(machines, m.c.machine_fingerprint == machines.c.fingerprint)
                per = conn.execute(select(*machines.c, func.count(m.c.id).label("n")).select_from(joined)
                                   .group_by(*machines.c).order_by(func.count(m.c.id).desc())).all()
            return kinds, per

        kinds, per = self._do("counting measurements", run)
        machines_rows = [(None if r.fingerprint is None else
                          MachineIdentity(**{f: getattr(r, f) for f in schema.MACHINE_FIELDS}), int(r.n)) for r in per]
        return {k: int(n) for k, n in kinds}, machines_rows

    # --- statements --------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        """INSERT with ON CONFLICT in this store's dialect (both spell it the same)."""
        return (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(table)

    def _add_machine(self, conn: Connection, identity: MachineIdentity) -> None:
        if identity.fingerprint in self._machines:
            return
        conn.execute(self._insert(schema.machines).values(first_seen_utc=_now(), **identity.columns())
                     .on_conflict_do_nothing(index_elements=["fingerprint"]))

    def _insert_row(self, conn: Connection, row: dict[str, Any]) -> bool:
        # RETURNING, not the row count: drivers report an insert skipped ON CONFLICT differently
        m = schema.measurements
        done = conn.execute(self._insert(m).values(**row).on_conflict_do_nothing(index_elements=["key"])
                            .returning(m.c.id))
        return done.first() is not None

