"""A schema-1 store as dnnmeter 0.1 wrote it (plain sqlite3), to check the upgrade in place."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

SCHEMA_V1 = """
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


def write_v1_store(path: Path, dump_name: str = "study_store.json.gz") -> dict:
    """The fixture study's rows (tests/fixtures/study_store.json.gz) in a schema-1 SQLite file."""
    with gzip.open(FIXTURES / dump_name, "rt") as f:
        dump = json.load(f)
    db = sqlite3.connect(path)
    with db:
        db.executescript(SCHEMA_V1)
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", dump["meta"].items())
        for row in dump["measurements"]:
            db.execute(f"INSERT INTO measurements ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))
    db.close()
    return dump
