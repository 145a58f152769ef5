"""Which machine a row was measured on: its host name, and its hardware and software identity.

``machine_id()`` is the host name that goes into measurement keys (unchanged since schema 1,
so stores resume). :class:`MachineIdentity` is the fuller identity kept in the ``machines``
table: its ``fingerprint`` tells apart two machines that share a host name (containers, a
reinstalled box) and lets a report compare machines side by side.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from dnnmeter import host
from dnnmeter._serial import Record


def machine_id() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class MachineIdentity(Record):
    hostname: str
    cpu_model: str | None = None
    cpu_cores: int | None = None  # logical cores of the machine, not of this process's affinity
    memory_total_bytes: int | None = None
    gpu_name: str | None = None  # "NVIDIA H100 80GB HBM3", "2 x NVIDIA L4"; None: no NVIDIA GPU seen
    os: str | None = None
    python: str | None = None
    torch: str | None = None

    _derived: ClassVar[tuple[str, ...]] = ("fingerprint",)

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming this exact identity (every field counts)."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def columns(self) -> dict[str, Any]:
        """The ``machines`` table's row for this identity."""
        return {"fingerprint": self.fingerprint, **asdict(self)}

    @classmethod
    def from_environment(cls, environment: dict[str, Any], hostname: str | None = None) -> MachineIdentity:
        """The identity a captured environment (:func:`dnnmeter.measure.environment.capture_environment`)
        describes: for rows measured elsewhere, e.g. on a cluster's worker."""
        return cls(hostname=hostname or environment.get("hostname") or "unknown",
                   cpu_model=environment.get("cpu_model"), cpu_cores=environment.get("cpu_cores_logical"),
                   memory_total_bytes=environment.get("memory_total_bytes"), gpu_name=environment.get("gpu_name"),
                   os=environment.get("os"), python=environment.get("python"), torch=environment.get("torch"))


def _gpu_label(names: list[str]) -> str | None:
    if not names:
        return None
    if len(set(names)) == 1:
        return names[0] if len(names) == 1 else f"{len(names)} x {names[0]}"
    return " + ".join(names)


@functools.lru_cache(maxsize=1)
def _hardware_and_software() -> tuple[Any, ...]:
    """What does not change while a process runs; read once (no torch import: package metadata)."""
    try:
        torch_version: str | None = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return (host.cpu_model(host.read_or_empty("/proc/cpuinfo")), os.cpu_count(), host.memory_total_bytes(),
            _gpu_label(host.gpu_names()), platform.platform(), platform.python_version(), torch_version)


def this_machine(environment: dict[str, Any] | None = None) -> MachineIdentity:
    """This machine's identity. A measurement's ``environment`` fills the GPU name where the
    driver's listing has none (a GPU seen by CUDA only)."""
    cpu, cores, memory, gpu, system, python, torch_version = _hardware_and_software()
    if gpu is None and environment:
        gpu = environment.get("gpu_name")
    return MachineIdentity(hostname=machine_id(), cpu_model=cpu, cpu_cores=cores, memory_total_bytes=memory,
                           gpu_name=gpu, os=system, python=python, torch=torch_version)
