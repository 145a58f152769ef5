"""Checkpoints: the state dict as safetensors, and a JSON sidecar with what produced it.

``model.safetensors`` is what ``dnnmeter eval MODEL --weights FILE`` loads. Its sidecar
``model.json`` holds the model name, classes, input size and the normalisation the network
was trained with (a consumer needs them to feed it the same inputs), the settings and the
history. JSON files are written atomically (a temporary file renamed), so an interrupted
run leaves the previous epoch's file whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from dnnmeter.errors import MissingDependencyError, ModelBuildError
from dnnmeter.evaluate import load_weights_file

CHECKPOINT = "model.safetensors"
SIDECAR = "model.json"


def write_json(path: str | Path, data: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def save_checkpoint(module: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``module``'s state dict to ``path`` (.safetensors) and ``meta`` beside it (.json)."""
    try:
        from safetensors.torch import save_file
    except ImportError as exc:
        raise MissingDependencyError("checkpoints need safetensors: pip install safetensors") from exc
    path = Path(path)
    # Clones: safetensors refuses tensors that share storage (tied weights, views).
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", "producer": "dnnmeter.train"})
    write_json(path.with_suffix(".json"), meta)
    return path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON written beside a checkpoint, or {} when there is none."""
    side = Path(path).with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else {}


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
