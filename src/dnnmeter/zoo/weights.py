"""Loading trained weights from local files only: dnnmeter never downloads at run time.

Also the checkpoints ``dnnmeter train`` writes: ``model.safetensors`` (the state dict) and
its sidecar ``model.json`` (model name, classes, input size, normalisation, the data split,
settings and history). Reading and writing both live here, one floor below
``dnnmeter.evaluate`` and ``dnnmeter.train``, which both use them.

Every way a weights file can be wrong ends in one ``ModelBuildError`` line saying what is
wrong and what to do: a folder, a missing file, a pickled whole model (refused: unpickling
runs code), another model's checkpoint, a head with another class count (``--num-classes``),
a corrupt sidecar. A state dict saved from ``DataParallel``/``DistributedDataParallel`` (keys
prefixed ``module.``) or from a ``torch.compile`` module (``_orig_mod.``) is loaded with the
prefix stripped, and a warning says so.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dnnmeter.atomic import write_bytes, write_json
from dnnmeter.errors import MissingDependencyError, ModelBuildError

CHECKPOINT = "model.safetensors"
SIDECAR = "model.json"
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


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


# --- Reading a state dict ------------------------------------------------------------------


def check_weights_path(path: str | Path) -> None:
    """A one-line error for a folder or a missing file where a weights file is expected."""
    path = Path(path)
    if path.is_dir():
        inside = path / CHECKPOINT
        hint = f"did you mean {inside}?" if inside.is_file() else "give the weights file inside it"
        raise ModelBuildError(f"{path} is a folder, not a weights file; {hint}")
    if not path.is_file():
        raise ModelBuildError(
            f"{path}: no such weights file; give a state dict (.pt, .pth, .safetensors) or 'default'"
        )


def _one_line(exc: BaseException) -> str:
    from dnnmeter.data.files import one_line

    return one_line(exc)


def _read_safetensors(path: str, device: str) -> Mapping[str, torch.Tensor]:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError as exc:
        raise MissingDependencyError(f"{path}: .safetensors files need safetensors: pip install safetensors") from exc
    try:
        return load_file(path, device=device)
    except (SafetensorError, OSError) as exc:
        raise ModelBuildError(f"{path}: not a readable safetensors file ({_one_line(exc)})") from exc


def read_state_dict(path: str, device: str = "cpu") -> Mapping[str, torch.Tensor]:
    """The state dict in ``path`` (torch.save, read with ``weights_only=True``, or .safetensors).

    A training checkpoint holding it under ``state_dict`` or ``model`` is unwrapped.
    """
    check_weights_path(path)
    if str(path).endswith(".safetensors"):
        return _read_safetensors(str(path), device)
    try:
        state = torch.load(path, weights_only=True, map_location=device)
    except pickle.UnpicklingError as exc:
        raise ModelBuildError(
            f"{path} holds a pickled object, not only tensors, and dnnmeter does not unpickle code; "
            "save the weights alone: torch.save(model.state_dict(), FILE)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes fail in many ways (struct, zip, pickle)
        raise ModelBuildError(f"{path}: not a loadable state dict ({_one_line(exc)})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelBuildError(f"{path}: expected a state dict (names -> tensors), got {type(state).__name__}")
    return state


def _unwrapped(state: Mapping[str, torch.Tensor], expected: Mapping[str, Any], path: str) -> Mapping[str, torch.Tensor]:
    """``state`` without the prefix a wrapper (DataParallel, DDP, torch.compile) put on every key."""
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            warnings.warn(
                f"{path}: every key starts with {prefix!r} (saved from a DataParallel/DDP or compiled "
                "wrapper); loaded with the prefix stripped",
                stacklevel=3,
            )
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


# --- Fitting it to a module ----------------------------------------------------------------


def _mismatch(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``state`` from loading strictly, in a few words per kind."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected if k in state and state[k].shape != expected[k].shape
    ]  # fmt: skip
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            parts.append(f"{label}: {', '.join(keys[:3])}{more}")
    return parts


def head_classes(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> tuple[int, int] | None:
    """(the file's, the module's) class count when only the classifier's outputs differ, else None.

    That is: the same keys, and every tensor of another shape differs in its first dimension
    only, to the same count (a fine-tuned head: ``fc.weight`` (10, 512) and ``fc.bias`` (10,)).
    """
    if set(expected) != set(state):
        return None
    differ = [k for k in expected if state[k].shape != expected[k].shape]
    if not differ or any(state[k].dim() == 0 or state[k].shape[1:] != expected[k].shape[1:] for k in differ):
        return None
    ours = {int(state[k].shape[0]) for k in differ}
    theirs = {int(expected[k].shape[0]) for k in differ}
    return (ours.pop(), theirs.pop()) if len(ours) == 1 and len(theirs) == 1 else None


def _fit_error(path: str, name: str, expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
               problems: list[str]) -> ModelBuildError:
    trained = read_sidecar(path).get("model")
    if isinstance(trained, str) and trained != name:
        return ModelBuildError(
            f"{path} is a checkpoint of {trained} (its {SIDECAR}), not of {name}; "
            f"evaluate it as {trained}: dnnmeter eval {trained} --weights {path}"
        )
    classes = head_classes(expected, state)
    if classes is not None:
        return ModelBuildError(
            f"{path} has {classes[0]} classes where {name} is built with {classes[1]}; "
            f"pass --num-classes {classes[0]} (num_classes={classes[0]})"
        )
    return ModelBuildError(f"{path} does not fit {name}: {'; '.join(problems)}")


def load_weights_file(module: nn.Module, path: str, device: str = "cpu", name: str = "model") -> None:
    """Load a state dict (torch.save or .safetensors) into ``module``, strictly.

    Raises a one-line ModelBuildError when the file is absent, unreadable or does not fit;
    a wrapper's ``module.`` prefix is stripped with a warning.
    """
    expected = module.state_dict()
    state = _unwrapped(read_state_dict(path, device), expected, str(path))
    problems = _mismatch(expected, state)
    if problems:
        raise _fit_error(str(path), name, expected, state, problems)
    module.load_state_dict(state, strict=True)


# --- dnnmeter's checkpoints: the safetensors file and its sidecar --------------------------


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON written beside a checkpoint, or {} when there is none.

    A sidecar that is not a JSON object is refused in one line: its classes, input size and
    split decide how the checkpoint is built and scored, so guessing would be silently wrong.
    """
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelBuildError(
            f"{side}: the checkpoint's sidecar is not readable JSON ({_one_line(exc)}); "
            "restore it from the training run, or move it away to load the weights without it"
        ) from exc
    if not isinstance(meta, dict):
        raise ModelBuildError(
            f"{side}: the checkpoint's sidecar holds a {type(meta).__name__}, not a JSON object; "
            "restore it from the training run, or move it away"
        )
    return meta


def checkpoint_meta(weights: str | None) -> dict[str, Any]:
    """What ``dnnmeter train`` wrote beside its checkpoint (classes, input size, the
    normalisation it was trained with, the split), or {} for any other weights."""
    if weights is None or weights == "default" or os.path.isdir(weights):
        return {}
    meta = read_sidecar(weights)
    wanted = ("classes", "input_size", "normalization")
    return meta if all(meta.get(k) for k in wanted) else {}


def save_checkpoint(module: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``module``'s state dict to ``path`` (.safetensors) and ``meta`` beside it (.json),
    each atomically, with the user's umask."""
    try:
        from safetensors.torch import save
    except ImportError as exc:
        raise MissingDependencyError("checkpoints need safetensors: pip install safetensors") from exc
    path = Path(path)
    # Clones: safetensors refuses tensors that share storage (tied weights, views).
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    write_bytes(path, save(state, metadata={"format": "pt", "producer": "dnnmeter.train"}))
    write_json(sidecar_path(path), meta)
    return path
