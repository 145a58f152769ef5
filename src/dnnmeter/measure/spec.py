"""What one measurement is asked to do (:class:`BenchSpec`), and the names both sides share.

The parent (runner.py) writes a BenchSpec as JSON to a worker process (worker.py), which
measures it with point.py. Both import this module, which imports torch only where a
torch object is needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.timing import TimingSettings
from dnnmeter.names import BENCH_DTYPES

if TYPE_CHECKING:
    import torch

# A worker prints one line with this prefix per measured point.
RESULT_PREFIX = "DNNMETER-RESULT "

# Called with each BenchResult as soon as its point is measured.
Emit = Callable[[BenchResult], Any]


@dataclass
class BenchSpec:
    """Everything a worker needs to measure one model; JSON round-trips it to the worker."""

    model: str
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = (1,)
    threads: int | None = None
    dtype: str = "float32"
    input_size: tuple[int, ...] | None = None
    inputs: tuple[str, ...] = ()  # --input specs (analysis.inputs grammar); their batch is each point's
    timing: TimingSettings = field(default_factory=TimingSettings)
    idle_s: float = 1.0  # how long idle power is read, where a meter exists
    min_energy_window_s: float = 1.0  # NVML counters move every 10-100 ms; some GPUs average over 1 s
    cudnn_benchmark: bool = False
    heap: str = "steady"  # dnnmeter.measure.heap: glibc's thresholds pinned, or "glibc" as glibc leaves them

    def __post_init__(self) -> None:
        # Ascending, so that an out-of-memory can skip every larger batch size.
        self.batch_sizes = tuple(sorted(set(self.batch_sizes)))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchSpec:
        raw = json.loads(text)
        raw["timing"] = TimingSettings(**raw["timing"])
        raw["batch_sizes"] = tuple(raw["batch_sizes"])
        raw["input_size"] = tuple(raw["input_size"]) if raw["input_size"] else None
        raw["inputs"] = tuple(raw.get("inputs") or ())
        return cls(**raw)


def torch_dtype(name: str, allowed: Sequence[str] = BENCH_DTYPES) -> torch.dtype:
    """``torch.<name>`` for a dtype name in ``allowed`` (dnnmeter.names holds the tables).

    Raises InvalidInputError naming the allowed names otherwise."""
    if name not in allowed:
        raise InvalidInputError(f"bad dtype {name!r}: choose one of {', '.join(allowed)}")
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype), name
    return dtype


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype a benchmark runs in."""
    return torch_dtype(name)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text
    )
