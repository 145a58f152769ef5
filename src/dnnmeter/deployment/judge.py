"""Judge measured configurations against the baseline and pick the one to recommend.

- The reference for accuracy is eager float32 at the most threads measured (``baseline``).
- Speed-up is against eager float32 at the *same* thread count, so that more threads alone
  never count as a configuration's speed-up: the samples of the baseline's own process
  against the configuration's, each timed alone in its process.
- A configuration loses ``tolerance`` or less of top-1 agreement with the baseline (or of
  top-1 accuracy, ``tolerance_on="accuracy"``): ``accepted``; more: ``rejected``.
- The recommendation is the fastest accepted configuration (lowest median latency) whose
  speed-up's 95% interval lies above 1 and which is faster than the baseline itself, among
  those compared on *every* image (``images == full_images``): one judged on the screen alone
  (budget.py) never is. Otherwise the baseline, and the reason says why.
- On the screen a configuration is ``rejected`` for good only when its loss is surely above
  the tolerance (budget.surely_outside, ``extra.screen_rejected``); the others keep the
  screen's status and a reason that says it was the screen's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnnmeter.deployment.budget import surely_outside
from dnnmeter.deployment.configs import BASELINE_KIND
from dnnmeter.deployment.result import ConfigResult
from dnnmeter.deployment.stats import agreement, speedup_interval
from dnnmeter.errors import DnnmeterError


class DeployError(DnnmeterError):
    """The search cannot compare anything: the eager float32 baseline itself failed."""


@dataclass(frozen=True)
class Verdict:
    baseline: str
    recommended: str
    reason: str


def _baselines(results: list[ConfigResult]) -> dict[int | None, ConfigResult]:
    return {r.threads: r for r in results if r.kind == BASELINE_KIND and r.measured}


def _main_baseline(results: list[ConfigResult]) -> ConfigResult:
    found = _baselines(results)
    if not found:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in results if r.kind == BASELINE_KIND)
        raise DeployError(f"eager float32 (the baseline) could not be measured ({reasons}); check that "
                          "`dnnmeter bench MODEL` runs")
    return found[max(found, key=lambda t: t or 0)]


def _score(result: ConfigResult, reference: np.ndarray, output: np.ndarray, labels: np.ndarray | None) -> None:
    found = agreement(reference, output, labels)
    result.top1_agreement, result.sqnr_db = found.top1_agreement, found.sqnr_db
    result.logit_mean_abs_error, result.logit_max_abs_error = found.logit_mean_abs_error, found.logit_max_abs_error
    result.top1, result.images = found.top1, found.images
    base_top1 = None if labels is None else float((reference.argmax(axis=1) == labels).mean())
    result.top1_change = None if found.top1 is None or base_top1 is None else found.top1 - base_top1


def _speed(result: ConfigResult, base: ConfigResult | None) -> None:
    """Against eager float32's own process at this thread count. Workers once also timed eager
    float32 in turns with their configuration (``extra.baseline_samples_s`` in older stores);
    those samples are ignored: beside ONNX Runtime's or inductor's threads or a channels_last
    copy eager float32 ran 1.1-1.7x slower than in its own process, inflating every speed-up."""
    if base is None or not base.samples_s or not result.samples_s:
        result.extra["speedup_note"] = "no eager float32 measured at this thread count"
        return
    again = [float(v) for v in base.extra.get("recheck_samples_s") or []]
    result.extra["speedup_against"] = "eager float32's own process at this thread count" + (
        ", timed before and after the screens" if again else "")
    own = result.samples_s + again if result is base else result.samples_s  # the baseline against itself: 1x
    found = speedup_interval(base.samples_s + again, own)
    result.speedup, result.speedup_low, result.speedup_high = found.ratio, found.low, found.high


def _losses(reference: np.ndarray, output: np.ndarray, labels: np.ndarray | None, on: str) -> tuple[int, int]:
    """Images lost and gained: disagreeing with float32 (agreement), or newly wrong and newly
    right against the labels (accuracy)."""
    ref, out = reference.argmax(axis=1), output.argmax(axis=1)
    if on != "accuracy" or labels is None:
        return int((ref != out).sum()), 0
    was, now = ref == labels, out == labels
    return int((was & ~now).sum()), int((~was & now).sum())


def _status(result: ConfigResult, share: float, on: str, screen: bool, surely_out: bool) -> None:
    if result.kind == BASELINE_KIND:
        result.status, result.reason = "accepted", "the baseline"
        return
    if on == "accuracy":
        lost = -(result.top1_change or 0.0)
        what = "top-1 accuracy drop"
    else:
        lost = 1.0 - (result.top1_agreement or 0.0)
        what = "top-1 disagreement with float32"
    ok = lost <= share + 1e-12
    result.status = "accepted" if ok else "rejected"
    reason = f"{what} {lost:.2%} {'within' if ok else 'above'} the tolerance {share:.2%}"
    if screen:  # the screen's verdict only, unless it is sure
        sure = "; surely above it (95% lower bound): not compared further" if surely_out else ""
        reason = f"on the {result.images}-image screen: {reason}{sure}"
    result.reason = reason
    result.extra["screen_rejected"] = bool(screen and surely_out)


def score(result: ConfigResult, reference: np.ndarray, output: np.ndarray, labels: np.ndarray | None, share: float,
          on: str, full_images: int) -> None:
    """``result``'s agreement and status from its ``output`` against ``reference``; a comparison
    on fewer than ``full_images`` images is the screen's."""
    _score(result, reference, output, labels)
    screen = output.shape[0] < full_images
    lost, gained = _losses(reference, output, labels, on)
    _status(result, share, on, screen, screen and surely_outside(lost, gained, output.shape[0], share))


