"""Hand-made records for tests: a :class:`ModelRecord` with one bench point, built from the few
figures a test cares about (everything else at a harmless default)."""

from __future__ import annotations

from typing import Any

from dnnmeter.analysis.result import AnalysisSummary
from dnnmeter.results.records import AccuracyRecord, BenchPoint, ModelRecord


def bench_point(batch: int = 1, status: str = "ok", t_s: float | None = None, mem: float | None = None,
                **fields: Any) -> BenchPoint:
    """A stored bench point at ``batch`` taking ``t_s`` seconds per image (None: not timed)."""
    return BenchPoint(model="m", device="cpu", batch_size=batch, input_size=(3, 224, 224), dtype="float32",
                      threads=None, status=status, error=None if status == "ok" else "RuntimeError: x",
                      latency_s_median=None if t_s is None else t_s * batch, latency_s_per_image=t_s,
                      images_per_s=None if not t_s else 1.0 / t_s,
                      peak_memory_bytes=mem, **fields)  # type: ignore[arg-type]


def model_record(name: str, top1: float | None = None, macs: float | None = None, t_s: float | None = None,
                 mem: float | None = None, weights: float | None = None, params: float | None = None,
                 status: str = "ok", batch: int = 1, **point: Any) -> ModelRecord:
    """A model with one bench point; a figure left None is missing, as in a partial study."""
    analysis = AnalysisSummary(model=name, input_size=(3, 224, 224), batch_size=1, params=params,  # type: ignore[arg-type]
                               trainable_params=params, macs=macs, flops=None,  # type: ignore[arg-type]
                               elementwise_flops=0, activations=0, weight_bytes=weights)  # type: ignore[arg-type]
    return ModelRecord(model=name, family=name.rstrip("0123456789"), analysis=analysis,
                       accuracy=None if top1 is None else AccuracyRecord(top1, None, "measured"),
                       bench=[bench_point(batch, status, t_s, mem, **point)])
