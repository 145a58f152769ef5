"""benchmarks/deploy_speed.py's goal lines: which weights, how many images, how many configurations."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "deploy_speed.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_speed"] = module
    spec.loader.exec_module(module)
    return module


ds = _load()


def _run(weights: str | None, rec_images: int, measured: int = 22, note: str = "1000 images of imagenet") -> dict[str, Any]:
    base = {"name": "eager-float32@t2", "latency_s_median": 0.1, "speedup": 1.0, "top1_agreement": 1.0,
            "images": 1000}
    rec = {"name": "int8@t2", "latency_s_median": 0.03, "speedup": 3.5, "top1_agreement": 0.995,
           "images": rec_images}
    others = [{"name": f"x{i}", "latency_s_median": 0.05 if i < measured - 2 else None} for i in range(24)]
    return {"model": "resnet50", "batch_size": 1, "search_s": 500.0, "weights": weights,
            "retimed": {"timer": "torch.utils.benchmark", "speedup": 3.4},
            "result": {"configs": [base, rec, *others], "recommended": "int8@t2", "baseline": "eager-float32@t2",
                       "images": 1000, "images_note": note}}


def test_trained_weights_and_every_image_meet_the_agreement_goal() -> None:
    text = "\n".join(ds.goal_lines([_run("default", 1000)]))
    assert "99.50% on 1000 images: met" in text and "configurations measured >= 20: 22 of 26: met" in text


def test_initial_weights_leave_the_agreement_goal_unjudged() -> None:
    text = "\n".join(ds.goal_lines([_run(None, 1000)]))
    assert "not judged (initial weights" in text


def test_an_agreement_from_the_screen_alone_and_crops_are_said() -> None:
    text = "\n".join(ds.goal_lines([_run("default", 64, measured=12, note="1000 random crops of ...")]))
    assert "99.50% on 64 images: NOT met" in text
    assert "(crops of 2 photographs, not independent images)" in text and "12 of 26: NOT met" in text


class _Chosen:
    name, kind, threads, speedup = "int8@t1", "int8", 1, 2.0


class _Result:
    recommended, batch_size = "int8@t1", 1

    def config(self, name: str) -> _Chosen:
        return _Chosen()


def test_the_retimer_alternates_the_sides_and_divides_the_medians_of_their_rounds() -> None:
    asked: list[str] = []
    medians = iter([0.010, 0.005, 0.030, 0.004, 0.012, 0.006])  # a load spike in round 2's baseline

    def side(spec: dict[str, Any]) -> dict[str, Any]:
        asked.append(spec["kind"])
        assert spec["threads"] == 1 and spec["batch_size"] == 1 and spec["weights"] is None
        return {"timer": "torch.utils.benchmark", "median_s": next(medians)}

    found = ds.retime("tiny_alexnet", None, _Result(), 0.1, "digits", run_side=side)
    assert asked == ["eager-float32", "int8"] * ds.RETIME_ROUNDS
    assert found["baseline_rounds_s"] == [0.010, 0.030, 0.012] and found["config_rounds_s"] == [0.005, 0.004, 0.006]
    assert found["speedup"] == pytest.approx(0.012 / 0.005)  # medians of the rounds: the spike does not count


def test_a_side_runs_in_its_own_process_and_prints_its_median(tmp_path: Path) -> None:
    side = {"model": "tiny_alexnet", "weights": None, "data": "digits", "batch_size": 2, "threads": 1,
            "seconds": 0.05, "artefact_dir": str(tmp_path), "kind": "channels_last"}
    found = ds._side_in_subprocess(side)
    assert found["timer"] == "torch.utils.benchmark" and 0 < found["median_s"] < 1.0


def test_the_baselines_second_timings_come_from_the_result_or_from_an_older_results_extra() -> None:
    missing = {"threads": 2, "drift": None, "reason": "budget: timing the baseline again needs about 20 s"}
    assert ds._rechecks({"rechecks": [missing], "configs": []}) == [ds.BaselineRecheck(**missing)]
    older = {"configs": [
        {"kind": "eager-float32", "threads": 1, "extra": {"recheck": "timed again after the screens", "drift": 1.1}},
        {"kind": "eager-float32", "threads": 2, "extra": {"recheck": missing["reason"]}},
        {"kind": "int8", "threads": 2, "extra": {}}]}
    assert ds._rechecks(older) == [ds.BaselineRecheck(1, 1.1), ds.BaselineRecheck(**missing)]


def test_a_digits_run_keeps_a_section_and_a_results_file_of_its_own() -> None:
    assert ds.markers(ds.DEFAULT_OUT) == ("<!-- deploy_speed:begin -->", "<!-- deploy_speed:end -->")
    assert ds.markers(Path("x/deploy_speed_digits.json")) == ("<!-- deploy_speed_digits:begin -->",
                                                              "<!-- deploy_speed_digits:end -->")


def test_digits_weights_train_each_stage_once_and_say_what_they_are(tmp_path: Path, monkeypatch: Any) -> None:
    import dnnmeter

    monkeypatch.setattr(ds, "DIGITS_STAGES", ((16, 1, 0.01), (32, 1, 0.01)))
    trained: list[int] = []
    real_train = dnnmeter.train

    def train(module: Any, data: str, **kw: Any) -> Any:
        trained.append(kw["input_size"])
        assert kw["val_fraction"] == ds.DIGITS_VAL_FRACTION and (trained == [16]) == isinstance(module, str)
        return real_train(module, data, **kw)

    monkeypatch.setattr(dnnmeter, "train", train)
    checkpoint = ds.digits_weights("tiny_alexnet", tmp_path)
    assert trained == [16, 32] and checkpoint == str(tmp_path / "weights" / "tiny_alexnet-digits" / "32px" / "model.safetensors")
    assert ds.digits_weights("tiny_alexnet", tmp_path) == checkpoint and trained == [16, 32]  # kept: nothing retrained
    label = ds.digits_label(checkpoint)
    assert "719 images; 16 px for 1 epoch, then 32 px for 1 epoch" in label
    assert "compared on the 1078 it never trained on" in label and "not measured here" in label
    monkeypatch.setattr(ds, "DIGITS_STAGES", ((16, 1, 0.01), (32, 2, 0.01)))  # the recipe's last stage changed
    assert ds.digits_weights("tiny_alexnet", tmp_path) == checkpoint and trained == [16, 32, 32]  # that stage again
    assert "then 32 px for 2 epochs" in ds.digits_label(checkpoint)


def test_a_section_on_networks_trained_here_says_so_in_its_title() -> None:
    trained = {"weights_used": "trained here on scikit-learn's digits (719 images; ...)"}
    assert ds.title([trained]).endswith("within 1% top-1 agreement, on networks trained here on the digits")
    assert ds.title([{"weights_used": "default (torch hub cache: ...)"}]).endswith("within 1% top-1 agreement")
