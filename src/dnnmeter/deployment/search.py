"""The accuracy-gated search: measure every configuration, judge it, recommend one.

Each configuration is a store row (kind ``deploy``) keyed by model, configuration, batch size,
threads, weights, the compared images and the machine, with its logits beside the store
(``outputs/KEY.npy``), so a rerun with the same ``out`` folder measures only what is missing.
A configuration that failed, or that its worker skipped (a package missing there), is a row
too (store status ``failed``/``skipped``, with its reason and the library versions it ran
with): a rerun does not try it again unless those versions changed. Skips decided here before
any worker runs (no bfloat16 on this CPU, no onnxruntime) are decided afresh each run, and
a skip for lack of budget is never stored: a rerun with more budget measures it.

The comparison runs in two stages to keep to ``budget_min`` (budget.py): every configuration
on a screen of a few images, then the candidates for the recommendation on every image, each
full comparison its own row (``stage: full``). Statuses are decided after measuring, so
another ``tolerance`` on a rerun judges the same figures again.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnnmeter.deployment import configs as cfg
from dnnmeter.deployment.budget import (
    BUDGET_REASON,
    SCREEN_IMAGES,
    Budget,
    budget_reason,
    full_estimate_s,
    measure_order,
    reserve_s,
    screen_estimate_s,
    screen_indices,
    skipped_for_budget,
    timing_settings,
)
from dnnmeter.deployment.images import Images, choose
from dnnmeter.deployment.judge import candidates, judge, recommend, score
from dnnmeter.deployment.result import BaselineRecheck, ConfigResult, DeployResult
from dnnmeter.deployment.runner import CONFIG_TIMEOUT_S, Runner, in_subprocess
from dnnmeter.deployment.stats import parse_tolerance
from dnnmeter.deployment.worker import DeploySpec
from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.timing import TimingSettings
from dnnmeter.store import Store, machine_id, measurement_key

if TYPE_CHECKING:
    import torch

DEFAULT_IMAGES = 1000  # issue 15: the recommendation's agreement is judged on at least 1,000 images
# The larger batch of the throughput figure: 8 at batch 1, twice the batch above 4. Not 8x at
# every batch: at batch 8, 64 resnet50 images a call would take most of the search's 10 minutes
# on 2 cores for that one figure.
THROUGHPUT_MIN_BATCH = 8
# The compared images run in batches of at least this many (fewer, fuller calls); the same as
# the throughput batch by default, so a compiled configuration meets no third batch shape.
ACCURACY_MIN_BATCH = 8


def default_throughput_batch(batch_size: int) -> int:
    return max(THROUGHPUT_MIN_BATCH, 2 * batch_size)


TOLERANCE_ON = ("agreement", "accuracy")
OnConfig = Callable[[ConfigResult], None]
RECHECK = "recheck"  # the stage of the baseline's second timing (its own store row)
STORED_STATUSES = ("failed", "skipped")  # besides measured figures: a rerun does not try them again


def _digest(images: torch.Tensor) -> str:
    return hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16]


def _images_file(work: Path, images: torch.Tensor, calibration: torch.Tensor, digest: str) -> Path:
    """``images`` (and the calibration images) saved for the workers, once per digest."""
    import torch

    path = work / f"images-{digest}.pt"
    if not path.is_file():
        torch.save({"images": images, "calibration": calibration}, path)
    return path


def versions() -> dict[str, str | None]:
    """The libraries a stored failure or skip depends on: another version, another try."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("torch", "torchvision", "onnx", "onnxruntime", "openvino", "dnnmeter"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


