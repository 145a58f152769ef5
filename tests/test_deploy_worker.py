"""The deploy worker for real on the tiny family and the digits: in this process (fast), and
in its own processes (integration), plus what a dead or missing runtime leaves behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dnnmeter.deployment import deploy, runner
from dnnmeter.deployment.images import choose
from dnnmeter.deployment.worker import DeploySpec, measure_config
from dnnmeter.measure.timing import TimingSettings

QUICK = TimingSettings(time_budget_s=0.05, warmup_s=0.01, min_samples=3)


def _spec(tmp_path: Path, kind: str, n: int = 12, batch: int = 4) -> DeploySpec:
    images = choose("tiny_alexnet", "digits", None, n)
    path = tmp_path / "images.pt"
    torch.save({"images": images.images, "calibration": images.calibration[:8]}, path)
    return DeploySpec("tiny_alexnet", kind, 1, batch, str(path), str(tmp_path / f"{kind}.npy"),
                      str(tmp_path / "artefacts"), timing=QUICK)


def test_channels_last_runs_and_agrees_with_float32(tmp_path: Path) -> None:
    base = measure_config(_spec(tmp_path, "eager-float32", n=10))  # 10 images, batch 4: the last batch padded
    moved = measure_config(_spec(tmp_path, "channels_last", n=10))
    assert base["status"] == moved["status"] == "measured", (base, moved)
    a, b = np.load(tmp_path / "eager-float32.npy"), np.load(tmp_path / "channels_last.npy")
    assert a.shape == b.shape and a.shape[0] == 10
    assert (a.argmax(1) == b.argmax(1)).all() and np.abs(a - b).max() < 1e-4
    assert moved["latency_s_p10"] <= moved["latency_s_median"] <= moved["latency_s_p90"]
    assert moved["size_bytes"] > 0 and moved["first_call_s"] > 0
    assert len(moved["samples_s"]) >= QUICK.min_samples  # its whole budget on itself: no eager turns beside it
    assert "baseline_samples_s" not in moved["extra"] and "baseline_samples_s" not in base["extra"]


def test_onnxruntime_int8_writes_its_artefact(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    found = measure_config(_spec(tmp_path, "ort-all-int8"))
    assert found["status"] == "measured", found
    assert found["extra"]["artefact"].endswith("model-int8.onnx") and Path(found["extra"]["artefact"]).is_file()
    assert found["size_bytes"] == Path(found["extra"]["artefact"]).stat().st_size
    assert any("layers left in float32" in note for note in found["extra"]["notes"])  # the JSON says it
    import onnx

    graph = onnx.load(found["extra"]["artefact"]).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    layers = [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    weight_is_int8 = [n.input[1] in dequantized for n in layers]
    # the recipe (build._ort_int8): the first and the last layer in float32, the layers between in int8
    assert len(layers) >= 3 and weight_is_int8[0] is weight_is_int8[-1] is False and all(weight_is_int8[1:-1])


def test_a_missing_onnxruntime_is_skipped_with_the_pip_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    found = measure_config(_spec(tmp_path, "ort-basic-float32"))
    assert found["status"] == "skipped" and "pip install 'dnnmeter[deploy]'" in found["reason"]


def test_a_configuration_that_raises_is_failed_with_its_reason(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "eager-float32")
    spec.images_path = str(tmp_path / "missing.pt")
    found = measure_config(spec)
    assert found["status"] == "failed" and "FileNotFoundError" in found["reason"]


def test_a_dead_worker_is_that_configurations_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def killed(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        kwargs["stderr"].write("Killed\n")  # type: ignore[attr-defined]
        return subprocess.CompletedProcess(args, -9, stdout="")

    monkeypatch.setattr(runner.subprocess, "run", killed)
    found = runner.in_subprocess(_spec(tmp_path, "int8"))
    assert found == {"status": "failed", "reason": "worker died with SIGKILL (killed: out of memory?): Killed"}


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_the_search_in_subprocesses_is_resumable(tmp_path: Path) -> None:
    kwargs = dict(data="digits", threads=1, images=40, budget_min=2.0, out=tmp_path / "out")
    with pytest.warns(UserWarning, match="initial"):
        first = deploy("tiny_alexnet", configs=["channels_last", "ort-extended-float32"], **kwargs)
    assert {c.status for c in first.configs} <= {"accepted", "rejected"}, [(c.name, c.reason) for c in first.configs]
    assert first.config("channels_last@t1").top1_agreement == 1.0
    with pytest.warns(UserWarning, match="initial"):
        again = deploy("tiny_alexnet", configs=["channels_last", "ort-extended-float32"], **kwargs)
    assert [c.latency_s_median for c in again.configs] == [c.latency_s_median for c in first.configs]


def _compilations(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[bool]]:
    """The freezing flag at each inductor compilation ("all") and at each that took the frozen path."""
    import torch._inductor.compile_fx as compile_fx
    from torch._inductor import config as inductor_config

    seen: dict[str, list[bool]] = {"all": [], "frozen": []}

    def spy(name: str, real: Any) -> Any:
        def call(*args: object, **kwargs: object) -> object:
            seen[name].append(inductor_config.freezing)
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(compile_fx, "compile_fx", spy("all", compile_fx.compile_fx))
    monkeypatch.setattr(compile_fx, "fw_compiler_freezing", spy("frozen", compile_fx.fw_compiler_freezing))
    return seen


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="inductor needs a C++ compiler")
def test_compile_frozen_freezes_every_batch_size_and_leaves_the_flag_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._inductor import config as inductor_config

    from dnnmeter.accuracy import build_with_weights
    from dnnmeter.deployment.build import BuildContext, build
    from dnnmeter.deployment.configs import Config

    seen = _compilations(monkeypatch)
    initial = inductor_config.freezing
    torch.manual_seed(0)
    model = build_with_weights("tiny_alexnet", None, device="cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = choose("tiny_alexnet", "digits", None, 8).images
    for previous in (False, True):  # restored to what it was, whichever that is
        torch._dynamo.reset()  # else dynamo remembers the batch axis is dynamic and compiles once
        seen["all"].clear()
        seen["frozen"].clear()
        # config.patch, not monkeypatch: monkeypatch's undo deletes the option from torch's config module
        with inductor_config.patch(freezing=previous), torch.inference_mode():
            ctx = BuildContext(Config("compile-frozen", 1), x[:2], [x[:2]], tmp_path, torch.device("cpu"))
            prepared = build(model, ctx)
            assert inductor_config.freezing is previous
            got2, got8 = prepared.call(x[:2]), prepared.call(x)  # the second batch size recompiles
            assert inductor_config.freezing is previous
            want2, want8 = model(x[:2]), model(x)
        # both batch sizes' compilations frozen: no mix of frozen and unfrozen figures
        assert seen["all"] == seen["frozen"] == [True, True]
        assert (got2 - want2).abs().max() < 1e-4 and (got8 - want8).abs().max() < 1e-4
        assert (got8.argmax(1) == want8.argmax(1)).all()
    assert inductor_config.freezing is initial
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's model untouched
    assert "compilation" in prepared.notes[0]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="inductor needs a C++ compiler")
def test_compile_frozen_runs_in_the_worker_and_agrees_with_float32(tmp_path: Path) -> None:
    base = measure_config(_spec(tmp_path, "eager-float32", n=10))
    spec = _spec(tmp_path, "compile-frozen", n=10)
    spec.throughput_batch_size = 8
    found = measure_config(spec)
    assert base["status"] == found["status"] == "measured", found
    a, b = np.load(tmp_path / "eager-float32.npy"), np.load(tmp_path / "compile-frozen.npy")
    assert a.shape == b.shape and (a.argmax(1) == b.argmax(1)).all() and np.abs(a - b).max() < 1e-4
    assert found["images_per_s_at_throughput_batch"] > 0 and found["first_call_s"] > found["latency_s_median"]


def test_a_hung_worker_is_stopped_and_failed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def hangs(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired("worker", kwargs["timeout"])  # type: ignore[arg-type]

    monkeypatch.setattr(runner.subprocess, "run", hangs)
    found = runner.in_subprocess(_spec(tmp_path, "compile"), timeout_s=5)
    assert found == {"status": "failed", "reason": "took longer than 5 s; stopped", "timed_out_s": 5}
    spec = _spec(tmp_path, "compile")
    spec.wait_s = 2.0  # what the search's budget leaves: shorter than the runner's own limit
    assert runner.in_subprocess(spec, timeout_s=5)["timed_out_s"] == 2.0


def test_throughput_at_a_larger_batch_is_timed_in_the_same_process(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "channels_last", n=10, batch=2)
    spec.throughput_batch_size = 8
    found = measure_config(spec)
    assert found["status"] == "measured", found
    assert found["throughput_batch_size"] == 8 and found["images_per_s_at_throughput_batch"] > 0
    assert found["throughput_unavailable_reason"] is None
    off = measure_config(_spec(tmp_path, "eager-float32", n=10, batch=2))  # none asked for: null with the reason
    assert off["images_per_s_at_throughput_batch"] is None and off["throughput_unavailable_reason"]


def test_the_onnx_export_takes_the_larger_batch_too(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    spec = _spec(tmp_path, "ort-basic-float32", n=10, batch=2)
    spec.throughput_batch_size = 6
    found = measure_config(spec)
    assert found["status"] == "measured" and found["images_per_s_at_throughput_batch"] > 0, found


def test_a_fixed_shape_artefact_has_no_throughput_and_says_why() -> None:
    from types import SimpleNamespace

    from dnnmeter.deployment.worker import _throughput

    prepared = SimpleNamespace(fixed_batch_reason="a CUDA graph replays the one batch size it was captured at")
    spec = SimpleNamespace(throughput_batch_size=8)
    found = _throughput(prepared, None, spec, torch.device("cpu"), lambda: None)  # type: ignore[arg-type]
    assert found["images_per_s_at_throughput_batch"] is None and "CUDA graph" in found["throughput_unavailable_reason"]


def test_a_larger_batch_that_fails_leaves_the_latency_and_says_why(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from dnnmeter.deployment.worker import _throughput

    def call(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    spec = SimpleNamespace(throughput_batch_size=4, timing=QUICK)
    found = _throughput(SimpleNamespace(call=call, fixed_batch_reason=None), torch.zeros(4, 1, 8, 8), spec,
                        torch.device("cpu"), lambda: None)  # type: ignore[arg-type]
    assert found["images_per_s_at_throughput_batch"] is None
    assert found["throughput_unavailable_reason"].startswith("at batch 4 out of memory")


def test_the_images_run_at_the_accuracy_batch_and_match_the_timed_batch(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "int8", n=12, batch=1)
    spec.accuracy_batch_size = 8  # 12 images: a batch of 8, then 4 padded to 8
    found = measure_config(spec)
    assert found["status"] == "measured", found
    assert found["extra"]["accuracy_batch_size"] == 8 and np.load(spec.outputs_path).shape[0] == 12
    check = found["extra"]["batch_check"]  # static int8: the same logits at batch 1 as at batch 8
    assert check["images"] == 4 and check["top1_same"] == 1.0 and check["max_abs_diff"] < 1e-3
    assert {"load_s", "build_s", "prepare_s", "timing_s", "outputs_s"} <= set(found["extra"]["phases_s"])


def test_a_full_comparison_only_builds_and_saves_the_logits(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "channels_last", n=10)
    spec.time_it, spec.accuracy_batch_size = False, 8
    found = measure_config(spec)
    assert found["status"] == "compared" and found["extra"]["images"] == 10, found
    assert "timing_s" not in found["extra"]["phases_s"] and np.load(spec.outputs_path).shape[0] == 10
