"""``dnnmeter study --deploy``: the deploy search for the study's models, into the study's store.

For each model the whole search (:func:`dnnmeter.deployment.deploy`) runs with the study's
device, threads, smallest batch size, data and weights. Its configurations land as the
search's own ``deploy`` rows in the study's store (the search is handed the store: nothing
is written twice); the logits and artefacts it compares stay in ``OUT/deploy/``. Once a
model's search is judged, one ``deploy-verdict`` row keeps what the search decided from the
logits (statuses, speed-ups and their intervals, agreement, the recommendation) and the
keys of the ``deploy`` rows its figures are in; results/collect.py joins the two.

Resuming: a model with its verdict row is done. One interrupted half-way runs again and
measures only the configurations that have no row yet. A model whose search cannot run (an
ONNX file, a baseline that fails) is a note, and is tried again on the next run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from dnnmeter.errors import InvalidInputError
from dnnmeter.results.records import DEPLOY_JUDGED
from dnnmeter.results.settings import StudySettings, deploy_key
from dnnmeter.store import Store

Step = Callable[[str, bool], None]
FOLDER = "deploy"  # OUT/deploy: the searches' logits and artefacts


def prepare(settings: StudySettings) -> StudySettings:
    """``settings`` with the deploy models' names expanded; bad deploy settings refused in one
    line before anything is measured."""
    if settings.deploy is None:
        return settings
    from dnnmeter.deployment.configs import CPU_KINDS, CUDA_KINDS
    from dnnmeter.deployment.stats import parse_tolerance
    from dnnmeter.zoo import expand_names

    d = settings.deploy
    models = tuple(expand_names(list(d.models))) if d.models else ()
    outside = [m for m in models if m not in settings.models]
    if outside:
        raise InvalidInputError(f"--deploy-models {', '.join(outside)} not among the study's models; add them to "
                                "--models or leave them out")
    kinds = CUDA_KINDS if settings.device.startswith("cuda") else CPU_KINDS
    unknown = [k for k in d.configs if k not in kinds]
    if unknown:
        raise InvalidInputError(f"unknown --deploy-configs {', '.join(unknown)} on {settings.device}; choose from "
                                f"{', '.join(kinds)}")
    parse_tolerance(d.tolerance)
    if d.budget_min <= 0:
        raise InvalidInputError(f"bad deploy budget {d.budget_min} min: give minutes above 0")
    return replace(settings, deploy=replace(d, models=models))


def steps(settings: StudySettings) -> int:
    """How many progress steps :func:`run_deploy` takes (one per model)."""
    return len(settings.deploy_models())


def verdict(result: Any) -> dict[str, Any]:
    """What a study keeps of a judged search besides its ``deploy`` rows."""
    configs = []
    for c in result.configs:
        judged = {k: v for k, v in c.to_dict().items() if k in DEPLOY_JUDGED}
        configs.append({**judged, "store_key": c.extra.get("store_key")})
    return {"model": result.model, "device": result.device, "batch_size": result.batch_size,
            "tolerance": result.tolerance, "tolerance_on": result.tolerance_on, "images": result.images,
            "images_note": result.images_note, "baseline": result.baseline, "recommended": result.recommended,
            "recommendation_reason": result.recommendation_reason, "configs": configs,
            "rechecks": [asdict(r) for r in result.rechecks]}


def run_deploy(store: Store, settings: StudySettings, out: Path, step: Step) -> list[str]:
    """The deploy search of every deploy model not yet judged in ``store``; returns notes."""
    from dnnmeter.deployment import deploy
    from dnnmeter.deployment.search import DEFAULT_IMAGES
    from dnnmeter.errors import DnnmeterError
    from dnnmeter.measure import not_runnable_reason

    d = settings.deploy
    notes: list[str] = []
    for model in settings.deploy_models():
        assert d is not None
        key = deploy_key(settings, model)
        if store.has(key):
            step(f"{model}: deploy search (stored)", False)
            continue
        why_not = not_runnable_reason(model)
        if why_not:
            step(f"{model}: no deploy search", False)
            notes.append(f"{model}: no deploy search ({why_not})")
            continue
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            try:
                result = deploy(model, device=settings.device, batch_size=min(settings.batch_sizes),
                                threads=settings.threads, data=settings.data, weights=settings.weights,
                                tolerance=d.tolerance, budget_min=d.budget_min, configs=list(d.configs) or None,
                                out=out / FOLDER, images=settings.eval_limit or DEFAULT_IMAGES,
                                throughput_batch_size=d.throughput_batch_size, store=store)
            except DnnmeterError as exc:
                step(f"{model}: deploy search failed", False)
                notes.append(f"{model}: deploy search failed ({exc}); the next run tries again")
                continue
        notes.extend(f"{model}: deploy: {w.message}" for w in said if issubclass(w.category, UserWarning))
        store.add(key, "deploy-verdict", model, verdict(result), batch_size=result.batch_size, device=settings.device)
        step(f"{model}: deploy search, recommended {result.recommended}", True)
    return notes