class _Session:
    """One search's settings, folders, budget and store; measures a configuration or takes it
    from the store."""

    def __init__(self, model: str, device: str, batch_size: int, weights: str | None, work: Path,
                 images: Images, screen: int, timing: TimingSettings, runner: Runner,
                 throughput_batch_size: int | None, budget: Budget, store: Store) -> None:
        self.model, self.device, self.batch_size, self.weights = model, device, batch_size, weights
        self.throughput_batch_size = throughput_batch_size
        self.accuracy_batch_size = max(batch_size, ACCURACY_MIN_BATCH)
        self.work, self.images, self.timing, self.runner = work, images, timing, runner
        self.budget, self.store, self.versions = budget, store, versions()
        (work / "outputs").mkdir(parents=True, exist_ok=True)
        self.full_images = int(images.images.shape[0])
        self.screen_index = screen_indices(self.full_images, screen)
        self.screen_images = len(self.screen_index)
        self.screen_labels = None if images.labels is None else np.asarray(images.labels)[self.screen_index]
        screen_images = images.images[self.screen_index]
        self.screen_digest = _digest(screen_images)
        self.screen_path = _images_file(work, screen_images, images.calibration, self.screen_digest)
        # every image (600 MB for 1,000 at 224 x 224): written only once a full comparison needs
        # it, and removed by drop_full_images, since the same images make the same file again
        self.full_digest = self.screen_digest if self.screen_images >= self.full_images else _digest(images.images)
        self.full_path: Path | None = self.screen_path if self.full_digest == self.screen_digest else None
        self.walls_s: list[float] = []  # the screens' wall times so far: the next one's estimate
        self.base_full_s: float | None = None  # the baseline's full comparison, estimated from its screen
        # each timed baseline's screen, by thread count: its second timing (recheck) costs about as much
        self.recheck_s: dict[int | None, float] = {}

    def key(self, config: cfg.Config, stage: str = "screen") -> str:
        full = stage == "full"
        extra: dict[str, Any] = {"stage": "full", "accuracy_batch": self.accuracy_batch_size} if full else {}
        if stage == RECHECK:
            extra = {"stage": RECHECK}
        if config.recipe is not None:
            extra["recipe"] = config.recipe
        return measurement_key("deploy", self.model, config=config.name, batch=self.batch_size,
                               threads=config.threads, machine=machine_id(), weights=self.weights,
                               images=self.full_digest if full else self.screen_digest, device=self.device,
                               throughput_batch=None if full else self.throughput_batch_size, **extra)

    def artefacts(self) -> Path:
        """Shared by this search's configurations: one ONNX export serves every ORT level."""
        same = measurement_key("deploy-artefacts", self.model, batch=self.batch_size, weights=self.weights,
                               images=self.screen_digest, device=self.device, onnx_batch="dynamic",
                               ort_int8_recipe=cfg.ORT_INT8_RECIPE)[:16]
        return self.work / "artefacts" / same

    def outputs(self, key: str) -> Path:
        return self.work / "outputs" / f"{key}.npy"

    def _full_file(self) -> Path:
        if self.full_path is None:
            self.full_path = _images_file(self.work, self.images.images, self.images.calibration, self.full_digest)
        return self.full_path

    def drop_full_images(self) -> None:
        if self.full_path is not None and self.full_path != self.screen_path:
            self.full_path.unlink(missing_ok=True)
            self.full_path = None

    def _spec(self, config: cfg.Config, key: str, full: bool, wait_s: float) -> DeploySpec:
        return DeploySpec(self.model, config.kind, config.threads, self.batch_size,
                          str(self._full_file() if full else self.screen_path), str(self.outputs(key)),
                          str(self.artefacts()), self.weights, self.device, self.timing,
                          None if full else self.throughput_batch_size, self.accuracy_batch_size,
                          time_it=not full, wait_s=max(1.0, wait_s))

    def _stored(self, key: str) -> dict[str, Any] | None:
        row = next(iter(self.store.rows("deploy", {key})), None)
        if row is None:
            return None
        if row.status in STORED_STATUSES:  # a failure with other libraries may not fail now
            return row.data if row.data.get("extra", {}).get("versions") == self.versions else None
        return row.data if self.outputs(key).is_file() else None

    def _run(self, spec: DeploySpec) -> tuple[dict[str, Any], float]:
        started = self.budget.clock()  # the budget's clock: the estimates and the budget agree
        raw = self.runner(spec)
        wall_s = self.budget.clock() - started
        by_budget = spec.wait_s is not None and spec.wait_s < CONFIG_TIMEOUT_S  # not the hang guard's limit
        if raw.get("timed_out_s") is not None and by_budget:
            raw = {"status": "skipped", "reason": f"{BUDGET_REASON}: stopped after {wall_s:.0f} s, when the "
                   "search's --budget-min was spent; a rerun with a larger --budget-min (same --out) measures it"}
        return raw, wall_s

    def screen(self, config: cfg.Config, reference: bool = False,
               reserve: bool = True) -> tuple[ConfigResult, np.ndarray | None]:
        """``config`` timed and compared on the screen: from the store, or measured if it fits
        the budget (the ``reference`` baseline always runs: nothing compares without it), after
        keeping back the full comparisons' and the baselines' second timings' time if ``reserve``."""
        key = self.key(config)
        stored = self._stored(key)
        if stored is not None:
            result = ConfigResult.from_dict(stored)
            result.extra["store_key"] = key
            measured = result.status not in STORED_STATUSES
            if measured and reference:
                self._estimate_base(result)
            if measured and config.kind == cfg.BASELINE_KIND and self._stored(self.key(config, RECHECK)) is None:
                self.recheck_s[config.threads] = float(result.extra.get("wall_s") or 0.0)
            return result, np.load(self.outputs(key)) if measured else None
        kept = reserve_s(self.base_full_s, self.budget.total_s, sum(self.recheck_s.values())) if reserve else 0.0
        left = self.budget.left_s() - kept
        needed = screen_estimate_s(self.walls_s)
        if not reference and needed > left:
            return self._skip(config, budget_reason(needed, left, "its screen")), None
        raw, wall_s = self._run(self._spec(config, key, full=False, wait_s=CONFIG_TIMEOUT_S if reference else left))
        result = ConfigResult.from_dict({**raw, "name": config.name, "kind": config.kind, "threads": config.threads})
        result.extra["wall_s"] = wall_s
        if raw.get("status") != "measured":
            self._keep_failure(key, result)
            return result, None
        self.walls_s.append(wall_s)
        if reference:
            self._estimate_base(result)
        if config.kind == cfg.BASELINE_KIND:
            self.recheck_s[config.threads] = wall_s
        self.store.add(key, "deploy", self.model, result.to_dict(), batch_size=self.batch_size, device=self.device)
        result.extra["store_key"] = key  # where its figures are: a study's verdict row points here
        return result, np.load(self.outputs(key))

    def _estimate_base(self, base: ConfigResult) -> None:
        """The baseline's full comparison, estimated from its screen (kept back while screening)."""
        if self.screen_images < self.full_images:
            self.base_full_s = _full_estimate(base, self.screen_images, self.full_images)

    def _skip(self, config: cfg.Config, reason: str) -> ConfigResult:
        return ConfigResult(config.name, config.kind, config.threads, "skipped", reason)

    def _keep_failure(self, key: str, result: ConfigResult) -> None:
        if result.status in STORED_STATUSES and not skipped_for_budget(result.reason):
            result.extra["versions"] = self.versions
            self.store.add(key, "deploy", self.model, result.to_dict(), status=result.status,
                           batch_size=self.batch_size, device=self.device)
            result.extra["store_key"] = key

    def recheck(self, base: ConfigResult) -> BaselineRecheck:
        """Eager float32 at ``base``'s thread count timed again once the screens are done (its own
        row, stage ``recheck``): a shared machine has slow and fast periods (eager resnet50 at 2
        threads: 55 or 75-79 ms a call, minutes apart), and every speed-up at that thread count
        divides by the baseline. Its samples join the first run's (judge.py), so the speed-up's
        interval spans the drift; ``extra.drift`` is the ratio of the two medians. Its time was
        kept back while screening (``recheck_s``); what it returns says whether it ran, and why not."""
        config = cfg.Config(base.kind, base.threads)
        key = self.key(config, RECHECK)
        stored = self._stored(key)
        if stored is None:
            needed = float(base.extra.get("wall_s") or screen_estimate_s(self.walls_s))
            left = self.budget.left_s() - reserve_s(self.base_full_s, self.budget.total_s, candidates=1)
            if needed > left:
                base.extra["recheck"] = budget_reason(needed, left, "timing the baseline again")
                return BaselineRecheck(base.threads, reason=base.extra["recheck"])
            raw, wall_s = self._run(self._spec(config, key, full=False, wait_s=left))
            if raw.get("status") != "measured" or not raw.get("samples_s"):
                base.extra["recheck"] = f"failed: {raw.get('reason')}"
                return BaselineRecheck(base.threads, reason=base.extra["recheck"])
            stored = {"samples_s": raw["samples_s"], "latency_s_median": raw.get("latency_s_median"),
                      "name": config.name, "wall_s": wall_s}
            self.store.add(key, "deploy", self.model, stored, batch_size=self.batch_size, device=self.device)
        samples = [float(v) for v in stored.get("samples_s") or []]
        if samples and base.samples_s:
            base.extra["recheck_samples_s"] = samples
            base.extra["drift"] = float(np.median(samples) / np.median(base.samples_s))
            base.extra["recheck"] = "timed again after the screens"
            return BaselineRecheck(base.threads, drift=base.extra["drift"])
        base.extra["recheck"] = "failed: the second timing has no samples"
        return BaselineRecheck(base.threads, reason=base.extra["recheck"])

    def compare_all(self, config: cfg.Config, estimate_s: float) -> tuple[np.ndarray | None, str | None]:
        """``config``'s logits on every image (stored, or run if the budget allows), or why not."""
        key = self.key(config, "full")
        stored = self._stored(key)
        if stored is not None and stored.get("status") == "compared":
            return np.load(self.outputs(key)), None
        left = self.budget.left_s()
        if estimate_s > left:
            return None, budget_reason(estimate_s, left, f"comparing {config.name} on all {self.full_images} images")
        raw, wall_s = self._run(self._spec(config, key, full=True, wait_s=left))
        if raw.get("status") != "compared":
            return None, str(raw.get("reason"))
        self.store.add(key, "deploy", self.model, {**raw, "name": config.name, "wall_s": wall_s},
                       batch_size=self.batch_size, device=self.device)
        return np.load(self.outputs(key)), None


