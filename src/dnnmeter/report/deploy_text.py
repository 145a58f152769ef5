"""The deploy search's words shared by ``dnnmeter deploy``'s table and the report's "How to run
it" section, so the two never say a thing differently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _threads(threads: int | None) -> str:
    if threads is None:
        return "the default thread count"
    return f"{threads} thread" + ("" if threads == 1 else "s")


def rechecks_sentence(rechecks: Sequence[Any]) -> str | None:
    """The baseline's second timings (``BaselineRecheck``s, or their records) in one sentence,
    saying where there was none and why; None when no thread count needed one.

    >>> from dnnmeter.deployment import BaselineRecheck
    >>> print(rechecks_sentence([BaselineRecheck(2, drift=1.04), BaselineRecheck(1, reason="budget: ...")]))
    Eager float32 timed again after the screens: its median 1.04x the first timing's at 2 threads (both timings make the speed-ups there). Not timed again at 1 thread (budget: ...): the speed-ups there rest on one timing of the baseline.
    """
    timed = [r for r in rechecks if r.drift is not None]
    missing = [r for r in rechecks if r.drift is None]
    parts = []
    if timed:
        drifts = ", ".join(f"{r.drift:.2f}x the first timing's at {_threads(r.threads)}" for r in timed)
        parts.append(f"Eager float32 timed again after the screens: its median {drifts} (both timings make the "
                     "speed-ups there).")
    for r in missing:
        parts.append(f"Not timed again at {_threads(r.threads)} ({r.reason or 'no reason recorded'}): the speed-ups "
                     "there rest on one timing of the baseline.")
    return " ".join(parts) or None
