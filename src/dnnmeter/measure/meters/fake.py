"""Exact, hardware-free meters for tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from dnnmeter.measure.meters.base import (
    Clock,
    EnergyReading,
    PowerMeter,
    Sleep,
    energy_reading,
)


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
        t0, t1 = self._started(self._t0), self.clock()
        self._t0 = None
        return energy_reading(self._integral(t0, t1), t1 - t0, "fake", "fake: exact integral", 2)

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