def deploy(
    model: str,
    device: str = "cpu",
    batch_size: int = 1,
    threads: int | None = None,
    data: str | None = None,
    weights: str | None = None,
    tolerance: str | float = "1%",
    tolerance_on: str = "agreement",
    budget_min: float = 10.0,
    configs: list[str] | None = None,
    export: str | Path | None = None,
    out: str | Path | None = None,
    images: int = DEFAULT_IMAGES,
    runner: Runner = in_subprocess,
    capabilities: cfg.Capabilities | None = None,
    on_config: OnConfig | None = None,
    throughput_batch_size: int | None = None,
    store: Store | str | Path | None = None,
    screen_images: int = SCREEN_IMAGES,
) -> DeployResult:
    """The fastest way to run ``model`` here whose outputs stay within ``tolerance``.

    Every configuration (dnnmeter.deployment.configs) is measured in a process of its own by
    ``runner``; those that cannot run here are ``skipped`` with the reason, those that fail
    ``failed``. ``tolerance`` ("1%" or 0.01) bounds the loss of top-1 agreement with eager
    float32 (``tolerance_on="agreement"``) or the drop of top-1 accuracy ("accuracy", needs
    labelled ``data``). Each configuration is compared on ``screen_images`` of the ``images``,
    the candidates for the recommendation on all of them, within ``budget_min`` (budget.py).
    ``out`` keeps the store (resumable) and the outputs compared;
    ``store`` puts the rows elsewhere: an open :class:`Store` (a study's, left open for its owner),
    or a path or SQLAlchemy URL, e.g. a shared store. ``throughput_batch_size`` is the larger
    batch of the throughput figure (None: :func:`default_throughput_batch`; 0: none).
    ``export`` writes the winner.

    >>> r = deploy("tiny_alexnet", configs=["int8"], budget_min=0.5)  # doctest: +SKIP
    >>> r.recommended, r.config(r.recommended).speedup  # doctest: +SKIP
    """
    from dnnmeter.zoo import resolve

    budget = Budget(budget_min * 60)  # the search's clock starts here: choosing the images counts
    resolve(model)  # an unknown name is said before anything runs
    share = parse_tolerance(tolerance)
    if tolerance_on not in TOLERANCE_ON:
        raise InvalidInputError(f"bad tolerance_on {tolerance_on!r}: choose {' or '.join(TOLERANCE_ON)}")
    if batch_size < 1 or images < 1 or screen_images < 1:
        raise InvalidInputError("batch_size, images and screen_images must be at least 1")
    if throughput_batch_size is not None and throughput_batch_size < 0:
        raise InvalidInputError(f"bad throughput batch size {throughput_batch_size}: give a batch size, or 0 for none")
    larger = default_throughput_batch(batch_size) if throughput_batch_size is None else throughput_batch_size or None
    from dnnmeter.measure import check_bench_args, not_runnable_reason

    check_bench_args(device, [batch_size], "float32")  # a device that is not here is said before any work
    why_not = not_runnable_reason(model)
    if why_not:
        raise InvalidInputError(why_not)
    caps = capabilities or cfg.probe(device)
    planned = cfg.plan(device, caps, threads, configs)
    chosen = choose(model, data, weights, images)
    if tolerance_on == "accuracy" and chosen.labels is None:
        raise InvalidInputError("--tolerance-on accuracy needs labelled images: pass --data digits or a folder")
    with _work_dir(out) as work, _store(store, work) as rows:
        measurable = sum(cfg.skip_reason(c, caps, device) is None for c in planned)
        session = _Session(model, device, batch_size, weights, work, chosen, screen_images,
                           timing_settings(budget_min, measurable), runner, larger, budget, rows)
        results, outputs = _screen_all(planned, caps, session, on_config)
        rechecks = _recheck_baselines(results, session)
        base = judge(results, outputs, session.screen_labels, share, tolerance_on, session.full_images)
        if not candidates(results, base) and _screen_again(results, planned, session, outputs, on_config):
            # a thread count first timed in the second pass gets its second timing (or its reason) too;
            # the others' come from the store, or are tried again with what is left
            rechecks = _recheck_baselines(results, session)
            base = judge(results, outputs, session.screen_labels, share, tolerance_on, session.full_images)
        try:
            unconfirmed = _compare_candidates(results, base, session, chosen, share, tolerance_on, on_config)
        finally:
            session.drop_full_images()
        verdict = recommend(results, base, session.full_images, unconfirmed)
        if weights is None:  # once the baseline ran: bad input stays the only line
            warnings.warn(f"{model} has its initial (random) weights: agreement with float32 still holds, but an "
                          "accuracy change means nothing; pass --weights FILE or --weights default", stacklevel=2)
        result = DeployResult(model, device, batch_size, share, tolerance_on, session.full_images,
                              _note(chosen.note, session), verdict.baseline, verdict.recommended, verdict.reason,
                              results, _environment(device, threads), session.screen_images,
                              budget_min * 60, budget.total_s - budget.left_s(), rechecks)
        if export is not None:
            from dnnmeter.deployment.export import export_recommended

            export_recommended(result, Path(export), weights)
    return result


