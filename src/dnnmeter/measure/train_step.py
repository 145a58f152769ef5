"""Peak memory of one real training step, measured as bench measures an inference pass: the
check on the training-memory estimate (analysis/train_memory.py).

The estimate is of the tensors' peak: the bytes PyTorch's allocator holds at once, what
CUDA's ``max_memory_allocated`` reports on a GPU. It is not of what the C allocator keeps
after a free, which depends on the order of allocations and on the malloc in use (glibc,
jemalloc, tcmalloc), not on the model. So the CPU check measures as bench does (a fresh
process, the peak resident memory VmHWM reset before the step and read above the memory
the process held before the model was built) with one difference: glibc is told to map
every block of 64 KiB or more on its own (``mallopt(M_MMAP_THRESHOLD, 65536)``, which also
switches its dynamic threshold off), so a freed tensor leaves the resident set. The same
step is also weighed with glibc's defaults, in another fresh process: that figure, the
tensors plus the allocator's retention, is what bench reports and is returned beside the
first (``default_malloc_peak_bytes``), not checked against the estimate.

Both processes warm the runtime with a tiny net's training step before the baseline (its
thread pools, the autograd engine: some 20 MB, the same for every model), build the model,
run one step (its gradients are then freed, ``zero_grad(set_to_none=True)``) and weigh the
next. On a GPU one process weighs the step by ``max_memory_allocated``.

``python -m dnnmeter.measure.train_step MODEL BATCH OPTIMIZER [DEVICE]`` prints a
:class:`StepPeak` as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from dnnmeter._serial import Record
from dnnmeter.analysis.train_memory import OPTIMIZERS, check_optimizer
from dnnmeter.errors import DnnmeterError
from dnnmeter.measure import memory

MAPPED = "mapped"  # glibc maps blocks >= 64 KiB: freed tensors leave the resident set
DEFAULT = "default"  # glibc as a process gets it, as bench measures
MALLOCS = (MAPPED, DEFAULT)
MAP_THRESHOLD_BYTES = 65536


@dataclass
class StepPeak(Record):
    """The peak memory of one training step, each figure from its own fresh process.

    ``peak_bytes`` is the figure the estimate is checked against: the tensors' peak (CUDA's
    ``max_memory_allocated``, or on the CPU VmHWM above the baseline with glibc mapping large
    blocks). ``default_malloc_peak_bytes`` is the CPU step with glibc's defaults, what bench
    reads: the tensors and the allocator's retention (None on a GPU, with the reason).
    """

    model: str
    batch_size: int
    optimizer: str
    device: str
    peak_bytes: int | None
    kind: str
    large_blocks_mapped: bool  # CPU: False if glibc refused or is absent (peak_bytes then holds its retention)
    default_malloc_peak_bytes: int | None = None
    default_malloc_kind: str = ""  # how it was read, or why it is None

    _derived: ClassVar[tuple[str, ...]] = ("allocator_overhead",)

    @property
    def allocator_overhead(self) -> float | None:
        """default_malloc_peak_bytes / peak_bytes: how much more glibc's defaults keep resident."""
        if not self.peak_bytes or self.default_malloc_peak_bytes is None:
            return None
        return self.default_malloc_peak_bytes / self.peak_bytes


def warm_runtime() -> None:
    """One training step of a tiny convolution net: the runtime's one-off memory (thread
    pools, the autograd engine, kernel caches) is then part of the baseline, not the step."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 2))
    net(torch.randn(2, 3, 16, 16)).sum().backward()


def training_step(model: nn.Module, x: torch.Tensor, optimizer: str) -> Callable[[], object]:
    """A callable running one step: forward, a gradient of ones on the output, optimizer step."""
    opt = OPTIMIZERS[check_optimizer(optimizer)]([p for p in model.parameters() if p.requires_grad])

    def step() -> object:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        out.backward(torch.ones_like(out))
        opt.step()
        return None

    return step


def step_peak(build: Callable[[], nn.Module], batch_size: int, input_size: tuple[int, ...], optimizer: str,
              device: str = "cpu") -> memory.MemoryReading:
    """The peak memory of the second training step of ``build()`` at ``batch_size``."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if not cuda:
        warm_runtime()
    baseline = memory.rss_bytes()
    model = build().to(dev).train()
    x = torch.randn(batch_size, *input_size, device=dev)
    step = training_step(model, x, optimizer)
    step()
    return weigh(step, dev, baseline)


