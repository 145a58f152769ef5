"""How well predicted latency agrees with measured, and the predicted accuracy/latency front.

The scores are the issue's (and nn-Meter's) and benchmarks/predict_accuracy.py's: the share
of points whose prediction is within ±10% and ±20% of the measurement (``|p/m - 1|``), the
median absolute relative error, and Spearman's rank correlation; beside them the median of
predicted / measured, which tells an offset shared by every point (a busy machine) from scatter. Only points measured
successfully and not used to calibrate are scored (:func:`scored`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnnmeter.results.records import PredictedPoint

__all__ = ["Agreement", "FrontPoint", "agreement", "predicted_front", "scored"]


@dataclass(frozen=True)
class Agreement:
    """Predicted against measured over ``n`` points (fractions; None where undefined)."""

    n: int
    within_10pct: float | None = None
    within_20pct: float | None = None
    median_abs_error: float | None = None
    spearman: float | None = None
    median_ratio: float | None = None  # predicted / measured: a shared offset (a busy machine) shows here


def agreement(measured: Sequence[float], predicted: Sequence[float]) -> Agreement:
    """Scores of ``predicted`` against ``measured`` (same order, positive seconds)."""
    m, p = np.asarray(measured, float), np.asarray(predicted, float)
    if len(m) == 0:
        return Agreement(0)
    err = np.abs(p / m - 1.0)
    return Agreement(len(m), float(np.mean(err <= 0.10 + 1e-12)), float(np.mean(err <= 0.20 + 1e-12)),
                     float(np.median(err)), _spearman(m, p), float(np.median(p / m)))


def _spearman(m: np.ndarray, p: np.ndarray) -> float | None:
    """Undefined with fewer than three points or a constant side (scipy would say nan)."""
    from scipy import stats

    if len(m) < 3 or np.ptp(m) == 0 or np.ptp(p) == 0:
        return None
    return float(stats.spearmanr(m, p).statistic)


def scored(points: Sequence[PredictedPoint], baseline: bool = False) -> tuple[list[float], list[float]]:
    """(measured, predicted) of the points that can be scored: measured, predicted (by the
    FLOPs line when ``baseline``) and not used to calibrate."""
    pairs = [(p.measured_latency_s, p.flops_line_latency_s if baseline else p.latency_s) for p in points
             if not p.used_to_calibrate]
    kept = [(m, q) for m, q in pairs if m is not None and q is not None and m > 0 and q > 0]
    return [m for m, _ in kept], [q for _, q in kept]


@dataclass(frozen=True)
class FrontPoint:
    model: str
    latency_s: float
    top1: float


def predicted_front(points: Sequence[tuple[str, float, float]]) -> list[FrontPoint]:
    """Of (model, latency_s, top1) points, those no other point beats on both (faster and at
    least as accurate, or as fast and more accurate), fastest first. Ties on both stay."""
    front = []
    for name, t, acc in points:
        beaten = any(u <= t and a >= acc and (u < t or a > acc) for _, u, a in points)
        if not beaten:
            front.append(FrontPoint(name, t, acc))
    return sorted(front, key=lambda f: (f.latency_s, -f.top1, f.model))
