"""The study's latency predictions (issue 14): the step, its records, the scores and the report section.

The calibrations here are real fits of real kernel analyses, timed by a fake timer (seconds
from the kernel's MACs), so nothing is timed and the tests stay fast; the zoo is cut to two
models.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from dnnmeter import prediction
from dnnmeter.analysis import LayerCost
from dnnmeter.prediction import calib_models, calibrate
from dnnmeter.prediction.baseline import flops_line, per_flop_s
from dnnmeter.report import fits as F
from dnnmeter.report.prediction_scores import FrontPoint, agreement, predicted_front, scored
from dnnmeter.report.sections import Page
from dnnmeter.report.sections import prediction as section
from dnnmeter.results.predictions import PREDICTION_META_KEY, collect_predictions
from dnnmeter.results.records import CalibrationRecord, PredictedPoint, PredictionsData, StudyData
from dnnmeter.results.settings import StudySettings
from dnnmeter.store import Store
from dnnmeter.studies import prediction_step
from made_records import model_record

ZOO = ("squeezenet1_1", "mobilenet_v3_small")


def fake_timer(kernel: Any, layers: list[LayerCost]) -> float:
    return 2e-5 + sum(layer.macs for layer in layers) * 1e-10 + sum(layer.elementwise_flops for layer in layers) * 1e-10


@pytest.fixture
def cheap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """No user calibration, a tiny and untimed short calibration, a two-model zoo; the list
    records each calibration the step makes."""
    made: list[dict[str, Any]] = []

    def fake_calibrate(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return calibrate(*args, **{**kwargs, "per_group": 1, "timer": fake_timer})

    monkeypatch.setenv("DNNMETER_CALIBRATION_DIR", str(tmp_path / "user-calibrations"))
    monkeypatch.setattr(prediction, "calibrate", fake_calibrate)
    monkeypatch.setattr(prediction_step, "ZOO", ZOO)
    return made


def _settings(out: Path, **kw: Any) -> StudySettings:
    return StudySettings(models=("tiny_alexnet",), batch_sizes=(1, 2), out=str(out), threads=1, **kw)


def test_the_step_predicts_into_the_store_and_a_rerun_adds_nothing(cheap: list, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with Store(tmp_path / "results.sqlite") as store:
        assert prediction_step.predict_step(store, settings) == []
        rows = list(store.rows("prediction"))
        # the calibration, tiny_alexnet at batch 1 and 2, and the two zoo models at batch 1
        assert len(rows) == 1 + 2 + 2 and len(cheap) == 1
        assert cheap[0]["per_group"] == prediction_step.SHORT_PER_GROUP
        assert cheap[0]["budget_s"] == prediction_step.SHORT_BUDGET_S
        assert (tmp_path / "calibration").is_dir()  # the short one lives in the study's folder
        assert prediction_step.predict_step(store, settings) == []
        assert len(list(store.rows("prediction"))) == 5 and len(cheap) == 1  # nothing redone
        tiny = model_record("tiny_alexnet", t_s=0.002)
        tiny.analysis.flops = 2_000_000  # type: ignore[union-attr]
        data = collect_predictions(store, [tiny])
    assert data is not None and data.reason is None and data.calibration is not None
    c = data.calibration
    assert c.short and c.origin == "study" and c.networks == sorted(calib_models.MODELS)
    assert c.flops_line_s_per_flop is not None and c.flops_line_s_per_flop > 0
    assert [(p.model, p.batch_size) for p in data.study] == [("tiny_alexnet", 1), ("tiny_alexnet", 2)]
    assert [p.model for p in data.zoo] == list(ZOO)
    first = data.study[0]
    assert first.measured_latency_s == pytest.approx(0.002) and data.study[1].measured_latency_s is None
    assert first.flops_line_latency_s == pytest.approx(c.flops_line_s_per_flop * 2_000_000)
    assert first.latency_s_low <= first.latency_s <= first.latency_s_high  # type: ignore[operator]
    assert not any(p.used_to_calibrate for p in data.study + data.zoo)
    assert all(p.published_top1 for p in data.zoo)


def test_the_users_own_calibration_is_used_when_there_is_one(cheap: list, tmp_path: Path) -> None:
    calibrate(threads=1, per_group=1, timer=fake_timer, out=tmp_path / "user-calibrations")
    with Store(tmp_path / "results.sqlite") as store:
        prediction_step.predict_step(store, _settings(tmp_path))
        data = collect_predictions(store, [])
    assert not cheap and data is not None and data.calibration is not None
    assert data.calibration.origin == "calibrate" and not data.calibration.short
    assert data.calibration.path.startswith(str(tmp_path / "user-calibrations"))  # type: ignore[union-attr]


def test_a_calibration_that_cannot_be_made_is_a_note_not_the_end(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no kernels today")

    monkeypatch.setenv("DNNMETER_CALIBRATION_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(prediction, "calibrate", broken)
    with Store(tmp_path / "results.sqlite") as store:
        notes = prediction_step.predict_step(store, _settings(tmp_path))
        data = collect_predictions(store, [])
    assert len(notes) == 1 and "no kernels today" in notes[0]
    assert data is not None and data.reason is not None and "no kernels today" in data.reason
    assert not data.study and not data.zoo


def test_no_predict_predicts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(prediction, "calibrate", lambda *a, **k: pytest.fail("calibrated under --no-predict"))
    with Store(tmp_path / "results.sqlite") as store:
        assert prediction_step.predict_step(store, _settings(tmp_path, predict=False)) == []
        assert not list(store.rows("prediction"))
        assert json.loads(store.get_meta(PREDICTION_META_KEY) or "{}") == {"skipped": "--no-predict"}
        assert collect_predictions(store, []) is None


# --- records -------------------------------------------------------------------------------------


def _calibration(**kw: Any) -> CalibrationRecord:
    return CalibrationRecord(key="cpu-abc-t1-float32", created_utc="2026-01-01T00:00:00+00:00", device="cpu",
                             threads=1, dtype="float32", origin="study", path="/x/cpu-abc-t1-float32.json",
                             per_group=20, budget_s=120.0, kernels=415, networks=["mobile", "plain_cnn"],
                             elapsed_s=61.0, flops_line_s_per_flop=2e-11, **kw)


def _point(model: str, measured: float | None, predicted: float, batch: int = 1, **kw: Any) -> PredictedPoint:
    return PredictedPoint(model=model, batch_size=batch, latency_s=predicted, latency_s_low=predicted * 0.8,
                          latency_s_high=predicted * 1.3, measured_latency_s=measured,
                          flops_line_latency_s=None if measured is None else measured * 1.5, **kw)


def _predictions() -> PredictionsData:
    study = [_point("resnet18", 0.050, 0.052, family="resnet"), _point("resnet18", 0.100, 0.090, batch=2),
             _point("alexnet", 0.040, 0.030, family="alexnet"),
             _point("plain_cnn", 0.010, 0.010, used_to_calibrate=True), _point("vgg16", None, 0.5)]
    zoo = [_point("alexnet", 0.040, 0.030, published_top1=0.565),
           _point("resnet18", 0.050, 0.052, published_top1=0.698),
           _point("squeezenet1_1", None, 0.010, published_top1=0.581),
           _point("vgg16", None, 0.5, published_top1=0.716),
           PredictedPoint(model="broken", batch_size=1, error="cannot be analysed")]
    return PredictionsData(calibration=_calibration(), study=study, zoo=zoo, notes=["a note"])


def test_prediction_records_round_trip_through_results_json() -> None:
    data = StudyData(dnnmeter_version="0", created_utc="now", predictions=_predictions())
    text = json.dumps(data.to_dict())
    again = StudyData.from_dict(json.loads(text))
    assert again == data and json.dumps(again.to_dict()) == text
    assert "error" not in json.loads(text)["predictions"]["study"][0]  # written only when there is one
    assert StudyData.from_dict({"dnnmeter_version": "0", "created_utc": "now"}).predictions is None


# --- scores --------------------------------------------------------------------------------------


def test_within_band_arithmetic_by_hand() -> None:
    # errors 5%, 15%, 30%, 0%: two within 10%, three within 20%, median (5 + 15) / 2 = 10%;
    # ranks of the predictions 1, 3, 2, 4: Spearman 1 - 6 * 2 / (4 * 15) = 0.8
    a = agreement([1.0, 2.0, 3.0, 4.0], [1.05, 2.3, 2.1, 4.0])
    assert a.n == 4 and a.within_10pct == 0.5 and a.within_20pct == 0.75
    assert a.median_abs_error == pytest.approx(0.10) and a.spearman == pytest.approx(0.8)
    assert a.median_ratio == pytest.approx((1.0 + 1.05) / 2)  # of 1.05, 1.15, 0.7, 1.0
    edge = agreement([1.0, 1.0], [1.1, 0.8])  # exactly 10% and 20% off are within
    assert edge.within_10pct == 0.5 and edge.within_20pct == 1.0 and edge.spearman is None
    assert agreement([], []).n == 0


def test_only_measured_points_not_used_to_calibrate_are_scored() -> None:
    points = _predictions().study
    measured, predicted = scored(points)
    assert measured == [0.050, 0.100, 0.040] and predicted == [0.052, 0.090, 0.030]
    assert scored(points, baseline=True)[1] == pytest.approx([0.075, 0.150, 0.060])


def test_the_predicted_front_by_hand() -> None:
    points = [("a", 1.0, 0.5), ("b", 2.0, 0.6), ("c", 3.0, 0.55), ("d", 2.0, 0.6), ("e", 0.5, 0.4), ("f", 4.0, 0.7),
              ("g", 1.0, 0.45)]
    front = predicted_front(points)
    # c is beaten by b (faster, more accurate), g by a (as fast, more accurate); b and d tie and both stay
    assert [f.model for f in front] == ["e", "a", "b", "d", "f"]
    assert front[0] == FrontPoint("e", 0.5, 0.4) and predicted_front([]) == []


def test_the_flops_line_by_hand(tmp_path: Path) -> None:
    assert per_flop_s([2.0, 4.0], [1.0, 2.0]) == pytest.approx(0.5)
    # relative errors count alike: 1 s per FLOP on one, 3 on the other -> c minimises (c - 1)^2 + (c/3 - 1)^2
    assert per_flop_s([1.0, 1.0], [1.0, 3.0]) == pytest.approx((1 + 1 / 3) / (1 + 1 / 9))
    assert flops_line(tmp_path / "missing.jsonl")[0] is None


# --- the report section --------------------------------------------------------------------------


def _page(tmp_path: Path, predictions: PredictionsData | None) -> Page:
    models = [model_record("resnet18", top1=0.7, macs=1.8e9, t_s=0.05), model_record("alexnet", top1=0.56, macs=7e8,
                                                                                     t_s=0.04)]
    data = StudyData(dnnmeter_version="0", created_utc="now", models=models, predictions=predictions)
    return Page(data, F.compute_fits(data), tmp_path / "figures", tmp_path)


def test_the_section_renders_from_records(tmp_path: Path) -> None:
    text = section.html(_page(tmp_path, _predictions()))
    assert "Predicted against measured" in text and "Predicted Pareto front of the torchvision zoo" in text
    assert "the study's short one" in text and "dnnmeter calibrate --threads 1" in text
    assert "Scored: 3 points of 3 models" in text and "left out: plain_cnn" in text
    assert "1 points without a successful measurement" in text
    assert "<td>67%</td>" in text  # 2 of 3 within 10% (4% and 10% off; alexnet 25%)
    assert "a note" in text and "broken (cannot be analysed)" in text
    for name in ("predicted_vs_measured", "predicted_front"):
        assert (tmp_path / "figures" / f"{name}.png").is_file() and f'id="{name}"' in text
    # alexnet is off the front: squeezenet1_1 is predicted faster and is more accurate
    front = text[text.index("model on the predicted front"):]
    assert [m for m in ("squeezenet1_1", "alexnet", "resnet18", "vgg16") if f">{m}<" in front] == [
        "squeezenet1_1", "resnet18", "vgg16"]


def test_the_section_says_why_there_are_no_predictions(tmp_path: Path) -> None:
    text = section.html(_page(tmp_path, PredictionsData(reason="no kernels today")))
    assert "Latency was not predicted: no kernels today" in text and "<img" not in text
    assert section.html(_page(tmp_path, None)) == ""


def test_a_users_calibration_is_named_without_the_short_caveat(tmp_path: Path) -> None:
    pred = _predictions()
    pred.calibration = _calibration()
    pred.calibration.origin, pred.calibration.per_group = "calibrate", None
    text = section.html(_page(tmp_path, pred))
    assert "made by <code>dnnmeter calibrate</code>" in text and "short one" not in text


# --- the whole study, with a tiny calibration ----------------------------------------------------


@pytest.mark.integration
def test_a_study_predicts_and_its_report_rerenders_without_calibrating(cheap: list, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.studies.models import report, run_study

    out = run_study(StudySettings(models=("tiny_alexnet",), batch_sizes=(1,), out=str(tmp_path), time_budget_s=0.05,
                                  threads=1))
    predictions = json.loads(out.results_json.read_text())["predictions"]
    assert predictions["calibration"]["origin"] == "study" and len(cheap) == 1
    (point,) = predictions["study"]
    assert point["measured_latency_s"] > 0 and point["latency_s"] > 0 and point["flops_line_latency_s"] > 0
    html = out.report_html.read_text()  # type: ignore[union-attr]
    assert "Predicted against measured" in html and "Predicted Pareto front" in html
    monkeypatch.setattr(prediction, "calibrate", lambda *a, **k: pytest.fail("calibrated again"))
    again = report(tmp_path)
    assert json.loads(again.results_json.read_text())["predictions"] == predictions
