"""The store beyond one process (issue 16): SQLite and a real PostgreSQL server, one schema,
schema 1 upgraded in place, racing writers, merge, and the errors before and during a study.

PostgreSQL tests carry the ``database`` marker and run on the server of tests/pg_server.py
(``postgres_server``/``postgres_url`` in conftest.py); tests that start processes carry
``integration``. Nothing of the database is mocked.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer
from sqlalchemy.engine import make_url
from store_race import write_keys
from store_v1 import write_v1_store

from dnnmeter.store import (
    SCHEMA_VERSION,
    MachineIdentity,
    Store,
    StoreError,
    default_store_url,
    display_url,
    merge_stores,
    store_info,
    this_machine,
)

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))


def _round_trip(target: str | Path) -> None:
    with Store(target) as store:
        assert store.found_version == 0  # made now
        assert store.add("k1", "bench", "tiny", {"latency_s": 0.5}, batch_size=1, device="cpu",
                         environment={"cpu_model": "x"}) is True
        assert store.add("k1", "bench", "tiny", {"latency_s": 9.9}) is False  # the first row stays
        assert store.add("k2", "analysis", "tiny", {"macs": 3}) is True
        store.set_meta("last_study", "{}")
        store.set_meta("last_study", '{"a": 1}')
    with Store(target, create=False) as store:
        assert store.found_version == SCHEMA_VERSION and store.has("k1") and not store.has("nope")
        assert store.get_meta("last_study") == '{"a": 1}' and store.get_meta("schema_version") == str(SCHEMA_VERSION)
        first, second = store.rows()
        assert [r.key for r in store.rows(keys={"k2"})] == ["k2"] and [r.key for r in store.rows("bench")] == ["k1"]
    assert (first.data, first.environment) == ({"latency_s": 0.5}, {"cpu_model": "x"})
    assert (first.batch_size, first.device) == (1, "cpu")
    assert first.machine_identity == this_machine() and first.machine == this_machine().hostname
    assert second.environment is None and second.machine_identity == first.machine_identity


def test_sqlite_round_trip(tmp_path: Path) -> None:
    _round_trip(default_store_url(tmp_path))


@pytest.mark.database
def test_postgresql_round_trip(postgres_url: str) -> None:
    _round_trip(postgres_url)


def test_urls_are_shown_without_their_password(tmp_path: Path) -> None:
    assert default_store_url("out") == "sqlite:///out/results.sqlite"
    assert default_store_url("/abs/out") == "sqlite:////abs/out/results.sqlite"
    assert display_url("postgresql+psycopg://me:s3cret@db:5432/fleet") == "postgresql+psycopg://me:***@db:5432/fleet"
    with pytest.raises(StoreError, match="not mysql") as raised:
        Store("mysql://me:s3cret@db/fleet")
    assert "s3cret" not in str(raised.value)


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    dump = write_v1_store(path)
    with Store(path) as store:
        assert store.found_version == 1
        rows = list(store.rows())
    assert len(rows) == len(dump["measurements"]) and {r.machine for r in rows} == {"fixture-host"}
    identity = rows[0].machine_identity
    assert identity is not None and identity.hostname == "fixture-host" and identity.cpu_model  # from a bench row
    assert all(r.machine_identity == identity for r in rows)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    stored = {k: d for k, d in db.execute("SELECT key, data FROM measurements")}
    assert stored == {r["key"]: r["data"] for r in dump["measurements"]}  # every row, byte for byte
    db.close()
    with Store(path) as store:
        assert store.found_version == SCHEMA_VERSION  # upgraded once


def test_merge_copies_rows_with_their_machines_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    write_v1_store(a)  # another machine's (fixture-host), schema 1
    with Store(b) as store:
        store.add("mine", "bench", "tiny", {"x": 1})
    into = tmp_path / "new" / "merged.sqlite"
    first = merge_stores([a, b], into)
    n = sum(1 for _ in Store(a).rows())
    assert [(s.copied, s.skipped) for s in first.sources] == [(n, 0), (1, 0)]
    again = merge_stores([a, b], into)
    assert (again.copied, again.skipped) == (0, n + 1)
    info = store_info(into)
    assert info.rows == n + 1 and info.schema_version == SCHEMA_VERSION
    assert {m.machine.hostname: m.rows for m in info.machines if m.machine} == {"fixture-host": n,
                                                                              this_machine().hostname: 1}
    with Store(into) as merged:
        assert merged.get_meta("last_study") == Store(a).get_meta("last_study")  # report --store renders it


def test_a_missing_source_is_said_before_anything_is_copied(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no study store at"):
        merge_stores([tmp_path / "nowhere.sqlite"], tmp_path / "into.sqlite")
    assert not (tmp_path / "into.sqlite").exists()


def test_calibrate_stores_its_fit_as_a_row(tmp_path: Path) -> None:
    from dnnmeter.prediction import calibrate

    def timer(kernel, layers) -> float:  # type: ignore[no-untyped-def]
        return 1e-5 * len(layers)

    result = calibrate(threads=1, out=tmp_path, per_group=2, timer=timer, store=tmp_path / "fleet.sqlite")
    again = calibrate(threads=1, out=tmp_path, per_group=2, timer=timer, store=tmp_path / "fleet.sqlite")
    (row,) = Store(tmp_path / "fleet.sqlite").rows("calibration")  # the same fit is one row
    assert row.model == result.key == again.key and row.status == "ok" and "diagnostics" in row.data


# --- many writers -----------------------------------------------------------------------------


def _race(target: str, processes: int = 6, keys: int = 20) -> None:
    """``processes`` spawned writers open a new store at once and add the same ``keys`` shared
    keys and ``keys`` of their own: every row is there once, and each was written by one."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    shared = [f"shared-{i}" for i in range(keys)]
    workers = [ctx.Process(target=write_keys, args=(target, shared, [f"own-{p}-{i}" for i in range(keys)],
                                                    barrier, results)) for p in range(processes)]
    for w in workers:
        w.start()
    inserted: list[str] = []
    for _ in workers:
        while True:  # a writer that died never answers: fail with its exit code, not at the test's timeout
            try:
                inserted += results.get(timeout=1)
                break
            except queue.Empty:
                died = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                assert not died, f"a writer died (exit codes {died}); its traceback is in the captured stderr"
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert sorted(inserted) == sorted(set(inserted)) and len(inserted) == keys * (processes + 1)
    with Store(target) as store:
        stored = [r.key for r in store.rows()]
    assert sorted(stored) == sorted(inserted)


