"""Loading trained weights from local files only: dnnmeter never downloads at run time."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from dnnmeter.errors import ModelBuildError


def torch_hub_checkpoint(url: str) -> str:
    """Where torch.hub would cache the file at ``url`` (it may not exist)."""
    import torch.hub

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def load_torchvision_weights(name: str, weights: Any, **kwargs: Any) -> nn.Module:
    """Build ``name`` with its default ``weights`` read from the torch hub cache."""
    from torchvision import models

    path = torch_hub_checkpoint(weights.url)
    if not os.path.exists(path):
        raise ModelBuildError(
            f"{name}: default weights not found at {path}; copy {os.path.basename(path)} "
            "there or pass --weights FILE (dnnmeter does not download)"
        )
    return models.get_model(name, weights=weights, **kwargs)
