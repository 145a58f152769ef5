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
>>> reading = meter.measure(lambda: model(x), min_window_s=1.0)
>>> reading.energy_j_per_call          # None, with reading.unavailable_reason, if no meter
"""

from __future__ import annotations

import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dnnmeter.errors import DnnmeterError, InvalidInputError

RAPL_ROOT = "/sys/class/powercap"

# Counters advance in steps (RAPL about every 1 ms, NVML's energy counter and power readings every
# ~10-100 ms, and many GPUs report power averaged over up to 1 s). A window only a few steps long
# reads zero or one whole step, so the relative error is step / window; one second keeps it small.
DEFAULT_MIN_WINDOW_S = 1.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class MeterError(DnnmeterError):
    """A power meter failed while measuring (a vendor call failed, stop before start, ...)."""


@dataclass
class EnergyReading:
    """Energy over one measurement window, in joules, seconds and watts.

    ``energy_j`` covers the whole window, i.e. all ``calls`` of the measured function;
    ``power_w`` is the time-weighted mean (``energy_j / duration_s``). Both are ``None`` when
    the meter could not measure, with ``unavailable_reason`` saying why; they are never 0 for
    "unknown". ``samples`` counts the readings taken (two counter reads, or the power samples).
    """

    energy_j: float | None
    duration_s: float
    power_w: float | None
    source: str
    sampling: str
    samples: int
    calls: int = 1
    unavailable_reason: str | None = None

    @property
    def energy_j_per_call(self) -> float | None:
        """Energy of one call of the measured function (divide by batch size for per image)."""
        if self.energy_j is None or self.calls <= 0:
            return None
        return self.energy_j / self.calls


def _reading(
    energy_j: float | None, duration_s: float, source: str, sampling: str, samples: int
) -> EnergyReading:
    """A reading whose mean power is derived from energy and duration, defined once."""
    power = energy_j / duration_s if energy_j is not None and duration_s > 0 else None
    return EnergyReading(energy_j, duration_s, power, source, sampling, samples)


def _unmeasured(source: str, sampling: str, duration_s: float, reason: str) -> EnergyReading:
    return EnergyReading(None, duration_s, None, source, sampling, 0, unavailable_reason=reason)


class PowerMeter(ABC):
    """A device's energy meter: ``start()``, do the work, ``stop()`` -> :class:`EnergyReading`.

    Subclasses set ``name`` (e.g. ``"nvml:0"``), ``available`` and ``unavailable_reason``,
    ``clock`` (for window lengths) and ``sleep`` (for idle power).
    """

    name: str = "none"
    available: bool = False
    unavailable_reason: str | None = None
    clock: Clock = staticmethod(time.perf_counter)  # type: ignore[assignment]
    sleep: Sleep = staticmethod(time.sleep)  # type: ignore[assignment]

    @abstractmethod
    def start(self) -> None:
        """Begin a window. Raises :class:`MeterError` when the meter is unavailable."""

    @abstractmethod
    def stop(self) -> EnergyReading:
        """End the window begun by :meth:`start` and return its reading."""

    def close(self) -> None:
        """Release the vendor library (NVML). Safe to call more than once."""

    def measure(self, fn: Callable[[], None], min_window_s: float = DEFAULT_MIN_WINDOW_S) -> EnergyReading:
        """Call ``fn`` repeatedly until the window lasts at least ``min_window_s``; one reading.

        Repeating is needed because a single forward pass often takes a few milliseconds, less
        than one update of the counter, and would read zero energy (see ``DEFAULT_MIN_WINDOW_S``).
        ``fn`` must finish its work before returning: on a GPU, end it with
        ``torch.cuda.synchronize()``, or the window closes while kernels are still queued.
        ``reading.calls`` says how many times ``fn`` ran.
        """
        if min_window_s < 0:
            raise InvalidInputError(f"min_window_s must be >= 0, got {min_window_s}")
        self.start()
        t0 = self.clock()
        calls = 0
        try:
            while True:
                fn()
                calls += 1
                if self.clock() - t0 >= min_window_s:
                    break
        except BaseException:
            self._abandon()
            raise
        reading = self.stop()
        reading.calls = calls
        return reading

    def idle_power_w(self, seconds: float) -> float | None:
        """Mean power while this process sleeps for ``seconds``: the baseline for energy above idle.

        Other processes keep running, so this is the machine's idle draw as it is, not zero load.
        """
        self.start()
        try:
            self.sleep(seconds)
        except BaseException:
            self._abandon()
            raise
        return self.stop().power_w

    def _abandon(self) -> None:
        """Close a window after a failure without masking the original error."""
        try:
            self.stop()
        except MeterError:
            pass

    def __repr__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.unavailable_reason}"
        return f"{type(self).__name__}({self.name!r}, {state})"


class NullMeter(PowerMeter):
    """No meter: every reading is ``None`` with ``reason``. Lets everything run without hardware."""

    def __init__(self, reason: str) -> None:
        self.name = "none"
        self.available = False
        self.unavailable_reason = reason
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = self.clock()

    def stop(self) -> EnergyReading:
        duration = self.clock() - self._t0 if self._t0 is not None else 0.0
        self._t0 = None
        return _unmeasured("none", "none", duration, self.unavailable_reason or "no power meter")

    def measure(self, fn: Callable[[], None], min_window_s: float = DEFAULT_MIN_WINDOW_S) -> EnergyReading:
        """Returns at once without calling ``fn`` (``calls == 0``): there is nothing to measure,
        and running the model for ``min_window_s`` would only cost time."""
        reading = _unmeasured("none", "none", 0.0, self.unavailable_reason or "no power meter")
        reading.calls = 0
        return reading

    def idle_power_w(self, seconds: float) -> float | None:
        return None  # nothing to read, so no reason to sleep


# ---------------------------------------------------------------------------------------- RAPL

# Package-level domains only: "intel-rapl:0" (AMD Zen CPUs appear under the same name). Sub-domains
# ("intel-rapl:0:0", core/uncore/dram) have a second colon and are parts of a package or outside it;
# "intel-rapl-mmio:0" repeats package 0 through another interface. Counting them would double count.
_PACKAGE_DIR = re.compile(r"^[a-z]+(?:-[a-z]+)*-rapl:(\d+)$")


def _read_text(path: Path) -> str:
    return path.read_text()


@dataclass
class _RaplDomain:
    label: str  # "package-0"
    energy_path: Path
    max_range_uj: int


def _package_dirs(root: Path) -> list[Path]:
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    dirs = [p for p in entries if _PACKAGE_DIR.match(p.name)]
    return sorted(dirs, key=lambda p: (p.name.split(":")[0], int(p.name.split(":")[1])))


def _read_failure(path: Path, err: OSError) -> str:
    if isinstance(err, PermissionError):
        pattern = path.parent.parent / "*-rapl:*" / path.name
        return (
            f"permission denied reading {path}; run as root or `sudo chmod o+r {pattern}` "
            "(Linux has restricted RAPL to root since 2020)"
        )
    return f"cannot read {path}: {err.strerror or err}"


class RaplMeter(PowerMeter):
    """Energy of all CPU packages from Linux RAPL counters (``energy_uj``, microjoules).

    Every ``*-rapl:N`` package domain under ``root`` is summed; ``psys`` (whole platform) is
    skipped because it contains the packages. The counters cover every core and the uncore, so
    other processes' work is included: measure on a quiet machine and subtract idle power.
    Wrap-around is corrected once per window using ``max_energy_range_uj``; a window longer than
    one full wrap (minutes to hours, depending on power) cannot be told apart and is not supported.

    ``read`` and ``clock`` are injectable for tests.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = RAPL_ROOT,
        *,
        clock: Clock = time.perf_counter,
        sleep: Sleep = time.sleep,
        read: Callable[[Path], str] = _read_text,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self._read = read
        self._root = Path(root)
        self._start: tuple[float, list[int]] | None = None
        self.domains: list[_RaplDomain] = []
        self.unavailable_reason = self._discover()
        self.available = self.unavailable_reason is None
        labels = "+".join(d.label for d in self.domains)
        self.name = f"rapl:{labels}" if labels else "rapl"

    def _discover(self) -> str | None:
        """Fill ``self.domains``; return why the meter cannot be used, or None."""
        dirs = _package_dirs(self._root)
        if not dirs:
            return f"no RAPL domains under {self._root}"
        for d in dirs:
            label = self._label(d)
            if not label.startswith("package"):
                continue
            values: list[int] = []
            for path in (d / "max_energy_range_uj", d / "energy_uj"):
                try:
                    values.append(int(self._read(path)))
                except OSError as err:
                    return _read_failure(path, err)
                except ValueError as err:
                    return f"unexpected contents in {path}: {err}"
            self.domains.append(_RaplDomain(label, d / "energy_uj", values[0]))
        if not self.domains:
            return f"no RAPL package domains under {self._root} (only {', '.join(p.name for p in dirs)})"
        return None

    def _label(self, d: Path) -> str:
        """The domain's name file ("package-0"); falls back to the directory's index."""
        try:
            return self._read(d / "name").strip()
        except OSError:  # name is world-readable; if not, assume a package like the dir says
            return f"package-{d.name.split(':')[1]}"

    def _counters(self) -> list[int]:
        values = []
        for dom in self.domains:
            try:
                values.append(int(self._read(dom.energy_path)))
            except OSError as err:
                raise MeterError(_read_failure(dom.energy_path, err)) from err
        return values

    def start(self) -> None:
        if not self.available:
            raise MeterError(f"RAPL meter is unavailable: {self.unavailable_reason}")
        counters = self._counters()  # read before the clock so the read's cost is outside the window
        self._start = (self.clock(), counters)

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise MeterError("RaplMeter.stop() called before start()")
        t0, before = self._start
        after = self._counters()
        duration = self.clock() - t0
        self._start = None
        delta_uj = sum(
            _counter_delta(b, a, dom.max_range_uj) for b, a, dom in zip(before, after, self.domains)
        )
        sampling = "total-energy counter (RAPL energy_uj)"
        if delta_uj == 0:
            reason = f"RAPL counters did not advance in {duration:.4f} s; measure a longer window"
            return _unmeasured(self.name, sampling, duration, reason)
        return _reading(delta_uj / 1e6, duration, self.name, sampling, 2)


