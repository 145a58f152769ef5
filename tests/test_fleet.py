"""The study over a real Ray cluster (dnnmeter.fleet): a head and a second node started on
this machine with one CPU each (ray.cluster_utils.Cluster, real raylets and workers, no
mocks), shared by the tests of this file and torn down after them.

Both nodes run on this machine, so they share one machine type: ``--per-machine`` here
benchmarks each model once, on one of the two nodes, under that type. The tests marked
``cluster`` need the cluster; the others (Ray missing, an unreachable address) are fast.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dnnmeter
from dnnmeter.cli import main
from dnnmeter.results.settings import machine_bench_keys
from dnnmeter.store import Store
from dnnmeter.studies.models import StudySettings, run_study
from dnnmeter.studies.units import ceilings_key, plan_units

MODELS = ("tiny_alexnet", "tiny_alexnet_dw", "tiny_alexnet_dw_res")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    ray_cluster_utils = pytest.importorskip("ray.cluster_utils")
    src = str(Path(dnnmeter.__file__).parents[1])  # the workers import this dnnmeter, not an installed one
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, old) if p)
    cluster = ray_cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        cluster.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _settings(out: Path) -> StudySettings:
    return StudySettings(models=MODELS, batch_sizes=(1, 2), out=str(out), time_budget_s=0.05, threads=1,
                         predict=False)  # the predictions are the driver's, not the cluster's (tests/test_study_prediction.py)


def _keys(out: Path) -> list[str]:
    try:
        return [r[0] for r in sqlite3.connect(out / "results.sqlite").execute("SELECT key FROM measurements")]
    except sqlite3.OperationalError:  # the store's tables are not made yet
        return []


def _expected(out: Path) -> set[str]:
    """Every key the local engine writes for these settings: its plan from an empty store."""
    from dnnmeter.studies.models import _prepare

    settings = _prepare(_settings(out))
    units, _ = plan_units(settings, lambda key: False, ceilings={})
    return {key for unit in units for key in unit.todo.values()} | {ceilings_key(settings)}


@pytest.fixture(scope="module")
def study(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("fleet")
    return out, run_study(_settings(out), engine="ray", address=cluster.address)


@pytest.mark.cluster
def test_a_study_over_two_nodes_stores_every_row_once(study: tuple[Path, Any]) -> None:
    out, outputs = study
    keys = _keys(out)
    assert len(keys) == len(set(keys)) and set(keys) == _expected(out)
    # per model: analysis, hardware model and two points (no published accuracy for these)
    assert outputs.measured == 3 * 4 and outputs.skipped_as_done == 0 and not outputs.notes
    import json

    models = json.loads(outputs.results_json.read_text())["models"]
    assert [m["model"] for m in models] == list(MODELS)
    assert all([p["status"] for p in m["bench"]] == ["ok", "ok"] and m["roofline"] for m in models)


@pytest.mark.cluster
def test_rerunning_a_finished_study_measures_nothing(cluster: Any, study: tuple[Path, Any]) -> None:
    out, _ = study
    before = _keys(out)
    again = run_study(_settings(out), engine="ray", address=cluster.address)
    assert again.measured == 0 and again.skipped_as_done == 3 * 4 and _keys(out) == before


@pytest.mark.cluster
def test_per_machine_benchmarks_each_model_on_each_machine_type(cluster: Any, study: tuple[Path, Any]) -> None:
    out, _ = study
    outputs = run_study(_settings(out), engine="ray", address=cluster.address, per_machine=True)
    assert outputs.measured == 3 * 2  # the static parts are stored; the points are new, keyed by machine type
    import json

    data = json.loads(outputs.results_json.read_text())
    (machine,) = data["settings"]["machines"]  # both nodes are this machine: one type
    settings = StudySettings.from_dict(data["settings"])
    with Store(out / "results.sqlite") as store:
        rows = {r.key: r for r in store.rows("bench")}
    for model in MODELS:
        for key in machine_bench_keys(settings, model, machine).values():
            assert rows[key].environment["machine_type"] == machine
    assert any(r.get("machine_type") == machine for r in data["runs"])
    assert all(len(m["bench"]) == 2 for m in data["models"])


def _running_a_unit(node: Any) -> bool:
    """Whether a Ray worker under ``node``'s raylet is running a unit now (Ray titles a worker
    process ``ray::FUNCTION`` while it runs a task, ``ray::IDLE`` otherwise)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    under = {p.pid for name, p in node.live_processes() if name == "raylet"}
    for _ in range(4):  # raylet -> worker (-> its children)
        under |= {pid for pid, parent in parents.items() if parent in under}
    for pid in under:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_run_task"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.cluster
