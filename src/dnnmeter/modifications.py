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
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.store import Store, machine_id, measurement_key

Progress = Callable[[str, int, int], None]  # (what is being done, steps done, steps in all)

TINY_FAMILY = (("plain", "tiny_alexnet"), ("depthwise", "tiny_alexnet_dw"), ("depthwise + residual", "tiny_alexnet_dw_res"))
META_KEY = "last_modifications"


@dataclass(frozen=True)
class Variant:
    """One network to train: a zoo model with ``ops`` applied, in ``nproc`` processes."""

    name: str
    model: str
    ops: tuple[str, ...] = ()
    nproc: int = 1
    strategy: str = "ddp"

    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower()


@dataclass
class ModificationsSettings:
    data: str = "digits"
    models: tuple[str, ...] = ()  # empty: the tiny AlexNet family
    ops: tuple[str, ...] = ()
    epochs: int | None = None  # None: train's default for the data (10 on digits, 100 on a folder)
    batch_size: int | None = None
    lr: float | None = None
    augment: tuple[str, ...] = ()
    seed: int = 0
    out: str = "study-out"
    averaged_nproc: int = 2  # 0 or 1: no averaged-training comparison
    threads: int | None = None
    compression: bool = True  # quantization and pruning sweeps of the first variant, trained
    prune_fine_tune_epochs: int = 1  # each pruned copy retrained this long (masks kept) before it is scored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def variants(self) -> list[Variant]:
        if self.models:
            found = []
            for model in self.models:
                found.append(Variant(model, model))
                for i in range(len(self.ops)):
                    ops = self.ops[: i + 1]
                    found.append(Variant(f"{model} + {' + '.join(ops)}", model, ops))
        else:
            if self.ops:
                raise InvalidInputError("--op needs --models: the tiny family already is plain, depthwise and residual")
            found = [Variant(name, model) for name, model in TINY_FAMILY]
        if self.averaged_nproc > 1:
            first = found[0]
            found.append(Variant(f"{first.name}, {self.averaged_nproc} processes averaged", first.model, first.ops,
                                 nproc=self.averaged_nproc, strategy="average"))
        return found


@dataclass
class ModificationsOutputs:
    variants: list[dict[str, Any]]
    trained: int = 0
    sweeps: int = 0  # quantization and pruning sweeps run
    skipped_as_done: int = 0
    notes: list[str] = field(default_factory=list)


def _key(settings: ModificationsSettings, variant: Variant) -> str:
    return measurement_key(
        "training", variant.model, ops=list(variant.ops), nproc=variant.nproc, strategy=variant.strategy,
        data=settings.data, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
        augment=list(settings.augment), seed=settings.seed, threads=settings.threads, machine=machine_id(),
    )  # fmt: skip


def _train_kwargs(settings: ModificationsSettings) -> dict[str, Any]:
    chosen = {"epochs": settings.epochs, "batch_size": settings.batch_size, "lr": settings.lr}
    return {k: v for k, v in chosen.items() if v is not None}


def _module(variant: Variant, settings: ModificationsSettings) -> tuple[Any, int]:
    """The variant's untrained network, with one output per class of the data, and its input size."""
    import torch

    from dnnmeter.modify import modify
    from dnnmeter.train.api import input_size_for
    from dnnmeter.train.data import open_splits
    from dnnmeter.train.session import build_module

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
    from dnnmeter.train import train

    module, size = _module(variant, settings)
    cost = analyze(module, input_size=(3, size, size))

    def show(epoch: int, epochs: int, batch: int, batches: int) -> None:
        progress(f"{variant.name}: epoch {epoch}/{epochs}, batch {batch}/{batches}", step, total)

    result = train(module, settings.data, augment=settings.augment, seed=settings.seed, input_size=size,
                   out=str(Path(settings.out) / "training" / variant.slug()), nproc=variant.nproc,
                   strategy=variant.strategy, threads=settings.threads, progress=show, **_train_kwargs(settings),
                   overwrite=True)  # the study's own folder: a variant interrupted before it was stored reruns
    data = result.to_dict()
    epoch_s = [row["epoch_s"] for row in result.history]
    data.update({
        "variant": variant.name, "base_model": variant.model, "ops": list(variant.ops),
        "nproc": variant.nproc, "strategy": variant.strategy,
        "params": cost.params, "macs": cost.macs, "flops": cost.flops, "activations": cost.activations,
        "input_size": [3, size, size], "time_per_epoch_s": statistics.median(epoch_s) if epoch_s else None,
    })  # fmt: skip
    return data


