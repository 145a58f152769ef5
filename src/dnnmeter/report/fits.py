"""The study's relations as numbers: fits, fronts and budgets (numpy only, no text).

Each function takes the study's models (:class:`~dnnmeter.results.records.ModelRecord`) and
returns a dataclass.
Missing data never raise: a fit that cannot be made returns its numbers as ``None`` and says
why in ``reason``. Units are the data's (seconds, bytes, MACs, watts, accuracy as a fraction
0..1); the report converts them for people.

>>> fit = linear_fit([1, 2, 3], [3, 5, 7])
>>> (fit.slope, fit.intercept, fit.r2)
(2.0, 1.0, 1.0)

Methods (formulas in docs/report.md):

- operations against time: least squares, ``time per image = a * MACs per image + b``;
- accuracy against throughput, the paper's linear upper bound: least squares through the
  Pareto frontier of (images/s, top-1), then raised until no model lies above it;
- accuracy against time, the paper's hyperbola: ``top1 = a - b / t``, least squares in 1/t;
- memory against parameters: ``peak memory = floor + slope * weight bytes`` at batch size 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnmeter.results.records import BenchPoint, ModelRecord, StudyData, batch_sizes, finite

Model = ModelRecord

# --- the straight line -------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearFit:
    """``y = slope * x + intercept`` by least squares, with the coefficient of determination."""

    slope: float | None = None
    intercept: float | None = None
    r2: float | None = None
    n: int = 0
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def predict(self, x: float) -> float | None:
        if self.slope is None or self.intercept is None:
            return None
        return self.slope * x + self.intercept


def _pairs(x: Sequence[Any], y: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    kept = [(a, b) for a, b in zip((finite(v) for v in x), (finite(v) for v in y))
            if a is not None and b is not None]
    return np.array([a for a, _ in kept], dtype=float), np.array([b for _, b in kept], dtype=float)


def linear_fit(x: Sequence[Any], y: Sequence[Any]) -> LinearFit:
    """Least-squares line through the pairs where both values are numbers."""
    xs, ys = _pairs(x, y)
    n = len(xs)
    if n < 2:
        return LinearFit(n=n, reason=f"need at least 2 points with both values, have {n}")
    if np.ptp(xs) == 0:
        return LinearFit(n=n, reason="all x values are equal: no slope to fit")
    dx = xs - xs.mean()
    slope = float(np.dot(dx, ys - ys.mean()) / np.dot(dx, dx))
    intercept = float(ys.mean() - slope * xs.mean())
    residual = float(np.sum((ys - (slope * xs + intercept)) ** 2))
    total = float(np.sum((ys - ys.mean()) ** 2))
    # A flat y fitted exactly is a perfect fit; R^2 is otherwise undefined (0/0).
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual < 1e-24 else 0.0)
    return LinearFit(slope, intercept, float(r2), n)


# --- operations against time (paper: operations are a reliable estimate of time) -----------------


@dataclass(frozen=True)
class OpsTimeFit:
    """``latency_s_per_image = fit.slope * macs_per_image + fit.intercept`` at one batch size."""

    batch_size: int
    fit: LinearFit
    models: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        return self.fit.reason


def ops_vs_time(models: Sequence[Model], batch_size: int) -> OpsTimeFit:
    used = [m for m in models
            if m.macs_per_image is not None and m.measured(batch_size, "latency_s_per_image") is not None]
    fit = linear_fit([m.macs_per_image for m in used],
                     [m.measured(batch_size, "latency_s_per_image") for m in used])
    return OpsTimeFit(batch_size, fit, tuple(m.model for m in used))


# --- accuracy against throughput: the linear upper bound ---------------------------------------


@dataclass(frozen=True)
class UpperBound:
    """``top1 <= fit.slope * images_per_s + fit.intercept`` for every model at ``batch_size``.

    The slope is the least-squares slope through the ``frontier`` (models that no other model
    beats on both accuracy and throughput); the intercept is then raised by ``lift`` so that
    the line bounds every model from above and touches at least one. ``fit.r2`` is that of
    the frontier fit, before the lift.
    """

    batch_size: int
    fit: LinearFit
    lift: float | None = None
    frontier: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        return self.fit.reason


def _not_dominated(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Points (name, better-when-larger a, better-when-larger b) that no other point dominates."""
    def dominates(p: tuple[str, float, float], q: tuple[str, float, float]) -> bool:
        return p[1] >= q[1] and p[2] >= q[2] and (p[1] > q[1] or p[2] > q[2])

    return [q for q in points if not any(dominates(p, q) for p in points if p is not q)]


