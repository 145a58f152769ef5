"""How the search keeps to ``--budget-min``: a screen on a few images, the full comparison for candidates.

Running every image through every configuration is what a search spends most of its time on
(resnet50 on 2 cores: about a minute per configuration for 1,000 images), so the comparison
has two stages:

1. **Screen.** Every configuration is timed and compared with eager float32 on a screen of
   ``screen`` images spread over the compared ones. The screen only *rejects*, and only what it
   is sure of: a configuration whose disagreement (or accuracy drop) has a one-sided 95% lower
   bound above the tolerance (:func:`surely_outside`). The rest keep the screen's figures, with
   ``images`` = the screen's count.
2. **Full comparison.** The candidates for the recommendation (not surely out, speed-up's
   interval above 1, faster than the baseline) are compared on every image, fastest first,
   until one is accepted there: that one is the recommendation. One whose comparison does not
   fit is passed over (and named in the recommendation's reason). A configuration judged on
   the screen alone is never recommended (judge.py checks ``images``).

Budget: the search's clock starts with it. Before each configuration runs, its cost is
estimated from what ran before (:func:`screen_estimate_s`, :func:`full_estimate_s`); one that
does not fit what is left, after keeping enough for the full comparisons of the baseline and
``RESERVE_CANDIDATES`` candidates and for timing each baseline again (:func:`reserve_s`: at most
half the budget; when the screens found no candidate, that time goes to a second pass over the
configurations skipped), is ``skipped`` with a reason that starts with ``budget`` (never stored: a rerun
with more budget tries it), and a worker still running when the budget is spent is stopped and
skipped the same way. Configurations run in :func:`measure_order`: the baselines, then the
most threads first (where the recommendation usually is), ``compile-frozen`` then ``compile`` last
at each thread count (their first call compiles). Everything here is a pure function of numbers; the clock is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dnnmeter.deployment.configs import BASELINE_KIND, Config
from dnnmeter.measure.timing import TimingSettings

BUDGET_REASON = "budget"  # the start of every reason a configuration was skipped for lack of time
SCREEN_IMAGES = 64
CONFIDENCE = 0.95
# A quarter of the budget is timing, shared by the configurations (0.2 to 2 s each); building,
# the screens and the full comparison take the rest.
TIMING_SHARE = 0.25
# Kinds measured last at their thread count, in this order: their first call compiles (minutes).
# compile-frozen first: PyTorch's recommended CPU inference path, 1.3-1.5x eager for resnet50 on
# this CPU where plain compile was 0.65-0.82x, so a tight budget should skip plain compile, not it.
LAST = ("compile-frozen", "compile")
# Full comparisons kept for besides the baseline's while screening. Two, not one: the fastest
# candidate is often a reduced precision that passes the 64-image screen and fails on all the
# images (openvino-bfloat16 on resnet50: 100% on the screen, 98.7% on 1000), and with one kept
# the next candidate was left out for the budget, so eager float32 stayed the recommendation.
RESERVE_CANDIDATES = 2
RESERVE_MAX_SHARE = 0.5  # of the whole budget, at most, kept back for them


@dataclass
class Budget:
    """``total_s`` seconds from ``started_s`` on ``clock``."""

    total_s: float
    clock: Callable[[], float] = time.perf_counter
    started_s: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started_s < 0:
            self.started_s = self.clock()

    def left_s(self) -> float:
        return self.total_s - (self.clock() - self.started_s)


def skipped_for_budget(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith(BUDGET_REASON)


def timing_settings(budget_min: float, measurable: int) -> TimingSettings:
    per_config_s = budget_min * 60 * TIMING_SHARE / max(1, measurable)
    return TimingSettings(time_budget_s=min(2.0, max(0.2, per_config_s)), warmup_s=0.1)


def screen_indices(images: int, screen: int) -> list[int]:
    """``screen`` indices spread evenly over ``images`` (all of them when there are no more)."""
    if screen >= images:
        return list(range(images))
    return sorted({int(round(i)) for i in np.linspace(0, images - 1, screen)})


def measure_order(planned: list[Config]) -> list[Config]:
    """The baselines first (most threads first: the accuracy reference), then by threads, most
    first, the kinds in ``LAST`` last at each count (in ``LAST``'s order); otherwise the table's order."""
    rank = {c: i for i, c in enumerate(planned)}
    last = {kind: i for i, kind in enumerate(LAST)}
    return sorted(planned, key=lambda c: (c.kind != BASELINE_KIND, -(c.threads or 0), last.get(c.kind, -1), rank[c]))


def _overhead_s(wall_s: float, phases: dict[str, float]) -> float:
    """The worker's time outside its phases: the interpreter's start, imports."""
    return max(0.0, wall_s - sum(phases.values()))


def full_estimate_s(wall_s: float, phases: dict[str, float], screen: int, images: int,
                    images_per_s: float | None = None, first_call_s: float | None = None) -> float:
    """A full comparison's seconds (start, load, build, prepare, every image), from a screen's.

    The images' time is the screen's per image, or, where the worker measured a throughput,
    ``images`` at that rate plus a first call: a compiled configuration's screen pass includes
    compiling for the accuracy batch, which must not be multiplied by ``images / screen``.
    """
    fixed = _overhead_s(wall_s, phases) + sum(phases.get(k, 0.0) for k in ("load_s", "build_s", "prepare_s"))
    per_image = phases.get("outputs_s", 0.0) * images / max(1, screen)
    if images_per_s:
        per_image = min(per_image, images / images_per_s + (first_call_s or 0.0))
    return fixed + per_image


def screen_estimate_s(walls_s: list[float]) -> float:
    """The next screen's seconds: the median of the screens so far (0 before the first)."""
    return float(np.median(walls_s)) if walls_s else 0.0


def reserve_s(base_full_s: float | None, total_s: float = float("inf"), recheck_s: float = 0.0,
              candidates: int = RESERVE_CANDIDATES) -> float:
    """Kept back while screening: the full comparisons (the baseline's and ``candidates``
    candidates', each estimated by the baseline's own: a candidate is faster per image, but may
    take longer to prepare) and ``recheck_s``, the baselines' second timings; at most
    ``RESERVE_MAX_SHARE`` of the budget: a reserve that left nothing to screen would find no
    candidate to spend it on. The second timings themselves keep back one candidate's comparison,
    not two: every speed-up rests on them, a second candidate is needed only if the first fails."""
    full = 0.0 if base_full_s is None else (1 + candidates) * base_full_s
    return min(full + recheck_s, RESERVE_MAX_SHARE * total_s)


def budget_reason(needed_s: float, left_s: float, what: str) -> str:
    return (f"{BUDGET_REASON}: {what} needs about {needed_s:.0f} s, {max(0.0, left_s):.0f} s of --budget-min "
            "were left; a rerun with a larger --budget-min (same --out) measures it")


def lower_bound(failures: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Clopper-Pearson lower bound on a failure rate seen as ``failures``/``trials``."""
    if failures <= 0 or trials <= 0:
        return 0.0
    from scipy.stats import beta

    return float(beta.ppf(1 - confidence, failures, trials - failures + 1))


def surely_outside(lost: int, gained: int, images: int, share: float) -> bool:
    """Is the true loss surely above ``share``? ``lost``: images the configuration got wrong
    (disagreeing with float32, or newly misclassified); ``gained``: newly right (accuracy only,
    0 for agreement). The bound is the lower bound on ``lost``'s rate minus ``gained``'s rate."""
    if images <= 0:
        return False
    return lower_bound(lost, images) - gained / images > share + 1e-12

