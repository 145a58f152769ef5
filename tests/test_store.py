"""The results store: durable rows, resume keys, and refusing stores it cannot read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dnnmeter.store import Store, StoreError, measurement_key


def test_rows_are_committed_as_they_are_added(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    with Store(path) as store:
        key = measurement_key("bench", "resnet18", batch_size=1)
        store.add(key, "bench", "resnet18", {"latency_s_median": 0.01}, batch_size=1, environment={"cpu": "x"})
        # another connection sees it at once: nothing waits for a close
        assert sqlite3.connect(path).execute("SELECT count(*) FROM measurements").fetchone()[0] == 1
        assert store.has(key)
        store.add(key, "bench", "resnet18", {"latency_s_median": 99.0}, batch_size=1)
        (row,) = list(store.rows("bench"))
    assert row.data == {"latency_s_median": 0.01} and row.environment == {"cpu": "x"}
    assert row.machine and row.created_utc


def test_keys_depend_on_what_matters() -> None:
    a = measurement_key("bench", "resnet18", batch_size=1, threads=1)
    assert a == measurement_key("bench", "resnet18", threads=1, batch_size=1)
    assert a != measurement_key("bench", "resnet18", batch_size=2, threads=1)
    assert a != measurement_key("bench", "resnet34", batch_size=1, threads=1)


def test_an_incompatible_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StoreError, match=r"written by a newer dnnmeter \(schema 99\); upgrade dnnmeter or use another --store"):
        Store(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    path.write_text("hello, not a database" * 100)
    with pytest.raises(StoreError, match="not a dnnmeter store"):
        Store(path)


def test_the_heap_is_not_in_a_bench_points_key_so_a_stored_study_resumes() -> None:
    from dnnmeter.results.settings import StudySettings, machine_bench_keys

    keys = machine_bench_keys(StudySettings(models=("resnet18",), batch_sizes=(1,), threads=1), "resnet18", "m")
    # the key a study filed its point under before there was a --heap: unchanged, whichever heap is asked
    before = measurement_key("bench", "resnet18", device="cpu", batch_size=1, dtype="float32", threads=1,
                             time_budget_s=0.5, machine="m")
    assert keys == {1: before}
    glibc = StudySettings(models=("resnet18",), batch_sizes=(1,), threads=1, heap="glibc")
    assert machine_bench_keys(glibc, "resnet18", "m") == keys


def test_the_runs_tell_points_stored_before_the_heap_was_recorded_from_steady_ones(tmp_path: Path) -> None:
    from dnnmeter.results.collect import runs

    point = {"model": "resnet18", "device": "cpu", "batch_size": 1, "dtype": "float32", "threads": 1,
             "latency_s_per_image": 0.01, "settings": {"timing": {"time_budget_s": 0.5}}}
    with Store(tmp_path / "results.sqlite") as store:
        store.add("old", "bench", "resnet18", point, batch_size=1)  # stored before: no settings.heap
        steady = {**point, "latency_s_per_image": 0.008, "settings": {**point["settings"], "heap": "steady"}}
        store.add("new", "bench", "resnet18", steady, batch_size=1)
        found = runs(store, ("resnet18",))
    assert sorted((r.heap, r.latency_s_per_image["resnet18"]["1"]) for r in found) == [
        ("glibc", 0.01), ("steady", 0.008)]
