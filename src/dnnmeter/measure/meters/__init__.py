"""Power and energy meters behind one small interface.

A :class:`PowerMeter` measures the energy a device draws over a window: ``start()``, run the
work, ``stop()`` returns an :class:`EnergyReading`. Three real back ends and two helpers:

- :class:`RaplMeter`: the CPU packages' energy counters in ``/sys/class/powercap`` (Linux RAPL).
- :class:`NvmlMeter`: an NVIDIA GPU through NVML (``pip install nvidia-ml-py``), using the
  total-energy counter where the GPU has one (Volta and newer) and sampled power otherwise.
- :class:`NullMeter`: no meter on this machine; every figure is ``None`` with the reason, never 0.
- :class:`FakeMeter` and :class:`FakeClock`: exact, hardware-free meters for tests.

:func:`meter_for` picks the meter for a torch device string and never raises because a meter is
missing. Vendor libraries are imported lazily, inside the class, so importing this module needs
neither NVML nor a readable sysfs.

>>> meter = meter_for("cpu")
>>> reading = meter.measure(lambda: model(x), min_window_s=1.0)  # model, x: yours  # doctest: +SKIP
>>> reading.energy_j_per_call          # None, with reading.unavailable_reason, if no meter  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.meters.base import (
    DEFAULT_MIN_WINDOW_S,
    RAPL_ROOT,
    EnergyReading,
    MeterError,
    NullMeter,
    PowerMeter,
)
from dnnmeter.measure.meters.fake import FakeClock, FakeMeter
from dnnmeter.measure.meters.nvml import (
    NvmlMeter,
    nvml_device_for,
    nvml_is_available,
    trapezoid_j,
)
from dnnmeter.measure.meters.rapl import RaplMeter, rapl_is_available

__all__ = [
    "DEFAULT_MIN_WINDOW_S", "RAPL_ROOT", "EnergyReading", "FakeClock", "FakeMeter", "MeterError",
    "NullMeter", "NvmlMeter", "PowerMeter", "RaplMeter", "meter_for", "nvml_device_for",
    "nvml_is_available", "rapl_is_available", "trapezoid_j",
]


def meter_for(device: str, *, rapl_root: str | os.PathLike[str] = RAPL_ROOT, nvml: Any = None) -> PowerMeter:
    """The meter for a torch device string; a :class:`NullMeter` with the reason if there is none.

    ``"cpu"`` -> :class:`RaplMeter`; ``"cuda"``/``"cuda:N"`` -> :class:`NvmlMeter` (honouring
    ``CUDA_VISIBLE_DEVICES``). Raises only for a malformed device string.
    """
    kind, _, index = device.partition(":")
    if kind == "cpu":
        meter: PowerMeter = RaplMeter(rapl_root)
    elif kind == "cuda":
        meter = _cuda_meter(_device_index(device, index), nvml)
    else:
        return NullMeter(f"no power meter for device {device!r}: dnnmeter reads RAPL (cpu) and NVML (cuda)")
    return meter if meter.available else NullMeter(meter.unavailable_reason or "meter unavailable")


def _device_index(device: str, index: str) -> int:
    if not index:
        return 0
    if not index.isdigit():
        raise InvalidInputError(f"malformed device {device!r}; expected cuda or cuda:N, e.g. cuda:0")
    return int(index)


def _cuda_meter(cuda_index: int, nvml: Any) -> PowerMeter:
    try:
        target = nvml_device_for(cuda_index, os.environ.get("CUDA_VISIBLE_DEVICES"))
    except MeterError as err:
        return NullMeter(str(err))
    return NvmlMeter(target, nvml=nvml)

