"""From the store to :class:`~dnnmeter.results.records.StudyData`: the rows of the last
models study and the last modifications study, found by their keys, as typed records."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from dnnmeter._serial import from_dict
from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.heap import point_heap
from dnnmeter.results.predictions import collect_predictions
from dnnmeter.results.records import (
    AccuracyRecord,
    AnalysisSummary,
    BenchedRoofline,
    BenchPoint,
    CompressionData,
    DeployRecord,
    HardwareRecord,
    ModelRecord,
    ModificationsData,
    RunRecord,
    StudyData,
    VariantRecord,
)
from dnnmeter.results.settings import (
    COMPRESSION,
    ModificationsSettings,
    StudySettings,
    compression_keys,
    deploy_key,
    study_keys,
    training_key,
)
from dnnmeter.store import Store
from dnnmeter.zoo import resolve
from dnnmeter.zoo.seed_accuracy import no_accuracy_reason

STUDY_META_KEY = "last_study"
MODIFICATIONS_META_KEY = "last_modifications"


def collect(store: Store) -> StudyData:
    """The last studies' measurements in ``store``: the models study (``models``, ``runs``)
    and the modifications study (``modifications``); either may be empty, not both."""
    from dnnmeter import __version__

    modifications = collect_modifications(store)
    raw = store.get_meta(STUDY_META_KEY)
    if raw is None and modifications.settings is None:
        raise InvalidInputError(f"{store.where}: no study has been run into this store yet; run `dnnmeter study` "
                                "into it first")
    data = StudyData(dnnmeter_version=__version__,
                     created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"), modifications=modifications)
    if raw is not None:
        settings = StudySettings.from_dict(json.loads(raw))
        data.settings = settings
        data.environment, data.models = _collect_models(store, settings)
        data.runs = runs(store, settings.models)
        data.deployment = collect_deployment(store, settings)
        data.predictions = collect_predictions(store, data.models)
    return data


def _collect_models(store: Store, settings: StudySettings) -> tuple[dict[str, Any], list[ModelRecord]]:
    wanted: dict[str, tuple[str, str]] = {}
    for model in settings.models:
        keys = study_keys(settings, model)
        wanted[keys["analysis"]] = (model, "analysis")
        wanted[keys["accuracy"]] = (model, "accuracy")
        if keys["measured_accuracy"] is not None:
            wanted[keys["measured_accuracy"]] = (model, "measured_accuracy")
        wanted.update({k: (model, "bench") for k in keys["bench"].values()})
        wanted[keys["hardware"]] = (model, "hardware")
        wanted[keys["roofline"]] = (model, "roofline")
    found: dict[str, dict[str, Any]] = {m: {"bench": []} for m in settings.models}
    environment: dict[str, Any] = {}
    for row in store.rows(keys=set(wanted)):
        model, kind = wanted[row.key]
        if kind == "bench":
            found[model]["bench"].append(BenchPoint.from_dict({**row.data, "created_utc": row.created_utc}))
            environment = row.environment or environment
        elif kind == "roofline":
            found[model][kind] = row.data["roofline"]
        else:
            found[model][kind] = row.data
    return environment, [_model_record(m, found[m]) for m in settings.models]


def _model_record(model: str, found: dict[str, Any]) -> ModelRecord:
    entry = resolve(model)
    bench = sorted(found["bench"], key=lambda b: b.batch_size)
    accuracy = found.get("measured_accuracy") or found.get("accuracy") or _no_accuracy(model)
    return ModelRecord(
        model=model, family=entry.family, source=entry.source,
        analysis=_maybe(AnalysisSummary, found.get("analysis")), accuracy=_maybe(AccuracyRecord, accuracy),
        bench=bench, hardware=_maybe(HardwareRecord, found.get("hardware")),
        roofline=_with_bench_latency(found.get("roofline"), bench),
    )


def _no_accuracy(model: str) -> dict[str, Any]:
    """A null figure that says why, so the report can show the reason instead of a number."""
    reason = no_accuracy_reason(model) or "no published accuracy for this model; `--data` measures it"
    return {"top1": None, "top5": None, "label": None, "reason": reason}


def _maybe(cls: type, data: dict[str, Any] | None) -> Any:
    return None if data is None else from_dict(cls, data)


def _with_bench_latency(roof: dict[str, Any] | None, bench: list[BenchPoint]) -> BenchedRoofline | None:
    """The roofline against the model's measured latency at batch size 1 (from bench, not a
    second run): ``fraction_of_roofline`` = attainable time / measured time."""
    if roof is None:
        return None
    point = next((b for b in bench if b.batch_size == 1 and b.status == "ok"), None)
    latency = None if point is None else point.latency_s_median
    totals = {**roof["totals"], "measured_latency_s": latency,
              "fraction_of_roofline": roof["totals"]["attainable_time_s"] / latency if latency else None}
    return BenchedRoofline.from_dict({
        **roof, "totals": totals,
        "latency_unavailable_reason": None if latency else "no successful bench point at batch size 1",
        "latency_source": "dnnmeter bench, batch size 1, median" if latency else None,
    })


def runs(store: Store, models: tuple[str, ...]) -> list[RunRecord]:
    """Every benchmark configuration in the store for these models, for comparison across
    runs and machines: per machine (or machine type, for a fleet's points), device, dtype,
    threads, time budget and C heap (points stored before it was recorded are glibc's), the
    time per image of each model at each batch size."""
    table: dict[tuple[Any, ...], RunRecord] = {}
    for row in store.rows("bench"):
        if row.model not in models or row.status != "ok":
            continue
        d, environment = row.data, row.environment or {}
        identity = row.machine_identity
        # machines apart by their identity (schema 2), not only their host name; a fleet's points
        # (dnnmeter.fleet, --per-machine) by the type of machine that measured them, over its nodes
        machine_type = environment.get("machine_type")
        settings = d.get("settings") or {}
        config = (machine_type or (identity.fingerprint if identity else row.machine), d.get("device"), d.get("dtype"),
                  d.get("threads"), settings.get("timing", {}).get("time_budget_s"), point_heap(settings))
        run = table.setdefault(config, RunRecord(
            machine=row.machine, device=config[1], dtype=config[2], threads=config[3], time_budget_s=config[4],
            cpu_model=environment.get("cpu_model") or (identity.cpu_model if identity else None),
            first_utc=row.created_utc, machine_type=machine_type, heap=config[5],
        ))
        run.last_utc = row.created_utc
        run.latency_s_per_image.setdefault(row.model, {})[str(d["batch_size"])] = d.get("latency_s_per_image")
    return list(table.values())


NO_DEPLOY_VERDICT = ("no deploy search stored for this model: it could not run or was interrupted (the study's "
                     "notes say why); run the study again to try")


def collect_deployment(store: Store, settings: StudySettings) -> list[DeployRecord]:
    """``study --deploy``'s searches: each model's verdict row joined with the search's own
    ``deploy`` rows (the measured figures), one :class:`DeployRecord` per deploy model."""
    models = settings.deploy_models()
    keys = {deploy_key(settings, m): m for m in models}
    verdicts = {keys[row.key]: row.data for row in store.rows("deploy-verdict", keys=set(keys))}
    wanted = {c["store_key"] for v in verdicts.values() for c in v["configs"] if c.get("store_key")}
    raw = ("samples_s", "extra")  # kept in the deploy rows, not in results.json
    measured = {row.key: {k: v for k, v in row.data.items() if k not in raw}
                for row in store.rows("deploy", keys=wanted)}
    found = []
    for model in models:
        v = verdicts.get(model)
        if v is None:
            found.append(DeployRecord(model, error=NO_DEPLOY_VERDICT))
            continue
        configs = [{**measured.get(c.get("store_key") or "", {}), **c} for c in v["configs"]]
        found.append(DeployRecord.from_dict({**v, "configs": configs}))
    return found


def collect_modifications(store: Store) -> ModificationsData:
    """The last modifications study in ``store``; empty ``variants`` when none was run."""
    raw = store.get_meta(MODIFICATIONS_META_KEY)
    if raw is None:
        return ModificationsData()
    settings = ModificationsSettings.from_dict(json.loads(raw))
    variants = settings.variants()
    keys = {training_key(settings, v): v for v in variants}
    found = {row.key: row.data for row in store.rows("training", keys=set(keys))}
    wanted = {key: what for what, key in compression_keys(settings, variants[0]).items()}
    sweeps = {wanted[row.key]: row.data for row in store.rows("compression", keys=set(wanted))}
    compression = CompressionData.from_dict({
        "variant": variants[0].name,
        "quantization": (sweeps.get("quantization") or {}).get("points", []),
        "pruning": [p for what in COMPRESSION[1:] for p in (sweeps.get(what) or {}).get("points", [])],
    })
    trained = [VariantRecord.from_dict(found[k]) for k in keys if k in found]
    return ModificationsData(settings=settings, variants=trained, compression=compression)
