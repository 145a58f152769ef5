"""The benchmark pipeline: points, out-of-memory, crashes, settings restored. No timing is
asserted: only that times exist, are positive and are consistent with each other."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch

from dnnmeter.cli import main
from dnnmeter.measure import benchmark, default_threads
from dnnmeter.measure.point import measure_model
from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.timing import TimingSettings
from dnnmeter.measure.worker import BenchSpec

HERE = Path(__file__).parent
QUICK = TimingSettings(time_budget_s=0.05, warmup_s=0.01, min_samples=3)


class NoMeter:
    available = False
    unavailable_reason = "power: no meter in this test"
    name = "none"


@pytest.fixture
def worker_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", str(HERE))


def _measure(model: str, batches: tuple[int, ...]) -> list[BenchResult]:
    out: list[BenchResult] = []
    spec = BenchSpec(model=model, batch_sizes=batches, threads=1, timing=QUICK)
    measure_model(spec, out.append, meter=NoMeter(), environment=lambda **_: {"test": True})
    return out


def test_points_are_consistent(worker_path: None) -> None:
    threads = torch.get_num_threads()
    points = _measure("bench_models:tiny", (1, 2))
    assert [p.batch_size for p in points] == [1, 2] and all(p.status == "ok" for p in points)
    for p in points:
        assert p.latency_s_p10 <= p.latency_s_median <= p.latency_s_p90
        assert p.latency_s_per_image == pytest.approx(p.latency_s_median / p.batch_size)
        assert p.images_per_s == pytest.approx(p.batch_size / p.latency_s_median)
        assert len(p.samples_s) >= 3 and min(p.samples_s) > 0 and p.latency_s_cold > 0
        assert p.peak_memory_bytes is not None and p.memory_kind.startswith("cpu")
        assert p.power_w is None and p.energy_j_per_image is None
        assert p.power_unavailable_reason == "power: no meter in this test"
        assert p.threads == 1 and p.input_size == (3, 16, 16)
    assert torch.get_num_threads() == threads


def test_out_of_memory_skips_the_larger_batches(worker_path: None) -> None:
    points = _measure("bench_models:oom_at_4", (1, 4, 8, 2))
    assert [(p.batch_size, p.status) for p in points] == [(1, "ok"), (2, "ok"), (4, "oom"), (8, "skipped")]
    assert "can't allocate memory" in points[2].error
    assert "after out of memory at batch size 4" in points[3].error


def test_other_errors_are_recorded_per_point(worker_path: None) -> None:
    points = _measure("bench_models:error_at_2", (1, 2, 4))
    assert [p.status for p in points] == ["ok", "error", "error"]
    assert points[1].error == "ValueError: this model refuses large batches"


@pytest.mark.integration
def test_a_crashing_worker_ends_only_its_own_sweep(worker_path: None) -> None:
    seen: list[BenchResult] = []
    results = benchmark(["bench_models:crash_at_2", "bench_models:tiny"], batch_sizes=(1, 2, 4),
                        threads=1, time_budget_s=0.05, on_result=seen.append)
    by = {(r.model, r.batch_size): r for r in results}
    assert by[("bench_models:crash_at_2", 1)].status == "ok"
    assert by[("bench_models:crash_at_2", 2)].status == "error"
    assert "SIGKILL" in by[("bench_models:crash_at_2", 2)].error
    assert by[("bench_models:crash_at_2", 4)].status == "skipped"
    assert all(by[("bench_models:tiny", b)].status == "ok" for b in (1, 2, 4))
    assert len(seen) == 6


def test_default_threads_is_recorded() -> None:
    threads, why = default_threads()
    assert threads >= 1 and "available cores" in why


@pytest.mark.integration
def test_bench_cli_json(worker_path: None, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["bench", "bench_models:tiny", "--batch-sizes", "1,2", "--threads", "1",
                   "--time-budget", "0.05", "--format", "json"])
    out = capsys.readouterr().out
    assert status == 0
    data = json.loads(out)
    assert [d["batch_size"] for d in data] == [1, 2]
    for key in ("model", "device", "batch_size", "input_size", "dtype", "threads", "status",
                "latency_s_median", "latency_s_p10", "latency_s_p90", "samples_s", "latency_s_per_image",
                "images_per_s", "peak_memory_bytes", "memory_kind", "power_w", "idle_power_w",
                "energy_j_per_image", "power_source", "power_unavailable_reason", "stable", "environment"):
        assert key in data[0]
    assert data[0]["power_w"] is None and data[0]["power_unavailable_reason"]
    assert math.isfinite(data[0]["latency_s_median"])


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "resnet18", "--device", "tpu"], "bad device 'tpu'"),
    (["bench", "resnet18", "--device", "cuda"], "no CUDA GPU"),
    (["bench", "resnet5"], "unknown model 'resnet5'"),
])
def test_bench_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_interrupted_bench_prints_what_it_measured(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import dnnmeter.measure as measure

    def fake_benchmark(models, on_result, **_):  # type: ignore[no-untyped-def]
        on_result(BenchResult(model="resnet18", device="cpu", batch_size=1, input_size=(3, 224, 224),
                              dtype="float32", threads=1, latency_s_median=0.01))
        raise KeyboardInterrupt

    monkeypatch.setattr(measure, "benchmark", fake_benchmark)
    assert main(["bench", "resnet18", "--format", "json"]) == 130
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["latency_s_median"] == 0.01 and "interrupted after 1 points" in err


# --- exit status: a CI job must notice when nothing was measured -------------------------------

def _point(model: str, batch: int, status: str = "ok", error: str | None = None) -> BenchResult:
    return BenchResult(model=model, device="cpu", batch_size=batch, input_size=(3, 16, 16), dtype="float32",
                       threads=1, status=status, error=error, latency_s_median=0.01 if status == "ok" else None)


def _bench_with(monkeypatch: pytest.MonkeyPatch, points: list[BenchResult]) -> None:
    import dnnmeter.measure as measure

    def fake_benchmark(models, on_result, **_):  # type: ignore[no-untyped-def]
        for p in points:
            on_result(p)
        return points

    monkeypatch.setattr(measure, "benchmark", fake_benchmark)


@pytest.mark.parametrize(("points", "status"), [
    ([_point("resnet18", 1), _point("resnet18", 2)], 0),
    # an out-of-memory ends a sweep by design: the smaller batch sizes were measured
    ([_point("resnet18", 1), _point("resnet18", 2, "oom", "RuntimeError: out of memory"),
      _point("resnet18", 4, "skipped", "skipped after out of memory at batch size 2")], 0),
    ([_point("resnet18", 1), _point("resnet18", 2, "error", "ValueError: refuses large batches")], 1),
    ([_point("resnet18", 1, "oom", "RuntimeError: out of memory")], 1),
    ([_point("resnet18", 1), _point("alexnet", 1, "error", "ModelBuildError: cannot build")], 1),
])
def test_bench_exit_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           points: list[BenchResult], status: int) -> None:
    _bench_with(monkeypatch, points)
    assert main(["bench", "resnet18", "alexnet", "--format", "json"]) == status
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == len(points)  # what was measured is printed either way
    failed = [p for p in points if p.status != "ok"]
    assert err.count("\n") == len(failed)
    for p in failed:
        assert f"{p.model} batch {p.batch_size}: {p.status}: {p.error}" in err


@pytest.mark.integration
def test_bench_that_measured_nothing_exits_1_and_says_why(worker_path: None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["bench", "bench_models:error_at_2", "--batch-sizes", "2,4", "--threads", "1",
                   "--time-budget", "0.05", "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 1
    assert [d["status"] for d in json.loads(out)] == ["error", "error"]
    lines = err.strip().splitlines()
    assert lines == [f"dnnmeter: bench_models:error_at_2 batch {b}: error: ValueError: this model refuses large batches"
                     for b in (2, 4)]


def test_bench_refuses_an_onnx_file_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert main(["bench", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "bench needs a PyTorch model, not an ONNX file" in err


def test_float16_on_a_cpu_warns_and_bfloat16_does_not() -> None:
    from dnnmeter.errors import UnknownModelError

    # The dtype is checked before the names, so an unknown name stops it before anything runs.
    with pytest.warns(UserWarning, match="float16 on a CPU .* bfloat16"), pytest.raises(UnknownModelError):
        benchmark(["resnet5"], dtype="float16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnknownModelError):
            benchmark(["resnet5"], dtype="bfloat16")


def test_a_point_with_too_few_samples_has_no_stability_verdict(worker_path: None) -> None:
    out: list[BenchResult] = []
    few = TimingSettings(time_budget_s=0.05, warmup_s=0.01, min_samples=3, max_samples=3)
    spec = BenchSpec(model="bench_models:tiny", batch_sizes=(1,), threads=1, timing=few)
    measure_model(spec, out.append, meter=NoMeter(), environment=lambda **_: {})
    (p,) = out
    assert p.n_samples == 3 and p.stable is None
    assert p.stable_unknown_reason == "only 3 samples; a verdict on stability needs 7 (give it a larger time budget)"


# --- the C heap (dnnmeter.measure.heap): pinned by default, recorded on every point -------------

HEAP_VARIABLES = {"MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20)}


def test_a_steady_worker_starts_with_the_heap_variables_and_a_glibc_one_without(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.measure.runner import worker_environment

    steady = worker_environment(BenchSpec(model="tiny"))  # the default
    assert {k: steady[k] for k in HEAP_VARIABLES} == HEAP_VARIABLES and steady["PYTHONUNBUFFERED"] == "1"
    # a parent that set them itself (an old script) does not pin a point recorded as glibc's
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")  # the user's other malloc settings stay
    glibc = worker_environment(BenchSpec(model="tiny", heap="glibc"))
    assert not set(HEAP_VARIABLES) & set(glibc) and glibc["MALLOC_ARENA_MAX"] == "2"


@pytest.mark.parametrize("heap", ["steady", "glibc"])
def test_the_worker_process_is_started_with_its_heap(worker_path: None, monkeypatch: pytest.MonkeyPatch,
                                                      heap: str) -> None:
    import dnnmeter.measure.runner as runner

    started: list[dict[str, str]] = []

    def no_process(argv, env, **_):  # type: ignore[no-untyped-def]
        started.append(env)
        raise OSError("no process in this test")

    monkeypatch.setattr(runner.subprocess, "Popen", no_process)
    with pytest.raises(OSError, match="no process"):
        benchmark(["bench_models:tiny"], threads=1, heap=heap)
    (env,) = started
    expected = HEAP_VARIABLES if heap == "steady" else {k: None for k in HEAP_VARIABLES}
    assert {k: env.get(k) for k in HEAP_VARIABLES} == expected


def test_a_point_records_its_heap_and_the_spec_carries_it(worker_path: None) -> None:
    (point,) = _measure("bench_models:tiny", (1,))
    assert point.settings["heap"] == "steady" == point.heap
    spec = BenchSpec(model="bench_models:tiny", batch_sizes=(1,), threads=1, timing=QUICK, heap="glibc")
    assert BenchSpec.from_json(spec.to_json()).heap == "glibc"
    out: list[BenchResult] = []
    measure_model(BenchSpec.from_json(spec.to_json()), out.append, meter=NoMeter(), environment=lambda **_: {})
    assert out[0].settings["heap"] == "glibc" == out[0].heap
    old = json.loads(spec.to_json())
    del old["heap"]  # a spec from before: the default
    assert BenchSpec.from_json(json.dumps(old)).heap == "steady"


def test_a_point_stored_before_the_heap_was_recorded_loads_as_glibc() -> None:
    from dnnmeter.results import BenchPoint

    old = {"model": "resnet18", "device": "cpu", "batch_size": 1, "input_size": [3, 224, 224],
           "dtype": "float32", "threads": 1, "latency_s_median": 0.01,
           "settings": {"timing": {"time_budget_s": 2.0}, "cudnn_benchmark": False}}
    for cls in (BenchResult, BenchPoint):
        point = cls.from_dict(old)
        assert point.heap == "glibc" and "heap" not in point.settings  # read as glibc, not rewritten
    assert "heap" not in BenchResult.from_dict(old).to_dict()  # not a derived field: the JSON is as before


def test_bench_passes_its_heap_on_and_refuses_another(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import dnnmeter.measure as measure

    asked: list[str] = []

    def fake_benchmark(models, on_result, heap, **_):  # type: ignore[no-untyped-def]
        asked.append(heap)
        return []

    monkeypatch.setattr(measure, "benchmark", fake_benchmark)
    main(["bench", "resnet18", "--format", "json"])
    main(["bench", "resnet18", "--heap", "glibc", "--format", "json"])
    assert asked == ["steady", "glibc"]
    with pytest.raises(SystemExit):
        main(["bench", "resnet18", "--heap", "jemalloc"])
    assert "invalid choice: 'jemalloc'" in capsys.readouterr().err
    monkeypatch.undo()
    from dnnmeter.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="bad heap 'jemalloc': choose steady"):
        benchmark(["resnet18"], heap="jemalloc")
