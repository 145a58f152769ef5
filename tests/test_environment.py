"""Environment capture: parsed from fake /proc files, JSON-serialisable, and read-only for torch."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from dnnmeter.measure import environment
from dnnmeter.measure.environment import capture_environment, cpu_flags, cpu_model, gpu_environment

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 fma f16c avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 hypervisor

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes crc32 asimddp sve i8mm bf16
CPU implementer\t: 0x41
"""

MEMINFO = "MemTotal:       16318480 kB\nMemFree:         1000000 kB\n"

KEYS = {
    "time_utc", "hostname", "os", "python", "torch", "torchvision", "dnnmeter", "cpu_model",
    "cpu_flags", "cpu_cores_logical", "cpu_cores_available", "memory_total_bytes", "torch_threads",
    "torch_interop_threads", "threads", "mkldnn", "cpu_capability", "cuda_available", "device",
}  # fmt: skip


@pytest.fixture
def proc(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "cpuinfo").write_text(X86_CPUINFO)
    (tmp_path / "meminfo").write_text(MEMINFO)
    return {"cpuinfo_path": tmp_path / "cpuinfo", "meminfo_path": tmp_path / "meminfo"}


def test_keys_present_and_json_serialisable(proc: dict[str, Path]) -> None:
    env = capture_environment("cpu", threads=3, **proc)
    assert KEYS <= env.keys()
    assert json.loads(json.dumps(env)) == env
    assert env["threads"] == 3 and env["device"] == "cpu"
    assert env["torch"] == torch.__version__
    assert env["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert env["memory_total_bytes"] == 16318480 * 1024
    assert env["time_utc"].endswith("+00:00")


def test_cpu_flags_relevant_subset_in_fixed_order() -> None:
    assert cpu_flags(X86_CPUINFO) == [
        "fma", "f16c", "avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16",
        "amx_tile", "amx_bf16", "amx_int8",
    ]  # fmt: skip
    assert cpu_flags(ARM_CPUINFO) == ["asimd", "asimddp", "bf16", "i8mm", "sve"]
    assert cpu_flags("") == []


def test_cpu_model_falls_back_to_platform() -> None:
    assert cpu_model(ARM_CPUINFO) == (platform.processor() or None)


def test_missing_proc_files_fall_back(tmp_path: Path) -> None:
    env = capture_environment(cpuinfo_path=tmp_path / "none", meminfo_path=tmp_path / "none")
    assert env["cpu_flags"] == []
    assert env["memory_total_bytes"] is None or env["memory_total_bytes"] > 0


def test_capture_does_not_change_torch_threads(proc: dict[str, Path]) -> None:
    before = torch.get_num_threads(), torch.get_num_interop_threads()
    env = capture_environment("cpu", threads=1, **proc)
    assert (torch.get_num_threads(), torch.get_num_interop_threads()) == before
    assert env["torch_threads"] == before[0]


@pytest.mark.integration
def test_capture_leaves_interop_threads_settable() -> None:
    """torch refuses set_num_interop_threads once the pool exists; capture must not create it."""
    code = (
        "import torch\n"
        "from dnnmeter.measure.environment import capture_environment\n"
        "capture_environment()\n"
        "torch.set_num_interop_threads(1)\n"
        "print(torch.get_num_interop_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


class FakeNvml:
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    class NVMLError(Exception):
        pass

    def __init__(self, fail_init: bool = False) -> None:
        self.fail_init = fail_init

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        return index

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return "NVIDIA A100-SXM4-40GB"

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        return type("Memory", (), {"total": 42_949_672_960})()

    def nvmlDeviceGetClockInfo(self, handle: Any, clock: int) -> int:
        return {1: 210, 2: 1215}[clock]

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, clock: int) -> int:
        return {1: 1410, 2: 1215}[clock]


def test_gpu_fields_from_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = gpu_environment(0, FakeNvml())
    assert env["gpu_name"] == "NVIDIA A100-SXM4-40GB"
    assert env["gpu_driver"] == "550.54.15"
    assert env["gpu_memory_total_bytes"] == 42_949_672_960
    assert (env["gpu_clock_sm_mhz"], env["gpu_clock_sm_max_mhz"]) == (210, 1410)
    assert env["gpu_clock_mem_mhz"] == 1215
    assert env["cuda_version"] == torch.version.cuda
    assert "gpu_unavailable_reason" not in env


def test_gpu_fields_none_with_reason_without_nvml_or_cuda(
    monkeypatch: pytest.MonkeyPatch, proc: dict[str, Path]
) -> None:
    monkeypatch.setattr(environment.torch.cuda, "is_available", lambda: False)
    env = capture_environment("cuda:0", nvml=FakeNvml(fail_init=True), **proc)
    assert env["gpu_name"] is None and env["gpu_clock_sm_mhz"] is None
    assert env["gpu_unavailable_reason"] == "CUDA is not available to torch; NVML: Driver Not Loaded"
    assert json.loads(json.dumps(env)) == env
