"""The machine itself, read from the operating system: CPU model and flags, memory, GPU names.

Nothing here imports torch, so the results store can name the machine a row comes from at no
start-up cost; :mod:`dnnmeter.measure.environment` builds a measurement's full environment on
these and adds torch's view (threads, CUDA).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# Flags that decide which kernels oneDNN / torch can use, in the order they are reported.
# x86: AVX2/AVX-512 widths, VNNI (int8 dot products), BF16 and AMX (matrix tiles); ARM: NEON
# ("asimd" in /proc/cpuinfo on aarch64), dot products and SVE.
RELEVANT_CPU_FLAGS = (
    "fma", "f16c", "avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
    "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
    "neon", "asimd", "asimddp", "asimdhp", "bf16", "i8mm", "sve", "sve2",
)  # fmt: skip

NVIDIA_GPUS = "/proc/driver/nvidia/gpus"


def read_or_empty(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""  # not Linux, or hidden in a sandbox: the fallbacks take over


def cpuinfo_field(cpuinfo: str, *keys: str) -> str | None:
    """Value of the first line whose key is one of ``keys`` (first CPU only)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in keys:
            return value.strip()
    return None


def cpu_model(cpuinfo: str) -> str | None:
    """The CPU's marketing name from /proc/cpuinfo, else ``platform.processor()``."""
    name = cpuinfo_field(cpuinfo, "model name", "Model", "Hardware")
    return name or platform.processor() or None


def cpu_flags(cpuinfo: str) -> list[str]:
    """The relevant subset of the CPU's flags (x86 "flags", ARM "Features"), in a fixed order."""
    present = set((cpuinfo_field(cpuinfo, "flags", "Features") or "").split())
    return [flag for flag in RELEVANT_CPU_FLAGS if flag in present]


def memory_total_bytes(meminfo_path: str | os.PathLike[str] = "/proc/meminfo") -> int | None:
    """Physical memory from /proc/meminfo (``MemTotal`` in kB), else ``os.sysconf``."""
    value = cpuinfo_field(read_or_empty(meminfo_path), "MemTotal")
    if value and value.split()[0].isdigit():
        return int(value.split()[0]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def gpu_names(root: str | os.PathLike[str] = NVIDIA_GPUS) -> list[str]:
    """The NVIDIA GPUs' names as the driver lists them (no CUDA, no NVML); [] where there is none."""
    folder = Path(root)
    if not folder.is_dir():
        return []
    names = (cpuinfo_field(read_or_empty(gpu / "information"), "Model") for gpu in sorted(folder.iterdir()))
    return [name for name in names if name]
