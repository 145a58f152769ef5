"""benchmarks/gpu_check.py: the pure parts with hand numbers, NVML reads through a fake, and the
whole script on a machine without a GPU (every check skipped with the reason, exit 0)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gc = _load()


def items(*verdicts: str) -> list[Any]:
    return [gc.Item(f"row {i}", "", "", v) for i, v in enumerate(verdicts)]


def test_a_check_fails_on_any_failed_row_and_passes_only_when_something_was_judged() -> None:
    assert gc.check_verdict(items("pass", "recorded", "skipped")) == "pass"
    assert gc.check_verdict(items("pass", "fail", "skipped")) == "fail"
    assert gc.check_verdict(items("recorded", "skipped")) == "skipped"
    assert gc.check_verdict([]) == "skipped"
    with pytest.raises(AssertionError):
        gc.Item("x", "", "", "ok")  # only the four verdicts


def test_within_tolerance_on_both_sides() -> None:
    assert gc.relative_difference(10.4, 10.0) == pytest.approx(0.04)
    assert gc.within(10.4, 10.0, 0.05) == "pass"
    assert gc.within(9.6, 10.0, 0.05) == "pass"
    assert gc.within(10.6, 10.0, 0.05) == "fail"
    assert gc.within(9.4, 10.0, 0.05) == "fail"
    assert gc.within(None, 10.0, 0.05) == "skipped"
    assert gc.within(1.0, 0.0, 0.05) == "skipped"  # no reference to be within


def test_window_samples_interpolate_the_ends() -> None:
    # 100 W at t=0, 200 W at t=2, 200 W at t=4: the window [1, 3] starts at 150 W.
    cut = gc.window_samples([(0.0, 100.0), (2.0, 200.0), (4.0, 200.0)], 1.0, 3.0)
    assert cut == [(1.0, 150.0), (2.0, 200.0), (3.0, 200.0)]
    # (150+200)/2 * 1 + 200 * 1 = 375 J
    assert gc.trapezoid_j(cut) == pytest.approx(375.0)
    with pytest.raises(ValueError):
        gc.window_samples([(1.5, 100.0), (4.0, 100.0)], 1.0, 3.0)  # does not cover the start


def test_energy_counter_against_sampled_power() -> None:
    # A counter reading 500 J over a window where the samples integrate to 540 J: +8%, within 10%.
    near = gc.compare_energy(500.0, 540.0)
    assert near["relative_difference"] == pytest.approx(0.08) and near["verdict"] == "pass"
    far = gc.compare_energy(500.0, 560.0)
    assert far["relative_difference"] == pytest.approx(0.12) and far["verdict"] == "fail"
    assert gc.compare_energy(None, 540.0)["verdict"] == "skipped"
    # 500 J in 5 s at 70 W idle over 1000 images: (500 - 350) / 1000 = 0.15 J per image
    assert gc.energy_above_idle_j(500.0, 5.0, 70.0, 1000) == pytest.approx(0.15)
    assert gc.energy_above_idle_j(500.0, 5.0, None, 1000) is None


@pytest.mark.parametrize("name, row", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA H100 NVL", None),
    ("NVIDIA A100-SXM4-40GB", None),
    (None, None),
])  # fmt: skip
def test_datasheet_rows_by_device_name(name: str | None, row: str | None) -> None:
    found, reason = gc.datasheet_for(name)
    assert found == row
    assert (reason is None) == (row is not None)


def test_datasheet_fraction_uses_the_dense_figure() -> None:
    # 600 TFLOP/s of float16 on an H100 SXM: the sheet's 1979 "with sparsity" is 989.5 dense.
    f = gc.datasheet_fraction("NVIDIA H100 80GB HBM3", "float16", 600e12)
    assert f["reference"] == 989.5e12 and f["fraction"] == pytest.approx(600 / 989.5)
    assert f["url"].startswith("https://")
    bw = gc.datasheet_fraction("NVIDIA H200", "bandwidth", 4.0e12)
    assert bw["fraction"] == pytest.approx(4.0 / 4.8)
    unknown = gc.datasheet_fraction("NVIDIA A100-SXM4-40GB", "float16", 250e12)
    assert unknown["fraction"] is None and "no data-sheet figures" in unknown["reason"]
    missing = gc.datasheet_fraction("NVIDIA H100 PCIe", "float16", None)
    assert missing["fraction"] is None and missing["reason"] == "not measured"
    assert gc.band_verdict(600 / 989.5, *gc.CEILING_BAND) == "pass"
    assert gc.band_verdict(0.1, *gc.CEILING_BAND) == "fail"  # half precision off the tensor cores
    assert gc.band_verdict(1.2, *gc.CEILING_BAND) == "fail"  # faster than the sheet: mismeasured


def test_memory_order() -> None:
    gib = 2**30
    assert gc.memory_order(1 * gib, 2 * gib, 3 * gib) == ("pass", None)
    assert gc.memory_order(3 * gib, 2 * gib, 4 * gib)[0] == "fail"
    assert gc.memory_order(1 * gib, 2 * gib, 1 * gib)[0] == "fail"
    verdict, why = gc.memory_order(1 * gib, 2 * gib, None, "no per-process figure")
    assert verdict == "pass" and "no per-process figure" in why
    assert gc.memory_order(None, None, 3 * gib)[0] == "skipped"


def test_throttle_reasons_and_time_slots() -> None:
    assert gc.throttle_names(0x1 | 0x4) == ["gpu_idle", "sw_power_cap"]
    assert gc.throttle_names(None) == []
    assert (0x4 & gc.SLOWDOWN_MASK) and not (0x1 & gc.SLOWDOWN_MASK)
    # 200 s left, 60 s kept for the later checks: a 150 s slice gets 140 s; a 45 s one all of it.
    assert gc.slot_timeout(200, 150, 60, 30) == 140
    assert gc.slot_timeout(200, 45, 60, 30) == 45
    assert gc.slot_timeout(80, 150, 60, 30) is None  # 20 s is under its minimum


class FakePynvml:
    """The slice of pynvml that the script reads beyond dnnmeter's meter."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    class NVMLError(Exception):
        pass

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return 250_000

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        return {1: 1980, 2: 2619}[clock]

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 41

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return 0x4

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=3 * 2**30) for pid in self.pids]

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        raise self.NVMLError("Not Supported")


