"""The whole study: analyse, benchmark and collect accuracy for each model, store every
measurement as it lands, and write the results and the report.

Run it again with the same settings and it resumes: every measurement already in the
store is skipped, so an interrupted study loses nothing and repeats nothing.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dnnmeter import __version__
from dnnmeter.errors import InvalidInputError
from dnnmeter.store import Store, machine_id, measurement_key
from dnnmeter.zoo import SEED_MODELS, expand_names, resolve
from dnnmeter.zoo.seed_accuracy import no_accuracy_reason, published_accuracy

Progress = Callable[[str, int, int], None]  # (what is being done, points done, points in all)

# `make study` must finish in under 10 minutes on 2 CPU cores for the 18 seed models.
DEFAULT_BATCH_SIZES = (1, 2, 4)
DEFAULT_TIME_BUDGET_S = 0.5


@dataclass
class StudySettings:
    models: tuple[str, ...] = SEED_MODELS
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    out: str = "study-out"
    time_budget_s: float = DEFAULT_TIME_BUDGET_S
    threads: int | None = None
    threads_chosen: str | None = None
    dtype: str = "float32"
    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_energy_j: float | None = None  # per image
    data: str | None = None  # evaluate accuracy on this data set (a folder or "digits")
    weights: str | None = None  # ... with these weights ("default" or a file)
    eval_limit: int | None = None  # ... on this many images
    input_size: tuple[int, ...] | None = None  # every model's input (--input), batch left out; default: its own

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"], d["batch_sizes"] = list(self.models), list(self.batch_sizes)
        d["input_size"] = list(self.input_size) if self.input_size else None
        return d


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
    return StudySettings(**{**asdict(settings), "models": names, "threads": threads, "threads_chosen": chosen,
                            "batch_sizes": tuple(sorted(set(settings.batch_sizes)))})


def _keys(settings: StudySettings, model: str) -> dict[str, Any]:
    machine = machine_id()
    # a study at another input size is another measurement; the default keeps the keys stored before
    size = {"input_size": list(settings.input_size)} if settings.input_size else {}
    bench = {
        b: measurement_key("bench", model, device=settings.device, batch_size=b, dtype=settings.dtype,
                           threads=settings.threads, time_budget_s=settings.time_budget_s, machine=machine, **size)
        for b in settings.batch_sizes
    }
    measured = None
    if settings.data is not None:
        measured = measurement_key("accuracy", model, label="measured", data=settings.data,
                                   weights=settings.weights, limit=settings.eval_limit)
    return {"analysis": measurement_key("analysis", model, batch_size=1, **size),
            "accuracy": measurement_key("accuracy", model, label="published"),
            "measured_accuracy": measured, "bench": bench,
            "hardware": measurement_key("hardware", model, batch_size=1, **HARDWARE_SETTINGS, **size),
            "roofline": measurement_key("roofline", model, batch_size=1, **_ceilings_identity(settings), **size)}


# The hardware model's settings in the study: SCALE-Sim's defaults (docs/hardware.md).
HARDWARE_SETTINGS: dict[str, Any] = {"array": (32, 32), "dataflow": "os", "sram_kb": (64, 64, 64), "bits": 8,
                                     "energy_table": "eyeriss"}
CEILINGS_MODEL = "(this machine's ceilings)"


def _ceilings_identity(settings: StudySettings) -> dict[str, Any]:
    return {"device": settings.device, "threads": settings.threads, "machine": machine_id()}


def run_study(settings: StudySettings, progress: Progress | None = None) -> StudyOutputs:
    """Run (or resume) the study described by ``settings``; returns where the outputs are."""
    settings = _prepare(settings)
    progress = progress or (lambda what, done, total: None)
    total = len(settings.models) * (2 + len(settings.batch_sizes) + (settings.data is not None))
    counts = {"done": 0, "measured": 0, "skipped": 0}

    def step(what: str, measured: bool) -> None:
        counts["done"] += 1
        counts["measured" if measured else "skipped"] += 1
        progress(what, counts["done"], total)

    out = Path(settings.out)
    notes: list[str] = []
    with Store(out / "results.sqlite") as store:
        store.set_meta("last_study", json.dumps(settings.to_dict()))
        for model in settings.models:
            keys = _keys(settings, model)
            _static(store, model, keys, step, settings.input_size)
            _hardware(store, model, settings, keys, step)
            if keys["measured_accuracy"] is not None:
                notes.extend(_measured_accuracy(store, model, settings, keys["measured_accuracy"], step))
            _bench(store, model, settings, keys["bench"], step)
        outputs = write_outputs(out, store)
    outputs.measured, outputs.skipped_as_done = counts["measured"], counts["skipped"]
    outputs.notes.extend(notes)
    return outputs


def _measured_accuracy(store: Store, model: str, settings: StudySettings, key: str,
                       step: Callable[[str, bool], None]) -> list[str]:
    """Evaluate ``model`` on the study's data; where that fails the published figure stays."""
    from dnnmeter.errors import DnnmeterError
    from dnnmeter.evaluate import evaluate

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
        a = analyze(model, input_size=input_size)
        data = a.to_dict(per_layer=False)
        data["conv_vs_fc"] = {k: v.to_dict() for k, v in a.conv_vs_fc().items()}
        store.add(keys["analysis"], "analysis", model, data)
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

    key = measurement_key("ceilings", CEILINGS_MODEL, **_ceilings_identity(settings))
    for row in store.rows("hardware", keys={key}):
        return Ceilings.from_dict(row.data)
    ceilings = measure_ceilings(settings.device, threads=settings.threads)
    store.add(key, "hardware", CEILINGS_MODEL, ceilings.to_dict(), device=settings.device)
    return ceilings


