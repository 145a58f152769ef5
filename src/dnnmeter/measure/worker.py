"""Measure one model over its batch sizes; run as ``python -m dnnmeter.measure.worker``.

The parent (runner.py) starts one worker per model, so a crash or an out-of-memory ends
that model's sweep, not the whole benchmark. The worker reads a JSON spec on stdin and
writes one ``DNNMETER-RESULT {json}`` line per point as soon as it is measured.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.timing import TimingSettings

RESULT_PREFIX = "DNNMETER-RESULT "

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class BenchSpec:
    """Everything a worker needs to measure one model; JSON round-trips it to the worker."""

    model: str
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = (1,)
    threads: int | None = None
    dtype: str = "float32"
    input_size: tuple[int, ...] | None = None
    timing: TimingSettings = field(default_factory=TimingSettings)
    idle_s: float = 1.0  # how long idle power is read, where a meter exists
    min_energy_window_s: float = 1.0  # NVML counters move every 10-100 ms; some GPUs average over 1 s
    cudnn_benchmark: bool = False

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
        return cls(**raw)


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text
    )


def emit_to_stdout(result: BenchResult) -> None:
    sys.stdout.write(RESULT_PREFIX + json.dumps(result.to_dict()) + "\n")
    sys.stdout.flush()


def main() -> int:
    from dnnmeter.measure.point import measure_model

    spec = BenchSpec.from_json(sys.stdin.read())
    measure_model(spec, emit_to_stdout)
    return 0


def dtype_of(name: str) -> torch.dtype:
    return _DTYPES[name]


Emit = Callable[[BenchResult], Any]

if __name__ == "__main__":
    sys.exit(main())