def _counter_delta(before: int, after: int, max_range: int) -> int:
    """Difference of a counter that wraps to 0 after ``max_range`` (at most one wrap)."""
    return after - before if after >= before else after + max_range - before


def rapl_is_available(root: str | os.PathLike[str] = RAPL_ROOT) -> bool:
    """True when every RAPL package counter under ``root`` is readable by this process."""
    return RaplMeter(root).available


# ---------------------------------------------------------------------------------------- NVML

_NVML_MISSING = "nvidia-ml-py is not installed: pip install nvidia-ml-py"


def _import_nvml() -> ModuleType | None:
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
        self._nvml = nvml if nvml is not None else _import_nvml()
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
            self.gpu_name = _as_str(nv.nvmlDeviceGetName(self._handle))
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
        if self._start_counter is None:
            raise MeterError("NvmlMeter.stop() called before start()")
        t0, before = self._start_counter
        self._start_counter = None
        after = self._call("nvmlDeviceGetTotalEnergyConsumption")
        duration = self.clock() - t0
        if after == before:
            reason = f"NVML energy counter did not advance in {duration:.4f} s; measure a longer window"
            return _unmeasured(self.name, self.sampling, duration, reason)
        return _reading((after - before) / 1000.0, duration, self.name, self.sampling, 2)

    def _stop_sampler(self) -> EnergyReading:
        if self._sampler is None:
            raise MeterError("NvmlMeter.stop() called before start()")
        sampler, self._sampler = self._sampler, None
        samples = sampler.stop()
        duration = samples[-1][0] - samples[0][0]
        return _reading(trapezoid_j(samples), duration, self.name, self.sampling, len(samples))

    def close(self) -> None:
        """Shut NVML down (it counts inits, so other users in this process are unaffected)."""
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # nothing useful to do while releasing