def _hardware(store: Store, model: str, settings: StudySettings, keys: dict[str, Any],
              step: Callable[[str, bool], None]) -> None:
    """The hardware model (accesses, reuse, energy, systolic array) and the roofline of
    ``model``, both without running it: the roofline's measured side is the bench latency,
    joined in :func:`_model_entry`."""
    from dnnmeter.errors import DnnmeterError
    from dnnmeter.hardware import hardware, roofline

    if store.has(keys["hardware"]) and store.has(keys["roofline"]):
        step(f"{model}: hardware model (stored)", False)
        return
    try:
        if not store.has(keys["hardware"]):
            store.add(keys["hardware"], "hardware", model, hardware(model, input_size=settings.input_size,
                                                                           **HARDWARE_SETTINGS).to_dict())
        if not store.has(keys["roofline"]):
            ceilings = _ceilings(store, settings)
            if ceilings.peak_flops_per_s is not None:
                roof = roofline(model, ceilings, input_size=settings.input_size, measure=False).to_dict()
                store.add(keys["roofline"], "hardware", model, {"roofline": roof}, device=settings.device)
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


def collect(store: Store) -> dict[str, Any]:
    """The last studies' measurements as the report's input (results.json): the models study
    (``models``, ``runs``) and the modifications study (``modifications``), either may be empty."""
    from dnnmeter.modifications import collect_modifications

    modifications = collect_modifications(store)
    raw = store.get_meta("last_study")
    if raw is None and modifications["settings"] is None:
        raise InvalidInputError(f"{store.path}: no study has been run into this store yet")
    head = {"schema": 1, "dnnmeter_version": __version__,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if raw is None:
        return {**head, "settings": None, "environment": {}, "models": [], "runs": [],
                "modifications": modifications}
    return {**head, **_collect_models(store, json.loads(raw)), "modifications": modifications}


def _collect_models(store: Store, stored: dict[str, Any]) -> dict[str, Any]:
    known = {k: v for k, v in stored.items() if k in StudySettings.__dataclass_fields__}
    settings = StudySettings(**{**known, "models": tuple(stored["models"]), "batch_sizes": tuple(stored["batch_sizes"])})
    wanted: dict[str, tuple[str, Any]] = {}
    for model in settings.models:
        keys = _keys(settings, model)
        wanted[keys["analysis"]] = (model, "analysis")
        wanted[keys["accuracy"]] = (model, "accuracy")
        if keys["measured_accuracy"] is not None:
            wanted[keys["measured_accuracy"]] = (model, "measured_accuracy")
        wanted.update({k: (model, "bench") for k in keys["bench"].values()})
        wanted[keys["hardware"]] = (model, "hardware")
        wanted[keys["roofline"]] = (model, "roofline")
    found: dict[str, dict[str, Any]] = {
        m: {"analysis": None, "accuracy": None, "measured_accuracy": None, "bench": [], "hardware": None,
            "roofline": None} for m in settings.models
    }
    environment: dict[str, Any] = {}
    for row in store.rows(keys=set(wanted)):
        model, kind = wanted[row.key]
        if kind == "bench":
            found[model]["bench"].append({**row.data, "created_utc": row.created_utc})
            environment = row.environment or environment
        elif kind == "roofline":
            found[model][kind] = row.data["roofline"]
        else:
            found[model][kind] = row.data
    return {
        "settings": settings.to_dict(), "environment": environment,
        "models": [_model_entry(m, found[m]) for m in settings.models],
        "runs": runs(store, settings.models),
    }


def runs(store: Store, models: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every benchmark configuration in the store for these models, for comparison across
    runs and machines: per machine, device, dtype, threads and time budget, the time per
    image of each model at each batch size."""
    table: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in store.rows("bench"):
        if row.model not in models or row.status != "ok":
            continue
        d = row.data
        config = (row.machine, d.get("device"), d.get("dtype"), d.get("threads"),
                  (d.get("settings") or {}).get("timing", {}).get("time_budget_s"))
        run = table.setdefault(config, {
            "machine": row.machine, "device": config[1], "dtype": config[2], "threads": config[3],
            "time_budget_s": config[4], "cpu_model": (row.environment or {}).get("cpu_model"),
            "first_utc": row.created_utc, "latency_s_per_image": {},
        })
        run["last_utc"] = row.created_utc
        run["latency_s_per_image"].setdefault(row.model, {})[str(d["batch_size"])] = d.get("latency_s_per_image")
    return list(table.values())


def _no_accuracy(model: str) -> dict[str, Any]:
    """A null figure that says why, so the report can show the reason instead of a number."""
    reason = no_accuracy_reason(model) or "no published accuracy for this model; `--data` measures it"
    return {"top1": None, "top5": None, "label": None, "reason": reason}


def _model_entry(model: str, found: dict[str, Any]) -> dict[str, Any]:
    entry = resolve(model)
    bench = sorted(found["bench"], key=lambda b: b["batch_size"])
    return {"model": model, "family": entry.family, "source": entry.source, "analysis": found["analysis"],
            "accuracy": found["measured_accuracy"] or found["accuracy"] or _no_accuracy(model), "bench": bench,
            "hardware": found["hardware"], "roofline": _with_bench_latency(found["roofline"], bench)}


def _with_bench_latency(roof: dict[str, Any] | None, bench: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The roofline against the model's measured latency at batch size 1 (from bench, not a
    second run): ``fraction_of_roofline`` = attainable time / measured time."""
    if roof is None:
        return None
    point = next((b for b in bench if b.get("batch_size") == 1 and b.get("status") == "ok"), None)
    latency = None if point is None else point.get("latency_s_median")
    totals = {**roof["totals"], "measured_latency_s": latency,
              "fraction_of_roofline": roof["totals"]["attainable_time_s"] / latency if latency else None}
    reason = None if latency else "no successful bench point at batch size 1"
    return {**roof, "totals": totals, "latency_unavailable_reason": reason,
            "latency_source": "dnnmeter bench, batch size 1, median" if latency else None}


CSV_FIELDS = ("model", "family", "source", "params", "macs", "flops", "activations", "weight_bytes",
              "top1", "top5", "accuracy_label", "batch_size", "status", "error", "latency_s_median",
              "latency_s_per_image", "images_per_s", "peak_memory_bytes", "power_w", "energy_j_per_image",
              "stable", "device", "threads", "dtype")


def _csv_rows(study: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for m in study["models"]:
        static = m["analysis"] or {}
        acc = m["accuracy"] or {}
        base = {"model": m["model"], "family": m["family"], "source": m["source"],
                **{k: static.get(k) for k in ("params", "macs", "flops", "activations", "weight_bytes")},
                "top1": acc.get("top1"), "top5": acc.get("top5"), "accuracy_label": acc.get("label")}
        for point in m["bench"] or [{}]:
            rows.append({**base, **{k: point.get(k) for k in CSV_FIELDS if k not in base}})
    return rows


def write_outputs(out: Path, store: Store) -> StudyOutputs:
    """results.json, results.csv, figures/ and report.html, all from the store."""
    study = collect(store)
    results_json, results_csv = out / "results.json", out / "results.csv"
    _atomic_write(results_json, json.dumps(study, indent=1))
    rows = _csv_rows(study)
    tmp = results_csv.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, results_csv)
    from dnnmeter.report.html import render_all

    return StudyOutputs(out, results_json, results_csv, render_all(out))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader never sees half a file


def report(out: str | Path) -> StudyOutputs:
    """Re-render every output of the study in ``out`` from its store, measuring nothing."""
    path = Path(out) / "results.sqlite"
    if not path.exists():
        raise InvalidInputError(f"no study store at {path}; run `dnnmeter study --out {out}` first")
    with Store(path, create=False) as store:
        return write_outputs(Path(out), store)
