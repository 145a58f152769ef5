#!/usr/bin/env python
"""The study over a Ray cluster: 200 timm models' static part on one process and on two nodes; the store under 8 writers.

Part 1, scaling. The static part of the models study (``dnnmeter.studies.units``: each model's
analysis and hardware model, nothing timed) for N timm models (default 200), first one model
after the other in this process, then as Ray tasks (``dnnmeter.fleet``, the engine of
``dnnmeter study --engine ray``) on a local cluster of two nodes with one CPU each
(``ray.cluster_utils.Cluster``: two raylets on this machine), in the same run. Both sides are
warm (the libraries imported, the Ray workers started) so the ratio is the work's, not the
start-up's; both run the units in the same order (largest first) and at the same niceness. The rows both sides produce are compared. Goal (issue 16): at least 1.7x on a
2-core machine.

The models: ``timm.list_models()`` sorted, taken with a fixed stride (every k-th name, k =
names / N, then the names after those when some are skipped) so that every family is sampled
and the choice is the same on every run; a model whose constructor fails on the meta device is
skipped, and the skipped names are listed.

Part 2, the store. 8 processes write at once into one store (SQLite, then PostgreSQL): each
adds R rows under its own keys and R under keys every writer shares (racing to store the same
measurement), one transaction each, all started together. Rows per second over all adds, and
the rows found afterwards: lost (a key missing) and duplicated (a key twice) must both be 0,
and exactly one writer must have been told it stored each key. PostgreSQL: ``--postgres-url``,
else a throwaway server started as the tests do (tests/pg_server.py), else skipped with why.

    .venv/bin/python benchmarks/fleet_scaling.py                        # writes its BENCHMARKS.md section
    .venv/bin/python benchmarks/fleet_scaling.py --models 20 --rows 50 --no-markdown   # a quick run
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from _markdown import command_line, cpu_name, publish  # noqa: E402

BEGIN, END = "<!-- fleet_scaling:begin -->", "<!-- fleet_scaling:end -->"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "fleet_scaling.json"
GOAL_RATIO = 1.7
WRITERS = 8


# --- part 1: the static part, one process against two nodes ------------------------------------


def choose_models(n: int) -> tuple[list[str], list[str]]:
    """``n`` timm names that build on the meta device, by a fixed stride, largest first; and the
    ones skipped.

    Largest first (by module count, read from the meta build that checks the model builds; it
    ranks the units' cost with Spearman 0.87 on these models) so that the cluster's last tasks
    are small ones: a large unit started last keeps one node busy while the other has nothing
    left to do. Both sides run the units in this order; for the one process it changes nothing.
    """
    import timm

    from dnnmeter.zoo import create_model

    names = sorted(timm.list_models())
    stride = max(1, len(names) // n)
    order = [names[i] for offset in range(stride) for i in range(offset, len(names), stride)]
    chosen: dict[str, int] = {}
    skipped: list[str] = []
    for name in order:
        if len(chosen) == n:
            break
        try:
            model = create_model(f"timm:{name}")  # as the study builds it (dnnmeter.zoo, on meta)
            chosen[name] = sum(1 for _ in model.modules())
        except Exception as exc:  # noqa: BLE001 - any failure of a third-party constructor skips the model
            skipped.append(f"{name} ({type(exc).__name__})")
    return sorted(chosen, key=lambda name: (-chosen[name], name)), skipped


def static_units(models: list[str]) -> list[Any]:
    from dnnmeter.results.settings import HARDWARE_SETTINGS
    from dnnmeter.store import measurement_key
    from dnnmeter.studies.units import Unit

    return [Unit("static", f"timm:{m}", {"analysis": measurement_key("analysis", f"timm:{m}", batch_size=1),
                                         "hardware": measurement_key("hardware", f"timm:{m}", batch_size=1,
                                                                     **HARDWARE_SETTINGS)}) for m in models]


def _rows(steps: list[Any]) -> dict[str, Any]:
    return {row.key: row.data for step in steps for row in step.rows}


def run_here(units: list[Any], settings: Any) -> tuple[float, list[Any]]:
    from dnnmeter.errors import DnnmeterError
    from dnnmeter.studies.units import failed, run_unit

    steps: list[Any] = []
    start = time.perf_counter()
    for unit in units:
        done = len(steps)
        try:
            run_unit(unit, settings, steps.append)
        except DnnmeterError as exc:  # as the Ray engine records it
            steps.append(failed(unit, exc, sum(s.steps for s in steps[done:])))
    return time.perf_counter() - start, steps


def _warm() -> str:
    import timm  # noqa: F401

    import dnnmeter.analysis  # noqa: F401
    import dnnmeter.hardware  # noqa: F401

    return os.uname().nodename


def run_on_cluster(units: list[Any], settings: Any) -> tuple[float, list[Any], float]:
    """The units as Ray tasks on two local nodes of one CPU each; (seconds, steps, cluster start s)."""
    import ray
    from ray.cluster_utils import Cluster

    from dnnmeter.fleet import connect

    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    began = time.perf_counter()
    # Ray renices its workers to 15 so that its own daemons come first; the one-process side
    # runs at this process's niceness, so the workers are given the same: on a machine shared
    # with other programs, niceness 15 would hand them CPU that the one process keeps. No
    # dashboard, as when the study starts its own local cluster (dnnmeter.fleet.connect).
    head = {"num_cpus": 1, "include_dashboard": False,
            "_system_config": {"worker_niceness": os.nice(0)}}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        fleet = connect(cluster.address)
        try:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            warm = ray.remote(num_cpus=1)(_warm)  # each node's worker imports the libraries once
            ray.get([warm.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False)).remote()
                     for n in fleet.nodes])
            started = time.perf_counter() - began
            steps: list[Any] = []
            start = time.perf_counter()
            fleet.run(units, settings, None, steps.append)
            return time.perf_counter() - start, steps, started
        finally:
            fleet.close()
    finally:
        cluster.shutdown()


def scaling(n: int) -> dict[str, Any]:
    from dnnmeter.results.settings import StudySettings

    chosen, skipped = choose_models(n)
    units = static_units(chosen)
    settings = StudySettings(models=tuple(u.model for u in units), out=tempfile.mkdtemp(prefix="fleet-scaling-"))
    here_s, here = run_here(units, settings)
    ray_s, there, start_s = run_on_cluster(units, settings)
    a, b = _rows(here), _rows(there)
    failures = sorted({s.note for s in here if s.note})
    return {"models": len(chosen), "skipped_on_meta": skipped, "one_process_s": here_s, "two_nodes_s": ray_s,
            "ratio": here_s / ray_s, "cluster_start_s": start_s, "rows": len(a), "rows_agree": a == b,
            "unit_failures": failures, "names": chosen}


# --- part 2: the store under 8 writers ---------------------------------------------------------


def _write(target: str, writer: int, rows: int, go: Any, out: Any) -> None:
    from dnnmeter.store import Store

    with Store(target) as store:
        store.has("warm-up")  # connected (and the schema made) before the clock starts
        go.wait()
        mine = sum(store.add(f"writer{writer}-{i}", "bench", "m", {"i": i}) for i in range(rows))
        shared = sum(store.add(f"shared-{i}", "bench", "m", {"i": i, "writer": writer}) for i in range(rows))
    out.put((writer, mine, shared))


def throughput(target: str, rows: int) -> dict[str, Any]:
    """WRITERS processes, ``rows`` own keys and ``rows`` shared keys each, started together."""
    from dnnmeter.store import Store

    Store(target).close()  # the schema, made once
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_write, args=(target, w, rows, go, out)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    time.sleep(3.0 + WRITERS)  # every writer imported and connected (the clock starts at the signal)
    start = time.perf_counter()
    go.set()
    told = [out.get(timeout=600) for _ in procs]
    seconds = time.perf_counter() - start
    for p in procs:
        p.join()
    with Store(target) as store:
        keys = [r.key for r in store.rows("bench")]
    expected = {f"writer{w}-{i}" for w in range(WRITERS) for i in range(rows)} | {f"shared-{i}" for i in range(rows)}
    return {"writers": WRITERS, "adds": 2 * rows * WRITERS, "seconds": seconds,
            "adds_per_s": 2 * rows * WRITERS / seconds, "rows": len(keys),
            "lost": len(expected - set(keys)), "duplicated": len(keys) - len(set(keys)),
            "unexpected": len(set(keys) - expected),
            "stored_reported": sum(m + s for _, m, s in told), "exit_codes": [p.exitcode for p in procs]}


def postgres(url: str | None) -> tuple[str | None, Any, str | None]:
    """(URL, server to remove afterwards, why there is none)."""
    if url:
        return url, None, None
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import psycopg  # noqa: F401
        from pg_server import PostgresServer, Unavailable
    except ImportError as exc:
        return None, None, f"{exc}"
    try:
        server = PostgresServer()
        server.start()
    except Unavailable as exc:
        return None, None, str(exc)
    return server.new_database(), server, None


# --- the section --------------------------------------------------------------------------------


def section(command: str, result: dict[str, Any]) -> str:
    s = result["scaling"]
    lines = [BEGIN, "## The study over a Ray cluster (fleet_scaling.py)", "",
             f"Produced by `{command}` on {cpu_name()} ({os.cpu_count()} logical cores), "
             f"{result['date']}, Ray {result['ray']}.", "",
             f"The static part of the models study (analysis and hardware model) of {s['models']} timm models:",
             "", "| engine | seconds | speed-up |", "|---|---:|---:|",
             f"| one process | {s['one_process_s']:.1f} | 1.00x |",
             f"| Ray, two local nodes of one CPU | {s['two_nodes_s']:.1f} | {s['ratio']:.2f}x |", "",
             f"Goal: at least {GOAL_RATIO}x: **{'met' if s['ratio'] >= GOAL_RATIO else 'not met'}**. Rows identical "
             f"on both sides: {'yes' if s['rows_agree'] else 'NO'} ({s['rows']}). Cluster start and warm-up, not "
             f"counted: {s['cluster_start_s']:.1f} s. Skipped (no build on the meta device): "
             f"{', '.join(s['skipped_on_meta']) or 'none'}. Models whose static part failed (recorded, counted): "
             f"{len(s['unit_failures'])}.", "",
             f"The store under {WRITERS} writer processes at once, each adding its own keys and keys all share:", "",
             "| store | adds | seconds | adds/s | rows | lost | duplicated | one writer told per key |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, w in result["stores"].items():
        if "skipped" in w:
            lines.append(f"| {name} | - | - | - | - | - | - | - |")
            continue
        lines.append(f"| {name} | {w['adds']} | {w['seconds']:.2f} | {w['adds_per_s']:.0f} | {w['rows']} | "
                     f"{w['lost']} | {w['duplicated']} | {'yes' if w['stored_reported'] == w['rows'] else 'NO'} |")
    lines += [""] + [f"- {name}: skipped ({w['skipped']})" for name, w in result["stores"].items() if "skipped" in w]
    lines += [f"Raw results: `{DEFAULT_OUT.relative_to(REPO)}`.", END]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200, help="timm models in the scaling run (default 200)")
    parser.add_argument("--rows", type=int, default=500, help="own and shared keys per writer (default 500)")
    parser.add_argument("--postgres-url", help="a PostgreSQL store URL (default: start one as the tests do)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args()
    import ray

    result: dict[str, Any] = {"date": datetime.date.today().isoformat(), "ray": ray.__version__,
                              "scaling": scaling(args.models), "stores": {}}
    with tempfile.TemporaryDirectory() as tmp:
        result["stores"]["SQLite"] = throughput(str(Path(tmp) / "results.sqlite"), args.rows)
    if args.no_postgres:
        result["stores"]["PostgreSQL"] = {"skipped": "--no-postgres"}
    else:
        url, server, why = postgres(args.postgres_url)
        try:
            result["stores"]["PostgreSQL"] = throughput(url, args.rows) if url else {"skipped": why}
        finally:
            if server is not None:
                server.remove()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    publish(section(command_line("fleet_scaling.py", sys.argv[1:]), result), BEGIN, END, write=not args.no_markdown)
    bad = [n for n, w in result["stores"].items() if "skipped" not in w and (w["lost"] or w["duplicated"])]
    return 1 if bad or not result["scaling"]["rows_agree"] else 0


if __name__ == "__main__":
    sys.exit(main())
