"""The whole study: analyse, benchmark and collect accuracy for each model, store every
measurement as it lands, and write the results and the report.

Run it again with the same settings and it resumes: every measurement already in the
store is skipped, so an interrupted study loses nothing and repeats nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.results import collect, write_outputs
from dnnmeter.results.collect import STUDY_META_KEY
from dnnmeter.results.settings import (
    CEILINGS_MODEL,
    DEFAULT_BATCH_SIZES,
    DEFAULT_TIME_BUDGET_S,
    HARDWARE_SETTINGS,
    StudySettings,
    ceilings_identity,
    study_keys,
)
from dnnmeter.store import Store, StoreError, default_store_url, measurement_key
from dnnmeter.studies.prediction_step import predict_step
from dnnmeter.zoo import expand_names, resolve
from dnnmeter.zoo.seed_accuracy import published_accuracy

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


def _prepare(settings: StudySettings) -> StudySettings:
    """Check everything that can be wrong before anything is measured."""
    from dnnmeter.measure import check_bench_args, default_threads

    names = tuple(expand_names(list(settings.models)))
    for name in names:
        resolve(name)
    check_bench_args(settings.device, settings.batch_sizes, settings.dtype)
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


def run_study(settings: StudySettings, progress: Progress | None = None,
              store: str | Path | None = None) -> StudyOutputs:
    """Run (or resume) the study described by ``settings``; returns where the outputs are.
    ``store``: a path or an SQLAlchemy URL (default: OUT/results.sqlite); kept out of the
    settings and results.json, since a URL may hold a password."""
    from dnnmeter.studies import deploy_step

    settings = deploy_step.prepare(_prepare(settings))
    progress = progress or (lambda what, done, total: None)
    total = len(settings.models) * (2 + len(settings.batch_sizes) + (settings.data is not None))
    total += deploy_step.steps(settings)
    counts = {"done": 0, "measured": 0, "skipped": 0}

    def step(what: str, measured: bool) -> None:
        counts["done"] += 1
        counts["measured" if measured else "skipped"] += 1
        progress(what, counts["done"], total)

    out = Path(settings.out)
    notes: list[str] = []
    with Store(store or default_store_url(out)) as store:  # connected before anything is measured
        store.set_meta(STUDY_META_KEY, json.dumps(settings.to_dict()))
        for model in settings.models:
            keys = study_keys(settings, model)
            _static(store, model, keys, step, settings.input_size)
            _hardware(store, model, settings, keys, step)
            if keys["measured_accuracy"] is not None:
                notes.extend(_measured_accuracy(store, model, settings, keys["measured_accuracy"], step))
            _bench(store, model, settings, keys["bench"], step)
        notes.extend(predict_step(store, settings, lambda what: progress(what, counts["done"], total)))
        notes.extend(deploy_step.run_deploy(store, settings, out, step))  # --deploy; nothing without it
        outputs = _write(out, store)
    outputs.measured, outputs.skipped_as_done = counts["measured"], counts["skipped"]
    outputs.notes.extend(notes)
    return outputs


def _measured_accuracy(store: Store, model: str, settings: StudySettings, key: str,
                       step: Callable[[str, bool], None]) -> list[str]:
    """Evaluate ``model`` on the study's data; where that fails the published figure stays."""
    from dnnmeter.errors import DnnmeterError
    from dnnmeter.accuracy import evaluate

    if store.has(key):
        step(f"{model}: accuracy (stored)", False)
        return []
    try:
        result = evaluate(model, settings.data, weights=settings.weights, limit=settings.eval_limit,  # type: ignore[arg-type]
                          device=settings.device)
    except DnnmeterError as exc:
        step(f"{model}: accuracy not measured", False)
        return [f"{model}: accuracy not measured ({exc}); the published figure is used where there is one"]
    store.add(key, "accuracy", model, {
        "top1": result.top1, "top5": result.top5, "label": "measured", "n": result.n,
        "source": f"dnnmeter eval on {settings.data}", "weights": result.weights,
        "skipped": len(result.skipped),
    })
    step(f"{model}: accuracy measured", True)
    return []


