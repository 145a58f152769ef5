"""Checkpoints: the state dict as safetensors, and a JSON sidecar with what produced it.

``model.safetensors`` is what ``dnnmeter eval MODEL --weights FILE`` loads. Its sidecar
``model.json`` holds the model name, classes, input size and the normalisation the network
was trained with (a consumer needs them to feed it the same inputs), the data split (so
eval scores only the held-out images), the settings and the history. Reading and writing
live in :mod:`dnnmeter.zoo.weights`; files are written atomically with the user's umask
(:mod:`dnnmeter.atomic`), so an interrupted run leaves the previous epoch's file whole.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from dnnmeter.atomic import write_json
from dnnmeter.errors import ModelBuildError
from dnnmeter.zoo.weights import CHECKPOINT, SIDECAR, load_weights_file, read_sidecar, save_checkpoint

__all__ = ["CHECKPOINT", "SIDECAR", "load_checkpoint", "read_sidecar", "save_checkpoint", "write_json"]


def load_checkpoint(model: str | nn.Module, path: str | Path) -> nn.Module:
    """The network of a checkpoint: ``model`` (a name, built with the sidecar's class count, or
    a module, loaded in place) with the weights of ``path``, in eval mode.

    >>> net = load_checkpoint("tiny_alexnet", "train-out/model.safetensors")  # a file train wrote  # doctest: +SKIP
    """
    if isinstance(model, str):
        from dnnmeter.zoo import create_model

        classes = read_sidecar(path).get("classes")
        if not classes:
            raise ModelBuildError(
                f"{path}: no {SIDECAR} beside it giving the classes; pass a built module instead"
            )
        module = create_model(model, device="cpu", num_classes=len(classes))
        name = model
    else:
        module, name = model, type(model).__name__
    load_weights_file(module, str(path), "cpu", name)
    return module.eval()
