"""From measured kernels to a fitted predictor, and from a model's layers to its latency.

A model's predicted latency is ``sum(layer predictions) + per_layer_s * layers +
per_byte_s * bytes``: each layer's latency comes from its group's fit (else its kind's, else
one fit over every kernel); ``per_layer_s`` and ``per_byte_s`` are fitted on whole
calibration networks (:mod:`dnnmeter.prediction.calib_models`): what single kernels timed
alone miss, a cost per call and a cost per byte the layers move (``bytes`` sums each layer's
inputs, outputs and parameters, as :func:`~dnnmeter.prediction.features.work` counts them),
since in a network those bytes come from memory rather than from a warm cache. (A ``scale``
on the sum is read from older calibrations; none is fitted now.)
The interval sums the layers' 5th and 95th percentiles (errors of one machine's kernels
move together, so they are not assumed to cancel) and is widened by the calibration
networks' own residuals.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any

import numpy as np

from dnnmeter.analysis import LayerCost
from dnnmeter.prediction.features import features, group_of, mapped_pages, work
from dnnmeter.prediction.fit import MIN_SAMPLES, GroupModel, fit_group

_LAYER_FIELDS = {f.name for f in dataclasses.fields(LayerCost)}
ALL = "all"
COPY_GROUP = "copy"


def layer_from_dict(d: dict[str, Any]) -> LayerCost:
    return LayerCost(**{k: v for k, v in d.items() if k in _LAYER_FIELDS})


def _arrays(layers: list[LayerCost], itemsize: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.array([work(layer, itemsize) for layer in layers], dtype=float).reshape(-1, 3)
    f = np.array([features(layer) for layer in layers], dtype=float).reshape(len(layers), -1)
    return w, f


def fault_free_s(record: dict[str, Any], layer: LayerCost, itemsize: int, page_fault_s: float) -> float:
    """A kernel's latency without the page faults of :func:`mapped_pages`, which the predictor
    adds itself: whether a calibration kernel paid them depends on its process's heap history
    (a free block large enough is reused), so the faults it made (``faults_per_call``) are
    taken out, at most the pages of that buffer."""
    latency = float(record["latency_s"])
    pages = min(float(record.get("faults_per_call") or 0.0), mapped_pages(layer, itemsize))
    return max(latency - pages * page_fault_s, 0.5 * latency)


def fit_models(kernels: list[dict[str, Any]], itemsize: int, page_fault_s: float = 0.0) -> dict[str, dict[str, Any]]:
    """One fit per group, per kind (the fallback) and over all kernels, keyed ``g:``/``k:``/``all``."""
    pools: dict[str, list[tuple[LayerCost, float]]] = defaultdict(list)
    for record in kernels:
        layer = layer_from_dict(record["rows"][0])
        latency = fault_free_s(record, layer, itemsize, page_fault_s)
        for name in (f"g:{group_of(layer)}", f"k:{layer.kind}", ALL):
            pools[name].append((layer, latency))
    fitted: dict[str, dict[str, Any]] = {}
    for name, pool in sorted(pools.items()):
        if len(pool) < MIN_SAMPLES:
            continue
        w, f = _arrays([layer for layer, _ in pool], itemsize)
        fitted[name] = fit_group(w, f, np.array([t for _, t in pool])).to_dict()
    return fitted


class Predictor:
    """A loaded calibration: ``model_s(layers)`` is the predicted latency of one forward."""

    def __init__(self, calibration: dict[str, Any]) -> None:
        self.calibration = calibration
        self.itemsize = int(calibration["itemsize"])
        self.models = {k: GroupModel.from_dict(v) for k, v in calibration["models"].items()}
        overhead = calibration.get("overhead") or {}
        self.scale = float(overhead.get("scale", 1.0))
        self.per_layer_s = float(overhead.get("per_layer_s", 0.0))
        self.per_byte_s = float(overhead.get("per_byte_s", 0.0))  # 0 in calibrations made before it
        self.log_residual = (float(overhead.get("log_residual_min", 0.0)), float(overhead.get("log_residual_max", 0.0)))
        # why no overhead was fitted (no network measured, the fit failed): each prediction says it
        self.overhead_note: str | None = overhead.get("note")
        # seconds to fault in one page; calibrations made before it was measured add no faults
        self.page_fault_s = float(calibration.get("page_fault_s") or 0.0)

    @property
    def prices_copies(self) -> bool:
        """Whether this calibration timed copies (calibrations made before the "copy" group, or
        cut short before any copy kernel, did not)."""
        return f"g:{COPY_GROUP}" in self.models

    def priced(self, layers: list[LayerCost]) -> list[LayerCost]:
        """The layers a forward's latency sums: those executed, without the copy rows when this
        calibration has no copy fit. Those are then free, as they were when it was made: a
        kind's or the pooled fit would price a copy as a convolution or a ReLU of its shape,
        and each row would add ``per_layer_s``, fitted on networks whose rows had no copies."""
        keep_copies = self.prices_copies
        return [layer for layer in layers if layer.executed and (keep_copies or group_of(layer) != COPY_GROUP)]

    def source_of(self, layer: LayerCost) -> str:
        for name in (f"g:{group_of(layer)}", f"k:{layer.kind}", ALL):
            if name in self.models:
                return name
        raise KeyError("calibration has no fitted model at all")

    def layers_s(self, layers: list[LayerCost]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Per layer: predicted seconds, low, high, and which fit gave it."""
        sources = [self.source_of(layer) for layer in layers]
        pred, low, high = (np.zeros(len(layers)) for _ in range(3))
        for name in set(sources):
            idx = [i for i, s in enumerate(sources) if s == name]
            model = self.models[name]
            w, f = _arrays([layers[i] for i in idx], self.itemsize)
            p = model.predict_s(w, f)
            pred[idx], low[idx], high[idx] = p, p * math.exp(model.log_error_q05), p * math.exp(model.log_error_q95)
        faults = np.array([mapped_pages(layer, self.itemsize) for layer in layers], dtype=float) * self.page_fault_s
        return pred + faults, low + faults, high + faults, sources

    def model_s(self, layers: list[LayerCost]) -> tuple[float, float, float, np.ndarray, list[str]]:
        """Latency of a whole forward: (point, low, high, per-layer seconds, per-layer fit)."""
        executed = self.priced(layers)
        pred, low, high, sources = self.layers_s(executed)
        overhead = self.per_layer_s + self.per_byte_s * bytes_moved(executed, self.itemsize)
        lo_r, hi_r = self.log_residual
        point = self.scale * pred.sum() + overhead.sum()
        lo = (self.scale * low.sum() + overhead.sum()) * math.exp(min(lo_r, 0.0))
        hi = (self.scale * high.sum() + overhead.sum()) * math.exp(max(hi_r, 0.0))
        per_layer = self.scale * pred + overhead
        return float(point), float(min(lo, point)), float(max(hi, point)), per_layer, sources