# --- quantization and pruning of the first variant, trained ---------------------------------

COMPRESSION = ("quantization", "pruning unstructured", "pruning structured")


def _compression_keys(settings: ModificationsSettings, variant: Variant) -> dict[str, str]:
    trained = _key(settings, variant)
    return {what: measurement_key("compression", variant.model, what=what, trained=trained,
                                  fine_tune_epochs=settings.prune_fine_tune_epochs if what != "quantization" else 0)
            for what in COMPRESSION}


def _splits(settings: ModificationsSettings, trained: dict[str, Any]) -> tuple[Any, Any]:
    """The (train, val) splits the variant was trained and scored on, normalised as it was
    trained (no augmentation)."""
    from dnnmeter.train.augment import val_transform
    from dnnmeter.train.data import Mapped, open_splits

    s = trained["settings"]
    splits = open_splits(settings.data, s["input_size"], s["seed"], s["val_fraction"])
    plain = val_transform(s["normalization"]["mean"], s["normalization"]["std"])
    return Mapped(splits.train, plain), Mapped(splits.val, plain)


def _compress(store: Store, settings: ModificationsSettings, variant: Variant, trained: dict[str, Any],
              progress: Progress) -> int:
    """Quantization and pruning sweeps of the trained ``variant``: accuracy against bits and
    against sparsity, on the data it was trained for. Returns how many sweeps ran."""
    from dnnmeter.zoo.weights import load_weights_file
    from dnnmeter.modify.prune import pruning_sweep
    from dnnmeter.modify.quantize import quantization_sweep

    keys = {what: key for what, key in _compression_keys(settings, variant).items() if not store.has(key)}
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


def run_modifications(settings: ModificationsSettings, progress: Progress | None = None) -> ModificationsOutputs:
    """Train (or resume) every variant of ``settings`` into DIR/results.sqlite."""
    from dnnmeter.errors import DnnmeterError

    progress = progress or (lambda what, done, total: None)
    variants = settings.variants()
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    outputs = ModificationsOutputs(variants=[])
    with Store(out / "results.sqlite") as store:
        store.set_meta(META_KEY, json.dumps(settings.to_dict()))
        for i, variant in enumerate(variants):
            key = _key(settings, variant)
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
            trained = next(iter(store.rows("training", keys={_key(settings, first)})), None)
            if trained is not None:
                outputs.sweeps += _compress(store, settings, first, trained.data, progress)
        outputs.variants = collect_modifications(store)["variants"] or []
    return outputs


def collect_modifications(store: Store) -> dict[str, Any]:
    """The last modifications study in ``store`` (results.json's ``modifications``); empty
    ``variants`` when none was run."""
    raw = store.get_meta(META_KEY)
    if raw is None:
        return {"settings": None, "variants": []}
    stored = json.loads(raw)
    known = {k: v for k, v in stored.items() if k in ModificationsSettings.__dataclass_fields__}
    settings = ModificationsSettings(**{**known, **{k: tuple(known.get(k) or ()) for k in ("models", "ops", "augment")}})
    variants = settings.variants()
    keys = {_key(settings, v): v for v in variants}
    found = {row.key: row.data for row in store.rows("training", keys=set(keys))}
    wanted = {key: what for what, key in _compression_keys(settings, variants[0]).items()}
    sweeps = {wanted[row.key]: row.data for row in store.rows("compression", keys=set(wanted))}
    compression = {
        "variant": variants[0].name,
        "quantization": (sweeps.get("quantization") or {}).get("points", []),
        "pruning": [p for what in COMPRESSION[1:] for p in (sweeps.get(what) or {}).get("points", [])],
    }
    return {"settings": settings.to_dict(), "variants": [found[k] for k in keys if k in found],
            "compression": compression}
