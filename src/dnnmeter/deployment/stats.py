"""The figures that decide: outputs against the baseline's, and the speed-up's interval.

Speed-up interval: the ratio of medians (baseline median over configuration median), with a
95% percentile bootstrap: both sample lists are resampled with replacement ``rounds`` times
and the 2.5th and 97.5th percentiles of the resampled ratios are the bounds. The samples are
the timer's per-call block means, so the interval covers the timing noise of this run; it
does not cover a change of machine load between runs. A fixed seed makes it repeatable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_ROUNDS = 2000


@dataclass(frozen=True)
class Speedup:
    ratio: float
    low: float
    high: float


def speedup_interval(baseline_s: list[float], config_s: list[float], rounds: int = BOOTSTRAP_ROUNDS,
                     seed: int = 0) -> Speedup:
    """Baseline median over configuration median, with its 95% bootstrap interval."""
    if not baseline_s or not config_s:
        raise ValueError("a speed-up needs samples on both sides")
    base, conf = np.asarray(baseline_s, dtype=float), np.asarray(config_s, dtype=float)
    rng = np.random.default_rng(seed)
    base_medians = np.median(rng.choice(base, (rounds, base.size)), axis=1)
    conf_medians = np.median(rng.choice(conf, (rounds, conf.size)), axis=1)
    ratios = base_medians / conf_medians
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Speedup(float(np.median(base) / np.median(conf)), float(low), float(high))


@dataclass(frozen=True)
class Agreement:
    images: int
    top1_agreement: float
    logit_mean_abs_error: float
    logit_max_abs_error: float
    sqnr_db: float | None  # None where the reference is all zeros (no signal to compare with)
    top1: float | None  # accuracy against labels, None without labels


def agreement(reference: np.ndarray, output: np.ndarray, labels: np.ndarray | None = None) -> Agreement:
    """How ``output`` (images x classes) agrees with ``reference``, the baseline's logits."""
    if reference.shape != output.shape:
        raise ValueError(f"outputs of different shapes: {reference.shape} and {output.shape}")
    ref, out = reference.astype(np.float64), output.astype(np.float64)
    diff = np.abs(ref - out)
    signal, noise = float((ref ** 2).sum()), float(((ref - out) ** 2).sum())
    sqnr = None if signal == 0.0 else (math.inf if noise == 0.0 else 10 * math.log10(signal / noise))
    predicted = out.argmax(axis=1)
    top1 = None if labels is None else float((predicted == labels).mean())
    return Agreement(images=int(ref.shape[0]), top1_agreement=float((predicted == ref.argmax(axis=1)).mean()),
                     logit_mean_abs_error=float(diff.mean()), logit_max_abs_error=float(diff.max()),
                     sqnr_db=sqnr, top1=top1)


def parse_tolerance(text: str | float) -> float:
    """``"1%"`` or ``0.01`` -> 0.01; a fraction in [0, 1]."""
    from dnnmeter.errors import InvalidInputError

    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"bad tolerance {text!r}: give a percentage such as 1% or a fraction such as 0.01")
    return value
