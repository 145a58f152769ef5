"""The deploy search's budget (deployment/budget.py): pure functions of numbers, no timing."""

from __future__ import annotations

import pytest

from dnnmeter.deployment import Config, ConfigResult
from dnnmeter.deployment.budget import (
    Budget,
    budget_reason,
    full_estimate_s,
    lower_bound,
    measure_order,
    reserve_s,
    screen_estimate_s,
    screen_indices,
    skipped_for_budget,
    surely_outside,
    timing_settings,
)
from dnnmeter.deployment.judge import recommend


def test_the_screen_is_spread_over_the_images_and_is_all_of_them_when_there_are_few() -> None:
    found = screen_indices(1000, 96)
    assert len(found) == 96 and found[0] == 0 and found[-1] == 999 and found == sorted(set(found))
    assert screen_indices(50, 96) == list(range(50))


def test_the_reference_runs_first_then_the_most_threads_and_compile_last() -> None:
    planned = [Config(k, t) for t in (1, 2) for k in ("eager-float32", "int8", "compile", "compile-frozen",
                                                      "channels_last")]
    order = [c.name for c in measure_order(planned)]
    assert order[:2] == ["eager-float32@t2", "eager-float32@t1"]
    # the frozen compile before the plain one: it is the one a tight budget should not skip
    assert order[2:] == ["int8@t2", "channels_last@t2", "compile-frozen@t2", "compile@t2",
                         "int8@t1", "channels_last@t1", "compile-frozen@t1", "compile@t1"]


def test_a_full_comparison_is_estimated_from_the_screen_per_image() -> None:
    phases = {"load_s": 1.0, "build_s": 2.0, "prepare_s": 3.0, "timing_s": 10.0, "outputs_s": 5.0,
              "throughput_s": 4.0}
    # 5 s of start-up outside the phases, then load, build, prepare, and the images 1000/100 times over
    assert full_estimate_s(30.0, phases, 100, 1000) == pytest.approx(5 + 1 + 2 + 3 + 50)
    # with a throughput figure: every image at that rate plus a first call (a compile), if that is less
    assert full_estimate_s(30.0, phases, 100, 1000, images_per_s=50.0, first_call_s=4.0) == pytest.approx(
        5 + 1 + 2 + 3 + 20 + 4)
    assert reserve_s(None) == 0.0 and reserve_s(60.0, 600.0) == 180.0  # the baseline's and two candidates'
    assert reserve_s(200.0, 300.0) == 150.0  # at most half the budget: the screens need some
    assert screen_estimate_s([]) == 0.0 and screen_estimate_s([10.0, 30.0, 20.0]) == 20.0


def test_the_budget_counts_on_its_clock() -> None:
    now = [100.0]
    budget = Budget(60.0, clock=lambda: now[0])
    now[0] += 45.0
    assert budget.left_s() == pytest.approx(15.0)
    why = budget_reason(30.0, budget.left_s(), "its screen")
    assert skipped_for_budget(why) and "30 s" in why and "--budget-min" in why
    assert not skipped_for_budget("onnxruntime is not installed") and not skipped_for_budget(None)


def test_timing_shrinks_with_the_budget_within_its_bounds() -> None:
    assert timing_settings(10.0, 26).time_budget_s == 2.0
    assert timing_settings(1.0, 26).time_budget_s == pytest.approx(max(0.2, 60 * 0.25 / 26))
    assert timing_settings(0.1, 26).time_budget_s == 0.2


def test_the_screen_rejects_only_what_is_surely_outside_the_tolerance() -> None:
    assert lower_bound(0, 96) == 0.0
    assert 0.0 < lower_bound(1, 96) < 1 / 96 < lower_bound(10, 96) + 0.1
    assert not surely_outside(1, 0, 96, 0.01)  # 1% seen on 96 images: it may well be within 1%
    assert not surely_outside(2, 0, 96, 0.01)
    assert surely_outside(10, 0, 96, 0.01)  # 10%: surely above 1%
    assert not surely_outside(10, 9, 96, 0.01)  # accuracy: as many gained as lost, no sure drop


def _result(name: str, images: int, latency_s: float, status: str = "accepted") -> ConfigResult:
    kind = name.split("@")[0]
    return ConfigResult(name, kind, 2, status, "", latency_s, latency_s, latency_s, speedup=0.1 / latency_s,
                        speedup_low=0.09 / latency_s, speedup_high=0.11 / latency_s, top1_agreement=1.0,
                        images=images)


def test_a_configuration_judged_on_the_screen_alone_is_never_recommended() -> None:
    base = _result("eager-float32@t2", 1000, 0.1)
    fast = _result("int8@t2", 96, 0.02)  # accepted on the screen, never compared on all images
    verdict = recommend([base, fast], base, 1000, "budget: comparing int8@t2 on all 1000 images needs ...")
    assert verdict.recommended == "eager-float32@t2"
    assert "no candidate was compared on all 1000 images (budget" in verdict.reason
    slower = _result("channels_last@t2", 1000, 0.05)
    verdict = recommend([base, fast, slower], base, 1000)
    assert verdict.recommended == "channels_last@t2" and "all 1000 images" in verdict.reason


def test_a_gpu_recommendation_names_no_thread_count() -> None:
    import dataclasses

    base = dataclasses.replace(_result("eager-float32", 1000, 0.1), threads=None)
    graphs = dataclasses.replace(_result("cuda-graphs", 1000, 0.05), threads=None)
    reason = recommend([base, graphs], base, 1000).reason
    assert "2.00x eager float32, 95% interval" in reason and "thread" not in reason
    assert "at 2 thread(s)" in recommend([_result("eager-float32@t2", 1000, 0.1), _result("int8@t2", 1000, 0.05)],
                                         _result("eager-float32@t2", 1000, 0.1), 1000).reason