def _recheck_baselines(results: list[ConfigResult], session: _Session) -> list[BaselineRecheck]:
    """Eager float32 timed again at each thread count where something else was timed."""
    timed = {r.threads for r in results if r.kind != cfg.BASELINE_KIND and r.samples_s}
    return [session.recheck(result) for result in results
            if result.kind == cfg.BASELINE_KIND and result.samples_s and result.threads in timed]


def _full_estimate(result: ConfigResult, screen: int, images: int) -> float:
    return full_estimate_s(result.extra.get("wall_s", 0.0), result.extra.get("phases_s", {}), screen, images,
                           result.images_per_s_at_throughput_batch, result.first_call_s)


def _note(note: str, session: _Session) -> str:
    if session.screen_images >= session.full_images:
        return note
    return (f"{note}; every configuration screened on {session.screen_images} of them, the candidates for the "
            f"recommendation compared on all {session.full_images}")


def _screen_all(planned: list[cfg.Config], caps: cfg.Capabilities, session: _Session,
                on_config: OnConfig | None) -> tuple[list[ConfigResult], dict[str, np.ndarray]]:
    """Every configuration timed and compared on the screen, in budget.measure_order; the
    results in the plan's order."""
    found: dict[cfg.Config, ConfigResult] = {}
    outputs: dict[str, np.ndarray] = {}
    order = measure_order(planned)
    for config in order:
        why = cfg.skip_reason(config, caps, session.device)
        if why is not None:
            result = ConfigResult(config.name, config.kind, config.threads, "skipped", why)
        else:
            result, logits = session.screen(config, reference=config == order[0])
            if logits is not None:
                outputs[config.name] = logits
        found[config] = result
        if on_config is not None:
            on_config(result)
    return [found[c] for c in planned], outputs