def _nvml(monkeypatch: pytest.MonkeyPatch, pids: list[int]) -> Any:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml(pids))
    return gc.NvmlDevice(0)


def test_nvml_reads_and_this_process_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _nvml(monkeypatch, [os.getpid(), 1])
    assert nvml.ok and nvml.throttle_mask() == 0x4
    assert nvml.read("nvmlDeviceGetEnforcedPowerLimit") is None  # an NVML error reads as None
    assert nvml.process_used_bytes() == (3 * 2**30, None)
    alone = _nvml(monkeypatch, [999_999])  # a container: NVML lists the host's PID
    used, note = alone.process_used_bytes()
    assert used == 3 * 2**30 and "container" in note
    crowded = _nvml(monkeypatch, [999_998, 999_999])
    assert crowded.process_used_bytes()[0] is None


def test_nvml_missing_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    nvml = gc.NvmlDevice(0)
    assert not nvml.ok and "nvidia-ml-py is not installed" in nvml.reason
    assert nvml.read("nvmlDeviceGetPowerUsage") is None


def test_sampler_and_clock_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _nvml(monkeypatch, [os.getpid()])
    with gc.Sampler(nvml, hz=200) as sampler:
        pass
    assert len(sampler.rows) >= 2 and sampler.rows[0][1:] == (250.0, 1980, 2619, 41, 0x4)
    check = gc.Check("power", "t")
    gc._clock_items(check, sampler.rows)
    rows = {i.what: i for i in check.items}
    assert rows["clocks during the load"].measured.startswith("SM 1980-1980 MHz")
    assert rows["throttling"].measured.startswith("FLAGGED: sw_power_cap")


def test_markdown_has_a_table_per_check() -> None:
    check = gc.Check("bench", "latency", elapsed_s=1.0)
    check.add("resnet50 float16 b1: median latency", "within 5% of 1.000 ms", "a | b", "pass")
    check.add("energy", "> 0 J", "n/a", "skipped", "no NVML")
    report = {"command": "python benchmarks/gpu_check.py", "started_utc": "t", "elapsed_s": 1.0, "budget_s": 480.0,
              "quick": False, "verdict": "pass", "device": {"gpu": "NVIDIA H100 80GB HBM3", "driver": None},
              "checks": [check.to_dict()]}
    text = gc.render_markdown(report)
    assert "## bench: latency (pass, 1.0 s)" in text
    assert "| what | expected | measured | verdict |" in text
    assert "a \\| b" in text and "skipped: no NVML" in text
    assert "Device: gpu NVIDIA H100 80GB HBM3." in text


