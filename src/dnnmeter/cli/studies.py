"""The studies and their report: study, study modifications, report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dnnmeter.cli import common
from dnnmeter.cli.choices import OPS, STUDY_BATCH_SIZES, STUDY_TIME_BUDGET_S
from dnnmeter.errors import DnnmeterError


def _cmd_study_modifications(args: argparse.Namespace) -> int:
    from dnnmeter.studies.modifications import ModificationsSettings, run_modifications
    from dnnmeter.report import text
    from dnnmeter.studies.models import report

    models = tuple(m for part in args.models or [] for m in part.split(",") if m)
    settings = ModificationsSettings(
        data=args.data or "digits", models=tuple(common.resolve_all(list(models))) if models else (),
        ops=tuple(args.op or ()), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        augment=tuple(a for a in (args.augment or "").split(",") if a), seed=args.seed, out=args.out,
        averaged_nproc=args.nproc, threads=args.threads, compression=args.compression,
    )  # fmt: skip
    with common.study_progress() as progress:
        task = progress.add_task("modifications", total=None)
        try:
            outputs = run_modifications(settings, lambda what, done, total: progress.update(
                task, description=what, completed=done, total=total), store=args.store)
        except KeyboardInterrupt:
            print(f"dnnmeter: interrupted; every trained variant is in {_store_name(args)}; "
                  "run the same command again to resume", file=sys.stderr)
            return 130
    rendered = report(args.out, store=args.store)
    if args.format == "json":
        print(json.dumps([v.to_dict() for v in outputs.variants], indent=2))
    else:
        common.console().print(text.modifications_table(outputs.variants))
    rendered.notes.extend(outputs.notes)
    common.print_outputs(rendered, f"{outputs.trained} variants trained, {outputs.sweeps} quantization/pruning sweeps, "
                   f"{outputs.skipped_as_done} variants already in the store",
                   file=sys.stderr if args.format == "json" else sys.stdout)  # stdout stays pure JSON
    return 0


def _deploy_settings(args: argparse.Namespace) -> Any:
    """--deploy and its options as DeploySettings; None when the deploy search was not asked for."""
    from dnnmeter.results.settings import DeploySettings

    models = tuple(m for part in args.deploy_models or [] for m in part.split(",") if m)
    given = {"--deploy-configs": args.deploy_configs, "--deploy-tolerance": args.deploy_tolerance,
             "--deploy-budget-min": args.deploy_budget_min}
    if not (args.deploy or models):
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            raise DnnmeterError(f"{', '.join(stray)} set the deploy search, which was not asked for; add --deploy "
                                "(or --deploy-models NAMES)")
        return None
    defaults = DeploySettings()
    return DeploySettings(models=models, configs=tuple(args.deploy_configs or ()),
                          tolerance=args.deploy_tolerance or defaults.tolerance,
                          budget_min=args.deploy_budget_min or defaults.budget_min)


def _store_name(args: argparse.Namespace) -> str:
    """The store as messages show it: never with its password."""
    from dnnmeter.store import display_url

    return display_url(args.store) if args.store else f"{args.out}/results.sqlite"


def _cmd_study(args: argparse.Namespace) -> int:
    from dnnmeter.studies.models import StudySettings, run_study

    if args.what == "modifications":
        deploy_flags = {"--deploy": args.deploy or None, "--deploy-models": args.deploy_models,
                        "--deploy-configs": args.deploy_configs, "--deploy-tolerance": args.deploy_tolerance,
                        "--deploy-budget-min": args.deploy_budget_min}
        given = [flag for flag, value in deploy_flags.items() if value is not None]
        if given:
            raise DnnmeterError(f"{', '.join(given)} belong to the models study, not `dnnmeter study modifications`; "
                                "run `dnnmeter study --deploy` for it")
        if args.engine != "local" or args.address or args.per_machine:
            raise DnnmeterError("--engine, --address and --per-machine belong to the models study; "
                                "`dnnmeter study modifications` runs here")
        return _cmd_study_modifications(args)
    only_modifications = {"--op": args.op, "--epochs": args.epochs, "--batch-size": args.batch_size,
                          "--lr": args.lr, "--augment": args.augment}
    misplaced = [flag for flag, value in only_modifications.items() if value is not None]
    if misplaced:
        raise DnnmeterError(f"{', '.join(misplaced)} belong to `dnnmeter study modifications`, not the models study")
    size, _ = common.image_input(args, "study", "each model is benchmarked and put on a systolic array at one "
                                 "image size (its batch comes from --batch-sizes)") if args.inputs else (None, None)
    settings = StudySettings(
        input_size=tuple(size) if size else None,
        models=tuple(m for part in args.models or ["seed"] for m in part.split(",") if m), device=args.device,
        batch_sizes=args.batch_sizes, out=args.out, time_budget_s=args.time_budget, threads=args.threads,
        max_latency_ms=args.max_latency_ms, max_memory_mb=args.max_memory_mb, max_energy_j=args.max_energy_j,
        data=args.data, weights=args.weights, eval_limit=args.eval_limit, deploy=_deploy_settings(args),
        predict=not args.no_predict, heap=args.heap,
    )
    with common.study_progress() as progress:
        task = progress.add_task("study", total=None)

        def show(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        try:
            outputs = run_study(settings, show, store=args.store, engine=args.engine, address=args.address,
                                per_machine=args.per_machine)
        except KeyboardInterrupt:
            print(f"dnnmeter: interrupted; every finished measurement is in {_store_name(args)}; "
                  "run the same command again to resume", file=sys.stderr)
            return 130
    common.print_outputs(outputs, f"{outputs.measured} measured, {outputs.skipped_as_done} already in the store")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnnmeter.studies.models import report

    folder = Path(args.out_dir)
    if folder.exists() and not folder.is_dir():
        raise DnnmeterError(f"{folder} is a file; give the folder a study wrote (dnnmeter study --out DIR)")
    for path, what in ((folder, "the report"), (folder / "figures", "the figures")):
        common.check_output_folder(path, what)
    outputs = report(args.out_dir, store=args.store)
    common.print_outputs(outputs, "re-rendered from the store; nothing measured")
    return 0


def add_commands(sub: Any) -> None:
    """Add this area's commands to the ``dnnmeter`` parser."""
    study = sub.add_parser(
        "study", help="the whole study: analyse, benchmark, store, and write the report",
        description="Analyse and benchmark each model, store every measurement as it lands "
        "(rerun to resume), and write results.{sqlite,csv,json}, figures/ and report.html.",
    )
    study.add_argument("what", nargs="?", choices=("models", "modifications"), default="models",
                       help="models (default): the models study; modifications: train variants and compare")
    study.add_argument("--models", nargs="+", help="models: seed (default) or names, comma or space separated; "
                       "modifications: the models to modify (default: the tiny AlexNet family)")
    study.add_argument("--device", default="cpu")
    study.add_argument("--batch-sizes", type=common.batch_sizes, default=STUDY_BATCH_SIZES,
                       help="comma list (default %(default)s; the paper's sweep is 1,2,4,8,16,32,64)")
    study.add_argument("--threads", type=common.positive_int)
    common.add_input_argument(study, "models: every model's input as one image spec, e.g. 1x3x160x160 "
                              "(the batch comes from --batch-sizes); default: each model's own")
    study.add_argument("--out", default="study-out", help="output folder (default: study-out)")
    common.add_store_argument(study, "OUT/results.sqlite")
    study.add_argument("--time-budget", type=common.positive_seconds, default=STUDY_TIME_BUDGET_S, help="seconds of sampling per point")
    common.add_heap_argument(study, "models: each bench point and a calibration the study makes are timed with")
    study.add_argument("--max-latency-ms", type=float, help="budget: the most accurate model under this latency")
    study.add_argument("--max-memory-mb", type=float, help="budget: the most accurate model under this memory")
    study.add_argument("--no-predict", action="store_true",
                       help="models: skip the latency prediction (by default the study predicts its models and the "
                            "torchvision zoo from this machine's calibration, making a short one if there is none)")
    study.add_argument("--max-energy-j", type=float, help="budget: the most accurate model under this energy per image")
    study.add_argument("--data", metavar="PATH|digits", help="measure accuracy on this data (else: published figures)")
    study.add_argument("--weights", metavar="FILE|default", help="weights for the measured accuracy")
    study.add_argument("--eval-limit", type=common.positive_int, help="evaluate on this many images")
    study.add_argument("--deploy", action="store_true", help="models: also run `dnnmeter deploy` for each model "
                       "(its smallest batch size, the study's device, threads, --data and --weights) and add the "
                       "report's \"How to run it\" section; see docs/deploy.md")
    study.add_argument("--deploy-models", nargs="+", metavar="NAMES", help="models: the deploy search for only "
                       "these of the study's models (implies --deploy)")
    study.add_argument("--deploy-configs", type=common.names, metavar="LIST",
                       help="models: comma list of deploy kinds to try (default: all; see "
                       "dnnmeter deploy --list-configs)")
    study.add_argument("--deploy-tolerance", metavar="1%", help="models: deploy's --tolerance (default 1%%)")
    study.add_argument("--deploy-budget-min", type=common.positive_seconds, metavar="M",
                       help="models: deploy's --budget-min per model (default 10)")
    study.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="models: local (default) runs here; ray runs each model's analysis, benchmark "
                       "sweep and evaluation as Ray tasks (pip install dnnmeter[fleet]; docs/fleet.md)")
    study.add_argument("--address", metavar="HOST:PORT", help="models, --engine ray: the Ray head to join "
                       "(default: start a local Ray cluster on this machine)")
    study.add_argument("--per-machine", action="store_true", help="models, --engine ray: benchmark every "
                       "model on every machine type in the cluster, compared in the report")
    study.add_argument("--op", action="append", choices=OPS, help="modifications: applied cumulatively to each model")
    study.add_argument("--epochs", type=common.positive_int, help="modifications: epochs (default 10 on digits, 100 on a folder)")
    study.add_argument("--batch-size", type=common.positive_int, help="modifications: training batch size")
    study.add_argument("--lr", type=float, help="modifications: learning rate")
    study.add_argument("--augment", metavar="mask,rotate,flip,noise", help="modifications: augmentations")
    study.add_argument("--seed", type=int, default=0, help="modifications: seed of the split, the init and the order")
    study.add_argument("--nproc", type=int, default=2, help="modifications: also train the first variant in this "
                       "many processes with model averaging, to compare (0: do not; default 2)")
    study.add_argument("--no-compression", dest="compression", action="store_false",
                       help="modifications: skip the quantization and pruning sweeps of the first variant")
    study.add_argument("--format", choices=("table", "json"), default="table", help="modifications: output format")
    study.set_defaults(func=_cmd_study)

    report = sub.add_parser("report", help="re-render a study's outputs from its store, measuring nothing")
    report.add_argument("out_dir", metavar="DIR", help="the study's folder: its store is read and its outputs written")
    common.add_store_argument(report, "DIR/results.sqlite; with a URL, DIR only receives the outputs")
    report.set_defaults(func=_cmd_report)
