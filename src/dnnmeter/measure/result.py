"""What a benchmark returns: one :class:`BenchResult` per model and batch size.

Raw samples are kept; median and percentiles are derived from them. Figures that could not
be measured on this machine are ``None`` with the reason beside them, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from dnnmeter._serial import Record

STATUSES = ("ok", "oom", "error", "skipped")


@dataclass
class BenchResult(Record):
    """Latency, throughput, memory, power and energy of one model at one batch size.

    Latencies are per batch, in seconds; ``latency_s_per_image`` divides the median by the
    batch size. ``energy_j_per_image`` is the total energy per image; the part above idle
    is ``energy_j_per_image_above_idle``.
    """

    model: str
    device: str
    batch_size: int
    input_size: tuple[int, ...]
    dtype: str
    threads: int | None
    status: str = "ok"
    error: str | None = None
    latency_s_median: float | None = None
    latency_s_p10: float | None = None
    latency_s_p90: float | None = None
    latency_s_cold: float | None = None
    samples_s: list[float] = field(default_factory=list)
    iterations_per_sample: int = 1
    latency_s_per_image: float | None = None
    images_per_s: float | None = None
    peak_memory_bytes: int | None = None
    memory_kind: str | None = None
    power_w: float | None = None
    idle_power_w: float | None = None
    energy_j_per_image: float | None = None
    energy_j_per_image_above_idle: float | None = None
    power_source: str | None = None
    power_unavailable_reason: str | None = None
    stable: bool | None = None  # None: no verdict (too few samples, or not measured)
    stable_unknown_reason: str | None = None
    spread: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    _derived: ClassVar[tuple[str, ...]] = ("n_samples",)

    @property
    def n_samples(self) -> int:
        return len(self.samples_s)

    @property
    def heap(self) -> str:
        """The C heap the point was measured with (dnnmeter.measure.heap); glibc for a point
        stored before bench recorded it."""
        from dnnmeter.measure.heap import point_heap

        return point_heap(self.settings)