@pytest.mark.integration
def test_without_a_gpu_every_check_is_skipped_and_both_files_written(tmp_path: Path) -> None:
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so that this stays the short, model-free run anywhere.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["schema"] == gc.SCHEMA and report["verdict"] == "skipped"
    assert [c["name"] for c in report["checks"]] == [p.name for p in gc.PLANS if p.default]
    for check in report["checks"]:
        assert check["verdict"] == "skipped"
        assert check["reason"].startswith("no CUDA device: torch.cuda.is_available() is False")
    text = (tmp_path / "gpu_check.md").read_text()
    assert text.count("| what | expected | measured | verdict |") == len(report["checks"])
    assert "every check skipped" in proc.stdout and "[" in proc.stdout.splitlines()[0]  # progress, with time
    assert list((tmp_path / "checks").glob("*.json")) == []  # no child process ran


@pytest.mark.integration
@pytest.mark.slow  # every check's code on the CPU: a few minutes
@pytest.mark.timeout(900)
def test_a_rehearsal_runs_every_checks_code_without_a_crash(tmp_path: Path) -> None:
    """--rehearse runs the GPU code paths on the CPU with tiny models: the figures mean nothing
    (a loaded CPU may miss the latency goal, a slow one a time slice), but no check may crash,
    and every command it builds (train, eval, study, report) must be one the CLI accepts."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick", "--rehearse",
                           "--budget-s", "600"], capture_output=True, text=True, timeout=840, check=False)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [c["name"] for c in report["checks"]] == [p.name for p in gc.PLANS if p.default]
    rows = [(c["name"], i) for c in report["checks"] for i in c["items"]]
    crashed = [(name, i["measured"], i["reason"]) for name, i in rows
               if i["what"] in ("the check itself", "the check's process", "the whole check")
               or (i["what"] in ("the command", "study") and i["measured"].startswith("exit status"))]
    assert crashed == []
    assert all(c["items"] for c in report["checks"])
    assert (tmp_path / "study" / "report.html").exists()
    nccl = next(c for c in report["checks"] if c["name"] == "nccl")
    assert nccl["verdict"] == "pass"  # gloo in a rehearsal: the same dnnmeter code as nccl's


def test_predicted_against_measured_pairs_points_and_scores_them() -> None:
    predicted = [{"model": "a", "batch_size": 1, "latency_s": 1.05, "latency_s_low": 0.9, "latency_s_high": 1.2},
                 {"model": "a", "batch_size": 8, "latency_s": 3.0},
                 {"model": "b", "batch_size": 1, "latency_s": 0.5},
                 {"model": "c", "batch_size": 1, "latency_s": 2.0}]  # c: no measurement, left out
    measured = [{"model": "a", "batch_size": 1, "status": "ok", "latency_s_median": 1.0},
                {"model": "a", "batch_size": 8, "status": "ok", "latency_s_median": 4.0},
                {"model": "b", "batch_size": 1, "status": "ok", "latency_s_median": 0.45},
                {"model": "c", "batch_size": 1, "status": "oom", "latency_s_median": None}]
    rows = gc._ratio_rows(predicted, measured)
    assert [(r["model"], r["batch_size"]) for r in rows] == [("a", 1), ("a", 8), ("b", 1)]
    assert [round(r["error"], 4) for r in rows] == [0.05, -0.25, 0.1111]
    scores = gc.prediction_scores(rows)
    assert scores["n"] == 3 and scores["within_10pct"] == 1 / 3 and scores["within_20pct"] == 2 / 3
    assert abs(scores["median_abs_error"] - 0.1111) < 1e-3 and scores["spearman"] == 1.0
    assert gc.prediction_scores([])["spearman"] is None


@pytest.mark.integration
@pytest.mark.slow  # a tiny calibration, bench and deploy on the CPU: about a minute
@pytest.mark.timeout(600)
def test_a_rehearsal_of_predict_and_deploy_runs_their_commands(tmp_path: Path) -> None:
    """The checks a default run leaves out, named with --only: every command they build is one
    the CLI accepts, and each row they judge passes on the CPU's tiny models."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--rehearse", "--only",
                           "predict,deploy", "--budget-s", "400"], capture_output=True, text=True, timeout=540,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [c["name"] for c in report["checks"]] == ["predict", "deploy"]
    judged = {(c["name"], i["what"]): i["verdict"] for c in report["checks"] for i in c["items"]}
    assert judged[("predict", "points compared")] == judged[("deploy", "--export")] == "pass"
    timed = ("predict", "the torchvision zoo predicted")  # a goal in seconds: judged on a GPU's host, not here
    assert [k for k, v in judged.items() if v == "fail" and k != timed] == []