def bytes_moved(layers: list[LayerCost], itemsize: int) -> np.ndarray:
    """Per layer, the bytes of its inputs, outputs and parameters (:func:`work`'s third figure)."""
    return np.array([work(layer, itemsize)[2] for layer in layers], dtype=float)


def _least_absolute(design: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Non-negative ``c`` minimising ``sum |design @ c - target|``, as a linear program: the
    median's robustness (a network slowed by something else does not set the fit) for more
    than one coefficient, which scipy's least-squares solvers do not give. None if the solver
    fails (the program is always feasible and bounded, so that would be a solver's fault)."""
    from scipy.optimize import linprog

    rows, cols = design.shape
    scale = np.maximum(np.abs(design).max(axis=0), 1e-30)  # calls and bytes differ by 1e6: condition
    cost = np.r_[np.zeros(cols), np.ones(2 * rows)]  # c, then each row's positive and negative part
    equalities = np.hstack([design / scale, -np.eye(rows), np.eye(rows)])
    solved = linprog(cost, A_eq=equalities, b_eq=target, bounds=[(0, None)] * (cols + 2 * rows))
    return np.asarray(solved.x[:cols]) / scale if solved.success else None


def fit_overhead(predictor: Predictor, networks: list[dict[str, Any]]) -> dict[str, Any]:
    """``measured = sum(kernel predictions) + per_layer_s * layers + per_byte_s * bytes``.

    The kernels' sum is kept as it is (no scale): kernels and networks are timed alike, and a
    scale fitted on small networks multiplied the compute of every large model (VGG, ResNet,
    RegNet 16GF: 10-25% too slow with a scale of 1.12). What a network adds to its kernels is
    a cost per layer call and a cost per byte its layers move: a kernel timed call after call
    finds its inputs, outputs and weights in cache, a layer in a network mostly does not. The
    small mobile and transformer calibration networks (64 x 64, everything in cache) paid 2-5 us
    a layer beyond their kernels, the zoo-sized ones 11-36 us; a cost per call alone could not
    serve both (docs/predict.md, "Limits").

    Both are fitted on relative error, least absolute deviation (:func:`_least_absolute`), so
    one network slowed by something else (page faults, a busy machine) does not set them.
    Only the batch-1 runs fit them (all runs where none is at batch 1): there the overhead is
    the largest share of a layer's time. At batch 8 a layer's kernel takes about 8 times as
    long, and the kernel fit's own error swamps it: with the zoo-sized networks also run at
    batch 8, the six networks came out from -105 to +120 us a layer at batch 8, from 3 to 31 us
    at batch 1. Every run still bounds the interval (``log_residual_*``).
    """
    if not networks:
        return {"scale": 1.0, "per_layer_s": 0.0, "per_byte_s": 0.0, "networks": [],
                "note": "no calibration network measured: kernels summed as they are"}
    rows = []
    for net in networks:
        layers = predictor.priced([layer_from_dict(r) for r in net["rows"]])
        raw = float(predictor.layers_s(layers)[0].sum())
        rows.append((net["id"], raw, len(layers), float(bytes_moved(layers, predictor.itemsize).sum()),
                     float(net["latency_s"])))
    at_batch_1 = [r for r in rows if r[0].endswith(":b1")]
    fitted_on = at_batch_1 or rows
    # (raw + a*layers + b*bytes) / measured = 1, for each network
    design = np.array([[n / measured, moved / measured] for _, _, n, moved, measured in fitted_on])
    target = np.array([1.0 - raw / measured for _, raw, _, _, measured in fitted_on])
    solved = _least_absolute(design, target)
    per_layer, per_byte = (0.0, 0.0) if solved is None else (float(solved[0]), float(solved[1]))
    measured_s = np.array([r[4] for r in rows])
    predicted = np.array([raw + per_layer * n + per_byte * moved for _, raw, n, moved, _ in rows])
    log_res = np.log(measured_s / np.maximum(predicted, 1e-12))
    return {
        "scale": 1.0, "per_layer_s": per_layer, "per_byte_s": per_byte,
        "fitted_on": "batch 1" if at_batch_1 else "every batch",
        **({"note": "the overhead fit failed (linear program): kernels summed as they are"} if solved is None else {}),
        "log_residual_min": float(log_res.min()), "log_residual_max": float(log_res.max()),
        "networks": [{"id": r[0], "measured_s": r[4], "kernel_sum_s": r[1], "layers": r[2], "bytes_moved": r[3],
                      "predicted_s": float(p)} for r, p in zip(rows, predicted, strict=True)],
    }  # fmt: skip
