"""What a measurement ran on: one flat, JSON-serialisable dict stored beside every result.

Reading only: nothing here changes a torch setting (threads, flags, device). GPU details come
from NVML when nvidia-ml-py is installed, otherwise from ``torch.cuda.get_device_properties``
(which has no driver version or clocks; those are then ``None`` with ``gpu_unavailable_reason``).

>>> env = capture_environment("cpu", threads=4)
>>> env["cpu_model"], env["cpu_flags"], env["torch_threads"]  # this machine's  # doctest: +SKIP
('AMD EPYC', ['fma', 'f16c', 'avx', 'avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16'], 2)
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
from datetime import datetime, timezone
from typing import Any

import torch

# The OS's view of the machine lives in dnnmeter.host (no torch: the store names machines with it).
from dnnmeter.host import RELEVANT_CPU_FLAGS, cpu_flags, cpu_model, memory_total_bytes  # noqa: F401 - re-exported
from dnnmeter.host import read_or_empty as _read_or_empty
from dnnmeter.measure.meters.base import MeterError
from dnnmeter.measure.meters.nvml import as_str, import_nvml, nvml_device_for
from dnnmeter.measure.threads import cores_available

GPU_KEYS = (
    "gpu_name", "gpu_driver", "gpu_memory_total_bytes", "gpu_clock_sm_mhz", "gpu_clock_mem_mhz",
    "gpu_clock_sm_max_mhz", "gpu_clock_mem_max_mhz",
)  # fmt: skip


def capture_environment(
    device: str = "cpu",
    threads: int | None = None,
    *,
    cpuinfo_path: str | os.PathLike[str] = "/proc/cpuinfo",
    meminfo_path: str | os.PathLike[str] = "/proc/meminfo",
    nvml: Any = None,
) -> dict[str, Any]:
    """The machine, libraries and settings a measurement on ``device`` runs with.

    ``threads`` is the thread count the caller asked for (stored as given); ``torch_threads`` is
    what torch reports now. ``nvml`` injects a module with pynvml's API (tests).
    """
    cpuinfo = _read_or_empty(cpuinfo_path)
    env: dict[str, Any] = {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "dnnmeter": _version("dnnmeter"),
        "cpu_model": cpu_model(cpuinfo),
        "cpu_flags": cpu_flags(cpuinfo),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_available": cores_available(),
        "memory_total_bytes": memory_total_bytes(meminfo_path),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "threads": threads,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": _cpu_capability(),
        "cuda_available": torch.cuda.is_available(),
        "device": device,
    }
    if device.startswith("cuda"):
        env.update(gpu_environment(_cuda_index(device), nvml))
    return env




def _version(dist: str) -> str | None:
    """Installed version from package metadata: no import, so capturing stays cheap."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None










def _cpu_capability() -> str | None:
    get = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return str(get()) if get is not None else None


def _cuda_index(device: str) -> int:
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else 0


def gpu_environment(cuda_index: int, nvml: Any = None) -> dict[str, Any]:
    """GPU name, driver, memory and clocks: NVML if it answers, else torch's device properties."""
    nv = nvml if nvml is not None else import_nvml()
    env: dict[str, Any] = dict.fromkeys(GPU_KEYS)
    env["cuda_version"] = torch.version.cuda
    reason = "nvidia-ml-py is not installed: pip install nvidia-ml-py" if nv is None else None
    if nv is not None:
        reason = _nvml_gpu_info(nv, cuda_index, env)
    if reason is not None:
        reason = _torch_gpu_info(cuda_index, env, reason)
    if reason is not None:
        env["gpu_unavailable_reason"] = reason
    return env


def _nvml_gpu_info(nv: Any, cuda_index: int, env: dict[str, Any]) -> str | None:
    """Fill ``env`` from NVML; return why it could not, or None."""
    try:
        target = nvml_device_for(cuda_index, os.environ.get("CUDA_VISIBLE_DEVICES"))
        nv.nvmlInit()
    except (MeterError, nv.NVMLError) as err:
        return f"NVML: {err}"
    try:
        if isinstance(target, str):
            handle = nv.nvmlDeviceGetHandleByUUID(target)
        else:
            handle = nv.nvmlDeviceGetHandleByIndex(target)
        env["gpu_name"] = as_str(nv.nvmlDeviceGetName(handle))
        env["gpu_driver"] = as_str(nv.nvmlSystemGetDriverVersion())
        env["gpu_memory_total_bytes"] = int(nv.nvmlDeviceGetMemoryInfo(handle).total)
        _nvml_clocks(nv, handle, env)
    except nv.NVMLError as err:
        return f"NVML: {err}"
    finally:
        nv.nvmlShutdown()
    return None


def _nvml_clocks(nv: Any, handle: Any, env: dict[str, Any]) -> None:
    """Current clocks (what the GPU runs at now, idle or throttled) and their maxima."""
    for key, clock in (("sm", nv.NVML_CLOCK_SM), ("mem", nv.NVML_CLOCK_MEM)):
        try:
            env[f"gpu_clock_{key}_mhz"] = int(nv.nvmlDeviceGetClockInfo(handle, clock))
            env[f"gpu_clock_{key}_max_mhz"] = int(nv.nvmlDeviceGetMaxClockInfo(handle, clock))
        except nv.NVMLError:
            pass  # some GPUs (and vGPUs) hide clocks; leave them None rather than fail the capture


def _torch_gpu_info(cuda_index: int, env: dict[str, Any], nvml_reason: str) -> str | None:
    """Fill name and memory from torch; driver and clocks stay None. Return the remaining reason."""
    if not torch.cuda.is_available():
        return f"CUDA is not available to torch; {nvml_reason}"
    try:
        props = torch.cuda.get_device_properties(cuda_index)
    except (RuntimeError, AssertionError) as err:
        return f"torch could not read cuda:{cuda_index}: {err}; {nvml_reason}"
    env["gpu_name"] = props.name
    env["gpu_memory_total_bytes"] = int(props.total_memory)
    return f"driver and clocks need NVML; {nvml_reason}"