def _static(store: Store, model: str, keys: dict[str, Any], step: Callable[[str, bool], None],
            input_size: tuple[int, ...] | None = None) -> None:
    from dnnmeter.analysis import analyze

    if store.has(keys["analysis"]):
        step(f"{model}: analysis (stored)", False)
    else:
        store.add(keys["analysis"], "analysis", model, analyze(model, input_size=input_size).summary().to_dict())
        step(f"{model}: analysis", True)
    published = resolve(model).published or published_accuracy(model)
    if published is not None and published.top1 is not None and not store.has(keys["accuracy"]):
        store.add(keys["accuracy"], "accuracy", model, {
            "top1": published.top1, "top5": published.top5, "label": "published",
            "source": published.source, "weights": published.weights,
        })


def _ceilings(store: Store, settings: StudySettings) -> Any:
    """This machine's compute and bandwidth ceilings: measured once per store, threads and device."""
    from dnnmeter.hardware import measure_ceilings
    from dnnmeter.hardware.ceilings import Ceilings

    key = measurement_key("ceilings", CEILINGS_MODEL, **ceilings_identity(settings))
    for row in store.rows("hardware", keys={key}):
        return Ceilings.from_dict(row.data)
    ceilings = measure_ceilings(settings.device, threads=settings.threads)
    store.add(key, "hardware", CEILINGS_MODEL, ceilings.to_dict(), device=settings.device)
    return ceilings


def _hardware(store: Store, model: str, settings: StudySettings, keys: dict[str, Any],
              step: Callable[[str, bool], None]) -> None:
    """The hardware model (accesses, reuse, energy, systolic array) and the roofline of
    ``model``, both without running it: the roofline's measured side is the bench latency,
    joined in :func:`dnnmeter.results.collect.collect`."""
    from dnnmeter.errors import DnnmeterError
    from dnnmeter.hardware import estimate_hardware, roofline

    if store.has(keys["hardware"]) and store.has(keys["roofline"]):
        step(f"{model}: hardware model (stored)", False)
        return
    try:
        if not store.has(keys["hardware"]):
            store.add(keys["hardware"], "hardware", model, estimate_hardware(
                model, input_size=settings.input_size, **HARDWARE_SETTINGS).to_dict())
        if not store.has(keys["roofline"]):
            ceilings = _ceilings(store, settings)
            if ceilings.peak_flops_per_s is not None:
                roof = roofline(model, ceilings, input_size=settings.input_size, measure=False).to_dict()
                store.add(keys["roofline"], "hardware", model, {"roofline": roof}, device=settings.device)
    except StoreError:
        raise  # the store is gone: the study stops, this model is not "without a hardware model"
    except DnnmeterError as exc:  # e.g. a model with no conv/linear/matmul layer
        step(f"{model}: no hardware model ({exc})", False)
        return
    step(f"{model}: hardware model", True)


def _bench(store: Store, model: str, settings: StudySettings, keys: dict[int, str],
           step: Callable[[str, bool], None]) -> None:
    from dnnmeter.measure import benchmark, not_runnable_reason

    if not_runnable_reason(model):  # an ONNX file: analysed, but there is nothing to time
        step(f"{model}: not benchmarked (an ONNX file)", False)
        return
    missing = [b for b, key in keys.items() if not store.has(key)]
    for b in keys:
        if b not in missing:
            step(f"{model}: batch {b} (stored)", False)
    if not missing:
        return

    def landed(result: Any) -> None:
        data = result.to_dict()
        environment = data.pop("environment", None)
        store.add(keys[result.batch_size], "bench", model, data, status=result.status,
                  batch_size=result.batch_size, device=result.device, environment=environment)
        step(f"{model}: batch {result.batch_size} {result.status}", True)

    benchmark([model], device=settings.device, batch_sizes=missing, threads=settings.threads,
              dtype=settings.dtype, input_size=settings.input_size, time_budget_s=settings.time_budget_s,
              on_result=landed)


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
