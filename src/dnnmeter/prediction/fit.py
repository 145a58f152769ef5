"""The per-group latency model: a roofline-like line, corrected by boosted trees; stored as JSON.

``t = intercept + a*MACs + b*element-wise FLOPs + c*bytes`` (non-negative coefficients,
fitted on relative error) extrapolates sensibly to shapes larger than any calibrated one;
a gradient-boosted tree ensemble on log shape features then learns the multiplicative
correction (cache effects, kernel choice, odd channel counts): ``t = line * exp(trees)``.
The trees fit the median of the log ratio, not its mean (:data:`TREE_LOSS`), so that the few
kernels oneDNN runs several times slower than their neighbours do not raise the shapes nearby.
Out of the calibrated range the trees hold their edge value, so the line sets the trend.

Everything a prediction needs is plain numbers (:meth:`GroupModel.to_dict`): no pickles.
The prediction interval is the 5th to 95th percentile of out-of-fold log errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_SAMPLES = 3  # a line with an intercept and one slope needs a few points to mean anything
MIN_TREE_SAMPLES = 12  # fewer points: the trees would fit noise, so the line alone is used
FOLDS = 5
# Absolute error: the trees follow the median kernel of a region, not its mean. Convolutions
# scatter widely around their shape's trend (oneDNN picks among several algorithms; one in eight
# was more than 50% off its cross-validated prediction), and squared error let those pull whole
# regions of shapes with them.
# Refitting the 1,704 kernels of a CPU calibration both ways, 5-fold cross-validated: median error
# of convolutions 15.2% -> 12.4%, of all kernels (weighted by group) 17.2% -> 14.6%; kernels
# within +-10% 41% -> 47%. Depthwise convs, matmuls and adds moved by a point either way.
TREE_LOSS = "absolute_error"


@dataclass
class Trees:
    """A gradient-boosted ensemble exported from scikit-learn: ``init + rate * sum(leaf)``."""

    init: float
    learning_rate: float
    trees: list[dict[str, list[float]]]

    def to_dict(self) -> dict[str, Any]:
        return {"init": self.init, "learning_rate": self.learning_rate, "trees": self.trees}

    def __post_init__(self) -> None:
        # All trees in one set of arrays (node ids offset per tree): a prediction walks them all
        # at once, depth by depth, instead of tree by tree (the whole zoo in a few seconds).
        offsets = np.cumsum([0] + [len(t["left"]) for t in self.trees])[:-1]
        cat = {k: np.concatenate([np.asarray(t[k]) for t in self.trees]) if self.trees else np.zeros(0)
               for k in ("left", "right", "feature", "threshold", "value")}
        shift = np.repeat(offsets, [len(t["left"]) for t in self.trees]).astype(int)
        leaf = cat["left"] == -1
        self._left = np.where(leaf, -1, cat["left"].astype(int) + shift)
        self._right = np.where(leaf, -1, cat["right"].astype(int) + shift)
        self._feature = np.where(leaf, 0, cat["feature"]).astype(int)
        self._threshold, self._value, self._roots = cat["threshold"].astype(float), cat["value"], offsets.astype(int)

    def predict(self, x: np.ndarray) -> np.ndarray:
        # scikit-learn compares float32 features with float64 thresholds: do the same.
        x = x.astype(np.float32).astype(np.float64)
        if not self.trees:
            return np.full(len(x), self.init)
        node = np.broadcast_to(self._roots, (len(x), len(self._roots))).copy()  # rows x trees
        rows = np.arange(len(x))[:, None]
        while True:
            inner = self._left[node] != -1
            if not inner.any():
                break
            go_left = x[rows, self._feature[node]] <= self._threshold[node]
            node = np.where(inner, np.where(go_left, self._left[node], self._right[node]), node)
        return self.init + self.learning_rate * self._value[node].sum(axis=1)


@dataclass
class GroupModel:
    """Latency of one kernel group: the line's four coefficients and the trees' correction."""

    coefficients: list[float]  # seconds: intercept, per MAC, per element-wise FLOP, per byte
    trees: Trees | None = None
    log_error_q05: float = 0.0
    log_error_q95: float = 0.0
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def predict_s(self, work: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """``work`` rows are (MACs, element-wise FLOPs, bytes); ``feats`` the log features."""
        line = self.coefficients[0] + work @ np.asarray(self.coefficients[1:])
        if self.trees is None or len(feats) == 0:
            return line
        return line * np.exp(self.trees.predict(feats))

    def to_dict(self) -> dict[str, Any]:
        return {
            "coefficients_s": dict(zip(("intercept", "per_mac", "per_elementwise_flop", "per_byte"),
                                       self.coefficients, strict=True)),
            "trees": None if self.trees is None else self.trees.to_dict(),
            "log_error_q05": self.log_error_q05, "log_error_q95": self.log_error_q95,
            "diagnostics": self.diagnostics,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GroupModel:
        trees = Trees(**d["trees"]) if d.get("trees") else None
        return cls(list(d["coefficients_s"].values()), trees, d["log_error_q05"], d["log_error_q95"],
                   d.get("diagnostics", {}))


def fit_line(work: np.ndarray, latency_s: np.ndarray) -> list[float]:
    """Non-negative least squares on relative error: every kernel counts alike, small or large."""
    from scipy.optimize import nnls

    design = np.column_stack([np.ones(len(work)), work]) / latency_s[:, None]
    scale = np.maximum(np.abs(design).max(axis=0), 1e-30)  # columns span 1 to 1e9: condition them
    coef, _ = nnls(design / scale, np.ones(len(work)))
    return list(coef / scale)


def _fit_trees(feats: np.ndarray, log_ratio: np.ndarray, seed: int) -> Trees:
    from sklearn.ensemble import GradientBoostingRegressor

    gbr = GradientBoostingRegressor(n_estimators=120, max_depth=3, learning_rate=0.1, subsample=0.8,
                                    min_samples_leaf=3, random_state=seed, loss=TREE_LOSS)
    gbr.fit(feats, log_ratio)
    exported = []
    for est in gbr.estimators_[:, 0]:
        t = est.tree_
        exported.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                         "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                         "value": t.value[:, 0, 0].tolist()})
    return Trees(float(gbr.init_.constant_.ravel()[0]), float(gbr.learning_rate), exported)


def _fit_once(work: np.ndarray, feats: np.ndarray, latency_s: np.ndarray, seed: int) -> GroupModel:
    coefficients = fit_line(work, latency_s)
    model = GroupModel(coefficients)
    if len(latency_s) >= MIN_TREE_SAMPLES:
        line = model.predict_s(work, feats[:0])
        model.trees = _fit_trees(feats, np.log(latency_s / np.maximum(line, 1e-12)), seed)
    return model


def _out_of_fold_log_errors(work: np.ndarray, feats: np.ndarray, latency_s: np.ndarray, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(latency_s))
    errors = np.empty(len(latency_s))
    for fold in np.array_split(order, FOLDS):
        train = np.setdiff1d(order, fold)
        model = _fit_once(work[train], feats[train], latency_s[train], seed)
        errors[fold] = np.log(latency_s[fold] / np.maximum(model.predict_s(work[fold], feats[fold]), 1e-12))
    return errors


def fit_group(work: np.ndarray, feats: np.ndarray, latency_s: np.ndarray, seed: int = 0) -> GroupModel:
    """Fit one group; the interval and diagnostics come from out-of-fold errors (5 folds)."""
    model = _fit_once(work, feats, latency_s, seed)
    model.diagnostics = {"kernels": len(latency_s)}
    if len(latency_s) >= 2 * FOLDS:
        errors = _out_of_fold_log_errors(work, feats, latency_s, seed)
        model.log_error_q05, model.log_error_q95 = (float(np.quantile(errors, q)) for q in (0.05, 0.95))
        rel = np.abs(np.exp(errors) - 1.0)
        model.diagnostics.update({
            "cv_median_abs_error": float(np.median(rel)),
            "cv_p90_abs_error": float(np.quantile(rel, 0.9)),
            "cv_within_10pct": float(np.mean(rel <= 0.10)),
        })  # fmt: skip
    else:
        model.diagnostics["note"] = f"fewer than {2 * FOLDS} kernels: no cross-validated interval"
        model.log_error_q05, model.log_error_q95 = math.log(0.5), math.log(2.0)
    return model
