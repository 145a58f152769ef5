"""The whole study: analyse, benchmark and collect accuracy for each model, store every
measurement as it lands, and write the results and the report. The work is cut into units
(dnnmeter.studies.units) that run here, one after the other, or over a Ray cluster
(dnnmeter.fleet, ``engine="ray"``).

Run it again with the same settings and it resumes: every measurement already in the
store is skipped, so an interrupted study loses nothing and repeats nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.results import collect, write_outputs
from dnnmeter.results.collect import STUDY_META_KEY
from dnnmeter.results.settings import DEFAULT_BATCH_SIZES, DEFAULT_TIME_BUDGET_S, HARDWARE_SETTINGS, StudySettings
from dnnmeter.store import Store, default_store_url
from dnnmeter.studies.units import Step, Unit, ceilings_key, plan_ceilings, plan_units, run_unit
from dnnmeter.studies.prediction_step import predict_step
from dnnmeter.zoo import expand_names, resolve

__all__ = ["DEFAULT_BATCH_SIZES", "DEFAULT_TIME_BUDGET_S", "HARDWARE_SETTINGS", "StudyOutputs", "StudySettings",
           "report", "run_study"]

Progress = Callable[[str, int, int], None]  # (what is being done, points done, points in all)


@dataclass
class StudyOutputs:
    out: Path
    results_json: Path
    results_csv: Path
    report_html: Path | None
    measured: int = 0
    skipped_as_done: int = 0
    notes: list[str] = field(default_factory=list)


def _prepare(settings: StudySettings, device_here: bool = True) -> StudySettings:
    """Check everything that can be wrong before anything is measured. ``device_here=False``:
    the device is on a cluster's nodes (dnnmeter.fleet checks it there), not on this machine."""
    from dnnmeter.measure import check_bench_args, default_threads

    names = tuple(expand_names(list(settings.models)))
    for name in names:
        resolve(name)
    if device_here or settings.device == "cpu":
        check_bench_args(settings.device, settings.batch_sizes, settings.dtype)
    else:  # a driver without a GPU may send CUDA work to nodes with one
        check_bench_args("cpu", settings.batch_sizes, settings.dtype)
        if not re.fullmatch(r"cuda(:\d+)?", settings.device):
            raise InvalidInputError(f"bad device {settings.device!r}: use cpu, cuda or cuda:N")
    out = Path(settings.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".dnnmeter-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InvalidInputError(f"cannot write to output folder {out}: {exc.strerror}; choose another --out") from None
    threads, chosen = settings.threads, settings.threads_chosen
    if threads is None and settings.device == "cpu":
        threads, chosen = default_threads()
    return replace(settings, models=names, threads=threads, threads_chosen=chosen,
                   batch_sizes=tuple(sorted(set(settings.batch_sizes))))


ENGINES = ("local", "ray")


def run_study(settings: StudySettings, progress: Progress | None = None, store: str | Path | None = None,
              engine: str = "local", address: str | None = None, per_machine: bool = False) -> StudyOutputs:
    """Run (or resume) the study described by ``settings``; returns where the outputs are.

    ``engine="local"`` runs its units of work (dnnmeter.studies.units) one after the other in
    this process; ``"ray"`` runs them as tasks on the Ray cluster at ``address`` (None: a
    local one started for the study), where ``per_machine`` benchmarks every model on every
    node type. ``store``: a path or an SQLAlchemy URL (default: OUT/results.sqlite); kept out
    of the settings and results.json, since a URL may hold a password."""
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    if engine == "local" and (address is not None or per_machine):
        raise InvalidInputError("--address and --per-machine need --engine ray; add it or leave them out")
    from dnnmeter.studies import deploy_step

    settings = deploy_step.prepare(_prepare(settings, device_here=engine == "local"))
    progress = progress or (lambda what, done, total: None)
    counts = {"done": 0, "measured": 0, "skipped": 0}
    notes: list[str] = []
    out = Path(settings.out)
    fleet = None
    if engine == "ray":
        from dnnmeter.fleet import connect

        fleet = connect(address, settings.device)  # an unreachable cluster fails here, before the store is made
        if per_machine:
            settings = replace(settings, machines=fleet.machine_types())
    try:
        with Store(store or default_store_url(out)) as db:  # connected before anything is measured
            db.set_meta(STUDY_META_KEY, json.dumps(settings.to_dict()))

            def land(step: Step, total: int) -> None:
                for row in step.rows:
                    db.add(row.key, row.kind, row.model, row.data, status=row.status, batch_size=row.batch_size,
                           device=row.device, environment=row.environment, machine=step.machine)
                if step.note:
                    notes.append(step.note)
                if step.steps:
                    counts["done"] += step.steps
                    counts["measured" if step.measured else "skipped"] += step.steps
                    progress(step.what, counts["done"], total)

            ceilings = plan_ceilings(settings, db.has)
            if ceilings is not None:
                _run(fleet, [ceilings], settings, store, lambda step: land(step, 0))
            units, stored = plan_units(settings, db.has, _stored_ceilings(db, settings))
            total = sum(s.steps for s in stored) + sum(u.steps for u in units) + deploy_step.steps(settings)
            for step in stored:
                land(step, total)
            _run(fleet, units, settings, store, lambda step: land(step, total))
            # Both run here, on the driver, after the units: prediction is static work over the
            # whole zoo; the deploy search times each configuration, and eager float32, in processes of its own.
            notes.extend(predict_step(db, settings, lambda what: progress(what, counts["done"], total)))
            notes.extend(deploy_step.run_deploy(db, settings, out,  # --deploy; nothing without it
                                                lambda what, measured: land(Step(what, measured), total)))
            outputs = _write(out, db)
    finally:
        if fleet is not None:
            fleet.close()
    outputs.measured, outputs.skipped_as_done = counts["measured"], counts["skipped"]
    outputs.notes.extend(notes)
    return outputs


def _run(fleet: Any, units: list[Unit], settings: StudySettings, target: str | Path | None,
         land: Callable[[Step], None]) -> None:
    """Run ``units`` here, in order, or on the cluster; each finished step lands at once."""
    if fleet is not None:
        fleet.run(units, settings, target, land)
        return
    for unit in units:
        run_unit(unit, settings, land)


def _stored_ceilings(store: Store, settings: StudySettings) -> dict[str, Any] | None:
    """This machine's compute and bandwidth ceilings, measured once per store, threads and device."""
    for row in store.rows("hardware", keys={ceilings_key(settings)}):
        return row.data
    return None


# --- outputs ----------------------------------------------------------------------------------


def _write(out: Path, store: Store) -> StudyOutputs:
    """results.json, results.csv, figures/ and report.html, all from the store."""
    from dnnmeter.report.html import render_all

    results_json, results_csv = write_outputs(out, collect(store))
    return StudyOutputs(out, results_json, results_csv, render_all(out))


def report(out: str | Path, store: str | Path | None = None) -> StudyOutputs:
    """Re-render every output of the study in ``out`` from its store (default
    OUT/results.sqlite; else a path or an SQLAlchemy URL), measuring nothing."""
    if store is None:
        path = Path(out) / "results.sqlite"
        if not path.exists():
            raise InvalidInputError(f"no study store at {path}; run `dnnmeter study --out {out}` first")
        store = path
    with Store(store, create=False) as opened:
        Path(out).mkdir(parents=True, exist_ok=True)
        return _write(Path(out), opened)
