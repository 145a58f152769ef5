"""The models study's prediction step: latency predicted without running, beside the measurements.

After the measurements, the study predicts (issue 14) its own models at its batch sizes, so the
report can set predicted against measured, and the whole torchvision zoo at batch size 1, for
the predicted accuracy/latency front of this machine. The calibration is the one ``dnnmeter
calibrate`` made for this machine, threads and dtype where there is one; else the study makes
a short one in ``OUT/calibration`` (:data:`SHORT_PER_GROUP` shapes per kernel group within
:data:`SHORT_BUDGET_S`, about a minute on a 2-core CPU: `make study` must stay under 10
minutes), and says so. Every prediction is a row of the store (kind ``prediction``, keys in
:mod:`dnnmeter.results.predictions`), so ``dnnmeter report`` re-renders without calibrating,
and a rerun predicts only what is missing. A calibration that cannot be made is a note in the
report, never the end of the study.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dnnmeter.errors import DnnmeterError
from dnnmeter.results.predictions import (
    CALIBRATION_MODEL,
    PREDICTION_META_KEY,
    calibration_row_key,
    prediction_key,
)
from dnnmeter.results.settings import StudySettings
from dnnmeter.store import Store

# The study's own calibration: a fifth of the full grid (20 shapes per group, about 420
# kernels and the 3 calibration networks): 50 s measured plus 10 s of fit at one thread on
# the 2-core development machine, against about 5 minutes for the full grid.
SHORT_PER_GROUP = 20
SHORT_BUDGET_S = 120.0
ZOO: str | tuple[str, ...] = "torchvision"  # predicted whole at batch size 1 for the predicted Pareto front

Say = Callable[[str], None]


def predict_step(store: Store, settings: StudySettings, say: Say | None = None) -> list[str]:
    """Predict the study's models and the zoo into ``store``; returns notes for the user."""
    say = say or (lambda what: None)
    if not settings.predict:
        store.set_meta(PREDICTION_META_KEY, json.dumps({"skipped": "--no-predict"}))
        return []
    notes: list[str] = []
    try:
        calibration, directory = _calibration(settings, notes, say)
    except (DnnmeterError, RuntimeError, ValueError, OSError) as exc:
        reason = (f"no latency calibration could be found or made for {settings.device}, "
                  f"{settings.threads} thread(s), {settings.dtype}: {exc}")
        store.set_meta(PREDICTION_META_KEY, json.dumps({"reason": reason, "notes": notes}))
        return [f"latency not predicted: {reason}"]
    if calibration["heap"] != settings.heap:  # a calibration made earlier, with the other --heap
        notes.append(f"the calibration timed its kernels with the {calibration['heap']} heap and the study measures "
                     f"with the {settings.heap} heap (--heap): predicted and measured may differ by page faults")
    row_key = calibration_row_key(calibration)
    store.add(row_key, "prediction", CALIBRATION_MODEL, calibration, device=settings.device)
    study_models = list(settings.models)
    if settings.input_size:
        study_models = []
        notes.append("the study's models were not predicted: they were measured at --input "
                     f"{'x'.join(str(s) for s in settings.input_size)}, and prediction analyses each model at "
                     "its own input size")
    from dnnmeter.prediction.api import expand_models

    zoo = expand_models(ZOO)
    wanted = {(m, b) for m in study_models for b in settings.batch_sizes} | {(m, 1) for m in zoo}
    missing = sorted(w for w in wanted if not store.has(prediction_key(calibration, *w)))
    try:
        _predict_missing(store, settings, calibration, directory, missing, say)
    except (DnnmeterError, RuntimeError, ValueError) as exc:  # what was predicted is stored and shown
        notes.append(f"prediction stopped early ({type(exc).__name__}: {exc}); the rest are not shown")
    store.set_meta(PREDICTION_META_KEY, json.dumps({
        "calibration_row": row_key, "study_models": study_models, "batch_sizes": list(settings.batch_sizes),
        "zoo": zoo, "notes": notes,
    }))
    return [f"latency prediction: {n}" for n in notes]