def throughput_upper_bound(models: Sequence[Model], batch_size: int = 1) -> UpperBound:
    pts = [(m.model, m.measured(batch_size, "images_per_s"), m.top1) for m in models]
    full = [(n, x, y) for n, x, y in pts if x is not None and y is not None]
    front = sorted(_not_dominated(full), key=lambda p: p[1])
    names = tuple(n for n, _, _ in full)
    fit = linear_fit([x for _, x, _ in front], [y for _, _, y in front])
    if not fit.ok:
        why = f"frontier: {fit.reason}"
        if len(front) == 1:
            why = f"the frontier is one model ({front[0][0]}): the most accurate is also the fastest, so no slope"
        return UpperBound(batch_size, LinearFit(n=fit.n, reason=why), frontier=tuple(n for n, _, _ in front),
                          models=names)
    assert fit.slope is not None and fit.intercept is not None
    lift = max(0.0, max(y - (fit.slope * x + fit.intercept) for _, x, y in full))
    lifted = LinearFit(fit.slope, fit.intercept + lift, fit.r2, fit.n)
    return UpperBound(batch_size, lifted, lift, tuple(n for n, _, _ in front), names)


# --- accuracy against time: the hyperbola ------------------------------------------------------


@dataclass(frozen=True)
class HyperbolaFit:
    """``top1 = a - b / t`` with ``t`` the time per image in seconds at ``batch_size``.

    ``a`` is the accuracy approached as time grows; ``b`` (accuracy x seconds) how fast it
    falls as time shrinks. Fitted as a straight line in ``1 / t``; ``r2`` is on ``top1``.
    """

    batch_size: int
    a: float | None = None
    b: float | None = None
    r2: float | None = None
    n: int = 0
    reason: str | None = None

    def predict(self, t_s: float) -> float | None:
        if self.a is None or self.b is None or t_s <= 0:
            return None
        return self.a - self.b / t_s


def accuracy_vs_time(models: Sequence[Model], batch_size: int = 1) -> HyperbolaFit:
    times = [m.measured(batch_size, "latency_s_per_image") for m in models]
    inverse = [1.0 / t if t else None for t in times]
    fit = linear_fit(inverse, [m.top1 for m in models])
    if not fit.ok:
        return HyperbolaFit(batch_size, n=fit.n, reason=fit.reason)
    assert fit.slope is not None
    return HyperbolaFit(batch_size, fit.intercept, -fit.slope, fit.r2, fit.n)


# --- accuracy per parameter: information density -----------------------------------------------


@dataclass(frozen=True)
class Density:
    """Top-1 (fraction) per million parameters: the paper's information density."""

    model: str
    family: str | None
    top1: float | None = None
    params: float | None = None
    top1_per_mparam: float | None = None
    label: str | None = None
    reason: str | None = None


def accuracy_per_param(models: Sequence[Model]) -> list[Density]:
    rows = []
    for m in models:
        acc, params = m.top1, m.analysed("params")
        base = Density(m.model, m.family, acc, params, label=m.accuracy_label)
        if acc is None:
            rows.append(_replace(base, reason="no top-1 accuracy"))
        elif not params:
            rows.append(_replace(base, reason="no parameter count"))
        else:
            rows.append(_replace(base, top1_per_mparam=acc / (params / 1e6)))
    return rows


