"""Results between the store and the report: typed records (:class:`StudyData`,
:class:`ModelRecord`, ...), the study settings and store keys, collection from the store,
and results.json / results.csv."""

from __future__ import annotations

from dnnmeter.results.collect import collect, collect_modifications, runs
from dnnmeter.results.outputs import CSV_FIELDS, csv_rows, write_outputs
from dnnmeter.results.records import (
    AccuracyRecord,
    BenchedRoofline,
    BenchPoint,
    CalibrationRecord,
    CompressionData,
    ModelRecord,
    ModificationsData,
    PredictedPoint,
    PredictionsData,
    RunRecord,
    StudyData,
)
from dnnmeter.results.settings import ModificationsSettings, StudySettings, Variant

__all__ = ["CSV_FIELDS", "AccuracyRecord", "BenchPoint", "BenchedRoofline", "CalibrationRecord", "CompressionData",
           "ModelRecord", "ModificationsData", "ModificationsSettings", "PredictedPoint", "PredictionsData", "RunRecord",
           "StudyData", "StudySettings", "Variant", "collect", "collect_modifications", "csv_rows", "runs", "write_outputs"]
