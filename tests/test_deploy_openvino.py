"""deploy's OpenVINO kinds: planned on the CPU only, skipped with the reason where openvino or native
bfloat16 is missing, and for real (when openvino is installed) on the tiny AlexNet of the digits.

The real runs happen in a spawned process (``_in_fresh_process``), never in pytest's: once
OpenVINO's runtime and its TBB threads were loaded into the test process, a later fork (the
DataLoader workers of test_evaluate.py) segfaulted the whole suite. deploy itself runs every
configuration in a worker process of its own, so the tests do what deploy does."""

from __future__ import annotations

import importlib.util
import multiprocessing
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from test_deploy import ALL_CPU, FakeRunner, _deploy
from test_deploy_worker import _spec

from dnnmeter.deployment import Capabilities, configs, plan
from dnnmeter.deployment.worker import DeploySpec, measure_config

OV_KINDS = {"openvino-float32", "openvino-bfloat16"}
# find_spec, not importorskip: importing openvino here would load its runtime into pytest's process
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")


def _in_fresh_process(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a spawned Python process; its exceptions (assertions too) re-raise here."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)
NO_OPENVINO = Capabilities(cores=2, cpu_flags=("avx512_bf16",), c_compiler="/usr/bin/c++",
                           openvino_missing=f"openvino is not installed; {configs.OPENVINO_PIP}")


def _reasons(caps: Capabilities, device: str = "cpu") -> dict[str, str | None]:
    return {c.kind: configs.skip_reason(c, caps, device) for c in plan(device, caps, threads=1) if c.kind in OV_KINDS}


def test_the_openvino_kinds_are_planned_on_the_cpu_not_on_a_gpu() -> None:
    assert OV_KINDS <= {c.kind for c in plan("cpu", ALL_CPU)}
    assert _reasons(ALL_CPU) == {"openvino-float32": None, "openvino-bfloat16": None}
    gpu = Capabilities(cores=8, cuda_available=True, cuda_bf16=True)
    assert not OV_KINDS & {c.kind for c in plan("cuda", gpu)}
    assert "CPU" in str(configs.skip_reason(configs.Config("openvino-float32", None), gpu, "cuda"))


def test_a_missing_openvino_is_the_reason_with_the_pip_command() -> None:
    reasons = _reasons(NO_OPENVINO)
    assert set(reasons) == OV_KINDS
    assert all("pip install 'dnnmeter[deploy]' (or: pip install openvino)" in str(r) for r in reasons.values())


def test_openvino_bfloat16_needs_native_bfloat16() -> None:
    emulated = Capabilities(cores=2, cpu_flags=("avx2", "avx512f"))
    reasons = _reasons(emulated)
    assert reasons["openvino-float32"] is None and "AVX512-BF16" in str(reasons["openvino-bfloat16"])


def test_the_probe_finds_a_missing_openvino_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = configs.importlib.util.find_spec
    asked: list[str] = []

    def find_spec(name: str) -> Any:
        asked.append(name)
        return None if name == "openvino" else real(name)

    monkeypatch.setattr(configs.importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "openvino", None)  # an import of openvino would now raise
    caps = configs.probe("cpu")
    assert "openvino" in asked and caps.openvino_missing == f"openvino is not installed; {configs.OPENVINO_PIP}"


def test_a_missing_openvino_in_the_worker_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    found = measure_config(_spec(tmp_path, "openvino-float32"))
    assert found["status"] == "skipped" and "pip install openvino" in found["reason"]


def _measured(tmp_path: Path, kind: str) -> tuple[dict[str, Any], DeploySpec]:
    spec = _spec(tmp_path, kind, n=10, batch=2)
    spec.throughput_batch_size, spec.accuracy_batch_size = 6, 8  # three batch sizes from one IR
    return _in_fresh_process(measure_config, spec), spec


@pytest.mark.integration
@needs_openvino
def test_openvino_float32_agrees_with_eager_at_every_batch(tmp_path: Path) -> None:
    base, base_spec = _measured(tmp_path, "eager-float32")
    found, spec = _measured(tmp_path, "openvino-float32")
    assert found["status"] == "measured", found
    import numpy as np

    a, b = np.load(base_spec.outputs_path), np.load(spec.outputs_path)
    assert a.shape == b.shape == (10, 200) and b.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4 and (a.argmax(1) == b.argmax(1)).all()
    assert found["images_per_s_at_throughput_batch"] > 0 and found["throughput_unavailable_reason"] is None
    xml = Path(found["extra"]["artefact"])
    assert xml.name == "model-openvino.xml" and found["size_bytes"] == sum(
        p.stat().st_size for p in (xml, xml.with_suffix(".bin")))
    # float32 weights in the IR: about the float32 state dict's size, not half of it
    assert found["size_bytes"] > 0.9 * base["size_bytes"]
    assert any("inference precision f32" in n and "openvino 2" in n for n in found["extra"]["notes"])


@pytest.mark.integration
@needs_openvino
def test_openvino_bfloat16_runs_in_bfloat16_where_the_cpu_has_it(tmp_path: Path) -> None:
    if configs.bf16_missing(configs.probe("cpu"), "cpu"):
        pytest.skip("this CPU has no native bfloat16")
    found, _ = _measured(tmp_path, "openvino-bfloat16")
    assert found["status"] == "measured", found
    assert any("inference precision bf16" in n for n in found["extra"]["notes"]), found["extra"]["notes"]


def test_export_copies_the_ir_and_a_snippet_that_compiles_it(tmp_path: Path) -> None:
    ir = tmp_path / "built" / "model-openvino.xml"
    ir.parent.mkdir()
    ir.write_text("<net/>")
    ir.with_suffix(".bin").write_bytes(b"\0" * 8)

    class WithIR(FakeRunner):
        def __call__(self, spec: DeploySpec) -> dict[str, Any]:
            found = super().__call__(spec)
            if spec.kind == "openvino-float32" and spec.time_it:
                found["extra"]["artefact"] = str(ir)
            return found

    result = _deploy(tmp_path, WithIR(speed={"openvino-float32": 0.5}, flips={}), configs=["openvino-float32"],
                     export=tmp_path / "exported")
    assert result.recommended == "openvino-float32@t2"
    out = tmp_path / "exported"
    assert (out / "model.xml").read_text() == "<net/>" and (out / "model.bin").stat().st_size == 8
    code = (out / "run_model.py").read_text()
    compile(code, "run_model.py", "exec")
    assert "read_model('model.xml')" in code and "'INFERENCE_PRECISION_HINT': 'f32'" in code
    assert "'INFERENCE_NUM_THREADS': 2" in code


def _convert_twice_and_run_the_snippet(tmp_path: Path) -> None:
    """In a fresh process (see the module's docstring); its assertions re-raise in the test."""
    import os
    from types import SimpleNamespace

    from dnnmeter.deployment.build import BuildContext, build
    from dnnmeter.deployment.export import export_recommended
    from dnnmeter.deployment.result import ConfigResult

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5)).eval()
    x, y = torch.randn(2, 3, 8, 8), torch.randn(3, 3, 8, 8)
    model(x)
    with torch.inference_mode():
        made = build(model, BuildContext(configs.Config("openvino-float32", 1), x, [], tmp_path, torch.device("cpu")))
        first = Path(str(made.artefact)).stat().st_mtime_ns
        again = build(model, BuildContext(configs.Config("openvino-bfloat16", 1), x, [], tmp_path, torch.device("cpu")))
        assert Path(str(again.artefact)).stat().st_mtime_ns == first and not list(tmp_path.glob("partial-*"))
        expected = model(y)
        assert torch.allclose(made.call(y), expected, atol=1e-5)
    config = ConfigResult("openvino-float32@t1", "openvino-float32", 1, extra={"artefact": made.artefact})
    result = SimpleNamespace(config=lambda name: config, recommended=config.name, batch_size=3, model="m",
                             device="cpu", tolerance=0.01, baseline="b", recommendation_reason="r")
    export_recommended(result, tmp_path / "exported", None)  # type: ignore[arg-type]
    os.chdir(tmp_path / "exported")
    scope = {"images_numpy": y.numpy()}
    exec((tmp_path / "exported" / "run_model.py").read_text(), scope)
    assert torch.allclose(torch.from_numpy(scope["logits"]), expected, atol=1e-5)


@pytest.mark.integration
@needs_openvino
def test_the_ir_is_converted_once_and_the_exported_snippet_runs_it(tmp_path: Path) -> None:
    _in_fresh_process(_convert_twice_and_run_the_snippet, tmp_path)


def test_openvino_never_loads_into_the_test_process() -> None:
    """The guard for the module's docstring: nothing above (nor before) imported it here."""
    assert sys.modules.get("openvino") is None
