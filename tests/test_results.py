"""Results between the store and the report: the typed StudyData, and results.json unchanged.

``fixtures/study_store.json.gz`` is the store of a small models study (two test networks and
resnet18) and a one-epoch modifications study, dumped row by row; ``study_results.json.gz``
is the results.json the dict-based collection of dnnmeter 0.x wrote from it. The rows carry
the machine name "fixture-host", so the keys are computed under that name.
"""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import pytest

from dnnmeter.results import StudyData, collect, write_outputs
from dnnmeter.store import Store
from store_v1 import write_v1_store

FIXTURES = Path(__file__).parent / "fixtures"
VOLATILE = ("created_utc", "dnnmeter_version")  # when and by which version, not what
# Fields a record gained after the golden file was written: their keys may appear in the new
# results.json (at their defaults). Everything else must be exactly as the golden file has it.
ADDED_SINCE: set[str] = {
    # analysis (issues 11 and 13): totals incomplete?, bytes at each dtype, the inputs, train mode
    "complete", "activation_bytes", "inputs", "mode", "backward_macs", "backward_elementwise_flops",
    "training_memory",
    # bench (issue 11): why a point has no stability verdict
    "stable_unknown_reason",
    # study --deploy (issue 15): one record per deployed model (an empty list when not asked for);
    # the settings' "deploy" is written only when asked for, so it is not listed here
    "deployment",
    # issue 14: the study's latency predictions (null for a study that did not predict) and its switch
    "predictions", "predict",
    # the C heap the study's bench points were asked for (each point also records its own; points
    # stored before there was a choice read as glibc)
    "heap",
}


def _load(name: str) -> dict:
    with gzip.open(FIXTURES / name, "rt") as f:
        return json.load(f)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    # The fixture is a schema-1 store (dnnmeter 0.1): opening it upgrades it in place, so every
    # test below also checks that an upgraded store collects exactly what it held.
    monkeypatch.setattr(socket, "gethostname", lambda: "fixture-host")
    write_v1_store(tmp_path / "results.sqlite")
    with Store(tmp_path / "results.sqlite") as s:
        yield s


def _stable(study: dict) -> dict:
    return {k: v for k, v in study.items() if k not in VOLATILE}


def _holds(new: object, old: object, where: str = "") -> None:
    """``new`` is ``old``: nothing lost, changed or added, except keys in :data:`ADDED_SINCE`."""
    if old is None and new is not None and where.endswith(".accuracy"):
        # Issue 11: a model with no accuracy figure now says why (a null figure with its reason).
        assert isinstance(new, dict) and new["top1"] is None and new["label"] is None and new["reason"], where
        return
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        extra = set(new) - set(old) - ADDED_SINCE
        assert not extra, f"{where}: keys not in the golden file: {sorted(extra)}"
        for key, value in old.items():
            assert key in new, f"{where}.{key} is missing"
            _holds(new[key], value, f"{where}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old)):
            _holds(a, b, f"{where}[{i}]")
    else:
        assert new == old, f"{where}: {new!r} != {old!r}"


def test_results_json_is_what_the_dict_based_collection_wrote(store: Store, tmp_path: Path) -> None:
    json_path, csv_path = write_outputs(tmp_path, collect(store))
    new = json.loads(json_path.read_text())
    old = _load("study_results.json.gz")
    assert [m["model"] for m in new["models"]] == ["bench_models:tiny", "bench_models:oom_at_4", "resnet18"]
    assert len(new["modifications"]["variants"]) == 3 and new["modifications"]["compression"]["quantization"]
    _holds(_stable(new), _stable(old))
    assert csv_path.read_text().count("\n") == 1 + 6


def test_study_data_round_trips_through_the_codec(store: Store) -> None:
    data = collect(store)
    assert data.models[2].accuracy is not None and data.models[2].accuracy.label == "published"
    assert data.models[0].hardware is not None and data.models[0].hardware.totals.macs == data.models[0].analysis.macs
    text = json.dumps(data.to_dict())
    again = StudyData.from_dict(json.loads(text))
    assert again == data
    assert json.dumps(again.to_dict()) == text


def test_a_results_json_from_another_version_still_reads() -> None:
    old = _load("study_results.json.gz")
    old["added_by_a_later_version"] = {"x": 1}
    old["models"][0]["bench"][0]["new_figure_s"] = 0.5
    data = StudyData.from_dict(old)
    assert data.models[0].bench[0].batch_size == 1
    # The later version's keys are dropped; this version's new fields (ADDED_SINCE) take their defaults.
    _holds(_stable(data.to_dict()), _stable(_load("study_results.json.gz")))


def test_the_stored_analysis_summary_keeps_every_field_of_an_analysis() -> None:
    # A field added to Analysis must be added to AnalysisSummary too, or the study drops it
    # between the store and results.json (unknown keys are ignored on the way back).
    from dataclasses import fields

    from dnnmeter.analysis.result import Analysis, AnalysisSummary

    summary = {f.name for f in fields(AnalysisSummary)}
    assert {f.name for f in fields(Analysis)} <= summary
    assert set(Analysis._derived) <= summary | set(AnalysisSummary._derived)
