"""The baseline a latency predictor must beat: time proportional to FLOPs.

``t = c * FLOPs``, through the origin, fitted by least squares on relative error over the
calibration networks' measurements (whole networks, as the studies fit operations against
time, and the same records the predictor's overhead is fitted on; benchmarks/predict_accuracy.py
fits its FLOPs line the same way). The kernels are left out: a FLOPs line over single kernels
would be dominated by the many tiny ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnnmeter.prediction.predictor import layer_from_dict
from dnnmeter.prediction.records import Records


def per_flop_s(flops: np.ndarray, latency_s: np.ndarray) -> float:
    """``c`` minimising ``sum((c * flops / t - 1) ** 2)``: every network counts alike, fast or slow."""
    ratio = np.asarray(flops, float) / np.asarray(latency_s, float)
    return float(np.sum(ratio) / np.sum(ratio**2))


def flops_line(jsonl: str | Path) -> tuple[float | None, str | None]:
    """Seconds per FLOP fitted on the calibration networks in ``jsonl`` (a calibration's
    measurements), or None and the reason there is none."""
    path = Path(jsonl)
    if not path.exists():
        return None, f"the calibration's measurements ({path.name}) are not beside it"
    rows = [r for r in Records(path).rows.values()
            if r.get("latency_s", 0) > 0 and str(r.get("id", "")).startswith("network:")]
    flops = np.array([sum(layer_from_dict(d).flops for d in r["rows"] if d.get("executed", True)) for r in rows],
                     float)
    keep = flops > 0
    if keep.sum() < 2:
        return None, "fewer than two calibration networks were measured"
    return per_flop_s(flops[keep], np.array([r["latency_s"] for r in rows])[keep]), None
