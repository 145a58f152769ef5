"""The report's fits on closed-form cases: each expected number is worked out by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dnnmeter.report import fits as F
from dnnmeter.results.records import ModelRecord, StudyData
from made_records import bench_point, model_record

FIXTURE = Path(__file__).parent / "fixtures" / "study_small.json"


def model(name: str, **figures: Any) -> ModelRecord:
    return model_record(name, **figures)


# --- linear_fit ---------------------------------------------------------------------------------


def test_exact_line_gives_slope_intercept_and_r2_of_one() -> None:
    fit = F.linear_fit([1, 2, 3, 4], [3, 5, 7, 9])
    assert (fit.slope, fit.intercept, fit.r2, fit.n, fit.reason) == (2.0, 1.0, 1.0, 4, None)
    assert fit.predict(10) == 21.0


def test_r2_of_a_noisy_line_matches_the_hand_computation() -> None:
    # slope = 3/5, intercept = 1 - 0.6 * 1.5 = 0.1, SS_res = 0.2, SS_tot = 2 -> R^2 = 0.9
    fit = F.linear_fit([0, 1, 2, 3], [0, 1, 1, 2])
    assert fit.slope == pytest.approx(0.6)
    assert fit.intercept == pytest.approx(0.1)
    assert fit.r2 == pytest.approx(0.9)


def test_pairs_with_a_missing_value_are_left_out() -> None:
    fit = F.linear_fit([1, None, 2, 3, float("nan")], [2, 5, 4, 6, 1])
    assert fit.n == 3 and fit.slope == pytest.approx(2.0) and fit.intercept == pytest.approx(0.0)


@pytest.mark.parametrize(("x", "y", "words"), [([], [], "at least 2"), ([1], [1], "have 1"),
                                               ([None, 2], [1, 2], "have 1"), ([2, 2, 2], [1, 2, 3], "equal")])
def test_too_few_points_give_none_with_a_reason(x: list[Any], y: list[Any], words: str) -> None:
    fit = F.linear_fit(x, y)
    assert fit.slope is None and fit.intercept is None and fit.r2 is None
    assert not fit.ok and words in (fit.reason or "")
    assert fit.predict(1.0) is None


# --- the study's relations ----------------------------------------------------------------------


def test_ops_against_time_recovers_the_line_and_skips_failed_points() -> None:
    # time = 2e-11 s per MAC x MACs + 1 ms
    models = [model(f"m{i}", macs=macs, t_s=2e-11 * macs + 1e-3) for i, macs in enumerate((1e9, 2e9, 5e9))]
    models.append(model("broken", macs=3e9, status="oom"))
    result = F.ops_vs_time(models, 1)
    assert result.fit.slope == pytest.approx(2e-11) and result.fit.intercept == pytest.approx(1e-3)
    assert result.fit.r2 == pytest.approx(1.0)
    assert result.models == ("m0", "m1", "m2")


def test_upper_bound_lies_above_every_model_and_touches_one() -> None:
    # Frontier (10, .80), (20, .75), (30, .60): least-squares slope -0.01, intercept 0.91667;
    # (20, .75) lies 0.0333 above that line, so the bound is raised by 0.0333 to 0.95.
    models = [model("a", top1=0.80, t_s=1 / 10), model("b", top1=0.75, t_s=1 / 20),
              model("c", top1=0.60, t_s=1 / 30), model("d", top1=0.55, t_s=1 / 15), model("e", t_s=1 / 40)]
    ub = F.throughput_upper_bound(models, 1)
    assert ub.frontier == ("a", "b", "c")
    assert ub.fit.slope == pytest.approx(-0.01)
    assert ub.lift == pytest.approx(0.75 - (0.91667 - 0.2), abs=1e-4)
    assert ub.fit.intercept == pytest.approx(0.95)
    gaps = [(ub.fit.predict(1 / (m.bench[0].latency_s_per_image or 1.0)) or 0.0) - (m.top1 or 0.0)
            for m in models[:4]]
    assert min(gaps) == pytest.approx(0.0, abs=1e-12) and all(g >= -1e-12 for g in gaps)


def test_upper_bound_with_a_single_frontier_point_says_why() -> None:
    ub = F.throughput_upper_bound([model("a", top1=0.8, t_s=0.01), model("b", top1=0.7, t_s=0.02)], 1)
    assert ub.frontier == ("a",) and ub.fit.slope is None
    assert ub.reason == "the frontier is one model (a): the most accurate is also the fastest, so no slope"


def test_hyperbola_recovers_a_and_b() -> None:
    # top1 = 0.8 - 0.002 / t
    models = [model(f"m{i}", top1=0.8 - 0.002 / t, t_s=t) for i, t in enumerate((0.01, 0.02, 0.04))]
    h = F.accuracy_vs_time(models, 1)
    assert h.a == pytest.approx(0.8) and h.b == pytest.approx(0.002) and h.r2 == pytest.approx(1.0)
    assert h.predict(0.004) == pytest.approx(0.3)


def test_accuracy_per_million_parameters() -> None:
    rows = F.accuracy_per_param([model("a", top1=0.7, params=7e6), model("b", params=1e6),
                                 model("c", top1=0.5)])
    assert rows[0].top1_per_mparam == pytest.approx(0.1)
    assert rows[1].top1_per_mparam is None and rows[1].reason == "no top-1 accuracy"
    assert rows[2].reason == "no parameter count"


def test_memory_against_parameters_recovers_floor_and_slope() -> None:
    # The paper's board: 200 MB + 1.30 x weights
    models = [model(f"m{i}", weights=w, mem=200e6 + 1.3 * w) for i, w in enumerate((10e6, 100e6, 500e6))]
    fit = F.memory_vs_params(models, 1)
    assert fit.floor_bytes == pytest.approx(200e6) and fit.slope == pytest.approx(1.3)


def test_power_series_mean_or_the_meters_reason() -> None:
    metered = model("a", t_s=0.01, power_w=30.0)
    metered.bench.append(bench_point(2, t_s=0.01, power_w=40.0))
    unmetered = model("b", t_s=0.01, power_w=None, power_unavailable_reason="no NVML device")
    a, b = F.power_vs_batch([metered, unmetered])
    assert (a.batch_sizes, a.power_w, a.mean_w, a.reason) == ((1, 2), (30.0, 40.0), 35.0, None)
    assert b.mean_w is None and b.reason == "no NVML device"


# --- Pareto front and budgets -------------------------------------------------------------------

HAND_SET = [
    model("d", top1=0.60, t_s=0.005), model("a", top1=0.70, t_s=0.010), model("e", top1=0.65, t_s=0.012),
    model("b", top1=0.80, t_s=0.020), model("c", top1=0.75, t_s=0.030), model("f", t_s=0.001),
    model("g", top1=0.90, status="oom"),
]


def test_pareto_front_on_a_hand_made_set() -> None:
    front = F.pareto_front(HAND_SET, 1)
    assert [p.model for p in front.members] == ["d", "a", "b"]
    assert set(front.dominated) == {"e", "c"}
    assert front.dominated["c"].startswith("b ")
    assert front.missing == {"f": "no top-1 accuracy", "g": "batch size 1: oom (RuntimeError: x)"}


def test_equal_models_are_both_on_the_front() -> None:
    front = F.pareto_front([model("x", top1=0.7, t_s=0.01), model("y", top1=0.7, t_s=0.01)], 1)
    assert [p.model for p in front.members] == ["x", "y"]


def test_best_within_picks_the_most_accurate_that_fits_and_explains_the_rest() -> None:
    sized = [copy.deepcopy(m) for m in HAND_SET]
    for m, mb in zip(sized, (50, 80, 60, 900, 70, 10, 10)):
        m.bench[0].peak_memory_bytes = int(mb * 1e6)
    choice = F.best_within(sized, max_latency_ms=25, max_memory_mb=100)
    assert choice.model == "a" and choice.top1 == 0.70 and choice.latency_s == pytest.approx(0.010)
    why = choice.not_chosen
    assert why["b"] == "memory 900 MB > 100 MB"
    assert why["c"] == "latency 30 ms > 25 ms"
    assert why["d"].startswith("fits, but less accurate (60.00% against 70.00%)")
    assert why["f"] == "no top-1 accuracy" and why["g"].startswith("batch size 1: oom")
    assert set(why) == {"b", "c", "d", "e", "f", "g"}


def test_best_within_an_energy_budget_without_a_meter_excludes_with_the_reason() -> None:
    m = model("a", top1=0.7, t_s=0.01, energy_j_per_image=None, power_unavailable_reason="no RAPL domains")
    choice = F.best_within([m], max_energy_j=1.0)
    assert choice.model is None and choice.reason == "no model fits the budget"
    assert choice.not_chosen == {"a": "energy not measured (no RAPL domains)"}


# --- missing data anywhere ----------------------------------------------------------------------


def test_a_model_with_nothing_measured_never_raises() -> None:
    empty = ModelRecord("ghost")
    assert F.ops_vs_time([empty], 1).fit.reason
    assert F.throughput_upper_bound([empty]).reason
    assert F.accuracy_vs_time([empty]).reason
    assert F.memory_vs_params([empty]).reason
    assert F.accuracy_per_param([empty])[0].reason
    assert F.power_vs_batch([empty])[0].reason == "no power readings"
    assert F.pareto_front([empty]).reason
    assert F.best_within([empty], max_latency_ms=10).not_chosen == {"ghost": "no top-1 accuracy"}
    fits = F.compute_fits(StudyData("0", "now", models=[empty]))
    assert fits.choice is None and fits.ops_time[0].reason


def test_fixture_fits_and_budgets_from_settings() -> None:
    study = json.loads(FIXTURE.read_text())
    fits = F.compute_fits(study)
    assert [f.batch_size for f in fits.ops_time] == [1, 2, 4]
    assert all(f.fit.r2 is not None and f.fit.r2 > 0.95 for f in fits.ops_time)
    assert "vgg16" not in fits.ops_time[2].models  # its batch-4 point ran out of memory
    assert fits.choice is None
    study["settings"]["max_latency_ms"] = 100
    choice = F.compute_fits(study).choice
    assert choice is not None and choice.model == "mobilenet_v2"
    assert choice.not_chosen["resnet50"] == "latency 155 ms > 100 ms"
