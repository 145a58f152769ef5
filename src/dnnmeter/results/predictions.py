"""The study's latency predictions in the store: their keys, and collection as typed records.

The prediction step (:mod:`dnnmeter.studies.prediction_step`) writes, all of kind
``prediction``: one row describing the calibration used (model :data:`CALIBRATION_MODEL`),
one row per model and batch size predicted, and the meta entry :data:`PREDICTION_META_KEY`
naming what the last study predicted (or why it did not). The keys carry the calibration's
identity (its key and date), so a new calibration gives new predictions and the old ones
stay, unread. Both sides compute the keys here, so they cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dnnmeter.results.records import CalibrationRecord, ModelRecord, PredictedPoint, PredictionsData, finite
from dnnmeter.store import Store, measurement_key

PREDICTION_META_KEY = "last_prediction"
CALIBRATION_MODEL = "(latency calibration)"


def _identity(calibration: Mapping[str, Any]) -> dict[str, Any]:
    return {"calibration": calibration["key"], "calibrated_utc": calibration.get("created_utc")}


def calibration_row_key(calibration: Mapping[str, Any]) -> str:
    return measurement_key("prediction", CALIBRATION_MODEL, **_identity(calibration))


def prediction_key(calibration: Mapping[str, Any], model: str, batch_size: int) -> str:
    """One model at one batch size, predicted with ``calibration`` (its key names the machine,
    device, threads and dtype; its date tells a redone calibration apart)."""
    return measurement_key("prediction", model, batch_size=batch_size, **_identity(calibration))


def collect_predictions(store: Store, models: Sequence[ModelRecord]) -> PredictionsData | None:
    """The last study's predictions, the study's joined with ``models``' measurements; None
    when it did not predict."""
    raw = store.get_meta(PREDICTION_META_KEY)
    meta = json.loads(raw) if raw else {}
    if not meta or meta.get("skipped"):
        return None
    if meta.get("reason"):
        return PredictionsData(reason=meta["reason"], notes=list(meta.get("notes", [])))
    rows = {r.key: r for r in store.rows("prediction", keys={meta["calibration_row"]})}
    if meta["calibration_row"] not in rows:
        return PredictionsData(reason="the calibration row named by the store is missing; run the study again")
    calibration = CalibrationRecord.from_dict(rows[meta["calibration_row"]].data)
    cal = {"key": calibration.key, "created_utc": calibration.created_utc}
    wanted = {(m, b): prediction_key(cal, m, b) for m in meta["study_models"] for b in meta["batch_sizes"]}
    wanted.update({(m, 1): prediction_key(cal, m, 1) for m in meta["zoo"]})
    found = {r.key: r.data for r in store.rows("prediction", keys=set(wanted.values()))}
    by_name = {m.model: m for m in models}
    calibrated_on = set(calibration.networks)

    def point(model: str, batch: int) -> PredictedPoint | None:
        data = found.get(wanted[(model, batch)])
        if data is None:
            return None
        p = PredictedPoint(model=model, batch_size=batch, latency_s=finite(data.get("latency_s")),
                           latency_s_low=finite(data.get("latency_s_low")),
                           latency_s_high=finite(data.get("latency_s_high")),
                           published_top1=finite(data.get("published_top1")), family=data.get("family") or "",
                           used_to_calibrate=model in calibrated_on, error=data.get("error"),
                           notes=list(data.get("notes") or []))
        record = by_name.get(model)
        if record is not None:
            p.family = record.family or p.family
            p.measured_latency_s = record.measured(batch, "latency_s_median")
            p.flops_line_latency_s = _flops_line(record, batch, calibration.flops_line_s_per_flop)
        return p

    study = [p for m in meta["study_models"] for b in meta["batch_sizes"] if (p := point(m, b)) is not None]
    zoo = [p for m in meta["zoo"] if (p := point(m, 1)) is not None]
    return PredictionsData(calibration=calibration, study=study, zoo=zoo, notes=list(meta.get("notes", [])))


def _flops_line(record: ModelRecord, batch: int, per_flop_s: float | None) -> float | None:
    """The FLOPs line at ``batch``: the study's analysis counts one batch (normally of 1)."""
    flops = record.analysed("flops")
    if per_flop_s is None or flops is None:
        return None
    return per_flop_s * flops * batch / (record.analysed("batch_size") or 1.0)
