"""NVIDIA GPUs through NVML: the total-energy counter, or sampled power where there is none."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.meters.base import (
    Clock,
    EnergyReading,
    MeterError,
    PowerMeter,
    Sleep,
    energy_reading,
    reading_from_counter,
)

_NVML_MISSING = "nvidia-ml-py is not installed: pip install nvidia-ml-py"


def import_nvml() -> ModuleType | None:
    """The pynvml module (nvidia-ml-py), or None when it is not installed."""
    try:
        import pynvml  # nvidia-ml-py's module name
    except ImportError:
        return None
    return pynvml


def trapezoid_j(samples: Sequence[tuple[float, float]]) -> float:
    """Energy in joules from ``(time_s, power_w)`` samples by the trapezoid rule."""
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:]))


class _PowerSampler:
    """Reads power on a background thread every ``period_s``; ``stop()`` returns the samples.

    ``start()`` and ``stop()`` each take one sample themselves, so the window's ends are always
    sampled, whatever the thread managed in between.
    """

    def __init__(self, read_power_w: Callable[[], float], clock: Clock, period_s: float) -> None:
        self._read_power_w = read_power_w
        self._clock = clock
        self._period_s = period_s
        self._samples: list[tuple[float, float]] = []
        self._error: MeterError | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        self._samples.append((self._clock(), self._read_power_w()))

    def start(self) -> None:
        self._samples, self._error = [], None
        self._done.clear()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="dnnmeter-power-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._period_s):
            try:
                self.sample()
            except MeterError as err:  # surfaced by stop(); a thread cannot raise to the caller
                self._error = err
                return

    def stop(self) -> list[tuple[float, float]]:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        self.sample()
        return list(self._samples)


class NvmlMeter(PowerMeter):
    """Energy of one NVIDIA GPU through NVML.

    ``index`` is NVML's device index, or a device UUID string (see :func:`nvml_device_for` for
    mapping a ``cuda:N`` index). The total-energy counter (millijoules since driver load; Volta
    and newer) is used when the GPU supports it; otherwise power (milliwatts) is sampled at
    ``sample_hz`` on a thread and integrated with the trapezoid rule. ``reading.sampling`` says
    which. ``nvml`` injects a module with pynvml's API (tests pass a fake).
    """

    def __init__(
        self,
        index: int | str = 0,
        sample_hz: float = 10.0,
        *,
        nvml: Any = None,
        clock: Clock = time.perf_counter,
        sleep: Sleep = time.sleep,
    ) -> None:
        if sample_hz <= 0:
            raise InvalidInputError(f"sample_hz must be > 0, got {sample_hz}")
        self.clock, self.sleep = clock, sleep
        self.sample_hz = sample_hz
        self.name = f"nvml:{index}"
        self.gpu_name: str | None = None
        self.uses_counter = False
        self._index = index
        self._nvml = nvml if nvml is not None else import_nvml()
        self._handle: Any = None
        self._initialised = False
        self._start_counter: tuple[float, int] | None = None
        self._sampler: _PowerSampler | None = None
        self.unavailable_reason = _NVML_MISSING if self._nvml is None else self._open()
        self.available = self.unavailable_reason is None

    def _open(self) -> str | None:
        """Initialise NVML and pick the energy method; return why it cannot be used, or None."""
        nv = self._nvml
        try:
            nv.nvmlInit()
            self._initialised = True
            self._handle = self._get_handle()
            self.gpu_name = as_str(nv.nvmlDeviceGetName(self._handle))
        except nv.NVMLError as err:
            self.close()
            return f"NVML could not open GPU {self._index}: {err}"
        self.uses_counter = self._counter_supported()
        if not self.uses_counter:
            try:
                nv.nvmlDeviceGetPowerUsage(self._handle)
            except nv.NVMLError as err:
                self.close()
                return f"GPU {self._index} ({self.gpu_name}) reports neither energy nor power: {err}"
        return None

    def _get_handle(self) -> Any:
        if isinstance(self._index, str):
            return self._nvml.nvmlDeviceGetHandleByUUID(self._index)
        return self._nvml.nvmlDeviceGetHandleByIndex(self._index)

    def _counter_supported(self) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError:  # NotSupported before Volta; anything else: fall back too
            return False
        return True

    @property
    def sampling(self) -> str:
        if self.uses_counter:
            return "total-energy counter (nvmlDeviceGetTotalEnergyConsumption)"
        return f"sampled power at {self.sample_hz:g} Hz (nvmlDeviceGetPowerUsage, trapezoid rule)"

    def _call(self, fn_name: str) -> int:
        """One NVML reading on our handle; vendor errors become MeterError."""
        try:
            return int(getattr(self._nvml, fn_name)(self._handle))
        except self._nvml.NVMLError as err:
            raise MeterError(f"NVML {fn_name} failed on GPU {self._index}: {err}") from err

    def sm_clock_mhz(self) -> int | None:
        """The SM clock now, or None where NVML does not say: recorded beside a timing, since
        a GPU's clock under a light load decides its latency as much as the model does."""
        if not self.available:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetClockInfo(self._handle, self._nvml.NVML_CLOCK_SM))
        except (self._nvml.NVMLError, AttributeError):
            return None

    def _power_w(self) -> float:
        return self._call("nvmlDeviceGetPowerUsage") / 1000.0

    def start(self) -> None:
        if not self.available:
            raise MeterError(f"NVML meter is unavailable: {self.unavailable_reason}")
        if self.uses_counter:
            counter = self._call("nvmlDeviceGetTotalEnergyConsumption")
            self._start_counter = (self.clock(), counter)
        else:
            self._sampler = _PowerSampler(self._power_w, self.clock, 1.0 / self.sample_hz)
            self._sampler.start()

    def stop(self) -> EnergyReading:
        if self.uses_counter:
            return self._stop_counter()
        return self._stop_sampler()

    def _stop_counter(self) -> EnergyReading:
        t0, before = self._started(self._start_counter)
        self._start_counter = None
        after = self._call("nvmlDeviceGetTotalEnergyConsumption")
        duration = self.clock() - t0
        return reading_from_counter((after - before) / 1000.0, duration, self.name, self.sampling,
                                    "NVML energy counter")

    def _stop_sampler(self) -> EnergyReading:
        sampler, self._sampler = self._started(self._sampler), None
        samples = sampler.stop()
        duration = samples[-1][0] - samples[0][0]
        return energy_reading(trapezoid_j(samples), duration, self.name, self.sampling, len(samples))

    def close(self) -> None:
        """Shut NVML down (it counts inits, so other users in this process are unaffected)."""
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # nothing useful to do while releasing


def as_str(value: str | bytes) -> str:
    """NVML strings as str (older pynvml returns bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def nvml_is_available() -> bool:
    """True when nvidia-ml-py is installed and NVML initialises (a driver is loaded)."""
    nv = import_nvml()
    if nv is None:
        return False
    try:
        nv.nvmlInit()
    except nv.NVMLError:
        return False
    nv.nvmlShutdown()
    return True


def nvml_device_for(cuda_index: int, visible: str | None = None) -> int | str:
    """NVML's index (or UUID) of torch's ``cuda:<cuda_index>``.

    NVML numbers every GPU in the machine; CUDA numbers only those in ``CUDA_VISIBLE_DEVICES``
    (pass its value as ``visible``; None means unset). Entries that are not integers are UUIDs.
    CUDA must order devices by PCI bus as NVML does: set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` on
    machines with different GPU models.
    """
    if visible is None:
        return cuda_index
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if not 0 <= cuda_index < len(entries):
        raise MeterError(f"cuda:{cuda_index} is not in CUDA_VISIBLE_DEVICES={visible!r}")
    entry = entries[cuda_index]
    return int(entry) if entry.isdigit() else entry


# ---------------------------------------------------------------------------------------- fakes