def _replace(obj: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(obj, **changes)


# --- memory against parameters -----------------------------------------------------------------


@dataclass(frozen=True)
class MemoryFit:
    """``peak_memory_bytes = floor_bytes + slope * weight_bytes`` at ``batch_size``.

    The paper found a slope of 1.30 and a 200 MB floor on its board.
    """

    batch_size: int
    fit: LinearFit
    models: tuple[str, ...] = ()

    @property
    def slope(self) -> float | None:
        return self.fit.slope

    @property
    def floor_bytes(self) -> float | None:
        return self.fit.intercept

    @property
    def reason(self) -> str | None:
        return self.fit.reason


def memory_vs_params(models: Sequence[Model], batch_size: int = 1) -> MemoryFit:
    used = [m for m in models if m.analysed("weight_bytes") is not None
            and m.measured(batch_size, "peak_memory_bytes") is not None]
    fit = linear_fit([m.analysed("weight_bytes") for m in used],
                     [m.measured(batch_size, "peak_memory_bytes") for m in used])
    return MemoryFit(batch_size, fit, tuple(m.model for m in used))


# --- power against batch size ------------------------------------------------------------------


@dataclass(frozen=True)
class PowerSeries:
    """One model's mean power at each batch size where it was metered."""

    model: str
    family: str | None
    batch_sizes: tuple[int, ...] = ()
    power_w: tuple[float, ...] = ()
    mean_w: float | None = None
    reason: str | None = None


def power_vs_batch(models: Sequence[Model]) -> list[PowerSeries]:
    series = []
    for m in models:
        pts = [(p.batch_size, finite(p.power_w)) for p in m.bench if p.status == "ok"]
        kept = [(b, w) for b, w in pts if w is not None]
        if not kept:
            series.append(PowerSeries(m.model, m.family, reason=m.power_unavailable_reason))
            continue
        watts = tuple(w for _, w in kept)
        series.append(PowerSeries(m.model, m.family, tuple(b for b, _ in kept), watts,
                                  float(np.mean(watts))))
    return series


# --- the accuracy-latency Pareto front ---------------------------------------------------------


@dataclass(frozen=True)
class FrontPoint:
    model: str
    top1: float
    latency_s: float


@dataclass(frozen=True)
class ParetoFront:
    """Models that no other model beats on both top-1 and time per image at ``batch_size``.

    ``dominated`` names, for every other model with both figures, one model that beats it;
    ``missing`` says why a model could not be placed.
    """

    batch_size: int
    members: tuple[FrontPoint, ...] = ()
    dominated: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def _why_missing(m: Model, batch_size: int, key: str) -> str | None:
    if m.top1 is None:
        return "no top-1 accuracy"
    p = m.point(batch_size)
    if p is None:
        return f"not measured at batch size {batch_size}"
    if p.status != "ok":
        return f"batch size {batch_size}: {p.status}" + (f" ({p.error})" if p.error else "")
    return None if finite(getattr(p, key)) is not None else f"no {key} at batch size {batch_size}"


def pareto_front(models: Sequence[Model], batch_size: int = 1) -> ParetoFront:
    key = "latency_s_per_image"
    missing = {m.model: why for m in models if (why := _why_missing(m, batch_size, key))}
    # Negate time so that larger is better on both axes.
    pts = [(m.model, m.top1 or 0.0, -(m.measured(batch_size, key) or 0.0)) for m in models
           if m.model not in missing]
    if not pts:
        return ParetoFront(batch_size, missing=missing, reason="no model has both top-1 and a time")
    front = sorted(_not_dominated(pts), key=lambda p: -p[2])
    members = tuple(FrontPoint(n, a, -t) for n, a, t in front)
    dominated = {n: _dominator(n, a, t, members) for n, a, t in pts if n not in {p.model for p in members}}
    return ParetoFront(batch_size, members, dominated, missing)


def _dominator(name: str, acc: float, neg_t: float, members: Sequence[FrontPoint]) -> str:
    beaters = [p for p in members if p.top1 >= acc and -p.latency_s >= neg_t]
    best = max(beaters, key=lambda p: p.top1)
    return f"{best.model} is at least as accurate and as fast"


# --- the best model within a budget ------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Limits a model must meet at ``batch_size``; None means no limit. Latency is per call."""

    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_energy_j: float | None = None
    batch_size: int = 1

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.max_latency_ms, self.max_memory_mb, self.max_energy_j))