def judge(results: list[ConfigResult], outputs: dict[str, np.ndarray], labels: object, share: float,
          on: str, full_images: int | None = None) -> ConfigResult:
    """Fill each measured result's agreement, speed-up and status against the baseline's
    ``outputs``; return the baseline (the accuracy reference)."""
    base = _main_baseline(results)
    reference = outputs[base.name]
    full = full_images or reference.shape[0]
    label_array = None if labels is None else np.asarray(labels)
    per_threads = _baselines(results)
    for result in results:
        if not result.measured or result.name not in outputs:
            if result.status == "measured":  # stored figures without their logits
                result.status, result.reason = "failed", "its outputs are missing; rerun to measure again"
            continue
        score(result, reference, outputs[result.name], label_array, share, on, full)
        _speed(result, per_threads.get(result.threads))
    return base


def _faster(results: list[ConfigResult], base: ConfigResult) -> list[ConfigResult]:
    assert base.latency_s_median is not None
    return [r for r in results if r.kind != BASELINE_KIND and r.speedup_low is not None and r.speedup_low > 1.0
            and r.latency_s_median is not None and r.latency_s_median < base.latency_s_median]


def candidates(results: list[ConfigResult], base: ConfigResult) -> list[ConfigResult]:
    """What could be recommended once compared on every image, fastest first: surely faster than
    the baseline, and not surely outside the tolerance on the screen."""
    found = [r for r in _faster(results, base) if r.status in ("accepted", "rejected")
             and not r.extra.get("screen_rejected")]
    return sorted(found, key=lambda r: r.latency_s_median or float("inf"))


def recommend(results: list[ConfigResult], base: ConfigResult, full_images: int,
              unconfirmed: str | None = None) -> Verdict:
    """The verdict over judged ``results``; ``unconfirmed`` names the candidates left without a
    full comparison (the budget), where some were."""
    accepted = [r for r in results if r.status == "accepted" and r.kind != BASELINE_KIND]
    sure = [r for r in accepted if r.speedup_low is not None and r.speedup_low > 1.0]
    faster = _faster(accepted, base)
    full = [r for r in faster if r.images is not None and r.images >= full_images]
    not_compared = f"not compared on all {full_images} images: {unconfirmed}" if unconfirmed else ""
    if full:
        best = min(full, key=lambda r: r.latency_s_median or float("inf"))
        threads = "" if best.threads is None else f" at {best.threads} thread(s)"  # None: a GPU's default
        return Verdict(base.name, best.name, f"the fastest accepted configuration: {best.speedup:.2f}x eager "
                       f"float32{threads}, 95% interval {best.speedup_low:.2f}-"
                       f"{best.speedup_high:.2f}, top-1 agreement judged on all {best.images} images"
                       + (f"; faster candidates {not_compared}" if not_compared else ""))
    if faster or not_compared:
        why = f"no candidate was compared on all {full_images} images" + (f" ({unconfirmed})" if unconfirmed else "")
    elif not accepted:
        why = "no other configuration was accepted"
    elif not sure:
        why = "no accepted configuration's speed-up has a 95% interval above 1"
    else:
        why = f"no accepted configuration that is surely faster beats {base.name} itself"
    return Verdict(base.name, base.name, f"{why}: eager float32 stays the recommendation")
