"""Peak memory of one real training step, measured as bench measures an inference pass.

The check on the training-memory estimate (analysis/train_memory.py): build the model,
run one step to warm up (its gradients are then freed, ``zero_grad(set_to_none=True)``),
and weigh the next one: CUDA's ``max_memory_allocated``, or on the CPU the peak resident
memory (VmHWM) above the process's memory before the model was built. Run it in a fresh
process (``python -m dnnmeter.measure.train_step MODEL BATCH OPTIMIZER``): a process that
has already run bigger work keeps the C allocator's pages and the lifetime peak.

Two choices make the CPU figure the step's tensors rather than the process's habits: the
runtime is warmed before the baseline (thread pools, the autograd engine, kernel caches),
and glibc is told to map every block of 64 KiB or more on its own (``M_MMAP_THRESHOLD``),
so a freed tensor leaves the resident set. Without that, glibc raises its threshold after
the first large free and keeps later tensors' pages in its heap: VmHWM then reads 1.3-1.6x
the tensors' peak (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dnnmeter.analysis.train_memory import OPTIMIZERS, check_optimizer
from dnnmeter.measure import memory


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


def map_large_blocks(threshold_bytes: int = 65536) -> bool:
    """Have glibc return freed blocks of ``threshold_bytes`` or more to the system at once;
    False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False


def main(argv: list[str]) -> int:
    from dnnmeter.zoo import create_model, resolve

    name, batch, optimizer = argv[0], int(argv[1]), argv[2]
    device = argv[3] if len(argv) > 3 else "cpu"
    torch.set_num_threads(1)
    mapped = map_large_blocks()
    reading = step_peak(lambda: create_model(name, device="cpu"), batch, tuple(resolve(name).input_size), optimizer, device)
    result: dict[str, Any] = {"model": name, "batch_size": batch, "optimizer": optimizer,
                              "peak_bytes": reading.peak_bytes, "kind": reading.kind,
                              "large_blocks_mapped": mapped}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