@pytest.mark.integration
def test_racing_writers_sqlite(tmp_path: Path) -> None:
    _race(default_store_url(tmp_path))


@pytest.mark.database
@pytest.mark.integration
def test_racing_writers_postgresql(postgres_url: str) -> None:
    _race(postgres_url)


# --- errors -------------------------------------------------------------------------------------


def _study(store: str, out: Path, *more: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dnnmeter", "study", "--models", "tiny_alexnet", "--batch-sizes",
                           "1", "--time-budget", "0.05", "--threads", "1", "--no-predict", "--store", store, "--out", str(out),
                           *more],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def _one_line_before_anything(done: subprocess.CompletedProcess[str], out: Path, expected: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in done.stderr and "; " in done.stderr, done.stderr
    assert "s3cret" not in done.stderr and "wrong-pw" not in done.stderr  # no password is ever shown
    assert not list(out.glob("*")), "something was measured or written"


@pytest.mark.integration
@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://me:s3cret@127.0.0.1:1/fleet", "is PostgreSQL running at 127.0.0.1:1?"),
    ("postgresql://me:s3cret@no-such-host.invalid/fleet", "check the host name"),
])  # fmt: skip
def test_a_store_that_cannot_be_reached_is_said_before_measuring(url: str, expected: str, tmp_path: Path) -> None:
    _one_line_before_anything(_study(url, tmp_path / "out"), tmp_path / "out", expected)


@pytest.mark.database
@pytest.mark.integration
def test_a_wrong_password_is_said_before_measuring(postgres_url: str, tmp_path: Path) -> None:
    wrong = postgres_url.replace(":pw-s3cret-4-tests@", ":wrong-pw@")
    done = _study(wrong, tmp_path / "out")
    _one_line_before_anything(done, tmp_path / "out", "password authentication failed")
    assert ":***@" in done.stderr


@pytest.mark.database
def test_merge_two_sqlite_stores_into_postgresql(postgres_url: str, tmp_path: Path) -> None:
    a, b = tmp_path / "jetson.sqlite", tmp_path / "laptop.sqlite"
    write_v1_store(a)
    jetson = MachineIdentity("jetson", "ARMv8 Processor rev 1 (v8l)", 6, 8 * 2**30, "Orin", "Linux", "3.10", "2.4")
    with Store(b) as store:
        store.add("b1", "bench", "tiny", {"x": 1})
        store.add("b2", "bench", "tiny", {"x": 2}, machine=jetson)  # e.g. a row a worker sent back
    n = sum(1 for _ in Store(a).rows())
    first = merge_stores([a, b], postgres_url)
    assert [(s.copied, s.skipped) for s in first.sources] == [(n, 0), (2, 0)]
    second = merge_stores([str(a), str(b)], postgres_url)
    assert (second.copied, second.skipped) == (0, n + 2)
    with Store(postgres_url) as store:
        rows = list(store.rows())
    assert len(rows) == len({r.key for r in rows}) == n + 2
    assert {r.machine_identity for r in rows if r.key == "b2"} == {jetson}


