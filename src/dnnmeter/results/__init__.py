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
    CompressionData,
    ModelRecord,
    ModificationsData,
    RunRecord,
    StudyData,
)
from dnnmeter.results.settings import ModificationsSettings, StudySettings, Variant

__all__ = ["CSV_FIELDS", "AccuracyRecord", "BenchPoint", "BenchedRoofline", "CompressionData", "ModelRecord",
           "ModificationsData", "ModificationsSettings", "RunRecord", "StudyData", "StudySettings", "Variant",
           "collect", "collect_modifications", "csv_rows", "runs", "write_outputs"]
