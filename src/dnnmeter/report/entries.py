"""Reading one model entry of a study (``results.json``'s ``models``): the only code of the
report that knows the entry's layout. Every reader returns a finite float, a label, or None
when the figure is missing or its point failed; none raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Model = Mapping[str, Any]


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, text, bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def name_of(m: Model) -> str:
    return str(m.get("model", "?"))


def analysis_value(m: Model, key: str) -> float | None:
    return number((m.get("analysis") or {}).get(key))


def top1(m: Model) -> float | None:
    return number((m.get("accuracy") or {}).get("top1"))


def top5(m: Model) -> float | None:
    return number((m.get("accuracy") or {}).get("top5"))


def accuracy_label(m: Model) -> str | None:
    label = (m.get("accuracy") or {}).get("label")
    return str(label) if label else None


def macs_per_image(m: Model) -> float | None:
    """MACs of one image: the analysis counts a whole batch (normally of 1)."""
    macs, batch = analysis_value(m, "macs"), analysis_value(m, "batch_size") or 1.0
    return None if macs is None else macs / batch


def bench_point(m: Model, batch_size: int) -> Mapping[str, Any] | None:
    """The benchmark point at ``batch_size`` whatever its status, or None."""
    points: list[Mapping[str, Any]] = list(m.get("bench") or [])
    for p in points:
        if p.get("batch_size") == batch_size:
            return p
    return None


def ok_point(m: Model, batch_size: int) -> Mapping[str, Any] | None:
    p = bench_point(m, batch_size)
    return p if p is not None and p.get("status") == "ok" else None


def measured(m: Model, batch_size: int, key: str) -> float | None:
    """A measured field of the ``ok`` point at ``batch_size``; None if absent or failed."""
    p = ok_point(m, batch_size)
    return None if p is None else number(p.get(key))


def batch_sizes(models: Sequence[Model]) -> list[int]:
    """Every batch size with at least one ``ok`` point, ascending."""
    return sorted({int(p["batch_size"]) for m in models for p in m.get("bench") or []
                   if p.get("status") == "ok" and isinstance(p.get("batch_size"), int)})
