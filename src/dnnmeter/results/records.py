"""The study's data as typed records: what results.json holds and the report reads.

:class:`StudyData` is the whole file: the models study (one :class:`ModelRecord` per model,
the :class:`RunRecord` of every benchmark configuration in the store), the
modifications study (:class:`ModificationsData`) and the latency predictions
(:class:`PredictionsData`). Each record serialises through
:mod:`dnnmeter._serial`, so ``StudyData.from_dict(json.load(f))`` reads a results.json back,
ignoring keys a later version added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dnnmeter._serial import ItemAccess, Record
from dnnmeter.analysis.result import AnalysisSummary
from dnnmeter.deployment.result import BaselineRecheck, ConfigResult
from dnnmeter.hardware.records import HardwareRecord
from dnnmeter.hardware.roofline import RooflineRecord
from dnnmeter.measure.result import BenchResult
from dnnmeter.transforms.prune import PrunePoint
from dnnmeter.transforms.quantize import QuantPoint
from dnnmeter.results.settings import ModificationsSettings, StudySettings
from dnnmeter.training.result import TrainResult

__all__ = ["DEPLOY_JUDGED", "AccuracyRecord", "BenchPoint", "BenchedRoofline", "CalibrationRecord", "CompressionData",
           "DeployConfigRecord", "DeployRecheckRecord", "DeployRecord", "ModelRecord", "ModificationsData", "PredictedPoint",
           "PredictionsData", "RunRecord", "StudyData", "VariantRecord", "batch_sizes", "finite"]

SCHEMA = 1  # results.json's layout


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, text, bool): stored
    figures can be NaN where a measurement failed half-way, and none of those may be drawn."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass
class AccuracyRecord(Record):
    """Top-1/top-5 as fractions; ``label`` is "published" (with the weights' source) or
    "measured" (``n`` images evaluated, ``skipped`` unreadable ones), or None with the
    ``reason`` there is no figure."""

    top1: float | None
    top5: float | None
    label: str | None
    source: str | None = None
    weights: str | None = None
    n: int | None = None
    skipped: int | None = None
    reason: str | None = None

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("n", "skipped", "reason", "source", "weights")


@dataclass
class BenchPoint(BenchResult):
    """A stored bench point: its environment is kept once per study (``StudyData.environment``)."""

    created_utc: str | None = None

    _omitted: ClassVar[tuple[str, ...]] = ("environment",)


@dataclass(frozen=True)
class BenchedRoofline(RooflineRecord):
    """The roofline against the model's bench latency at batch size 1 (not a second run)."""

    latency_source: str | None = None


@dataclass
class ModelRecord(Record):
    """Everything the store holds on one model; a part never measured is None (or empty)."""

    model: str
    family: str = ""
    source: str = ""
    analysis: AnalysisSummary | None = None
    accuracy: AccuracyRecord | None = None  # measured where it was, else published
    bench: list[BenchPoint] = field(default_factory=list)  # by batch size
    hardware: HardwareRecord | None = None
    roofline: BenchedRoofline | None = None

    def point(self, batch_size: int) -> BenchPoint | None:
        """The bench point at ``batch_size`` whatever its status, or None."""
        return next((b for b in self.bench if b.batch_size == batch_size), None)

    def ok_point(self, batch_size: int) -> BenchPoint | None:
        """The bench point at ``batch_size`` if it ran (status ``ok``), else None."""
        p = self.point(batch_size)
        return p if p is not None and p.status == "ok" else None

    def measured(self, batch_size: int, name: str) -> float | None:
        """The finite value of the bench field ``name`` at ``batch_size``; None when the point
        is missing, failed, or has no such figure."""
        p = self.ok_point(batch_size)
        return None if p is None else finite(getattr(p, name))

    @property
    def top1(self) -> float | None:
        return None if self.accuracy is None else finite(self.accuracy.top1)

    @property
    def accuracy_label(self) -> str | None:
        return self.accuracy.label or None if self.accuracy is not None else None

    def analysed(self, name: str) -> float | None:
        """The finite value of the analysis field ``name`` (a whole batch's), or None."""
        return None if self.analysis is None else finite(getattr(self.analysis, name))

    @property
    def macs_per_image(self) -> float | None:
        """MACs of one image: the analysis counts a whole batch (normally of 1)."""
        macs = self.analysed("macs")
        return None if macs is None else macs / (self.analysed("batch_size") or 1.0)

    @property
    def power_unavailable_reason(self) -> str:
        """Why the model has no power reading: the meter's own reason where one was stored."""
        return next((p.power_unavailable_reason for p in self.bench if p.power_unavailable_reason),
                    "no power readings")


def batch_sizes(models: Sequence[ModelRecord]) -> list[int]:
    """Every batch size with at least one ``ok`` point, ascending."""
    return sorted({p.batch_size for m in models for p in m.bench if p.status == "ok"})


@dataclass
class RunRecord(Record):
    """One benchmark configuration (machine, device, dtype, threads, time budget, C heap) and the
    time per image of each model at each batch size (keys are batch sizes as text)."""

    machine: str
    device: str | None
    dtype: str | None
    threads: int | None
    time_budget_s: float | None
    cpu_model: str | None
    first_utc: str
    latency_s_per_image: dict[str, dict[str, float | None]] = field(default_factory=dict)
    last_utc: str | None = None
    machine_type: str | None = None  # a fleet's run (dnnmeter.fleet): the type of machine, over its nodes
    heap: str | None = None  # dnnmeter.measure.heap; points stored before it was recorded are glibc's

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("machine_type",)  # results.json as before otherwise


@dataclass
class CompressionData(Record):
    """The quantization and pruning sweeps of the first variant, trained."""

    variant: str
    quantization: list[QuantPoint] = field(default_factory=list)
    pruning: list[PrunePoint] = field(default_factory=list)


@dataclass
class VariantRecord(ItemAccess, TrainResult):
    """One trained variant of the modifications study: its :class:`TrainResult` (the
    environment is kept once per store row, not here) and what it costs: ``params``, ``macs``,
    ``flops`` and ``activations`` at ``input_size``, and the median ``time_per_epoch_s``."""

    environment: dict[str, Any] = field(default_factory=dict)
    variant: str = ""
    base_model: str = ""
    ops: list[str] = field(default_factory=list)
    nproc: int = 1
    strategy: str | None = None
    params: int | None = None
    macs: int | None = None
    flops: int | None = None
    activations: int | None = None
    input_size: list[int] = field(default_factory=list)
    time_per_epoch_s: float | None = None

    _omitted: ClassVar[tuple[str, ...]] = ("module", "environment")


@dataclass
class ModificationsData(Record):
    """The last modifications study: its settings (None when none ran), one
    :class:`VariantRecord` per trained variant and the compression sweeps."""

    settings: ModificationsSettings | None = None
    variants: list[VariantRecord] = field(default_factory=list)
    compression: CompressionData | None = None

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("compression",)


# What the deploy search decides in the parent (needs every configuration's logits), as a
# study's verdict row keeps it; the measured figures stay in the search's own ``deploy`` rows.
DEPLOY_JUDGED = ("name", "kind", "threads", "status", "reason", "speedup", "speedup_low", "speedup_high",
                 "top1_agreement", "logit_mean_abs_error", "logit_max_abs_error", "sqnr_db", "top1", "top1_change",
                 "images")


@dataclass
class DeployConfigRecord(Record, ConfigResult):
    """One configuration of a deploy search as results.json keeps it: every figure of
    ``dnnmeter deploy --format json``'s configuration but the raw samples and ``extra``.
    ``sqnr_db`` is None where the outputs were identical (infinite) or not compared."""

    _omitted: ClassVar[tuple[str, ...]] = ("samples_s", "extra")


@dataclass
class DeployRecheckRecord(Record, BaselineRecheck):
    """The baseline's second timing at one thread count, or why there was none."""


@dataclass
class DeployRecord(Record):
    """``dnnmeter study --deploy`` for one model: the judged configurations, the baseline and
    the recommendation with its reason; or, where the search did not finish, ``error``."""

    model: str
    device: str | None = None
    batch_size: int | None = None
    tolerance: float | None = None  # a fraction
    tolerance_on: str | None = None  # "agreement" or "accuracy"
    images: int | None = None
    images_note: str | None = None
    baseline: str | None = None
    recommended: str | None = None
    recommendation_reason: str | None = None
    configs: list[DeployConfigRecord] = field(default_factory=list)
    error: str | None = None
    # empty in a study stored before the second timing was recorded
    rechecks: list[DeployRecheckRecord] = field(default_factory=list)

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("error",)

    def config(self, name: str | None) -> DeployConfigRecord | None:
        return next((c for c in self.configs if c.name == name), None)


@dataclass
class CalibrationRecord(Record):
    """The latency calibration a study predicted with (the fitted predictor itself is the JSON
    at ``path``). ``origin`` is "calibrate" (found where ``dnnmeter calibrate`` writes) or
    "study" (the short one the study made: ``per_group`` shapes per kernel group within
    ``budget_s``). ``networks`` are the networks measured whole to calibrate: no model among
    them is scored. The FLOPs line (``t = flops_line_s_per_flop x FLOPs``) is fitted on those
    networks' measurements, as the predictor's overhead is."""

    key: str
    created_utc: str | None = None
    device: str | None = None
    threads: int | None = None
    dtype: str | None = None
    origin: str = "calibrate"
    path: str | None = None
    per_group: int | None = None
    budget_s: float | None = None
    kernels: int | None = None
    networks: list[str] = field(default_factory=list)
    elapsed_s: float | None = None  # when the study made it: how long that took
    flops_line_s_per_flop: float | None = None
    flops_line_reason: str | None = None  # why there is no FLOPs line
    heap: str | None = None  # dnnmeter.measure.heap mode its kernels were timed with; None: stored before it was kept

    @property
    def short(self) -> bool:
        return self.origin == "study"


@dataclass
class PredictedPoint(Record):
    """One model at one batch size, predicted on this machine without running it (seconds per
    batch): the interval, and for the study's models what it is compared with: the bench
    median at that batch size (``measured_latency_s``) and the FLOPs line's figure."""

    model: str
    batch_size: int
    latency_s: float | None = None
    latency_s_low: float | None = None
    latency_s_high: float | None = None
    measured_latency_s: float | None = None
    flops_line_latency_s: float | None = None
    published_top1: float | None = None  # fraction, from the zoo's published metadata
    family: str = ""
    used_to_calibrate: bool = False  # never scored
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("error",)


@dataclass
class PredictionsData(Record):
    """Predicted latency: the study's models at its batch sizes (``study``, joined with their
    measurements) and the torchvision zoo at batch size 1 (``zoo``). ``reason`` says why
    there are none (no calibration could be made); ``notes`` what else the reader must know."""

    calibration: CalibrationRecord | None = None
    study: list[PredictedPoint] = field(default_factory=list)
    zoo: list[PredictedPoint] = field(default_factory=list)
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class StudyData(Record):
    """results.json: the models study and the modifications study of one store."""

    dnnmeter_version: str
    created_utc: str
    settings: StudySettings | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    models: list[ModelRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    modifications: ModificationsData = field(default_factory=ModificationsData)
    deployment: list[DeployRecord] = field(default_factory=list)  # study --deploy, one per model
    predictions: PredictionsData | None = None  # None: the study did not predict (--no-predict, or before issue 14)
    schema: int = SCHEMA
