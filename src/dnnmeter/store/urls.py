"""Where a store lives: a path or an SQLAlchemy URL, its engine, and its errors said in one line.

A path (``study-out/results.sqlite``) is an SQLite file, as before; ``sqlite:///PATH`` says
the same; ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB`` is a shared PostgreSQL store
(``postgresql://`` means the same driver). A URL is only ever shown with its password masked.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from dnnmeter.errors import StoreError

# SQLite: a writer waits this long for another process's write to end before it gives up.
# Each add is one short transaction, so a wait is milliseconds; 60 s covers a slow disk.
SQLITE_BUSY_TIMEOUT_S = 60.0
# PostgreSQL: an unreachable host (packets dropped) is said after this long, not after minutes.
CONNECT_TIMEOUT_S = 10
FLEET = "pip install dnnmeter[fleet]"
_DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite", "postgresql": "postgresql+psycopg",
            "postgres": "postgresql+psycopg", "postgresql+psycopg": "postgresql+psycopg",
            "postgresql+psycopg2": "postgresql+psycopg2"}


def default_store_url(out: str | Path) -> str:
    """The store a study keeps in its output folder: ``sqlite:///OUT/results.sqlite``."""
    return f"sqlite:///{(Path(out) / 'results.sqlite').as_posix()}"


def store_url(target: str | Path) -> URL:
    """``target`` (a path or a URL) as an SQLAlchemy URL with a driver dnnmeter uses."""
    text = str(target)
    if "://" not in text:
        return URL.create("sqlite", database=text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"bad store URL {_mask_text(text)} ({exc}); give a path, sqlite:///PATH or "
                         "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise StoreError(f"a store is SQLite or PostgreSQL, not {url.drivername} ({display_url(url)}); give a "
                         "path, sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE")
    url = url.set(drivername=driver)
    if driver == "sqlite" and (not url.database or url.database == ":memory:"):
        raise StoreError(f"{display_url(url)} is an in-memory SQLite store, which keeps nothing; give a file: "
                         "sqlite:///PATH")
    if driver.startswith("postgresql") and not url.database:
        raise StoreError(f"{display_url(url)} names no database; end the URL with /DATABASE")
    return url


def display_url(target: URL | str | Path) -> str:
    """The URL with its password masked (``***``): what messages and logs show."""
    if isinstance(target, URL):
        return target.render_as_string(hide_password=True)
    return _mask_text(str(target))


def _mask_text(text: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def where(url: URL) -> str:
    """How messages name the store: the file for SQLite, the masked URL otherwise."""
    return str(url.database) if url.get_backend_name() == "sqlite" else display_url(url)


def open_engine(url: URL) -> Engine:
    """An engine for ``url``; nothing is connected yet. A missing driver is said with its extra."""
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url)
        return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    except (ImportError, NoSuchModuleError) as exc:
        raise StoreError(f"{display_url(url)} needs the PostgreSQL driver psycopg ({exc}); {FLEET}") from None


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # The driver's own transaction handling is off: BEGIN is ours (below), so a write
        # takes SQLite's write lock at BEGIN IMMEDIATE and waits its turn (busy timeout)
        # instead of failing when another process wrote between its read and its write.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # FULL: each commit is synced before it returns, so a committed row survives
            # kill -9 and a power cut. (WAL is set once the schema is known: use_wal below.)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get("dnnmeter_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def use_wal(engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
    """Put an SQLite store in WAL mode (kept in the file): readers (a report, another process's
    ``has``) never block a writer nor wait for one, and each commit appends one frame. Done
    only after the schema was accepted, so a store that is refused is left byte for byte.

    Processes that open a new store at once race to switch it: SQLite answers "database is
    locked" at once, without waiting out the busy timeout, to the one that would otherwise
    deadlock (both hold a shared lock and want the exclusive one). That one tries again until
    the busy timeout; usually the other has switched the file by then, and the check finds WAL.
    (Without this, one of six writers opening a new store at once died now and then.)"""
    import sqlite3

    deadline = clock() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            with engine.connect() as conn:
                driver = conn.connection.driver_connection  # outside any transaction, as the pragma needs
                assert driver is not None
                if str(driver.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    driver.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StoreError(f"cannot open the store {where(engine.url)}: {exc}") from None
            if clock() > deadline:
                raise StoreError(f"cannot open the store {where(engine.url)}: {exc}: another process held it for "
                                 f"over {SQLITE_BUSY_TIMEOUT_S:g} s; retry, or use another --store") from None
            time.sleep(random.uniform(0.01, 0.1))  # apart from the other racers


def first_line(exc: BaseException, url: URL) -> str:
    """The driver's message, first line, with the password masked."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    text = lines[0] if lines else type(original).__name__
    password = url.password
    if password:
        text = text.replace(str(password), "***")
    return text


def connect_hint(message: str, url: URL) -> str:
    """What to do about a store that cannot be opened, from the driver's message."""
    low = message.lower()
    if url.get_backend_name() == "sqlite":
        if "unable to open" in low:
            return "check that its folder exists and is writable, or choose another --out or --store"
        if "locked" in low:
            return f"another process held it for over {SQLITE_BUSY_TIMEOUT_S:g} s; retry, or use another --store"
        return "use another --out or --store"
    host = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "password authentication failed" in low or "no password supplied" in low:
        return "check the user and password in the --store URL"
    if "does not exist" in low and "database" in low:
        return f"create it (createdb -h {url.host or 'localhost'} {url.database}) or fix the --store URL"
    if "role" in low and "does not exist" in low:
        return "check the user in the --store URL"
    if "resolve" in low or "translate host name" in low or "name or service not known" in low:
        return "check the host name in the --store URL"
    if "refused" in low or "no such file" in low:
        return f"is PostgreSQL running at {host}? start it, or fix the host and port in the --store URL"
    if "timeout" in low or "timed out" in low:
        return f"{host} did not answer within {CONNECT_TIMEOUT_S} s; check the host, port and firewall"
    return "check the --store URL and that the database server is up"