@pytest.mark.database
def test_a_connection_killed_by_the_server_is_replaced(postgres_server: PostgresServer, postgres_url: str) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    with Store(postgres_url) as store:
        store.add("before", "bench", "tiny", {})
        killed = postgres_server.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
        assert int(killed) >= 1
        assert store.add("after", "bench", "tiny", {}) is True  # a fresh connection, no error
        assert {r.key for r in store.rows()} == {"before", "after"}


@pytest.mark.database
@pytest.mark.integration
def test_a_store_lost_mid_study_stops_it_and_a_rerun_resumes(postgres_server: PostgresServer, postgres_url: str,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dnnmeter", "study", "--models", "tiny_alexnet,tiny_alexnet_dw", "--batch-sizes",
            "1", "--time-budget", "0.1", "--threads", "1", "--no-predict", "--store", postgres_url, "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            with Store(postgres_url) as store:
                if sum(1 for _ in store.rows()) >= 2:
                    break
            time.sleep(0.2)
        postgres_server.stop("fast")  # the database goes away mid-study
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        postgres_server.start()
    assert proc.returncode == 2, err
    assert err.count("\n") == 1 and "lost the store" in err and "rerun the same command to resume" in err, err
    assert "pw-s3cret" not in err
    with Store(postgres_url) as store:
        kept = {r.key for r in store.rows()}
    assert len(kept) >= 2  # committed before the loss: kept
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "already in the store" in done.stdout and (out / "results.json").is_file()
    with Store(postgres_url) as store:
        rows = [r.key for r in store.rows()]
    assert len(rows) == len(set(rows)) and kept <= set(rows)
    skipped = int(done.stdout.split(" measured, ")[1].split()[0])
    assert skipped >= 1  # the rerun measured only what was missing


def test_the_gpu_names_come_from_the_driver_listing(tmp_path: Path) -> None:
    from dnnmeter.host import gpu_names

    for i, name in enumerate(["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"]):
        (tmp_path / f"0000:0{i}:00.0").mkdir()
        (tmp_path / f"0000:0{i}:00.0" / "information").write_text(f"Model: \t\t {name}\nIRQ:   42\n")
    assert gpu_names(tmp_path) == ["NVIDIA H100 80GB HBM3"] * 2
    assert gpu_names(tmp_path / "absent") == []
    identity = MachineIdentity.from_environment({"hostname": "h", "gpu_name": "NVIDIA L4", "cpu_cores_logical": 8})
    assert (identity.gpu_name, identity.cpu_cores) == ("NVIDIA L4", 8)
    assert identity.fingerprint != MachineIdentity("h", cpu_cores=8).fingerprint  # the GPU tells them apart


class _Racing:
    """An engine whose SQLite answers "database is locked" to the first ``locked`` switches to
    WAL, as it answers the loser of two processes switching a new store at once."""

    def __init__(self, locked: int) -> None:
        self.locked, self.switched, self.url = locked, False, make_url("sqlite:////tmp/raced.sqlite")

    def connect(self) -> Any:
        import contextlib
        from types import SimpleNamespace

        return contextlib.nullcontext(SimpleNamespace(connection=SimpleNamespace(driver_connection=self)))

    def execute(self, sql: str) -> Any:
        from types import SimpleNamespace

        if sql.endswith("= WAL"):
            if self.locked:
                self.locked -= 1
                raise sqlite3.OperationalError("database is locked")
            self.switched = True
        return SimpleNamespace(fetchone=lambda: ("wal" if self.switched else "delete",))


def test_the_loser_of_a_race_to_wal_tries_again_and_a_lock_held_too_long_is_one_line() -> None:
    from dnnmeter.store import urls

    raced = _Racing(locked=3)
    urls.use_wal(raced)  # type: ignore[arg-type]
    assert raced.switched and raced.locked == 0
    ticks = iter(range(0, 1000, 30))
    with pytest.raises(StoreError, match=r"cannot open the store /tmp/raced.sqlite: database is locked: another "
                       r"process held it for over 60 s"):
        urls.use_wal(_Racing(locked=10**6), clock=lambda: float(next(ticks)))  # type: ignore[arg-type]