def _screen_again(results: list[ConfigResult], planned: list[cfg.Config], session: _Session,
                  outputs: dict[str, np.ndarray], on_config: OnConfig | None) -> bool:
    """With no candidate after the screens, the time kept back for full comparisons has nothing
    to be spent on: the configurations skipped for the budget are screened with it, in the same
    order. True if any was."""
    again = False
    for config in measure_order(planned):
        i = planned.index(config)
        if not skipped_for_budget(results[i].reason) or results[i].status != "skipped":
            continue
        result, logits = session.screen(config, reserve=False)
        results[i] = result
        if logits is not None:
            outputs[config.name], again = logits, True
        if on_config is not None:
            on_config(result)
    return again


def _compare_candidates(results: list[ConfigResult], base: ConfigResult, session: _Session, chosen: Images,
                        share: float, on: str, on_config: OnConfig | None) -> str | None:
    """The candidates compared on every image, fastest first, until one is accepted there; one
    whose comparison does not fit the budget (or fails) keeps its screen's figures and the next
    is tried. Returns what was left uncompared, said for the recommendation's reason (None: nothing)."""
    if session.screen_images >= session.full_images:
        return None
    waiting = candidates(results, base)
    if not waiting:
        return None
    reference, why = session.compare_all(cfg.Config(base.kind, base.threads), session.base_full_s or 0.0)
    if reference is None:
        return f"the baseline's own comparison: {why}"
    base.images = int(reference.shape[0])
    labels = None if chosen.labels is None else np.asarray(chosen.labels)
    left: list[str] = []
    for candidate in waiting:
        needed = _full_estimate(candidate, session.screen_images, session.full_images)
        logits, why = session.compare_all(cfg.Config(candidate.kind, candidate.threads), needed)
        if logits is None:
            candidate.extra["full_comparison"] = why
            left.append(f"{candidate.name} ({'budget' if skipped_for_budget(why) else why})")
            continue
        candidate.extra["screen"] = {k: getattr(candidate, k) for k in ("images", "top1_agreement", "reason")}
        score(candidate, reference, logits, labels, share, on, session.full_images)
        if on_config is not None:
            on_config(candidate)
        if candidate.status == "accepted":
            break
    return ", ".join(left) or None


def _store(given: Store | str | Path | None, work: Path) -> Any:
    """``given`` left open for its owner when it is an open store; else the store at ``given``
    (a path or URL) or in ``work``, closed afterwards."""
    if isinstance(given, Store):
        return contextlib.nullcontext(given)
    return Store(given or work / "results.sqlite")


class _work_dir:
    """``out`` (made if missing), or a temporary folder removed afterwards."""

    def __init__(self, out: str | Path | None) -> None:
        self.out, self.temp = out, None

    def __enter__(self) -> Path:
        if self.out is not None:
            Path(self.out).mkdir(parents=True, exist_ok=True)
            return Path(self.out)
        self.temp = tempfile.TemporaryDirectory(prefix="dnnmeter-deploy-")
        return Path(self.temp.name)

    def __exit__(self, *exc: Any) -> None:
        if self.temp is not None:
            self.temp.cleanup()


def _environment(device: str, threads: int | None) -> dict[str, Any]:
    from dnnmeter.measure.environment import capture_environment

    return capture_environment(device=device, threads=threads)
