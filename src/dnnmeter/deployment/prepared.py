"""What a builder is given (:class:`BuildContext`) and returns (:class:`Prepared`).

Apart from build.py so that a builder in a module of its own (openvino_build.py) imports these
without importing build.py, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dnnmeter.deployment.configs import Config

Call = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Prepared:
    call: Call
    size_bytes: int | None
    artefact: str | None = None  # a file --export can copy (ONNX model, int8 state dict, OpenVINO IR's .xml)
    notes: list[str] = field(default_factory=list)
    fixed_batch_reason: str | None = None  # why ``call`` takes only the batch it was built for


@dataclass(frozen=True)
class BuildContext:
    config: Config
    example: torch.Tensor
    calibration: list[torch.Tensor]
    artefact_dir: Path
    device: torch.device
