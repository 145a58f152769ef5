"""The study's data as typed records: what results.json holds and the report reads.

:class:`StudyData` is the whole file: the models study (one :class:`ModelRecord` per model,
the :class:`RunRecord` of every benchmark configuration in the store) and the
modifications study (:class:`ModificationsData`). Each record serialises through
:mod:`dnnmeter._serial`, so ``StudyData.from_dict(json.load(f))`` reads a results.json back,
ignoring keys a later version added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from dnnmeter._serial import Record
from dnnmeter.analysis.result import AnalysisSummary
from dnnmeter.hardware.records import HardwareRecord
from dnnmeter.hardware.roofline import RooflineRecord
from dnnmeter.measure.result import BenchResult
from dnnmeter.results.settings import ModificationsSettings, StudySettings

__all__ = ["AccuracyRecord", "BenchPoint", "BenchedRoofline", "CompressionData", "ModelRecord",
           "ModificationsData", "RunRecord", "StudyData"]

SCHEMA = 1  # results.json's layout


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


@dataclass
class RunRecord(Record):
    """One benchmark configuration (machine, device, dtype, threads, time budget) and the time
    per image of each model at each batch size (keys are batch sizes as text)."""

    machine: str
    device: str | None
    dtype: str | None
    threads: int | None
    time_budget_s: float | None
    cpu_model: str | None
    first_utc: str
    latency_s_per_image: dict[str, dict[str, float | None]] = field(default_factory=dict)
    last_utc: str | None = None


@dataclass
class CompressionData(Record):
    """The quantization and pruning sweeps of the first variant, trained (points as dicts)."""

    variant: str
    quantization: list[dict[str, Any]] = field(default_factory=list)
    pruning: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModificationsData(Record):
    """The last modifications study: its settings (None when none ran), one dict per trained
    variant (a ``TrainResult.to_dict()`` with the variant's cost) and the compression sweeps."""

    settings: ModificationsSettings | None = None
    variants: list[dict[str, Any]] = field(default_factory=list)
    compression: CompressionData | None = None

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("compression",)


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
    schema: int = SCHEMA