def _as_str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def nvml_is_available() -> bool:
    """True when nvidia-ml-py is installed and NVML initialises (a driver is loaded)."""
    nv = _import_nvml()
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


class FakeClock:
    """A clock for tests: time moves only when told (``advance`` or ``sleep``)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    sleep = advance


class FakeMeter(PowerMeter):
    """A meter whose energy is the exact integral of ``power_w`` over the fake ``clock``.

    ``power_w`` is watts, constant or a function of the clock's time. ``sleep`` defaults to the
    clock's own ``sleep`` (as :class:`FakeClock` has), so :meth:`idle_power_w` takes no real time.
    """

    def __init__(
        self, power_w: float | Callable[[float], float], clock: Clock, sleep: Sleep | None = None
    ) -> None:
        self.name = "fake"
        self.available = True
        self.unavailable_reason = None
        self.clock = clock
        self.sleep = sleep or getattr(clock, "sleep", time.sleep)
        self._power_w = power_w
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = self.clock()

    def stop(self) -> EnergyReading:
        if self._t0 is None:
            raise MeterError("FakeMeter.stop() called before start()")
        t0, t1 = self._t0, self.clock()
        self._t0 = None
        return _reading(self._integral(t0, t1), t1 - t0, "fake", "fake: exact integral", 2)

    def _integral(self, t0: float, t1: float) -> float:
        if not callable(self._power_w):
            return self._power_w * (t1 - t0)
        return _simpson(self._power_w, t0, t1)


def _simpson(f: Callable[[float], float], a: float, b: float, n: int = 1000) -> float:
    """Composite Simpson's rule; exact for polynomials up to degree three."""
    h = (b - a) / n
    inner = sum((4 if i % 2 else 2) * f(a + i * h) for i in range(1, n))
    return h / 3 * (f(a) + inner + f(b))


# ---------------------------------------------------------------------------------------- choice


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
