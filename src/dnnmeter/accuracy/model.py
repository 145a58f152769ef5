"""The module an evaluation runs: a model built by name with its weights, or the caller's
module borrowed (eval mode, device) and restored afterwards."""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Iterator

from torch import nn

from dnnmeter.errors import InvalidInputError
from dnnmeter.zoo import ModelEntry, create_model, resolve
from dnnmeter.zoo.weights import check_weights_path, checkpoint_meta, load_weights_file

WEIGHTS_NONE = "none (initial values)"
WEIGHTS_AS_PASSED = "as passed (the caller's nn.Module)"


def _weights_label(entry: ModelEntry, weights: str | None) -> str:
    if weights is None:
        return WEIGHTS_NONE
    if weights != "default":
        return os.path.abspath(weights)
    from torchvision import models

    from dnnmeter.zoo.weights import torch_hub_checkpoint

    url = models.get_model_weights(entry.name).DEFAULT.url
    return f"default (torch hub cache: {torch_hub_checkpoint(url)})"


def _build(entry: ModelEntry, weights: str | None, device: str, num_classes: int | None = None) -> nn.Module:
    """Build by name; 'default' comes from the hub cache only (create_model never downloads)."""
    extra = {} if num_classes is None else {"num_classes": num_classes}
    if weights == "default":
        return create_model(entry.name, device=device, weights="default", **extra)
    if weights is not None:
        check_weights_path(weights)  # a folder or a missing file, before building anything
    if num_classes is None:
        classes = checkpoint_meta(weights).get("classes")  # a dnnmeter checkpoint knows its class count
        extra = {"num_classes": len(classes)} if classes else {}
    module = create_model(entry.name, device=device, **extra)
    if weights is not None:
        load_weights_file(module, weights, device, entry.name)
    return module


@contextlib.contextmanager
def _borrowed(module: nn.Module, weights: str | None, device: str) -> Iterator[nn.Module]:
    """The caller's module in eval mode on ``device``; its mode and device are restored after.

    With a weights file the caller's module is left alone and a copy is loaded instead.
    """
    if weights is not None:
        if weights == "default":
            raise InvalidInputError("weights='default' needs a model name; load the weights into your module")
        module = copy.deepcopy(module)
        load_weights_file(module, weights, "cpu", type(module).__name__)
    tensors = [*module.parameters(), *module.buffers()]
    devices = {t.device for t in tensors}
    was_training = module.training
    try:
        yield module.to(device).eval()
    finally:
        module.train(was_training)
        if len(devices) == 1:
            module.to(devices.pop())


@contextlib.contextmanager
def prepared_module(
    model: str | nn.Module, entry: ModelEntry | None, weights: str | None, device: str,
    num_classes: int | None = None,
) -> Iterator[tuple[nn.Module, str]]:
    """The module to evaluate and where its weights came from."""
    if entry is not None:
        yield _build(entry, weights, device, num_classes), _weights_label(entry, weights)
        return
    assert isinstance(model, nn.Module)
    with _borrowed(model, weights, device) as module:
        yield module, os.path.abspath(weights) if weights else WEIGHTS_AS_PASSED




def build_with_weights(model: str, weights: str | None = None, device: str = "cpu",
                       num_classes: int | None = None) -> nn.Module:
    """``model`` built by name with ``weights`` (None, ``"default"`` or a file), in eval mode.

    ``num_classes``: the outputs to build it with (a fine-tuned head); by default a dnnmeter
    checkpoint's class count, else the model's own.
    """
    return _build(resolve(model), weights, device, num_classes).eval()


def warn_initial_weights(entry: ModelEntry) -> None:
    """An untrained network scores about chance; a table would show it as a plain figure."""
    default = " or --weights default (torchvision's)" if entry.source == "torchvision" else ""
    warnings.warn(
        f"{entry.name} has its initial (random) weights: its accuracy means nothing; pass --weights FILE "
        f"(a trained checkpoint){default}",
        stacklevel=3,
    )
