"""Hugging Face ``transformers`` models as ``hf:NAME`` (the optional extra ``dnnmeter[hf]``).

NAME is, in this order:

1. a local ``config.json``, or a folder holding one (``hf:./my-model``);
2. a model id whose config is in the local Hugging Face cache (``hf:bert-base-cased`` after
   any earlier download by other tools);
3. one of :data:`DEFAULTS`: the library's own config classes, whose defaults are these
   models (``BertConfig()`` is bert-base-uncased), with the few overrides listed.

Nothing is ever downloaded: the hub is put offline while a config is read or a model built.
Only the architecture is built (random weights): dnnmeter counts and times it. The model
class is the config's ``architectures[0]`` when it names one, else the one in DEFAULTS,
else ``AutoModel``. Its inputs are token ids, ``input_ids`` of (batch, sequence length).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from dnnmeter import registry
from dnnmeter.errors import MissingDependencyError, ModelBuildError
from dnnmeter.zoo.registry import FunctionSource, ModelEntry

PREFIX = "hf:"
DEFAULT_SEQ_LEN = 128

# name -> (config class, model class, overrides of the config's defaults)
DEFAULTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bert-base-uncased": ("BertConfig", "BertModel", {}),
    "bert-large-uncased": ("BertConfig", "BertModel",
                           {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                            "intermediate_size": 4096}),
    "distilbert-base-uncased": ("DistilBertConfig", "DistilBertModel", {}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}),
    "gpt2-medium": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 1024, "n_layer": 24, "n_head": 16}),
}


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("hf: models need transformers: pip install 'dnnmeter[hf]'") from exc
    return transformers


def is_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("transformers") is not None


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """The hub offline: the environment variable for code that reads it late, and the
    constant huggingface_hub read when it was imported."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = None
    with contextlib.suppress(ImportError):
        from huggingface_hub import constants
    saved = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def _local_config(bare: str) -> Path | None:
    path = Path(bare).expanduser()
    if path.is_file() and path.suffix == ".json":
        return path
    if path.is_dir() and (path / "config.json").is_file():
        return path / "config.json"
    return None


def config_of(bare: str) -> tuple[Any, str, str] | None:
    """(config, model class name, where it came from), or None when NAME is none of the three."""
    tf = _transformers()
    with offline():
        local = _local_config(bare)
        if local is not None:
            config = tf.AutoConfig.from_pretrained(str(local.parent) if local.name == "config.json" else str(local))
            return config, _architecture(config, "AutoModel"), f"config {local}"
        with contextlib.suppress(OSError, ValueError):
            config = tf.AutoConfig.from_pretrained(bare, local_files_only=True)
            return config, _architecture(config, DEFAULTS.get(bare, ("", "AutoModel", {}))[1]), "local HF cache"
    if bare in DEFAULTS:
        config_class, model_class, overrides = DEFAULTS[bare]
        return getattr(tf, config_class)(**overrides), model_class, f"transformers' {config_class} defaults"
    return None


def _architecture(config: Any, fallback: str) -> str:
    names = getattr(config, "architectures", None) or []
    return str(names[0]) if names else fallback


def build(bare: str, weights: str | None = None, **kwargs: Any) -> nn.Module:
    if weights is not None:
        raise ModelBuildError(f"hf:{bare}: weights are not loaded for hf: models (dnnmeter does not download); "
                              "count or time the architecture, or build it yourself and pass the module")
    found = config_of(bare)
    if found is None:
        raise ModelBuildError(f"hf:{bare}: no config.json there, none in the local HF cache, and not one of "
                              f"{', '.join(DEFAULTS)}")
    config, model_class, _ = found
    for key, value in kwargs.items():
        setattr(config, key, value)
    tf = _transformers()
    cls = getattr(tf, model_class, None)
    with offline():
        if cls is None or model_class == "AutoModel":
            return tf.AutoModel.from_config(config)
        return cls(config)


def entry(name: str) -> ModelEntry | None:
    """The entry for ``hf:NAME``, or None when NAME is no local config, cached config or default."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    found = config_of(bare)
    if found is None:
        return None
    config, model_class, where = found
    getattr(_transformers(), model_class, None)  # imports its module now: bench's baseline then holds it
    return ModelEntry(
        name=PREFIX + bare, source="hf", input_size=(DEFAULT_SEQ_LEN,),  # type: ignore[arg-type]
        build=partial(build, bare), family=str(getattr(config, "model_type", "") or "hf"),
        description=f"transformers {model_class} from {where}", token_inputs=True,
    )


def entries(pattern: str = "*") -> list[ModelEntry]:
    import fnmatch

    bare = pattern[len(PREFIX):] if pattern.startswith(PREFIX) else pattern
    return [e for n in DEFAULTS if fnmatch.fnmatchcase(n, bare) and (e := entry(n)) is not None]


def close_matches(name: str) -> list[str]:
    return [PREFIX + n for n in registry.close_matches(name[len(PREFIX):], list(DEFAULTS))]


# ``hf:NAME``, listed by ``dnnmeter models --source hf`` (the built-in defaults).
SOURCE = FunctionSource("hf", PREFIX, True, entry, is_available, entries, close_matches)