def test_a_node_killed_mid_study_still_completes_it_with_every_row_once(cluster: Any, tmp_path: Path) -> None:
    worker = next(n for n in cluster.list_all_nodes() if n is not cluster.head_node)
    killed: list[float] = []

    def kill_while_it_runs_a_unit() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:  # some rows stored, and the node in the middle of a unit
            if len(_keys(tmp_path)) >= 2 and _running_a_unit(worker):
                break
            time.sleep(0.05)
        else:
            return
        cluster.remove_node(worker, allow_graceful=False)  # its raylet and workers, at once
        killed.append(time.time())

    killer = threading.Thread(target=kill_while_it_runs_a_unit)
    killer.start()
    try:
        outputs = run_study(_settings(tmp_path), engine="ray", address=cluster.address)
        finished = time.time()
    finally:
        killer.join()
        cluster.add_node(num_cpus=1)  # the cluster as the other tests found it
        cluster.wait_for_nodes()
    assert killed and killed[0] < finished, "the node was not killed while it ran a unit of the study"
    keys = _keys(tmp_path)
    assert len(keys) == len(set(keys)) and set(keys) == _expected(tmp_path)
    assert outputs.measured == 3 * 4 and not outputs.notes


@pytest.mark.cluster
def test_cuda_on_a_cluster_without_a_gpu_fails_in_one_line(cluster: Any, tmp_path: Path) -> None:
    from dnnmeter.errors import InvalidInputError

    # the driver's own GPU is not asked for: the nodes' are, and these two have none
    with pytest.raises(InvalidInputError, match="no node of the Ray cluster at .* has a GPU"):
        run_study(StudySettings(models=MODELS, device="cuda", out=str(tmp_path)), engine="ray", address=cluster.address)
    assert not (tmp_path / "results.sqlite").exists()


def test_without_ray_the_study_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: importing it raises ImportError
    assert main(["study", "--models", "tiny_alexnet", "--engine", "ray", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install dnnmeter[fleet]" in err and err.count("\n") == 1


def test_an_unreachable_address_fails_in_one_line_before_measuring(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["study", "--models", "tiny_alexnet", "--engine", "ray", "--address", "127.0.0.1:9",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot reach a Ray cluster at 127.0.0.1:9" in err and err.count("\n") == 1
    assert not (out / "results.sqlite").exists()


# --- into PostgreSQL: needs the `postgres_url` fixture (a real server, tests/conftest.py) -------------


@pytest.mark.cluster
@pytest.mark.database
def test_a_study_over_two_nodes_into_postgresql(cluster: Any, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    try:
        url = request.getfixturevalue("postgres_url")
    except pytest.FixtureLookupError:
        pytest.skip("no postgres_url fixture (a real PostgreSQL server) in this checkout")
    outputs = run_study(_settings(tmp_path), store=url, engine="ray", address=cluster.address)
    assert outputs.measured == 3 * 4
    with Store(url) as store:
        keys = [r.key for r in store.rows()]
    assert len(keys) == len(set(keys)) and set(keys) >= _expected(tmp_path)
    again = run_study(_settings(tmp_path), store=url, engine="ray", address=cluster.address)
    assert again.measured == 0
