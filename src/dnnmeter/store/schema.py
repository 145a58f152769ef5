"""The store's tables, one definition for SQLite and PostgreSQL (SQLAlchemy Core).

Schema 2: ``meta`` (key, value: the schema version, the last studies' settings),
``machines`` (one row per machine identity) and ``measurements`` (one row per measurement,
unique by ``key``, referencing its machine). Data and environment stay JSON text, as in
schema 1: the same layout on both databases, and rows copy between stores unchanged.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

SCHEMA_VERSION = 2
KINDS = ("analysis", "bench", "accuracy", "training", "hardware", "compression", "deploy", "calibration")

metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)  # fmt: skip

machines = Table(
    "machines", metadata,
    Column("fingerprint", String(16), primary_key=True),
    Column("hostname", Text, nullable=False),
    Column("cpu_model", Text),
    Column("cpu_cores", Integer),
    Column("memory_total_bytes", BigInteger),
    Column("gpu_name", Text),
    Column("os", Text),
    Column("python", Text),
    Column("torch", Text),
    Column("first_seen_utc", Text, nullable=False),
)  # fmt: skip

measurements = Table(
    "measurements", metadata,
    # SQLite's INTEGER PRIMARY KEY is its row id (as schema 1 made it); BIGSERIAL on PostgreSQL
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("model", Text, nullable=False),
    Column("batch_size", Integer),
    Column("device", Text),
    Column("status", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("environment", Text),
    Column("machine", Text, nullable=False),  # the host name, as in schema 1
    Column("machine_fingerprint", String(16), ForeignKey("machines.fingerprint")),  # set on every row since schema 2
    Column("dnnmeter_version", Text, nullable=False),
    Column("created_utc", Text, nullable=False),
    Index("measurements_model", "model", "kind"),
)  # fmt: skip

MACHINE_FIELDS = ("hostname", "cpu_model", "cpu_cores", "memory_total_bytes", "gpu_name", "os", "python", "torch")
