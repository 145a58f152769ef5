"""Small models for the bench tests, importable as ``bench_models:NAME`` in a worker."""

from __future__ import annotations

import os
import signal

import torch
from torch import nn


class _Tiny(nn.Module):
    def __init__(self, fail_at: int | None = None, how: str = "oom") -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fail_at, self.how = fail_at, how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail_at is not None and x.shape[0] >= self.fail_at:
            if self.how == "oom":
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 GB")
            if self.how == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError("this model refuses large batches")
        return self.conv(x).mean((2, 3))


def tiny() -> nn.Module:
    return _Tiny()


def oom_at_4() -> nn.Module:
    return _Tiny(fail_at=4, how="oom")


def crash_at_2() -> nn.Module:
    return _Tiny(fail_at=2, how="crash")


def error_at_2() -> nn.Module:
    return _Tiny(fail_at=2, how="error")


for _builder in (tiny, oom_at_4, crash_at_2, error_at_2):
    _builder.input_size = (3, 16, 16)  # type: ignore[attr-defined]
