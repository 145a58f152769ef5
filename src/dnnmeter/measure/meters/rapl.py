"""Linux RAPL: the CPU packages' energy counters under /sys/class/powercap."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnnmeter.measure.meters.base import (
    RAPL_ROOT,
    Clock,
    EnergyReading,
    MeterError,
    PowerMeter,
    Sleep,
    reading_from_counter,
)

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
        t0, before = self._started(self._start)
        after = self._counters()
        duration = self.clock() - t0
        self._start = None
        delta_uj = sum(
            _counter_delta(b, a, dom.max_range_uj) for b, a, dom in zip(before, after, self.domains)
        )
        sampling = "total-energy counter (RAPL energy_uj)"
        return reading_from_counter(delta_uj / 1e6, duration, self.name, sampling, "RAPL counters")


def _counter_delta(before: int, after: int, max_range: int) -> int:
    """Difference of a counter that wraps to 0 after ``max_range`` (at most one wrap)."""
    return after - before if after >= before else after + max_range - before


def rapl_is_available(root: str | os.PathLike[str] = RAPL_ROOT) -> bool:
    """True when every RAPL package counter under ``root`` is readable by this process."""
    return RaplMeter(root).available


# ---------------------------------------------------------------------------------------- NVML
