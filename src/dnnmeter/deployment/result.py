"""What ``dnnmeter deploy`` returns: one :class:`ConfigResult` per configuration, and the verdict.

``ConfigResult.to_dict`` has the fields issue 15 lists (plus ``images``, how many images its
agreement was judged on, and ``extra``, where the raw samples, the compile or export time and
notes live); ``DeployResult.to_dict`` likewise (``images``: all the compared images, which the
recommendation is judged on; ``screen_images``: the screen every configuration had).
Units: seconds and bytes. A figure that was not measured is None, and ``reason`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("accepted", "rejected", "failed", "skipped")
# What the worker measures; the rest (status, speed-up, agreement) is decided in the parent.
MEASURED = ("latency_s_median", "latency_s_p10", "latency_s_p90", "first_call_s", "peak_memory_bytes",
            "size_bytes", "throughput_batch_size", "images_per_s_at_throughput_batch")


@dataclass
class ConfigResult:
    name: str
    kind: str
    threads: int | None
    status: str = "skipped"
    reason: str | None = None
    latency_s_median: float | None = None
    latency_s_p10: float | None = None
    latency_s_p90: float | None = None
    speedup: float | None = None
    speedup_low: float | None = None
    speedup_high: float | None = None
    top1_agreement: float | None = None
    logit_mean_abs_error: float | None = None
    logit_max_abs_error: float | None = None
    sqnr_db: float | None = None
    top1: float | None = None
    top1_change: float | None = None
    first_call_s: float | None = None
    peak_memory_bytes: int | None = None
    size_bytes: int | None = None
    throughput_batch_size: int | None = None  # the larger batch the throughput was timed at
    images_per_s_at_throughput_batch: float | None = None
    throughput_unavailable_reason: str | None = None  # why there is no throughput (fixed shape, OOM, ...)
    images: int | None = None  # how many images the agreement figures come from (the screen's, or all)
    samples_s: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # prepare_s, artefact, environment, notes

    @property
    def measured(self) -> bool:
        return self.latency_s_median is not None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["sqnr_db"] == float("inf"):
            out["sqnr_db"] = None  # JSON has no infinity: identical outputs
            out["extra"] = {**out["extra"], "sqnr_note": "outputs identical to the baseline's (infinite SQNR)"}
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ConfigResult:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


@dataclass
class BaselineRecheck:
    """Eager float32 at ``threads`` timed a second time once the screens were done (the machine
    may have drifted between): ``drift`` is the second timing's median over the first's, and both
    timings' samples make every speed-up at that thread count. No second timing: ``drift`` is
    None, and ``reason`` says why (the budget, a failure); those speed-ups rest on one timing."""

    threads: int | None
    drift: float | None = None
    reason: str | None = None


@dataclass
class DeployResult:
    model: str
    device: str
    batch_size: int
    tolerance: float
    tolerance_on: str  # "agreement" (top-1 agreement with the baseline) or "accuracy" (top-1 drop)
    images: int
    images_note: str
    baseline: str
    recommended: str
    recommendation_reason: str
    configs: list[ConfigResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    screen_images: int | None = None  # how many images every configuration was first compared on
    budget_s: float | None = None  # --budget-min in seconds
    search_s: float | None = None  # how long the search took, choosing the images included
    # one per thread count where a configuration besides the baseline was timed
    rechecks: list[BaselineRecheck] = field(default_factory=list)

    def config(self, name: str) -> ConfigResult:
        found = [c for c in self.configs if c.name == name]
        if not found:
            raise KeyError(name)
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["configs"] = [c.to_dict() for c in self.configs]
        return out
