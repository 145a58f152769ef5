"""The modifications study: train variants of one network on one data set and show what each
change of operations buys (accuracy) and what it costs (parameters, MACs, time per epoch).

By default it is the Tiny-ImageNet study's experiment: the AlexNet-like network (plain),
made depthwise-separable (conv2-5), then residual, trained under the same settings; on the
built-in digits it takes a few minutes on 2 CPU cores. ``--models M --op A --op B`` trains
``M``, ``M + A`` and ``M + A + B`` instead (ops applied cumulatively, as the seed did). The
first variant is also trained in two processes whose models are averaged every epoch
(local SGD, the study's proposed future work), to compare with one process; and, trained,
quantized (fixed point at 16 to 4 bits, int8) and pruned (unstructured and structured,
0 to 90%): accuracy against bits and against sparsity, on the data it was trained for.

Every finished variant is a row of the study's store (kind ``training``), so an interrupted
study resumes at the first unfinished variant; the report redraws everything from the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnmeter.results.collect import MODIFICATIONS_META_KEY as META_KEY
from dnnmeter.results.collect import collect_modifications
from dnnmeter.results.records import VariantRecord
from dnnmeter.results.settings import (
    COMPRESSION,
    TINY_FAMILY,
    ModificationsSettings,
    Variant,
    compression_keys,
    training_key,
)
from dnnmeter.store import Store, default_store_url

__all__ = ["COMPRESSION", "TINY_FAMILY", "ModificationsOutputs", "ModificationsSettings", "Variant",
           "run_modifications"]

Progress = Callable[[str, int, int], None]  # (what is being done, steps done, steps in all)


@dataclass
class ModificationsOutputs:
    variants: list[VariantRecord]
    trained: int = 0
    sweeps: int = 0  # quantization and pruning sweeps run
    skipped_as_done: int = 0
    notes: list[str] = field(default_factory=list)


def _train_kwargs(settings: ModificationsSettings) -> dict[str, Any]:
    chosen = {"epochs": settings.epochs, "batch_size": settings.batch_size, "lr": settings.lr}
    return {k: v for k, v in chosen.items() if v is not None}


def _module(variant: Variant, settings: ModificationsSettings) -> tuple[Any, int]:
    """The variant's untrained network, with one output per class of the data, and its input size."""
    import torch

    from dnnmeter.transforms import modify
    from dnnmeter.training.api import input_size_for
    from dnnmeter.training.data import open_splits
    from dnnmeter.training.session import build_module

    size = input_size_for(variant.model, settings.data)
    classes = len(open_splits(settings.data, size, settings.seed, 0.2).classes)
    # The initial weights come from the seed (a module passed to train() keeps its own), and
    # the caller's random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        module = build_module(variant.model, classes, "cpu")
        if variant.ops:
            module = modify(module, list(variant.ops), input_size=(3, size, size))
    return module, size


def _train_variant(variant: Variant, settings: ModificationsSettings, progress: Progress, step: int,
                   total: int) -> dict[str, Any]:
    import statistics

    from dnnmeter.analysis import analyze
    from dnnmeter.training import train

    module, size = _module(variant, settings)
    cost = analyze(module, input_size=(3, size, size))

    def show(epoch: int, epochs: int, batch: int, batches: int) -> None:
        progress(f"{variant.name}: epoch {epoch}/{epochs}, batch {batch}/{batches}", step, total)

    result = train(module, settings.data, augment=settings.augment, seed=settings.seed, input_size=size,
                   out=str(Path(settings.out) / "training" / variant.slug()), nproc=variant.nproc,
                   strategy=variant.strategy, threads=settings.threads, progress=show, **_train_kwargs(settings),
                   overwrite=True)  # the study's own folder: a variant interrupted before it was stored reruns
    data = result.to_dict()
    epoch_s = [row.epoch_s for row in result.history]
    data.update({
        "variant": variant.name, "base_model": variant.model, "ops": list(variant.ops),
        "nproc": variant.nproc, "strategy": variant.strategy,
        "params": cost.params, "macs": cost.macs, "flops": cost.flops, "activations": cost.activations,
        "input_size": [3, size, size], "time_per_epoch_s": statistics.median(epoch_s) if epoch_s else None,
    })  # fmt: skip
    return data