def weigh(step: Callable[[], object], device: torch.device, baseline_bytes: int) -> memory.MemoryReading:
    """One call of ``step``: CUDA's max allocated on a GPU, else VmHWM above the baseline."""
    return memory.cuda_peak(step, device) if device.type == "cuda" else memory.cpu_peak(step, baseline_bytes)


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def map_large_blocks(threshold_bytes: int = MAP_THRESHOLD_BYTES) -> bool:
    """Have glibc return freed blocks of ``threshold_bytes`` or more to the system at once
    (setting the threshold also stops glibc from raising it after a large free); False where
    the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False


def measure_here(name: str, batch_size: int, optimizer: str, device: str = "cpu",
                 malloc: str = MAPPED) -> dict[str, Any]:
    """One figure, in this process (which must be fresh: call it through :func:`measure_step`)."""
    from dnnmeter.zoo import create_model, resolve

    torch.set_num_threads(1)
    mapped = malloc == MAPPED and torch.device(device).type != "cuda" and map_large_blocks()
    entry = resolve(name)  # imports the model's library before the baseline, as bench does
    reading = step_peak(lambda: create_model(name, device="cpu"), batch_size, tuple(entry.input_size), optimizer,
                        device)
    kind = reading.kind + (f", glibc mapping blocks >= {MAP_THRESHOLD_BYTES // 1024} KiB" if mapped else "")
    return {"peak_bytes": reading.peak_bytes, "kind": kind, "large_blocks_mapped": mapped}


def _malloc_env() -> dict[str, str]:
    """This environment for a child that imports this dnnmeter, without glibc malloc settings
    (MALLOC_*_ variables, GLIBC_TUNABLES) that would make the defaults not the defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _run_fresh(name: str, batch_size: int, optimizer: str, device: str, malloc: str,
               timeout_s: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "dnnmeter.measure.train_step", name, str(batch_size), optimizer, device,
            f"--malloc={malloc}"]
    done = subprocess.run(argv, env=_malloc_env(), capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise DnnmeterError(f"the training step of {name} at batch {batch_size} failed in its process: {why}; "
                            f"run {' '.join(argv[1:])} to see it whole")
    return dict(json.loads(lines[-1]))


def measure_step(name: str, batch_size: int, optimizer: str, device: str = "cpu",
                 timeout_s: float = 600) -> StepPeak:
    """Weigh one training step of zoo model ``name``: on the CPU twice, each in a fresh
    process (glibc mapping large blocks, then glibc's defaults); on a GPU once."""
    check_optimizer(optimizer)
    first = _run_fresh(name, batch_size, optimizer, device, MAPPED, timeout_s)
    peak = StepPeak(model=name, batch_size=batch_size, optimizer=optimizer, device=device, **first)
    if torch.device(device).type == "cuda":
        peak.default_malloc_kind = "not measured: on a GPU the tensors are not in the C allocator's heap"
    else:
        default = _run_fresh(name, batch_size, optimizer, device, DEFAULT, timeout_s)
        peak.default_malloc_peak_bytes, peak.default_malloc_kind = default["peak_bytes"], default["kind"]
    return peak


def main(argv: list[str]) -> int:
    malloc = next((a.split("=", 1)[1] for a in argv if a.startswith("--malloc=")), None)
    args = [a for a in argv if not a.startswith("--malloc=")]
    if len(args) not in (3, 4) or malloc not in (None, *MALLOCS):
        print("usage: python -m dnnmeter.measure.train_step MODEL BATCH OPTIMIZER [DEVICE]", file=sys.stderr)
        return 2
    name, batch, optimizer = args[0], int(args[1]), args[2]
    device = args[3] if len(args) > 3 else "cpu"
    if malloc is not None:  # one figure, in this fresh process
        print(json.dumps(measure_here(name, batch, optimizer, device, malloc)))
    else:
        print(json.dumps(measure_step(name, batch, optimizer, device).to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
