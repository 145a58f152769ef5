"""The store's schema versions and the steps between them, applied when a store is opened.

Why not Alembic: it is made for an application's deployed database, with a scripts folder,
an env.py and its own version table to ship and configure; dnnmeter opens stores that users
bring (a Jetson's SQLite file, a shared PostgreSQL database) and must create or upgrade them
itself, in the same transaction and under the same lock as the version check. An ordered
list of plain functions does that in a few lines, with no extra dependency (Mako).

Every step runs inside one transaction that also holds the schema lock: PostgreSQL's
advisory lock (DDL is transactional there) or SQLite's write lock (BEGIN IMMEDIATE), so two
processes opening a new or old store at once create or upgrade it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import NamedTuple

from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import Connection, Engine

from dnnmeter.errors import StoreError
from dnnmeter.store import schema
from dnnmeter.store.machine import MachineIdentity

# pg_advisory_xact_lock's key: "dnnmeter" in ASCII, so other applications' locks never collide.
SCHEMA_LOCK = int.from_bytes(b"dnnmeter", "big")


class Migration(NamedTuple):
    to_version: int
    what: str
    step: Callable[[Connection], None]


def _machines_for_old_rows(conn: Connection) -> None:
    """Schema 1 -> 2: the machines table, and each row pointed at its machine's identity.

    Schema 1 kept only the host name (and, on bench and training rows, the environment):
    each host's identity is taken from its latest row that has an environment.
    """
    schema.machines.create(conn)
    conn.execute(text("ALTER TABLE measurements ADD COLUMN machine_fingerprint VARCHAR(16) "
                      "REFERENCES machines (fingerprint)"))
    m = schema.measurements
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for (hostname,) in conn.execute(select(m.c.machine).distinct()).all():
        found = conn.execute(select(m.c.environment).where(m.c.machine == hostname, m.c.environment.is_not(None))
                             .order_by(m.c.id.desc()).limit(1)).scalar()
        identity = MachineIdentity.from_environment(json.loads(found) if found else {}, hostname)
        conn.execute(schema.machines.insert().values(first_seen_utc=now, **identity.columns()))
        conn.execute(update(m).where(m.c.machine == hostname).values(machine_fingerprint=identity.fingerprint))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "machine identity: a machines table, referenced by every row", _machines_for_old_rows),
)
assert [m.to_version for m in MIGRATIONS] == list(range(2, schema.SCHEMA_VERSION + 1)), "one step per version"


def stored_version(conn: Connection, where: str) -> int | None:
    """The store's schema version; None for an empty database (no dnnmeter tables)."""
    tables = set(inspect(conn).get_table_names())
    if "meta" not in tables:
        if "measurements" in tables:
            raise StoreError(f"{where}: not a dnnmeter store (a measurements table without meta); use another "
                             "--out or --store")
        return None
    value = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar()
    if value is None or not str(value).isdigit():
        raise StoreError(f"{where}: not a dnnmeter store (no schema version); use another --out or --store")
    return int(value)


def _check_not_newer(version: int, where: str) -> None:
    if version < 1:
        raise StoreError(f"{where}: written by an incompatible dnnmeter (store schema {version}, this dnnmeter "
                         f"reads 1 to {schema.SCHEMA_VERSION}); use another --out or --store, or move the file away")
    if version > schema.SCHEMA_VERSION:
        raise StoreError(f"{where}: written by a newer dnnmeter (schema {version}); upgrade dnnmeter or use "
                         "another --store")


def ensure_schema(engine: Engine, writer: Engine, create: bool, where: str) -> int:
    """Create or upgrade the store's schema to :data:`schema.SCHEMA_VERSION`; return the version
    found before. ``create=False`` refuses an empty database instead of making it a store."""
    with engine.connect() as conn:  # the common case, an up-to-date store, takes no lock
        found = stored_version(conn, where)
    if found is not None:
        _check_not_newer(found, where)
        if found == schema.SCHEMA_VERSION:
            return found
    elif not create:
        raise StoreError(f"no study store at {where}; run `dnnmeter study --store {where}` (or --out) first")
    with writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        found = stored_version(conn, where)  # again: another process may have done it meanwhile
        if found is None:
            schema.metadata.create_all(conn)
            conn.execute(schema.meta.insert().values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
            return 0
        _check_not_newer(found, where)
        for migration in MIGRATIONS:
            if migration.to_version > found:
                migration.step(conn)
        conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version")
                     .values(value=str(schema.SCHEMA_VERSION)))
    return found
