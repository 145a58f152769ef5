"""How a model appears on the models study's figures: its family colour, its marker (the
accuracy's source when sources are mixed), blob sizes, name labels, legends, and the values
read off a model for an axis (GMACs, M parameters, top-1 %, a measured figure at a batch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from dnnmeter.report.plot import colour
from dnnmeter.results.records import ModelRecord, batch_sizes, finite

Model = ModelRecord
LegendLoc = Literal["best", "upper left", "upper right", "lower left", "lower right"]
MARKERS = {"measured": "o", "published": "s", "estimated": "^"}
MAX_BLOB_PT2 = 1400.0  # area of the largest blob, in points squared
MIN_BLOB_PT2 = 14.0  # so that a tiny model stays visible


def accuracy_axis_label(models: Sequence[Model], what: str = "top-1 accuracy (%)") -> str:
    """The axis label says where the accuracy figures come from (published, measured, ...)."""
    labels = sorted({m.accuracy_label or "unlabelled" for m in models if m.top1 is not None})
    return f"{what}, {' / '.join(labels)}" if labels else what


def blob_sizes(values: Sequence[float]) -> list[float]:
    """Marker areas proportional to ``values`` (the paper's blobs), never vanishing."""
    top = max(values) if values else 0.0
    if top <= 0:
        return [MIN_BLOB_PT2 for _ in values]
    return [max(MIN_BLOB_PT2, MAX_BLOB_PT2 * v / top) for v in values]


def mixed_labels(models: Sequence[Model]) -> bool:
    return len({m.accuracy_label for m in models if m.top1 is not None}) > 1


def marker_of(m: Model, mixed: bool) -> str:
    """Circles, as in the paper; shapes tell accuracy sources apart only when they are mixed."""
    return MARKERS.get(m.accuracy_label or "measured", "o") if mixed else "o"


def label_marker_handles(models: Sequence[Model]) -> list[Line2D]:
    if not mixed_labels(models):
        return []
    labels = dict.fromkeys(m.accuracy_label or "measured" for m in models if m.top1 is not None)
    return [Line2D([], [], marker=MARKERS.get(lab, "o"), linestyle="", color="#777777", label=f"{lab} accuracy")
            for lab in labels]


def scatter_models(ax: Axes, models: Sequence[Model], xs: Sequence[float], ys: Sequence[float],
                   sizes: Sequence[float] | None = None) -> None:
    """One marker per model in its family's colour, named beside it."""
    mixed = mixed_labels(models)
    for i, (m, x, y) in enumerate(zip(models, xs, ys)):
        marker = marker_of(m, mixed)
        size = sizes[i] if sizes is not None else 40.0
        ax.scatter([x], [y], s=size, color=colour(m.family), alpha=0.55 if sizes else 0.9,
                   edgecolors="#333333", linewidths=0.6, marker=marker, zorder=3)
        ax.annotate(m.model, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=4)


def family_handles(models: Sequence[Model]) -> list[Line2D]:
    families = list(dict.fromkeys(m.family or "unknown" for m in models))
    return [Line2D([], [], marker="o", linestyle="", color=colour(f), label=f) for f in families]


def add_family_legend(ax: Axes, models: Sequence[Model], extra: Sequence[Any] = (),
                      loc: LegendLoc = "best") -> None:
    handles = [*family_handles(models), *label_marker_handles(models), *extra]
    ax.legend(handles=handles, fontsize=7, loc=loc, framealpha=0.85, title="family",
              title_fontsize=7)


def pick(models: Sequence[Model], x: Callable[[Model], float | None],
         y: Callable[[Model], float | None]) -> tuple[list[Model], list[float], list[float]]:
    """The models with both values, and the values."""
    rows = [(m, x(m), y(m)) for m in models]
    kept = [(m, a, b) for m, a, b in rows if a is not None and b is not None]
    return [m for m, _, _ in kept], [a for _, a, _ in kept], [b for _, _, b in kept]


def largest_batch(models: Sequence[Model], key: str) -> int:
    """The largest batch size at which at least two models have ``key`` (else 1)."""
    sizes = [b for b in batch_sizes(models) if sum(m.measured(b, key) is not None for m in models) >= 2]
    return max(sizes, default=1)


def failed_points_note(models: Sequence[Model]) -> str | None:
    failed = [f"{m.model} at batch size {p.batch_size} ({p.status})"
              for m in models for p in m.bench if p.status not in ("ok", None)]
    return "not drawn, not measured: " + ", ".join(failed) if failed else None


def no_power_reason(models: Sequence[Model]) -> str:
    reasons = list(dict.fromkeys(m.power_unavailable_reason for m in models))
    return "no power readings: " + "; ".join(reasons[:3])


def has_power(models: Sequence[Model]) -> bool:
    return any(finite(p.power_w) is not None for m in models for p in m.bench if p.status == "ok")


def gmacs(m: Model) -> float | None:
    v = m.macs_per_image
    return None if v is None else v / 1e9


def mparams(m: Model) -> float | None:
    v = m.analysed("params")
    return None if v is None else v / 1e6


def weights_mb(m: Model) -> float | None:
    v = m.analysed("weight_bytes")
    return None if v is None else v / 1e6


def top1_pct(m: Model) -> float | None:
    v = m.top1
    return None if v is None else 100.0 * v


def at_batch(key: str, batch: int, scale: float = 1.0) -> Callable[[Model], float | None]:
    def read(m: Model) -> float | None:
        v = m.measured(batch, key)
        return None if v is None else v * scale
    return read


HATCH = {"published": "///", "estimated": "..", "measured": ""}


def label_handles(models: Sequence[Model]) -> list[Any]:
    from matplotlib.patches import Patch

    labels = dict.fromkeys(m.accuracy_label or "measured" for m in models)
    return [Patch(facecolor="white", edgecolor="#333333", hatch=HATCH.get(lab, ""), label=lab) for lab in labels]


def bars(ax: Axes, models: Sequence[Model], values: Sequence[float]) -> None:
    """One bar per model in its family colour; hatching says where the accuracy comes from."""
    xs = np.arange(len(models))
    for x, m, v in zip(xs, models, values):
        ax.bar([x], [v], color=colour(m.family), edgecolor="#333333", linewidth=0.6,
               hatch=HATCH.get(m.accuracy_label or "measured", ""))
    ax.set_xticks(xs, [m.model for m in models], rotation=35, ha="right", fontsize=8)
    ax.grid(False, axis="x")
