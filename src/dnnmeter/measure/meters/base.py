"""The meter interface: :class:`PowerMeter`, :class:`EnergyReading`, :class:`NullMeter`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dnnmeter.errors import DnnmeterError, InvalidInputError

RAPL_ROOT = "/sys/class/powercap"

# Counters advance in steps (RAPL about every 1 ms, NVML's energy counter and power readings every
# ~10-100 ms, and many GPUs report power averaged over up to 1 s). A window only a few steps long
# reads zero or one whole step, so the relative error is step / window; one second keeps it small.
DEFAULT_MIN_WINDOW_S = 1.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]
T = TypeVar("T")


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


def energy_reading(
    energy_j: float | None, duration_s: float, source: str, sampling: str, samples: int
) -> EnergyReading:
    """A reading whose mean power is derived from energy and duration, defined once."""
    power = energy_j / duration_s if energy_j is not None and duration_s > 0 else None
    return EnergyReading(energy_j, duration_s, power, source, sampling, samples)


def unmeasured_reading(source: str, sampling: str, duration_s: float, reason: str) -> EnergyReading:
    """A reading that could not be taken: energy and power are None, with the reason."""
    return EnergyReading(None, duration_s, None, source, sampling, 0, unavailable_reason=reason)


def reading_from_counter(energy_j: float, duration_s: float, source: str, sampling: str,
                         counter: str) -> EnergyReading:
    """A total-energy counter's reading over one window (read at start and stop). A counter that
    did not advance means a window shorter than its update: no figure, with that reason, not 0 J."""
    if energy_j == 0:
        reason = f"{counter} did not advance in {duration_s:.4f} s; measure a longer window"
        return unmeasured_reading(source, sampling, duration_s, reason)
    return energy_reading(energy_j, duration_s, source, sampling, 2)


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

    def _started(self, kept: T | None) -> T:
        """What :meth:`start` kept for :meth:`stop`; a stop without a start is refused."""
        if kept is None:
            raise MeterError(f"{type(self).__name__}.stop() called before start()")
        return kept

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
        return unmeasured_reading("none", "none", duration, self.unavailable_reason or "no power meter")

    def measure(self, fn: Callable[[], None], min_window_s: float = DEFAULT_MIN_WINDOW_S) -> EnergyReading:
        """Returns at once without calling ``fn`` (``calls == 0``): there is nothing to measure,
        and running the model for ``min_window_s`` would only cost time."""
        reading = unmeasured_reading("none", "none", 0.0, self.unavailable_reason or "no power meter")
        reading.calls = 0
        return reading

    def idle_power_w(self, seconds: float) -> float | None:
        return None  # nothing to read, so no reason to sleep


# ---------------------------------------------------------------------------------------- RAPL

# Package-level domains only: "intel-rapl:0" (AMD Zen CPUs appear under the same name). Sub-domains
# ("intel-rapl:0:0", core/uncore/dram) have a second colon and are parts of a package or outside it;
