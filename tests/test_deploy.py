"""dnnmeter deploy (issue 15): configurations, the judge, the store, export, with a fake runner.

The fake runner stands in for the worker process: it writes logits and timing samples
chosen by each test, so the verdict is checked against a known answer. The real worker runs
in test_deploy_worker.py (in this process, and integration-marked in subprocesses).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from dnnmeter.deployment import Capabilities, DeployError, configs, deploy, plan
from dnnmeter.deployment.budget import Budget as _Budget
from dnnmeter.deployment.result import ConfigResult
from dnnmeter.deployment.stats import agreement, parse_tolerance, speedup_interval
from dnnmeter.deployment.worker import DeploySpec
from dnnmeter.errors import InvalidInputError

ALL_CPU = Capabilities(cores=2, cpu_flags=("avx512f", "avx512_bf16"), c_compiler="/usr/bin/c++")
BARE_CPU = Capabilities(cores=4, cpu_flags=("avx2",), c_compiler=None,
                        onnxruntime_missing=f"onnxruntime is not installed; {configs.ORT_PIP}")
ISSUE_FIELDS = {"name", "status", "reason", "threads", "latency_s_median", "latency_s_p10", "latency_s_p90", "speedup",
                "speedup_low", "speedup_high", "top1_agreement", "logit_max_abs_error", "sqnr_db", "top1_change",
                "first_call_s", "peak_memory_bytes", "size_bytes"}
ISSUE_TOP = {"model", "device", "batch_size", "tolerance", "images", "baseline", "recommended", "configs"}


# --- configurations -------------------------------------------------------------------------


def test_resnet50_on_this_cpu_has_at_least_20_configurations() -> None:
    planned = plan("cpu", ALL_CPU)
    assert len(planned) >= 20
    assert all(configs.skip_reason(c, ALL_CPU, "cpu") is None for c in planned)
    assert planned[0].name == "eager-float32@t1" and {c.threads for c in planned} == {1, 2}
    assert len({c.name for c in planned}) == len(planned)  # names are unique: baseline/recommended refer to them


def test_what_this_machine_lacks_is_skipped_with_the_reason() -> None:
    reasons = {c.kind: configs.skip_reason(c, BARE_CPU, "cpu") for c in plan("cpu", BARE_CPU, threads=1)}
    assert reasons["eager-float32"] is None and reasons["int8"] is None
    assert "AVX512-BF16" in reasons["bfloat16"]
    assert "compiler" in reasons["compile"] and "compiler" in reasons["compile-frozen"]
    assert all("pip install" in reasons[k] for k in reasons if k.startswith("ort-"))


def test_a_missing_onnxruntime_is_found_by_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    real = configs.importlib.util.find_spec
    monkeypatch.setattr(configs.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    caps = configs.probe("cpu")
    assert caps.onnxruntime_missing is not None and "pip install 'dnnmeter[deploy]'" in caps.onnxruntime_missing


def test_a_gpu_adds_its_own_configurations() -> None:
    gpu = Capabilities(cores=8, cuda_available=True, cuda_bf16=False, cuda_providers=("CPUExecutionProvider",))
    planned = plan("cuda", gpu)
    kinds = [c.kind for c in planned]
    assert {"cuda-graphs", "cudnn-benchmark", "float16"} <= set(kinds) and all(c.threads is None for c in planned)
    assert {"compile", "compile-frozen"} <= set(kinds)  # inductor freezes on a GPU too; no C++ compiler needed
    assert configs.skip_reason(next(c for c in planned if c.kind == "compile-frozen"), gpu, "cuda") is None
    for kind in ("bfloat16", "bfloat16-channels_last"):
        bf16 = next(c for c in planned if c.kind == kind)
        assert "8.0" in str(configs.skip_reason(bf16, gpu, "cuda"))
    for kind in ("float16-channels_last", "cuda-graphs-float16"):  # half precision as the tensor cores take it
        assert configs.skip_reason(next(c for c in planned if c.kind == kind), gpu, "cuda") is None
    ort = next(c for c in planned if c.is_ort)
    assert "onnxruntime-gpu" in str(configs.skip_reason(ort, gpu, "cuda"))


def test_every_torch_kind_has_a_builder_and_an_export_snippet() -> None:
    from dnnmeter.deployment.build import BUILDERS
    from dnnmeter.deployment.export import _PREPARE

    torch_kinds = {k for k in (*configs.CPU_KINDS, *configs.CUDA_KINDS)
                   if not k.startswith(("ort-", "openvino-"))}
    assert torch_kinds <= set(BUILDERS) and torch_kinds <= set(_PREPARE)


def test_half_precision_channels_last_keeps_the_model_and_returns_float32() -> None:
    from dnnmeter.deployment.build import BUILDERS

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    weight = model[0].weight.detach().clone()
    prepared = BUILDERS["bfloat16-channels_last"](model, SimpleNamespace())
    x = torch.randn(2, 3, 8, 8)
    out = prepared.call(x)
    assert out.dtype == torch.float32 and torch.allclose(out, model(x), atol=0.1)
    assert model[0].weight.dtype == torch.float32 and torch.equal(model[0].weight, weight)  # the user's model untouched


def test_an_unknown_configuration_is_refused_with_the_list() -> None:
    with pytest.raises(InvalidInputError, match="choose from eager-float32"):
        plan("cpu", ALL_CPU, kinds=["int4"])


# --- figures --------------------------------------------------------------------------------


def test_the_speedup_interval_covers_the_true_ratio_and_excludes_one() -> None:
    rng = np.random.default_rng(1)
    base, fast = list(10 + rng.normal(0, 0.2, 40)), list(5 + rng.normal(0, 0.1, 40))
    found = speedup_interval(base, fast)
    assert found.low < 2.0 < found.high and found.low > 1.5
    same = speedup_interval(base, list(10 + rng.normal(0, 0.2, 40)))
    assert same.low < 1.0 < same.high  # no difference: the interval says it is not sure


def test_agreement_of_identical_and_flipped_outputs() -> None:
    ref = np.eye(4, 3)[[0, 1, 2, 0]] * 5.0
    same = agreement(ref, ref.copy(), labels=np.array([0, 1, 2, 1]))
    assert same.top1_agreement == 1.0 and same.sqnr_db == math.inf and same.top1 == 0.75
    flipped = ref.copy()
    flipped[0] = [0, 6, 0]
    found = agreement(ref, flipped)
    assert found.top1_agreement == 0.75 and found.logit_max_abs_error == 6.0
    assert found.sqnr_db == pytest.approx(10 * math.log10(100 / 61))


@pytest.mark.parametrize(("text", "value"), [("1%", 0.01), ("0.5%", 0.005), ("0.02", 0.02), (0, 0.0)])
def test_tolerances(text: Any, value: float) -> None:
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "150%", "-1%", "nan"])
def test_bad_tolerances_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="give a percentage"):
        parse_tolerance(text)


# --- the search with a fake worker ----------------------------------------------------------


class FakeRunner:
    """Logits of a fixed random linear model of each image; each kind flips the top-1 of a share
    of the images (chosen by the image, so the screen is a subset of the full comparison) and
    changes its speed as a test asks. ``calls`` lists the kinds run, a full comparison as
    ``KIND:full``."""

    def __init__(self, speed: dict[str, float], flips: dict[str, float], fail: set[str] = frozenset(),
                 screen_flips: dict[str, float] | None = None) -> None:
        self.speed, self.flips, self.fail, self.calls = speed, flips, fail, []  # type: ignore[assignment]
        self.screen_flips = screen_flips or {}  # a kind's flips on the screen, where they differ

    def _logits(self, spec: DeploySpec) -> np.ndarray:
        found = torch.load(spec.images_path)["images"]
        images = found.reshape(found.shape[0], -1).double().numpy()
        logits = images @ np.random.default_rng(0).normal(size=(images.shape[1], 10))
        flips = self.flips if not spec.time_it else {**self.flips, **self.screen_flips}
        where = (np.abs(images.sum(axis=1)) * 9973.123) % 1.0 < flips.get(spec.kind, 0.0)
        logits[where] = -logits[where]  # the argmax moves for these images
        return logits

    def __call__(self, spec: DeploySpec) -> dict[str, Any]:
        self.calls.append(spec.kind if spec.time_it else f"{spec.kind}:full")
        if spec.kind in self.fail:
            return {"status": "failed", "reason": "worker died with SIGSEGV"}
        np.save(spec.outputs_path, self._logits(spec))
        phases = {"load_s": 0.01, "build_s": 0.01, "prepare_s": 0.01, "outputs_s": 0.01}
        if not spec.time_it:
            return {"status": "compared", "extra": {"phases_s": phases}}
        median = self.speed.get(spec.kind, 1.0) / (spec.threads or 1)
        samples = list(median * (1 + np.random.default_rng(len(self.calls)).normal(0, 0.01, 20)))
        return {"status": "measured", "samples_s": samples, "latency_s_median": float(np.median(samples)),
                "latency_s_p10": min(samples), "latency_s_p90": max(samples), "first_call_s": median * 3,
                "peak_memory_bytes": 1000, "size_bytes": 2000,
                "extra": {"artefact": None, "notes": [], "phases_s": phases}}


def _deploy(tmp_path: Path, runner: FakeRunner, **kwargs: Any) -> Any:
    """A search of 100 digits; one stage (every configuration on all 100) unless ``screen_images``."""
    kwargs.setdefault("configs", ["int8", "channels_last", "compile", "ort-all-float32"])
    kwargs.setdefault("screen_images", 100)
    with pytest.warns(UserWarning, match="initial"):
        return deploy("tiny_alexnet", images=100, runner=runner, capabilities=ALL_CPU, out=tmp_path / "out", **kwargs)


def test_a_rejected_configuration_is_never_recommended_however_fast(tmp_path: Path) -> None:
    runner = FakeRunner(speed={"int8": 0.1, "channels_last": 0.5, "compile": 0.7}, flips={"int8": 0.05},
                        fail={"ort-all-float32"})
    result = _deploy(tmp_path, runner)
    int8 = result.config("int8@t2")
    assert int8.status == "rejected" and "5.00% above the tolerance 1.00%" in int8.reason
    assert result.recommended == "channels_last@t2" and result.baseline == "eager-float32@t2"
    assert result.config("channels_last@t1").speedup == pytest.approx(2.0, rel=0.05)  # against eager at 1 thread
    failed = result.config("ort-all-float32@t1")
    assert failed.status == "failed" and "SIGSEGV" in failed.reason  # recorded, and the search went on
    assert result.config("compile@t2").status == "accepted"


def test_a_looser_tolerance_accepts_and_recommends_it(tmp_path: Path) -> None:
    runner = FakeRunner(speed={"int8": 0.1, "channels_last": 0.5}, flips={"int8": 0.05})
    result = _deploy(tmp_path, runner, tolerance="6%", configs=["int8", "channels_last"])
    assert result.recommended == "int8@t2" and "fastest accepted" in result.recommendation_reason
    assert result.config("int8@t2").speedup == pytest.approx(10.0, rel=0.03)


def test_without_a_sure_speedup_the_baseline_stays_and_says_why(tmp_path: Path) -> None:
    # channels_last 1% slower: no sure speed-up whatever the noise of the fake timings
    result = _deploy(tmp_path, FakeRunner(speed={"channels_last": 1.01}, flips={}), configs=["channels_last"])
    assert result.recommended == result.baseline == "eager-float32@t2"
    assert "95% interval above 1" in result.recommendation_reason


def test_a_failed_baseline_is_an_error_that_says_so(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error alone: no initial-weights warning before it
        with pytest.raises(DeployError, match="SIGSEGV"):
            deploy("tiny_alexnet", images=100, runner=FakeRunner(speed={}, flips={}, fail={"eager-float32"}),
                   capabilities=ALL_CPU, out=tmp_path / "out", configs=["int8"])


def test_a_rerun_measures_only_what_is_missing(tmp_path: Path) -> None:
    first = FakeRunner(speed={"int8": 0.5}, flips={})
    _deploy(tmp_path, first, configs=["int8"], threads=1)
    assert first.calls == ["eager-float32", "int8", "eager-float32"]  # the baseline timed again after the screens
    again = FakeRunner(speed={"int8": 0.5}, flips={})
    result = _deploy(tmp_path, again, configs=["int8", "channels_last"], threads=1)
    assert again.calls == ["channels_last"]
    assert result.config("int8@t1").speedup == pytest.approx(2.0, rel=0.05)


def test_a_new_ort_int8_recipe_measures_its_rows_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = ["int8", "ort-all-int8"]
    _deploy(tmp_path, FakeRunner(speed={}, flips={}), configs=kinds, threads=1)
    monkeypatch.setattr(configs, "ORT_INT8_RECIPE", configs.ORT_INT8_RECIPE + 1)
    again = FakeRunner(speed={}, flips={})
    _deploy(tmp_path, again, configs=kinds, threads=1)
    assert again.calls == ["ort-all-int8"]  # the stored int8 and baseline rows stand


def test_the_json_has_the_issues_fields(tmp_path: Path) -> None:
    result = _deploy(tmp_path, FakeRunner(speed={"int8": 0.5}, flips={}), configs=["int8"])
    raw = json.loads(json.dumps(result.to_dict()))
    assert ISSUE_TOP <= set(raw) and raw["images"] == 100
    for config in raw["configs"]:
        assert ISSUE_FIELDS <= set(config)
        assert config["status"] in ("accepted", "rejected", "failed", "skipped")
    assert raw["configs"][0]["sqnr_db"] is None  # identical outputs: infinity has no JSON, and a note says so


def test_tolerance_on_accuracy_needs_labels_and_uses_them(tmp_path: Path) -> None:
    result = _deploy(tmp_path, FakeRunner(speed={"int8": 0.5}, flips={"int8": 0.3}), configs=["int8"],
                     tolerance_on="accuracy", tolerance="50%")
    int8 = result.config("int8@t1")
    assert int8.top1_change is not None and "top-1 accuracy drop" in int8.reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # bad input is said alone, before any warning
        with pytest.raises(InvalidInputError, match="labelled"):
            deploy("resnet18", images=4, tolerance_on="accuracy", runner=FakeRunner({}, {}), capabilities=ALL_CPU)


def test_export_writes_the_artefact_snippet_and_json(tmp_path: Path) -> None:
    runner = FakeRunner(speed={"channels_last": 0.5}, flips={})
    result = _deploy(tmp_path, runner, configs=["channels_last"], export=tmp_path / "exported")
    assert result.recommended == "channels_last@t2"
    snippet = (tmp_path / "exported" / "run_model.py").read_text()
    assert "channels_last" in snippet and "torch.set_num_threads(2)" in snippet
    compile(snippet, "run_model.py", "exec")
    saved = json.loads((tmp_path / "exported" / "deploy.json").read_text())
    assert saved["recommended"]["name"] == "channels_last@t2"


def test_the_frozen_compile_snippet_sets_freezing_before_compiling(tmp_path: Path) -> None:
    from dnnmeter.deployment.export import snippet

    result = _deploy(tmp_path, FakeRunner(speed={"compile-frozen": 0.5}, flips={}), configs=["compile-frozen"])
    code = snippet(result, result.config("compile-frozen@t2"), None)
    assert code.index("freezing = True") < code.index("torch.compile(") < code.index("inference_mode")
    compile(code, "run_model.py", "exec")


def test_old_stored_rows_with_paired_eager_samples_load_and_judge_against_the_own_process(tmp_path: Path) -> None:
    class Paired(FakeRunner):  # a worker of before 2026-11-27: eager float32 timed in turns, slowed
        def __call__(self, spec: DeploySpec) -> dict[str, Any]:
            found = super().__call__(spec)
            if spec.kind != "eager-float32" and found["status"] == "measured":
                found["extra"]["baseline_samples_s"] = [s * 3 for s in found["samples_s"]]
            return found

    first = Paired(speed={"int8": 0.5}, flips={})
    _deploy(tmp_path, first, configs=["int8"], threads=1)
    again = FakeRunner(speed={"int8": 0.5}, flips={})
    result = _deploy(tmp_path, again, configs=["int8"], threads=1)
    assert again.calls == []  # every row came from the store
    int8, base = result.config("int8@t1"), result.config("eager-float32@t1")
    assert int8.speedup == pytest.approx(base.latency_s_median / int8.latency_s_median, rel=0.05)
    assert int8.speedup == pytest.approx(2.0, rel=0.05)  # not the paired samples' 3.0
    assert "own process" in int8.extra["speedup_against"] and "speedup_paired" not in int8.extra


def test_without_eager_float32_at_its_thread_count_a_configuration_has_no_speedup() -> None:
    from dnnmeter.deployment.judge import _speed

    result = ConfigResult("int8@t1", "int8", 1, "measured", samples_s=[0.1, 0.1, 0.1],
                          extra={"baseline_samples_s": [0.3, 0.3, 0.3]})  # an old row's paired samples: unused
    _speed(result, None)
    assert result.speedup is None and "no eager float32" in result.extra["speedup_note"]


# --- the screen, the full comparison and the budget -----------------------------------------


def test_a_candidate_is_recommended_only_once_compared_on_every_image(tmp_path: Path) -> None:
    # int8 agrees on the screen's 30 images but not on all 100; channels_last agrees on both
    runner = FakeRunner(speed={"int8": 0.1, "channels_last": 0.5}, flips={"int8": 0.2}, screen_flips={"int8": 0.0})
    result = _deploy(tmp_path, runner, configs=["int8", "channels_last"], threads=1, screen_images=30)
    assert runner.calls == ["eager-float32", "channels_last", "int8", "eager-float32", "eager-float32:full",
                            "int8:full", "channels_last:full"]  # the candidates fastest first, until one is accepted
    int8 = result.config("int8@t1")
    assert int8.status == "rejected" and int8.images == 100 and int8.extra["screen"]["images"] == 30
    assert result.recommended == "channels_last@t1" and result.config("channels_last@t1").images == 100
    assert result.images == 100 and result.screen_images == 30 and "screened on 30" in result.images_note
    assert len(list((tmp_path / "out").glob("images-*.pt"))) == 1  # every image's file is gone: only the screen's
    raw = json.loads(json.dumps(result.to_dict()))
    assert {c["name"]: c["images"] for c in raw["configs"]} == {
        "eager-float32@t1": 100, "int8@t1": 100, "channels_last@t1": 100}


def test_a_surely_rejected_screen_is_not_compared_further(tmp_path: Path) -> None:
    runner = FakeRunner(speed={"int8": 0.1, "channels_last": 0.5}, flips={"int8": 0.3})
    result = _deploy(tmp_path, runner, configs=["int8", "channels_last"], threads=1, screen_images=30)
    assert "int8:full" not in runner.calls and "channels_last:full" in runner.calls
    int8 = result.config("int8@t1")
    assert int8.status == "rejected" and int8.images == 30 and "surely above" in int8.reason
    assert result.recommended == "channels_last@t1"


class Clock:
    """A fake clock the fake runner moves: each screen takes ``screen_s``, a full comparison ``full_s``."""

    def __init__(self, screen_s: float, full_s: float) -> None:
        self.now, self.screen_s, self.full_s = 0.0, screen_s, full_s

    def __call__(self) -> float:
        return self.now


class ClockedRunner(FakeRunner):
    """A fake runner that moves ``clock`` as long as a screen or a full comparison takes."""

    def __init__(self, clock: Clock, screen_s: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock, self.screen_s = clock, screen_s or {}  # a kind's screen, where it differs

    def __call__(self, spec: DeploySpec) -> dict[str, Any]:
        screen_s = self.screen_s.get(spec.kind, self.clock.screen_s)
        self.clock.now += screen_s if spec.time_it else self.clock.full_s
        return super().__call__(spec)


def test_what_does_not_fit_the_budget_is_skipped_and_a_rerun_with_more_measures_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.deployment import search

    clock = Clock(screen_s=20.0, full_s=20.0)
    monkeypatch.setattr(search, "Budget", lambda total_s: _Budget(total_s, clock=clock))
    runner = ClockedRunner(clock, speed={"int8": 0.1, "channels_last": 0.5, "compile": 0.7}, flips={})
    # 130 s: the baseline's screen (20 s) keeps back three full comparisons (the baseline's and two
    # candidates', 3 x 20 s, estimated from its screen) and its second timing (20 s), at most half
    # the budget (65 s), so two more screens fit (60 s spent, 5 s left besides the 65 s kept:
    # compile's 20 s do not fit), then the baseline's second timing (keeping back the baseline's and
    # one candidate's full comparison: 40 s), the baseline's and int8's full comparisons
    result = _deploy(tmp_path, runner, configs=["int8", "channels_last", "compile"], threads=1, screen_images=30,
                     budget_min=130 / 60)
    skipped = [c for c in result.configs if c.status == "skipped"]
    assert [c.name for c in skipped] == ["compile@t1"] and skipped[0].reason.startswith("budget: its screen")
    assert runner.calls == ["eager-float32", "channels_last", "int8", "eager-float32", "eager-float32:full",
                            "int8:full"]
    assert result.recommended == "int8@t1" and result.config("int8@t1").images == 100
    assert result.search_s == pytest.approx(120.0) and result.budget_s == pytest.approx(130.0)
    assert [(r.threads, r.reason) for r in result.rechecks] == [(1, None)] and result.rechecks[0].drift is not None
    again = ClockedRunner(clock, speed={"int8": 0.1, "channels_last": 0.5, "compile": 0.7}, flips={})
    clock.now = 0.0
    rerun = _deploy(tmp_path, again, configs=["int8", "channels_last", "compile"], threads=1, screen_images=30,
                    budget_min=20.0)
    assert rerun.config("compile@t1").status == "accepted"
    # a budget skip is not stored: measured now; the rest (the baseline's second timing too) from the store
    assert again.calls == ["compile"]


def test_a_screen_only_candidate_leaves_the_baseline_recommended_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.deployment import search

    clock = Clock(screen_s=20.0, full_s=500.0)  # full comparisons far longer than estimated
    monkeypatch.setattr(search, "Budget", lambda total_s: _Budget(total_s, clock=clock))
    runner = ClockedRunner(clock, speed={"int8": 0.1}, flips={})
    result = _deploy(tmp_path, runner, configs=["int8"], threads=1, screen_images=30, budget_min=1.5)
    int8 = result.config("int8@t1")
    assert int8.status == "accepted" and int8.images == 30  # the screen's verdict, and it says so
    assert result.recommended == "eager-float32@t1"
    assert "no candidate was compared on all 100 images" in result.recommendation_reason


def test_failed_and_worker_skipped_configurations_are_stored_and_not_tried_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Skips(FakeRunner):
        def __call__(self, spec: DeploySpec) -> dict[str, Any]:
            if spec.kind == "ort-all-float32":
                self.calls.append(spec.kind)
                return {"status": "skipped", "reason": "onnxruntime is not installed; pip install onnxruntime"}
            return super().__call__(spec)

    first = Skips(speed={"int8": 0.5}, flips={}, fail={"compile"})
    _deploy(tmp_path, first, threads=1)
    assert {"compile", "ort-all-float32"} <= set(first.calls)
    again = Skips(speed={"int8": 0.5}, flips={}, fail={"compile"})
    result = _deploy(tmp_path, again, threads=1)
    assert again.calls == []  # everything, failures and skips included, came from the store
    assert result.config("compile@t1").status == "failed" and "SIGSEGV" in result.config("compile@t1").reason
    assert result.config("ort-all-float32@t1").status == "skipped"
    from dnnmeter.deployment import search

    monkeypatch.setattr(search, "versions", lambda: {"torch": "another"})
    newer = Skips(speed={"int8": 0.5}, flips={}, fail={"compile"})
    _deploy(tmp_path, newer, threads=1)
    assert sorted(newer.calls) == ["compile", "ort-all-float32"]  # other libraries: tried again


def test_a_faster_candidate_that_does_not_fit_leaves_the_next_one_compared_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.deployment import search

    clock = Clock(screen_s=10.0, full_s=10.0)
    monkeypatch.setattr(search, "Budget", lambda total_s: _Budget(total_s, clock=clock))
    # int8's screen takes 100 s, so its full comparison is estimated at about 100 s: it does not fit
    # the 40 s left after the screens, the baseline's second timing and its comparison; channels_last's 10 s do
    runner = ClockedRunner(clock, screen_s={"int8": 100.0}, speed={"int8": 0.1, "channels_last": 0.5}, flips={})
    result = _deploy(tmp_path, runner, configs=["int8", "channels_last"], threads=1, screen_images=30,
                     budget_min=3.0)
    assert runner.calls == ["eager-float32", "channels_last", "int8", "eager-float32", "eager-float32:full",
                            "channels_last:full"]
    assert result.recommended == "channels_last@t1"
    assert "faster candidates not compared on all 100 images: int8@t1 (budget)" in result.recommendation_reason
    int8 = result.config("int8@t1")
    assert int8.images == 30 and int8.extra["full_comparison"].startswith("budget")


def test_a_worker_stopped_by_the_budget_is_a_budget_skip_and_a_hung_one_a_failure(tmp_path: Path) -> None:
    class Stops(FakeRunner):
        def __call__(self, spec: DeploySpec) -> dict[str, Any]:
            if spec.kind in ("int8", "compile"):
                self.calls.append(spec.kind)
                limit = min(spec.wait_s or 900.0, 900.0)
                return {"status": "failed", "reason": f"took longer than {limit:.0f} s; stopped", "timed_out_s": limit}
            return super().__call__(spec)

    result = _deploy(tmp_path, Stops(speed={}, flips={}), configs=["int8"], threads=1, budget_min=5.0)
    assert result.config("int8@t1").status == "skipped" and result.config("int8@t1").reason.startswith("budget")
    result = _deploy(tmp_path, Stops(speed={}, flips={}), configs=["compile"], threads=1, budget_min=60.0)
    hung = result.config("compile@t1")  # 60 minutes left: the runner's own 900 s limit stopped it
    assert hung.status == "failed" and "900 s" in hung.reason


def test_with_no_candidate_the_time_kept_back_screens_what_was_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.deployment import search

    clock = Clock(screen_s=20.0, full_s=20.0)
    monkeypatch.setattr(search, "Budget", lambda total_s: _Budget(total_s, clock=clock))
    # 90 s: after the baseline (20 s) and 40 s kept back, channels_last (no faster: no candidate) fits,
    # int8 does not; with no candidate, the kept-back time screens int8 after all
    runner = ClockedRunner(clock, speed={"channels_last": 1.0, "int8": 1.0}, flips={})
    seen: list[tuple[str, str]] = []
    result = _deploy(tmp_path, runner, configs=["int8", "channels_last"], threads=1, screen_images=30,
                     budget_min=1.5, on_config=lambda c: seen.append((c.name, c.status)))
    assert runner.calls == ["eager-float32", "channels_last", "int8"]
    assert seen.index(("int8@t1", "skipped")) < seen.index(("int8@t1", "measured"))  # skipped, then screened
    (recheck,) = result.rechecks  # tried after each pass; no time for it either time, and that is said
    assert recheck.threads == 1 and recheck.drift is None and recheck.reason.startswith("budget: timing the baseline")
    assert result.config("int8@t1").status == "accepted" and result.config("int8@t1").images == 30


def test_the_baseline_is_timed_again_after_the_screens_and_its_drift_widens_the_speedup(tmp_path: Path) -> None:
    class Drifting(FakeRunner):  # the machine slows down while the configurations are screened
        def __call__(self, spec: DeploySpec) -> dict[str, Any]:
            found = super().__call__(spec)
            if spec.kind == "eager-float32" and spec.time_it and self.calls.count("eager-float32") == 2:
                found["samples_s"] = [v * 1.5 for v in found["samples_s"]]
            return found

    runner = Drifting(speed={"channels_last": 0.5}, flips={})
    result = _deploy(tmp_path, runner, configs=["channels_last"], threads=1)
    assert runner.calls == ["eager-float32", "channels_last", "eager-float32"]
    base, config = result.config("eager-float32@t1"), result.config("channels_last@t1")
    assert base.extra["drift"] == pytest.approx(1.5, rel=0.05)
    assert base.speedup == pytest.approx(1.0)  # the baseline against its own pooled samples
    # 2x against the first timing alone, 3x against the second: the interval spans the drift
    assert config.speedup_low < 2.3 and config.speedup_high > 2.7
    assert config.extra["speedup_against"].endswith("timed before and after the screens")
    again = Drifting(speed={"channels_last": 0.5}, flips={})
    rerun = _deploy(tmp_path, again, configs=["channels_last"], threads=1)
    assert again.calls == [] and rerun.config("channels_last@t1").speedup == pytest.approx(config.speedup)


def test_a_second_timing_that_does_not_fit_is_said_with_its_reason(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.deployment import search

    clock = Clock(screen_s=20.0, full_s=20.0)
    monkeypatch.setattr(search, "Budget", lambda total_s: _Budget(total_s, clock=clock))
    # one stage (all 100 images screened): the baseline's 20 s screen keeps back 20 s for its second
    # timing, so channels_last's screen is tried (estimated at 20 s, 20 s left besides the 20 s kept);
    # it takes 30 s, and only 10 s are left for the second timing
    runner = ClockedRunner(clock, screen_s={"channels_last": 30.0}, speed={"channels_last": 0.5}, flips={})
    result = _deploy(tmp_path, runner, configs=["channels_last"], threads=1, budget_min=1.0)
    assert runner.calls == ["eager-float32", "channels_last"]
    (recheck,) = result.rechecks
    assert recheck.threads == 1 and recheck.drift is None
    assert recheck.reason.startswith("budget: timing the baseline again needs about 20 s, 10 s")
    assert result.to_dict()["rechecks"] == [{"threads": 1, "drift": None, "reason": recheck.reason}]
    assert result.recommended == "channels_last@t1"  # the speed-up stands, on one timing of the baseline