def _calibration(settings: StudySettings, notes: list[str], say: Say) -> tuple[dict[str, Any], Path]:
    """This machine's calibration where ``dnnmeter calibrate`` writes, else the study's own
    (made now if needed): its summary for the store, and its folder."""
    from dnnmeter.measure.environment import capture_environment
    from dnnmeter.prediction import calibrate
    from dnnmeter.prediction.records import (
        CalibrationMissingError,
        calibration_key,
        default_dir,
        load_calibration,
        machine_identity,
    )

    device, threads, dtype = settings.device, settings.threads, settings.dtype
    key = calibration_key(machine_identity(capture_environment(device, threads)), threads, dtype)
    own = Path(settings.out) / "calibration"
    try:
        return _summary(load_calibration(default_dir(), key, ""), "calibrate", None), default_dir()
    except CalibrationMissingError as exc:
        if (default_dir() / f"{key}.json").exists():  # there is one, but stale or unreadable: say so
            notes.append(f"{str(exc).split(';')[0]}; the study used its own short calibration")
    elapsed = None
    if not (own / f"{key}.json").exists():
        say("calibrating the latency predictor (short)")
        start = time.monotonic()

        def progress(done: int, total: int, what: str) -> None:
            say(f"calibrating the latency predictor (short): {done}/{total} {what}")

        calibrate(device, threads, dtype, budget_s=SHORT_BUDGET_S, out=own, per_group=SHORT_PER_GROUP,
                  on_progress=progress, heap=settings.heap)
        elapsed = time.monotonic() - start
    return _summary(load_calibration(own, key, ""), "study", elapsed), own


def _summary(calibration: dict[str, Any], origin: str, elapsed_s: float | None) -> dict[str, Any]:
    """What the store keeps of a calibration: who made it, how big it is, the FLOPs line."""
    from dnnmeter.measure.heap import calibration_heap
    from dnnmeter.prediction.baseline import flops_line

    path = Path(calibration["path"])
    per_flop, why = flops_line(path.with_suffix(".jsonl"))
    diagnostics = calibration.get("diagnostics") or {}
    return {
        "key": calibration["key"], "created_utc": calibration.get("created_utc"),
        "device": calibration.get("device"), "threads": calibration.get("threads"), "dtype": calibration.get("dtype"),
        "origin": origin, "path": str(path), "per_group": calibration.get("per_group"),
        "budget_s": SHORT_BUDGET_S if origin == "study" else None, "kernels": diagnostics.get("kernels"),
        "networks": list(calibration.get("calibration_networks") or []), "elapsed_s": elapsed_s,
        "flops_line_s_per_flop": per_flop, "flops_line_reason": why, "heap": calibration_heap(calibration),
    }  # fmt: skip


def _predict_missing(store: Store, settings: StudySettings, calibration: dict[str, Any], directory: Path,
                     missing: list[tuple[str, int]], say: Say) -> None:
    """One ``predict`` call per set of batch sizes (the calibration is loaded once each)."""
    from dnnmeter.prediction import predict
    from dnnmeter.zoo import resolve

    batches: dict[str, list[int]] = defaultdict(list)
    for model, batch in missing:
        batches[model].append(batch)
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for model, sizes in batches.items():
        groups[tuple(sizes)].append(model)
    for sizes, models in groups.items():
        say(f"predicting latency: {len(models)} models at batch size(s) {', '.join(map(str, sizes))}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a model that cannot be analysed keeps its error in its row
            predictions = predict(models, batch_sizes=sizes, device=settings.device, threads=settings.threads,
                                  dtype=settings.dtype, calibration_dir=directory)
        asked = {resolve(m).name: m for m in models}  # predict names models as the zoo does
        for p in predictions:
            model = asked.get(p.model, p.model)
            data = {k: v for k, v in p.to_dict().items() if k not in ("calibration", "layers")}
            data["family"] = resolve(model).family
            store.add(prediction_key(calibration, model, p.batch_size), "prediction", model, data,
                      status="ok" if p.error is None else "error", batch_size=p.batch_size, device=p.device)