# --- quantization and pruning of the first variant, trained ---------------------------------

def _splits(settings: ModificationsSettings, trained: dict[str, Any]) -> tuple[Any, Any]:
    """The (train, val) splits the variant was trained and scored on, normalised as it was
    trained (no augmentation)."""
    from dnnmeter.training.augment import val_transform
    from dnnmeter.training.data import Mapped, open_splits

    s = trained["settings"]
    splits = open_splits(settings.data, s["input_size"], s["seed"], s["val_fraction"])
    plain = val_transform(s["normalization"]["mean"], s["normalization"]["std"])
    return Mapped(splits.train, plain), Mapped(splits.val, plain)


def _compress(store: Store, settings: ModificationsSettings, variant: Variant, trained: dict[str, Any],
              progress: Progress) -> int:
    """Quantization and pruning sweeps of the trained ``variant``: accuracy against bits and
    against sparsity, on the data it was trained for. Returns how many sweeps ran."""
    from dnnmeter.zoo.weights import load_weights_file
    from dnnmeter.transforms.prune import pruning_sweep
    from dnnmeter.transforms.quantize import quantization_sweep

    keys = {what: key for what, key in compression_keys(settings, variant).items() if not store.has(key)}
    if not keys or not trained.get("checkpoint"):
        return 0
    module, _ = _module(variant, settings)
    load_weights_file(module, trained["checkpoint"], "cpu", variant.name)
    train_split, val = _splits(settings, trained)
    threads = settings.threads or 1
    for i, (what, key) in enumerate(keys.items()):
        progress(f"{variant.name}: {what} sweep", i, len(keys))
        if what == "quantization":
            points = quantization_sweep(module, data=val, threads=threads)
        else:
            points = pruning_sweep(module, data=val, method=what.split()[1], threads=threads,
                                   fine_tune_epochs=settings.prune_fine_tune_epochs, train_data=train_split)
        store.add(key, "compression", variant.name, {"what": what, "variant": variant.name,
                                                     "points": [p.to_dict() for p in points]})
    return len(keys)


def run_modifications(settings: ModificationsSettings, progress: Progress | None = None,
                      store: str | Path | None = None) -> ModificationsOutputs:
    """Train (or resume) every variant of ``settings`` into ``store`` (a path or an SQLAlchemy
    URL; default DIR/results.sqlite)."""
    from dnnmeter.errors import DnnmeterError

    progress = progress or (lambda what, done, total: None)
    variants = settings.variants()
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    outputs = ModificationsOutputs(variants=[])
    with Store(store or default_store_url(out)) as store:
        store.set_meta(META_KEY, json.dumps(settings.to_dict()))
        for i, variant in enumerate(variants):
            key = training_key(settings, variant)
            if store.has(key):
                outputs.skipped_as_done += 1
                progress(f"{variant.name}: trained (stored)", i + 1, len(variants))
                continue
            try:
                data = _train_variant(variant, settings, progress, i, len(variants))
            except DnnmeterError as exc:
                if variant.nproc == 1:
                    raise
                outputs.notes.append(f"{variant.name}: not trained ({exc})")
                continue
            store.add(key, "training", variant.name, data, environment=data.pop("environment", None))
            outputs.trained += 1
            progress(f"{variant.name}: trained", i + 1, len(variants))
        if settings.compression:
            first = variants[0]
            trained = next(iter(store.rows("training", keys={training_key(settings, first)})), None)
            if trained is not None:
                outputs.sweeps += _compress(store, settings, first, trained.data, progress)
        outputs.variants = collect_modifications(store).variants
    return outputs
