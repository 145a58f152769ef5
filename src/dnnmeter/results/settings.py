"""What a study was asked to do, and the store keys its measurements are filed under.

Both the studies (which write the rows) and :mod:`dnnmeter.results.collect` (which reads
them back) compute the keys here, so the two can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError
from dnnmeter.store import machine_id, measurement_key
from dnnmeter.zoo import SEED_MODELS

# `make study` must finish in under 10 minutes on 2 CPU cores for the 18 seed models.
DEFAULT_BATCH_SIZES = (1, 2, 4)
DEFAULT_TIME_BUDGET_S = 0.5

# The hardware model's settings in the study: SCALE-Sim's defaults (docs/hardware.md).
HARDWARE_SETTINGS: dict[str, Any] = {"array": (32, 32), "dataflow": "os", "sram_kb": (64, 64, 64), "bits": 8,
                                     "energy_table": "eyeriss"}
CEILINGS_MODEL = "(this machine's ceilings)"

TINY_FAMILY = (("plain", "tiny_alexnet"), ("depthwise", "tiny_alexnet_dw"), ("depthwise + residual", "tiny_alexnet_dw_res"))
COMPRESSION = ("quantization", "pruning unstructured", "pruning structured")


@dataclass
class DeploySettings(Record):
    """``dnnmeter study --deploy``: the deploy search (``dnnmeter.deployment``) for ``models``
    (empty: every model of the study) at the study's smallest batch size, device and threads,
    on the study's ``data``/``weights`` (``eval_limit`` images) where it has them."""

    models: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()  # kinds to try; empty: all of them
    tolerance: str = "1%"
    budget_min: float = 10.0  # per model
    throughput_batch_size: int | None = None  # None: the deploy search's default; 0: none

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("throughput_batch_size",)


@dataclass
class StudySettings(Record):
    models: tuple[str, ...] = SEED_MODELS
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    out: str = "study-out"
    time_budget_s: float = DEFAULT_TIME_BUDGET_S
    threads: int | None = None
    threads_chosen: str | None = None
    dtype: str = "float32"
    predict: bool = True  # predict latency from a calibration (--no-predict: not), compared with the measurements
    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_energy_j: float | None = None  # per image
    data: str | None = None  # evaluate accuracy on this data set (a folder or "digits")
    weights: str | None = None  # ... with these weights ("default" or a file)
    eval_limit: int | None = None  # ... on this many images
    input_size: tuple[int, ...] | None = None  # every model's input (--input), batch left out; default: its own
    deploy: DeploySettings | None = None  # --deploy: how to run each model fastest (None: not asked)
    # --per-machine: every model is benchmarked on each of these machine types (the fleet's node
    # types, dnnmeter.fleet); the first one's points are the models' bench, all are in the runs
    machines: tuple[str, ...] | None = None
    # dnnmeter.measure.heap: the C heap each bench point is measured with. Not in the points' keys
    # (machine_bench_keys): a store measured before there was a choice would otherwise be measured
    # all over again; each point records its own heap instead (points stored before read as glibc)
    heap: str = "steady"

    _omitted_if_none: ClassVar[tuple[str, ...]] = ("input_size", "deploy", "machines")  # results.json as before by default

    def deploy_models(self) -> tuple[str, ...]:
        """The models the deploy search runs for (none without ``deploy``)."""
        if self.deploy is None:
            return ()
        return self.deploy.models or self.models


def ceilings_identity(settings: StudySettings) -> dict[str, Any]:
    return {"device": settings.device, "threads": settings.threads, "machine": machine_id()}


def study_keys(settings: StudySettings, model: str) -> dict[str, Any]:
    """The keys of ``model``'s rows in the models study: analysis, accuracy (published and
    measured), one bench point per batch size, the hardware model and the roofline."""
    # a study at another input size is another measurement; the default keeps the keys stored before
    size = {"input_size": list(settings.input_size)} if settings.input_size else {}
    bench = machine_bench_keys(settings, model, settings.machines[0] if settings.machines else machine_id())
    measured = None
    if settings.data is not None:
        measured = measurement_key("accuracy", model, label="measured", data=settings.data,
                                   weights=settings.weights, limit=settings.eval_limit)
    return {"analysis": measurement_key("analysis", model, batch_size=1, **size),
            "accuracy": measurement_key("accuracy", model, label="published"),
            "measured_accuracy": measured, "bench": bench,
            "hardware": measurement_key("hardware", model, batch_size=1, **HARDWARE_SETTINGS, **size),
            "roofline": measurement_key("roofline", model, batch_size=1, **ceilings_identity(settings), **size)}


def deploy_key(settings: StudySettings, model: str) -> str:
    """The key of ``model``'s deploy verdict row: the judged search (statuses, speed-ups,
    recommendation), pointing at the search's own ``deploy`` rows for the measured figures."""
    d = settings.deploy or DeploySettings()
    return measurement_key("deploy-verdict", model, device=settings.device, threads=settings.threads,
                           batch_size=min(settings.batch_sizes), configs=list(d.configs), tolerance=d.tolerance,
                           throughput_batch=d.throughput_batch_size, data=settings.data, weights=settings.weights,
                           images=settings.eval_limit, machine=machine_id())


def machine_bench_keys(settings: StudySettings, model: str, machine: str) -> dict[int, str]:
    """The keys of ``model``'s bench points measured on ``machine``: this host's name in a study
    on one machine, a machine type (dnnmeter.fleet) in a study --per-machine. ``settings.heap``
    is left out on purpose (see StudySettings): a resumed study keeps its stored points, each
    saying in ``settings["heap"]`` which heap it was measured with."""
    size = {"input_size": list(settings.input_size)} if settings.input_size else {}
    return {
        b: measurement_key("bench", model, device=settings.device, batch_size=b, dtype=settings.dtype,
                           threads=settings.threads, time_budget_s=settings.time_budget_s, machine=machine, **size)
        for b in settings.batch_sizes
    }


@dataclass(frozen=True)
class Variant(Record):
    """One network to train: a zoo model with ``ops`` applied, in ``nproc`` processes."""

    name: str
    model: str
    ops: tuple[str, ...] = ()
    nproc: int = 1
    strategy: str = "ddp"

    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower()


@dataclass
class ModificationsSettings(Record):
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


def training_key(settings: ModificationsSettings, variant: Variant) -> str:
    return measurement_key(
        "training", variant.model, ops=list(variant.ops), nproc=variant.nproc, strategy=variant.strategy,
        data=settings.data, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
        augment=list(settings.augment), seed=settings.seed, threads=settings.threads, machine=machine_id(),
    )  # fmt: skip


def compression_keys(settings: ModificationsSettings, variant: Variant) -> dict[str, str]:
    trained = training_key(settings, variant)
    return {what: measurement_key("compression", variant.model, what=what, trained=trained,
                                  fine_tune_epochs=settings.prune_fine_tune_epochs if what != "quantization" else 0)
            for what in COMPRESSION}