@dataclass(frozen=True)
class Choice:
    """The most accurate model within ``budget``; ``not_chosen`` says why each other was not."""

    budget: Budget
    model: str | None = None
    top1: float | None = None
    latency_s: float | None = None
    peak_memory_bytes: float | None = None
    energy_j_per_image: float | None = None
    not_chosen: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def _limit(p: BenchPoint, key: str, limit: float | None, per_unit: float, unit: str,
           what: str) -> str | None:
    """Why point ``p`` breaks ``limit`` (in ``unit``; ``per_unit`` data units make one), or None."""
    if limit is None:
        return None
    value = finite(getattr(p, key))
    if value is None:
        extra = f" ({p.power_unavailable_reason})" if what == "energy" and p.power_unavailable_reason else ""
        return f"{what} not measured{extra}"
    shown = value / per_unit
    return f"{what} {shown:.4g} {unit} > {limit:g} {unit}" if shown > limit else None


def _over_budget(m: Model, budget: Budget) -> str | None:
    missing = _why_missing(m, budget.batch_size, "latency_s_median")
    if missing:
        return missing
    p = m.ok_point(budget.batch_size)
    assert p is not None
    problems = [_limit(p, "latency_s_median", budget.max_latency_ms, 1e-3, "ms", "latency"),
                _limit(p, "peak_memory_bytes", budget.max_memory_mb, 1e6, "MB", "memory"),
                _limit(p, "energy_j_per_image", budget.max_energy_j, 1.0, "J/image", "energy")]
    found = [why for why in problems if why]
    return "; ".join(found) if found else None


def best_within(models: Sequence[Model], max_latency_ms: float | None = None,
                max_memory_mb: float | None = None, max_energy_j: float | None = None,
                batch_size: int = 1) -> Choice:
    """The most accurate model meeting every given limit at ``batch_size`` (ties: the faster).

    Latency is the median time of one call at ``batch_size``; memory the peak in MB (1e6
    bytes); energy in joules per image.
    """
    budget = Budget(max_latency_ms, max_memory_mb, max_energy_j, batch_size)
    not_chosen = {m.model: why for m in models if (why := _over_budget(m, budget))}
    fitting = [m for m in models if m.model not in not_chosen]
    if not fitting:
        return Choice(budget, not_chosen=not_chosen, reason="no model fits the budget")
    best = max(fitting, key=lambda m: (m.top1 or 0.0, -(m.measured(batch_size, "latency_s_median") or 0.0)))
    acc = best.top1
    assert acc is not None
    for m in fitting:
        if m is not best:
            not_chosen[m.model] = f"fits, but less accurate ({m.top1 or 0.0:.2%} against {acc:.2%})"
    return Choice(budget, best.model, acc, best.measured(batch_size, "latency_s_median"),
                  best.measured(batch_size, "peak_memory_bytes"),
                  best.measured(batch_size, "energy_j_per_image"), not_chosen)


# --- everything the report shows ---------------------------------------------------------------


@dataclass(frozen=True)
class StudyFits:
    """Every fit of one study; ``choice`` is None when the study gave no budget."""

    ops_time: tuple[OpsTimeFit, ...]
    upper_bound: UpperBound
    hyperbola: HyperbolaFit
    density: tuple[Density, ...]
    memory: MemoryFit
    power: tuple[PowerSeries, ...]
    pareto: ParetoFront
    choice: Choice | None


def study_data(study: StudyData | Mapping[str, Any]) -> StudyData:
    """``study`` as records: a results.json dict is read through the codec once, here."""
    return study if isinstance(study, StudyData) else StudyData.from_dict(dict(study))


def compute_fits(study: StudyData | Mapping[str, Any]) -> StudyFits:
    """All fits of a study (records, or a results.json dict); budgets come from its settings."""
    data = study_data(study)
    models = data.models
    s = data.settings
    budget = Budget() if s is None else Budget(finite(s.max_latency_ms), finite(s.max_memory_mb),
                                                finite(s.max_energy_j))
    choice = best_within(models, budget.max_latency_ms, budget.max_memory_mb, budget.max_energy_j) \
        if budget.given else None
    return StudyFits(
        ops_time=tuple(ops_vs_time(models, b) for b in batch_sizes(models) or [1]),
        upper_bound=throughput_upper_bound(models, 1),
        hyperbola=accuracy_vs_time(models, 1),
        density=tuple(accuracy_per_param(models)),
        memory=memory_vs_params(models, 1),
        power=tuple(power_vs_batch(models)),
        pareto=pareto_front(models, 1),
        choice=choice,
    )
