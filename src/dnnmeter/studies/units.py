"""The models study's units of work, and how to run one.

A unit is the work one engine hands to one worker: one model's static part (analysis,
published accuracy, hardware model and roofline: nothing is timed), its benchmark sweep,
its evaluation on the study's data, or the machine's ceilings the rooflines are drawn
against. :func:`plan_units` turns the settings and what the store already holds into the
units still to run (and the progress steps already done); :func:`run_unit` runs one and
hands each :class:`Step` to ``emit`` as it finishes, with the rows it produced. The local
engine (dnnmeter.studies.models) writes them as they come; the Ray engine (dnnmeter.fleet)
runs units as tasks on a cluster.

``run_unit`` takes a callback rather than being a generator because the benchmark hands
its points over by callback as each lands in its worker process, and a point must be
stored at once (a study killed mid-sweep keeps the points already measured).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dnnmeter.errors import DnnmeterError
from dnnmeter.results.settings import (
    CEILINGS_MODEL,
    HARDWARE_SETTINGS,
    StudySettings,
    ceilings_identity,
    machine_bench_keys,
    study_keys,
)
from dnnmeter.store import MachineIdentity, measurement_key
from dnnmeter.zoo import resolve
from dnnmeter.zoo.seed_accuracy import published_accuracy

UNIT_KINDS = ("ceilings", "static", "bench", "evaluation")
EXCLUSIVE_KINDS = ("ceilings", "bench")  # they time something: no other work may share their hardware
_WHAT = {"ceilings": "ceilings", "static": "analysis and hardware model", "bench": "benchmark",
         "evaluation": "accuracy"}


@dataclass(frozen=True)
class Measurement:
    """One row for the store, as :meth:`dnnmeter.store.Store.add` takes it."""

    key: str
    kind: str
    model: str
    data: dict[str, Any]
    status: str = "ok"
    batch_size: int | None = None
    device: str | None = None
    environment: dict[str, Any] | None = None


@dataclass(frozen=True)
class Step:
    """A piece of a unit that finished: ``steps`` progress steps (0 for a row that is no step
    of its own), measured or not, with the rows it produced, a note for the user, and the
    machine that produced them when it is not the one storing them (a cluster's worker)."""

    what: str
    measured: bool
    rows: tuple[Measurement, ...] = ()
    steps: int = 1
    note: str | None = None
    machine: MachineIdentity | None = None  # where the rows were produced; None: this machine


@dataclass(frozen=True)
class Unit:
    """One unit of work. ``todo`` maps each missing part to its store key: for ``static`` the
    parts analysis, accuracy (published), hardware and roofline; for ``bench`` the batch sizes
    (as text); for ``evaluation`` and ``ceilings`` one part of that name. ``machine``: the
    machine type a bench is (to be) measured on, recorded with its points; ``ceilings``: the
    data of the ceilings row the roofline is drawn against."""

    kind: str
    model: str
    todo: dict[str, str] = field(default_factory=dict)
    machine: str | None = None
    ceilings: dict[str, Any] | None = None

    @property
    def steps(self) -> int:
        """How many progress steps the unit closes when it runs."""
        if self.kind == "static":
            return ("analysis" in self.todo) + ("hardware" in self.todo or "roofline" in self.todo)
        if self.kind == "bench":
            return len(self.todo)
        return int(self.kind == "evaluation")

    def still_missing(self, has: Callable[[str], bool]) -> Unit:
        """This unit without the parts the store now holds (a retried task resumes)."""
        return replace(self, todo={part: key for part, key in self.todo.items() if not has(key)})


def ceilings_key(settings: StudySettings) -> str:
    return measurement_key("ceilings", CEILINGS_MODEL, **ceilings_identity(settings))


def plan_ceilings(settings: StudySettings, has: Callable[[str], bool]) -> Unit | None:
    """The ceilings unit when a roofline is still to be drawn and the ceilings are not stored."""
    key = ceilings_key(settings)
    if has(key) or all(has(study_keys(settings, m)["roofline"]) for m in settings.models):
        return None
    return Unit("ceilings", CEILINGS_MODEL, {"ceilings": key})


def plan_units(settings: StudySettings, has: Callable[[str], bool],
               ceilings: dict[str, Any] | None = None) -> tuple[list[Unit], list[Step]]:
    """The units still to run, model by model (static part, evaluation, benchmark sweep, as
    the local engine runs them), and the progress steps of the parts already stored."""
    from dnnmeter.measure import not_runnable_reason

    units: list[Unit] = []
    stored: list[Step] = []

    def add(unit: Unit) -> None:
        if unit.todo:
            units.append(unit)

    for model in settings.models:
        keys = study_keys(settings, model)
        static = {part: keys[part] for part in ("analysis", "hardware", "roofline") if not has(keys[part])}
        published = resolve(model).published or published_accuracy(model)
        if published is not None and published.top1 is not None and not has(keys["accuracy"]):
            static["accuracy"] = keys["accuracy"]
        if "analysis" not in static:
            stored.append(Step(f"{model}: analysis (stored)", False))
        if "hardware" not in static and "roofline" not in static:
            stored.append(Step(f"{model}: hardware model (stored)", False))
        add(Unit("static", model, static, ceilings=ceilings))
        if keys["measured_accuracy"] is not None:
            if has(keys["measured_accuracy"]):
                stored.append(Step(f"{model}: accuracy (stored)", False))
            else:
                add(Unit("evaluation", model, {"evaluation": keys["measured_accuracy"]}))
        sweeps = {m: machine_bench_keys(settings, model, m) for m in settings.machines} if settings.machines \
            else {None: keys["bench"]}
        for machine, bench in sweeps.items():
            if not_runnable_reason(model):  # an ONNX file: analysed, but there is nothing to time
                stored.append(Step(f"{model}: not benchmarked (an ONNX file)", False, steps=len(bench)))
                continue
            stored.extend(Step(f"{model}: batch {b} (stored)", False) for b, key in bench.items() if has(key))
            add(Unit("bench", model, {str(b): key for b, key in bench.items() if not has(key)}, machine=machine))
    return units, stored


def run_unit(unit: Unit, settings: StudySettings, emit: Callable[[Step], None]) -> None:
    """Run ``unit``, handing each finished step to ``emit``. A hardware model or an evaluation
    that fails is a step that says so; any other dnnmeter error (a model that cannot be built)
    is raised: the local engine stops there, as the study always has; the Ray engine records
    it with :func:`failed` and goes on with the other units."""
    _RUNNERS[unit.kind](unit, settings, emit)


def failed(unit: Unit, error: DnnmeterError, steps_done: int = 0) -> Step:
    """The step that closes what is left of ``unit`` (``steps_done`` of its steps were emitted)
    after ``error``, with a note saying so."""
    return Step(f"{unit.model}: {_WHAT[unit.kind]} failed", False, steps=max(unit.steps - steps_done, 0),
                note=f"{unit.model}: {_WHAT[unit.kind]} not measured ({error})")


def _run_ceilings(unit: Unit, settings: StudySettings, emit: Callable[[Step], None]) -> None:
    from dnnmeter.hardware import measure_ceilings

    ceilings = measure_ceilings(settings.device, threads=settings.threads)
    emit(Step("this machine's ceilings", True, steps=0,
              rows=(Measurement(unit.todo["ceilings"], "hardware", CEILINGS_MODEL, ceilings.to_dict(),
                                device=settings.device),)))


def _run_static(unit: Unit, settings: StudySettings, emit: Callable[[Step], None]) -> None:
    from dnnmeter.analysis import analyze

    model, todo = unit.model, unit.todo
    published: tuple[Measurement, ...] = ()
    if "accuracy" in todo:
        figure = resolve(model).published or published_accuracy(model)
        assert figure is not None
        published = (Measurement(todo["accuracy"], "accuracy", model, {
            "top1": figure.top1, "top5": figure.top5, "label": "published",
            "source": figure.source, "weights": figure.weights,
        }),)
    if "analysis" in todo:
        summary = analyze(model, input_size=settings.input_size).summary().to_dict()
        emit(Step(f"{model}: analysis", True, (Measurement(todo["analysis"], "analysis", model, summary),) + published))
    elif published:
        emit(Step(f"{model}: published accuracy", True, published, steps=0))
    if "hardware" in todo or "roofline" in todo:
        _run_hardware(unit, settings, emit)


def _run_hardware(unit: Unit, settings: StudySettings, emit: Callable[[Step], None]) -> None:
    """The hardware model (accesses, reuse, energy, systolic array) and the roofline, both
    without running the model: the roofline's measured side is the bench latency, joined in
    :func:`dnnmeter.results.collect.collect`."""
    from dnnmeter.hardware import estimate_hardware, roofline
    from dnnmeter.hardware.ceilings import Ceilings

    model, todo = unit.model, unit.todo
    rows: list[Measurement] = []
    try:
        if "hardware" in todo:
            rows.append(Measurement(todo["hardware"], "hardware", model, estimate_hardware(
                model, input_size=settings.input_size, **HARDWARE_SETTINGS).to_dict()))
        if "roofline" in todo and unit.ceilings is not None:
            ceilings = Ceilings.from_dict(unit.ceilings)
            if ceilings.peak_flops_per_s is not None:
                roof = roofline(model, ceilings, input_size=settings.input_size, measure=False).to_dict()
                rows.append(Measurement(todo["roofline"], "hardware", model, {"roofline": roof},
                                        device=settings.device))
    except DnnmeterError as exc:  # e.g. a model with no conv/linear/matmul layer
        emit(Step(f"{model}: no hardware model ({exc})", False, tuple(rows)))
        return
    emit(Step(f"{model}: hardware model", True, tuple(rows)))


def _run_evaluation(unit: Unit, settings: StudySettings, emit: Callable[[Step], None]) -> None:
    """Evaluate the model on the study's data; where that fails the published figure stays."""
    from dnnmeter.accuracy import evaluate

    model = unit.model
    try:
        result = evaluate(model, settings.data, weights=settings.weights, limit=settings.eval_limit,  # type: ignore[arg-type]
                          device=settings.device)
    except DnnmeterError as exc:
        emit(Step(f"{model}: accuracy not measured", False, note=f"{model}: accuracy not measured ({exc}); "
                  "the published figure is used where there is one"))
        return
    emit(Step(f"{model}: accuracy measured", True, (Measurement(unit.todo["evaluation"], "accuracy", model, {
        "top1": result.top1, "top5": result.top5, "label": "measured", "n": result.n,
        "source": f"dnnmeter eval on {settings.data}", "weights": result.weights,
        "skipped": len(result.skipped),
    }),)))


def _run_bench(unit: Unit, settings: StudySettings, emit: Callable[[Step], None]) -> None:
    from dnnmeter.measure import benchmark

    def landed(result: Any) -> None:
        data = result.to_dict()
        environment = data.pop("environment", None)
        if unit.machine is not None and environment is not None:
            environment["machine_type"] = unit.machine  # the report groups a fleet's points by it
        emit(Step(f"{unit.model}: batch {result.batch_size} {result.status}", True, (Measurement(
            unit.todo[str(result.batch_size)], "bench", unit.model, data, status=result.status,
            batch_size=result.batch_size, device=result.device, environment=environment),)))

    benchmark([unit.model], device=settings.device, batch_sizes=sorted(int(b) for b in unit.todo),
              threads=settings.threads, dtype=settings.dtype, input_size=settings.input_size,
              time_budget_s=settings.time_budget_s, on_result=landed, heap=settings.heap)


_RUNNERS: dict[str, Callable[[Unit, StudySettings, Callable[[Step], None]], None]] = {
    "ceilings": _run_ceilings, "static": _run_static, "bench": _run_bench, "evaluation": _run_evaluation,
}
