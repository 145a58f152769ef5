"""The ``dnnmeter`` command: parse arguments, call the API, render. No logic of its own.

Any :class:`~dnnmeter.errors.DnnmeterError` becomes one line on stderr and exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from dnnmeter import __version__
from dnnmeter.errors import DnnmeterError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the whole usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


# --- models ---------------------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    from dnnmeter.report import text
    from dnnmeter.zoo import list_models

    entries = list_models(args.pattern, source=args.source)
    if args.format == "json":
        print(text.to_json(entries))
    else:
        _console().print(text.models_table(entries))
    return 0


# --- analyze --------------------------------------------------------------------------------


def _resolve_all(names: Sequence[str]) -> list[str]:
    """Expand ``seed`` and check every name before any counting starts."""
    from dnnmeter.zoo import expand_names, resolve, timm_source

    expanded = expand_names(names)
    if "seed" in names and not timm_source.is_available():
        skipped = [n for n in expanded if n.startswith("timm:")]
        print(f"dnnmeter: timm is not installed; skipping {', '.join(skipped)}", file=sys.stderr)
        expanded = [n for n in expanded if n not in skipped]
    for name in expanded:
        resolve(name)
    return expanded


def _cmd_analyze(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import analyze, parse_input_size
    from dnnmeter.report import text

    names = _resolve_all(args.models)
    size = parse_input_size(args.input_size)
    analyses = []
    with _progress(len(names) > 1) as progress:
        task = progress.add_task("counting", total=len(names))
        for name in names:
            progress.update(task, description=f"counting {name}")
            analyses.append(analyze(name, input_size=size, batch_size=args.batch_size))
            progress.advance(task)
    if args.format == "json":
        print(text.to_json(analyses))
    elif args.format == "csv":
        sys.stdout.write(text.analyses_csv(analyses, per_layer=args.per_layer))
    else:
        _print_analyses(analyses, args.per_layer)
    return 0


def _print_analyses(analyses: list[Any], per_layer: bool) -> None:
    from dnnmeter.report import text

    console = _console()
    for a in analyses if per_layer else []:
        console.print(text.layers_table(a))
        console.print(text.kinds_table(a))
    console.print(text.summary_table(analyses))
    console.print(text.conv_fc_table(analyses))
    for a in analyses:
        note = text.unsupported_text(a)
        if note:
            console.print(note, style="yellow")


def _progress(enabled: bool) -> Any:
    from rich.progress import Progress

    return Progress(console=_console(stderr=True), transient=True, disable=not (enabled and sys.stderr.isatty()))


# --- bench ----------------------------------------------------------------------------------


def _batch_sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of positive integers, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected a comma list of positive integers, got {value!r}")
    return sizes


def _cmd_bench(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import parse_input_size
    from dnnmeter.measure import benchmark

    names = _resolve_all(args.models)
    landed: list[Any] = []
    with _progress(True) as progress:
        task = progress.add_task("measuring", total=len(names) * len(set(args.batch_sizes)))

        def keep(result: Any) -> None:
            landed.append(result)
            progress.update(task, advance=1, description=f"{result.model} batch {result.batch_size}: {result.status}")

        try:
            benchmark(names, device=args.device, batch_sizes=args.batch_sizes, threads=args.threads,
                      dtype=args.dtype, input_size=parse_input_size(args.input_size),
                      time_budget_s=args.time_budget, on_result=keep)
        except KeyboardInterrupt:
            _render_bench(landed, args.format)  # what was measured is not lost
            print(f"dnnmeter: interrupted after {len(landed)} points", file=sys.stderr)
            return 130
    _render_bench(landed, args.format)
    return 0


def _render_bench(results: list[Any], fmt: str) -> None:
    from dnnmeter.report import text

    if fmt == "json":
        print(text.to_json(results))
    elif fmt == "csv":
        sys.stdout.write(text.bench_csv(results))
    else:
        console = _console()
        for table in text.bench_tables(results):
            console.print(table)


# --- eval -----------------------------------------------------------------------------------


def _cmd_eval(args: argparse.Namespace) -> int:
    from dnnmeter.evaluate import evaluate
    from dnnmeter.report import text

    (name,) = _resolve_all([args.model])
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 shows and prints
    with _progress(main_rank) as progress:
        task = progress.add_task(f"evaluating {name}", total=None)
        result = evaluate(name, args.data, weights=args.weights, input_size=args.input_size,
                          batch_size=args.batch_size, workers=args.workers, limit=args.limit,
                          strict=args.strict, device=args.device,
                          progress=lambda done, total: progress.update(task, completed=done, total=total))
    if not main_rank:
        return 0
    if args.format == "json":
        print(text.to_json([result]))
    else:
        console = _console()
        for table in text.eval_tables(result):
            console.print(table)
    return 0


# --- modify ---------------------------------------------------------------------------------


def _cmd_modify(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import parse_input_size
    from dnnmeter.modify import compare
    from dnnmeter.report.modify_text import modify_json, modify_tables

    (name,) = _resolve_all([args.model])
    with _progress(args.latency) as progress:
        progress.add_task("timing the model before and after", total=None)
        result = compare(name, args.op, args.layers, input_size=parse_input_size(args.input_size),
                         batch_size=args.batch_size, measure_latency=args.latency, xception=args.xception,
                         projection=args.projection, between=args.between, strict=args.strict,
                         threads=args.threads)
    if args.out:
        _write_text(args.out, modify_json(result))
    if args.format == "json":
        print(modify_json(result))
    else:
        console = _console()
        for table in modify_tables(result):
            console.print(table)
    return 0


def _write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text + "\n")
    except OSError as exc:
        raise DnnmeterError(f"cannot write {path}: {exc.strerror}; choose another --out") from None


# --- train ----------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from dnnmeter.report.train_text import classes_table, history_table
    from dnnmeter.train import train

    (name,) = _resolve_all([args.model])
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 shows and prints
    with _progress(main_rank) as progress:
        task = progress.add_task(f"training {name}", total=None)

        def show(epoch: int, epochs: int, batch: int, batches: int) -> None:
            progress.update(task, description=f"{name}: epoch {epoch}/{epochs}", completed=batch, total=batches)

        try:
            result = train(name, args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           augment=args.augment or (), out=args.out, seed=args.seed, device=args.device,
                           input_size=args.input_size, nproc=args.nproc, strategy=args.strategy,
                           average_every=args.average_every, threads=args.threads, workers=args.workers,
                           progress=show)
        except KeyboardInterrupt:
            where = f"; the epochs finished are in {args.out}/history.json" if args.out else ""
            print(f"dnnmeter: interrupted{where}", file=sys.stderr)
            return 130
    if not main_rank:
        return 0
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        console = _console()
        console.print(history_table(result))
        console.print(classes_table(result))
        for path in (result.checkpoint, result.curves):
            if path:
                print(f"  {path}")
    return 0


# --- quantize and prune ----------------------------------------------------------------------


def _compression_inputs(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """The model (with its weights) and the data, prepared as `dnnmeter eval` would."""
    from dnnmeter.evaluate import build_with_weights, prepared_data

    (name,) = _resolve_all([args.model])
    if args.weights is None:
        print(f"dnnmeter: note: {name} has its initial weights (no --weights): its accuracy means little",
              file=sys.stderr)
    return name, build_with_weights(name, args.weights), prepared_data(name, args.data, args.weights, args.input_size)


def _render_points(points: list[Any], fmt: str, table: Any, notes: Any) -> None:
    if fmt == "json":
        print(json.dumps([p.to_dict() for p in points], indent=2))
        return
    console = _console()
    console.print(table(points))
    for note in notes(points):
        console.print(f"note: {note}", style="yellow")


def _cmd_quantize(args: argparse.Namespace) -> int:
    from dnnmeter.modify.quantize import quantization_sweep
    from dnnmeter.report.compression_text import quant_notes, quant_table

    name, module, data = _compression_inputs(args)
    with _progress(True) as progress:
        progress.add_task(f"quantizing {name} and scoring each model", total=None)
        points = quantization_sweep(module, data=data, bits=args.bits, int8=args.int8, eval_limit=args.limit,
                                    activations=not args.weights_only, threads=args.threads)
    _render_points(points, args.format, quant_table, quant_notes)
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from dnnmeter.modify.prune import pruning_sweep
    from dnnmeter.report.compression_text import prune_notes, prune_table

    name, module, data = _compression_inputs(args)
    methods = ("unstructured", "structured") if args.method == "both" else (args.method,)
    points: list[Any] = []
    with _progress(True) as progress:
        progress.add_task(f"pruning {name} and scoring each model", total=None)
        for method in methods:
            points += pruning_sweep(module, data=data, sparsities=args.sparsities, method=method, scope=args.scope,
                                    eval_limit=args.limit, threads=args.threads)
    _render_points(points, args.format, prune_table, prune_notes)
    return 0


def _fractions(value: str) -> tuple[float, ...]:
    try:
        found = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        found = ()
    if not found or not all(0.0 <= f < 1.0 for f in found):
        raise argparse.ArgumentTypeError(f"expected a comma list of fractions in [0, 1), got {value!r}")
    return found


# --- hardware -------------------------------------------------------------------------------


def _cmd_hardware(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import parse_input_size
    from dnnmeter.hardware import hardware, measure_ceilings, roofline
    from dnnmeter.report.hardware_figures import draw_hardware_figures
    from dnnmeter.report.hardware_text import hardware_tables

    if args.model is None and args.topology is None:
        raise DnnmeterError("give a MODEL or --topology SCALESIM.csv")
    model = None if args.model is None else _resolve_all([args.model])[0]
    result = hardware(model, input_size=parse_input_size(args.input_size), batch_size=args.batch_size,
                      array=args.array, dataflow=args.dataflow, sram_kb=args.sram_kb, bits=args.bits,
                      energy_table=args.energy_table, topology=args.topology, export_scalesim=args.export_scalesim)
    data = result.to_dict()
    roof = None
    if args.roofline:
        if model is None:
            raise DnnmeterError("--roofline runs the model; give a MODEL, not only a topology")
        with _progress(True) as progress:
            progress.add_task("measuring this machine's ceilings and the model's layers", total=None)
            ceilings = measure_ceilings("cpu", threads=args.threads)
            roof = roofline(model, ceilings, input_size=parse_input_size(args.input_size),
                            batch_size=args.batch_size, threads=args.threads).to_dict()
        data["roofline"] = roof
    if args.figures:
        for figure in draw_hardware_figures(data, roof, args.figures):
            print(f"dnnmeter: figure {figure.png or figure.skipped_reason}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        console = _console()
        for table in hardware_tables(data, roof, per_layer=args.per_layer):
            console.print(table)
    return 0


# --- study and report -----------------------------------------------------------------------


def _study_progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=_console(stderr=True), transient=True, disable=not sys.stderr.isatty())


def _cmd_study_modifications(args: argparse.Namespace) -> int:
    from dnnmeter.modifications import ModificationsSettings, run_modifications
    from dnnmeter.report import text
    from dnnmeter.study import report

    models = tuple(m for part in args.models or [] for m in part.split(",") if m)
    settings = ModificationsSettings(
        data=args.data or "digits", models=tuple(_resolve_all(list(models))) if models else (),
        ops=tuple(args.op or ()), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        augment=tuple(a for a in (args.augment or "").split(",") if a), seed=args.seed, out=args.out,
        averaged_nproc=args.nproc, threads=args.threads, compression=args.compression,
    )  # fmt: skip
    with _study_progress() as progress:
        task = progress.add_task("modifications", total=None)
        try:
            outputs = run_modifications(settings, lambda what, done, total: progress.update(
                task, description=what, completed=done, total=total))
        except KeyboardInterrupt:
            print(f"dnnmeter: interrupted; every trained variant is in {args.out}/results.sqlite; "
                  "run the same command again to resume", file=sys.stderr)
            return 130
    rendered = report(args.out)
    if args.format == "json":
        print(json.dumps(outputs.variants, indent=2))
    else:
        _console().print(text.modifications_table(outputs.variants))
    rendered.notes.extend(outputs.notes)
    _print_outputs(rendered, f"{outputs.trained} variants trained, {outputs.sweeps} quantization/pruning sweeps, "
                   f"{outputs.skipped_as_done} variants already in the store",
                   file=sys.stderr if args.format == "json" else sys.stdout)  # stdout stays pure JSON
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from dnnmeter.study import StudySettings, run_study

    if args.what == "modifications":
        return _cmd_study_modifications(args)
    only_modifications = {"--op": args.op, "--epochs": args.epochs, "--batch-size": args.batch_size,
                          "--lr": args.lr, "--augment": args.augment}
    misplaced = [flag for flag, value in only_modifications.items() if value is not None]
    if misplaced:
        raise DnnmeterError(f"{', '.join(misplaced)} belong to `dnnmeter study modifications`, not the models study")
    settings = StudySettings(
        models=tuple(m for part in args.models or ["seed"] for m in part.split(",") if m), device=args.device,
        batch_sizes=args.batch_sizes, out=args.out, time_budget_s=args.time_budget, threads=args.threads,
        max_latency_ms=args.max_latency_ms, max_memory_mb=args.max_memory_mb, max_energy_j=args.max_energy_j,
        data=args.data, weights=args.weights, eval_limit=args.eval_limit,
    )
    with _study_progress() as progress:
        task = progress.add_task("study", total=None)

        def show(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        try:
            outputs = run_study(settings, show)
        except KeyboardInterrupt:
            print(f"dnnmeter: interrupted; every finished measurement is in {args.out}/results.sqlite; "
                  "run the same command again to resume", file=sys.stderr)
            return 130
    _print_outputs(outputs, f"{outputs.measured} measured, {outputs.skipped_as_done} already in the store")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from dnnmeter.study import report

    outputs = report(args.out_dir)
    _print_outputs(outputs, "re-rendered from the store; nothing measured")
    return 0


def _print_outputs(outputs: Any, summary: str, file: Any = None) -> None:
    file = file or sys.stdout
    print(f"dnnmeter: {summary}", file=file)
    for path in (outputs.results_json, outputs.results_csv, outputs.report_html):
        if path is not None:
            print(f"  {path}", file=file)
    for note in outputs.notes:
        print(f"  note: {note}", file=file)


# --- the parser -----------------------------------------------------------------------------


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dnnmeter", description="What a deep neural network costs in practice.")
    parser.add_argument("--version", action="version", version=f"dnnmeter {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list the models dnnmeter can build")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: all)")
    models.add_argument("--source", choices=("torchvision", "seed", "timm"), help="only this source")
    models.add_argument("--format", choices=("table", "json"), default="table")
    models.set_defaults(func=_cmd_models)

    analyze = sub.add_parser(
        "analyze", help="count parameters, MACs, FLOPs and activations without running the model",
        description="Count parameters, MACs, FLOPs and activations on the meta device. "
        "MODEL is a zoo name (see `dnnmeter models`), `seed` for the seed studies' list, "
        "timm:NAME, an ONNX file, or package.module:callable.",
    )
    analyze.add_argument("models", nargs="+", metavar="MODEL")
    analyze.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    analyze.add_argument("--batch-size", type=_positive_int, default=1)
    analyze.add_argument("--per-layer", action="store_true", help="one row per layer")
    analyze.add_argument("--format", choices=("table", "json", "csv"), default="table")
    analyze.set_defaults(func=_cmd_analyze)

    bench = sub.add_parser(
        "bench", help="measure latency, throughput, memory, power and energy across batch sizes",
        description="Measure each model in a subprocess of its own, at each batch size.",
    )
    bench.add_argument("models", nargs="+", metavar="MODEL")
    bench.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    bench.add_argument("--batch-sizes", type=_batch_sizes, default=(1,), help="comma list, e.g. 1,2,4,8,16,32,64")
    bench.add_argument("--threads", type=_positive_int, help="CPU threads (default: half the available cores)")
    bench.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    bench.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    bench.add_argument("--time-budget", type=float, default=2.0, help="seconds of sampling per point (default 2)")
    bench.add_argument("--format", choices=("table", "json", "csv"), default="table")
    bench.set_defaults(func=_cmd_bench)

    evaluate = sub.add_parser(
        "eval", help="top-1, top-5 and per-class accuracy on ImageNet, Tiny ImageNet, a folder or digits",
        description="Evaluate MODEL with a single centre crop. DATA is a folder (ImageNet validation as class "
        "folders or flat with its ground truth, Tiny ImageNet, any ImageFolder) or `digits`, scikit-learn's "
        "real handwritten digits (built in, no download). Under torchrun each process evaluates a shard "
        "and rank 0 prints the merged result.",
    )
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("--data", required=True, metavar="PATH|digits")
    evaluate.add_argument("--weights", metavar="FILE|default", help="a state dict / safetensors file, or `default` "
                          "(torchvision's default weights from the local torch hub cache; never downloaded)")
    evaluate.add_argument("--input-size", type=_positive_int, help="square input size (default: the model's own)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=32)
    evaluate.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    evaluate.add_argument("--limit", type=_positive_int, help="evaluate this many images, spread over the data set")
    evaluate.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--format", choices=("table", "json"), default="table")
    evaluate.set_defaults(func=_cmd_eval)

    from dnnmeter.modify import BETWEEN, OPS

    mod = sub.add_parser(
        "modify", help="change a network's operations and show what it buys and costs",
        description="Apply operation modifications to a copy of MODEL (new layers freshly initialised) and "
        "compare parameters, MACs, FLOPs, activations and, with --latency, measured latency before and after. "
        "See docs/modify.md for what each op touches by default.",
    )
    mod.add_argument("model", metavar="MODEL")
    mod.add_argument("--op", action="append", required=True, choices=OPS, help="repeat for several, applied in order")
    mod.add_argument("--layers", metavar="PATTERN", help="fnmatch pattern or comma list of module names")
    mod.add_argument("--xception", action="store_true", help="nothing between a separable conv's depthwise and pointwise")
    mod.add_argument("--projection", action="store_true", help="residual: 1x1 conv shortcuts where shapes differ")
    mod.add_argument("--between", choices=BETWEEN, default="bn-relu", help="what goes between the convs an op makes")
    mod.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    mod.add_argument("--batch-size", type=_positive_int, default=1)
    mod.add_argument("--latency", action="store_true", help="also measure latency before and after (in this process)")
    mod.add_argument("--threads", type=_positive_int, help="CPU threads for --latency")
    mod.add_argument("--no-strict", dest="strict", action="store_false", help="warn, not fail, when an op changes nothing")
    mod.add_argument("--out", metavar="FILE", help="also write the result as JSON to FILE")
    mod.add_argument("--format", choices=("table", "json"), default="table")
    mod.set_defaults(func=_cmd_modify)

    from dnnmeter.train import AUGMENTATIONS, DEFAULT_BATCH_SIZE, DEFAULT_LR, STRATEGIES

    tr = sub.add_parser(
        "train", help="train a model on digits or a folder: curves, checkpoint, best and worst classes",
        description="Train MODEL (a fresh copy, one output per class of the data) with SGD; per epoch the train "
        "and validation loss and accuracy and the time; a safetensors checkpoint, curves.png and history.json "
        "in --out. Deterministic with --seed on the CPU. --nproc N trains in N processes (DDP or local SGD); "
        "under torchrun the job's processes are used.",
    )
    tr.add_argument("model", metavar="MODEL")
    tr.add_argument("--data", default="digits", metavar="digits|PATH",
                    help="digits (built in) or a folder with train/ and val/ (Tiny ImageNet or class folders)")
    tr.add_argument("--epochs", type=_positive_int, help="default 10 on digits, 100 on a folder")
    tr.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, help="the global batch")
    tr.add_argument("--lr", type=float, default=DEFAULT_LR)
    tr.add_argument("--augment", metavar=",".join(AUGMENTATIONS), help="comma list of augmentations")
    tr.add_argument("--input-size", type=_positive_int, help="square input (default: 32 on digits, the model's own)")
    tr.add_argument("--out", metavar="DIR", help="write model.safetensors, history.json, curves.png, result.json")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--nproc", type=_positive_int, default=1, help="processes on this machine (default 1)")
    tr.add_argument("--strategy", choices=STRATEGIES, default="ddp",
                    help="ddp: synchronous; average: local SGD, models averaged every --average-every steps")
    tr.add_argument("--average-every", type=_positive_int, metavar="STEPS", help="default: once an epoch")
    tr.add_argument("--threads", type=_positive_int, help="CPU threads per process")
    tr.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    tr.add_argument("--format", choices=("table", "json"), default="table")
    tr.set_defaults(func=_cmd_train)

    def compression_parser(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description + " MODEL is scored as `dnnmeter eval` "
                           "scores it: a dnnmeter checkpoint (--weights model.safetensors) brings its classes, "
                           "input size and normalisation.")
        p.add_argument("model", metavar="MODEL")
        p.add_argument("--data", default="digits", metavar="digits|PATH", help="evaluation data (default digits)")
        p.add_argument("--weights", metavar="FILE|default", help="trained weights (a state dict or safetensors)")
        p.add_argument("--input-size", type=_positive_int, help="square input size (default: the model's own)")
        p.add_argument("--limit", type=_positive_int, help="evaluate each model on this many images")
        p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads for the latency (default 1)")
        p.add_argument("--format", choices=("table", "json"), default="table")
        return p

    quant = compression_parser(
        "quantize", "int8 and fixed-point quantization: size, latency, SQNR and accuracy",
        "Quantize MODEL to int8 with torch.ao (pt2e, FX, eager: the first that works, the others' failures "
        "recorded) and fake-quantize it to fixed point at each of --bits; per model the size, the latency "
        "(float and int8), the output SQNR against float and the accuracy.")
    quant.add_argument("--bits", type=_batch_sizes, default=(32, 16, 8, 6, 4), help="comma list (default 32,16,8,6,4)")
    quant.add_argument("--no-int8", dest="int8", action="store_false", help="skip torch's int8 kernels")
    quant.add_argument("--weights-only", action="store_true", help="fixed point for the weights only")
    quant.set_defaults(func=_cmd_quantize)

    prune = compression_parser(
        "prune", "magnitude and channel pruning sweeps: accuracy, size, MACs, latency, hardware cost",
        "Prune MODEL to each sparsity: unstructured (smallest weights zeroed, torch.nn.utils.prune; the size "
        "if stored sparse is estimated) or structured (whole conv channels removed: fewer MACs); per sparsity "
        "the accuracy, non-zero parameters, sizes, MACs, latency and the hardware model on the pruned shapes.")
    prune.add_argument("--method", choices=("unstructured", "structured", "both"), default="both")
    prune.add_argument("--sparsities", type=_fractions, default=tuple(i / 10 for i in range(10)),
                       help="comma list of fractions (default 0,0.1,...,0.9)")
    prune.add_argument("--scope", choices=("global", "layer"), default="global",
                       help="unstructured: one threshold for all layers, or the same fraction in each")
    prune.set_defaults(func=_cmd_prune)

    hw = sub.add_parser(
        "hardware", help="memory accesses and data reuse, energy estimates, systolic arrays, roofline",
        description="The hardware cost of MODEL without running it: memory accesses naive and with "
        "each kind of data reuse, the DRAM lower bound, energy estimates (labelled estimated), and a "
        "systolic array's cycles, utilisation and SRAM/DRAM traffic per conv/FC/matmul layer. "
        "--roofline also measures this machine's ceilings and places each layer on the roofline.",
    )
    hw.add_argument("model", nargs="?", metavar="MODEL", help="a zoo name, ONNX file or module:callable")
    hw.add_argument("--topology", metavar="SCALESIM.csv", help="read the layers from a SCALE-Sim topology instead")
    hw.add_argument("--batch-size", type=_positive_int, default=1)
    hw.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    hw.add_argument("--array", default="32x32", metavar="RxC", help="systolic array rows x columns (default 32x32)")
    hw.add_argument("--dataflow", choices=("os", "ws", "is"), default="os",
                    help="output-, weight- or input-stationary (default os)")
    hw.add_argument("--sram-kb", default="64", metavar="N|I,F,O",
                    help="SRAM per operand in KB: one size or ifmap,filter,ofmap (default 64)")
    hw.add_argument("--bits", type=_positive_int, default=8, help="bits per word (default 8)")
    hw.add_argument("--energy-table", default="eyeriss", metavar="eyeriss|45nm|FILE")
    hw.add_argument("--export-scalesim", metavar="DIR", help="write SCALE-Sim 3 topology, layout and config files")
    hw.add_argument("--roofline", action="store_true", help="measure the ceilings and place each layer (runs the model)")
    hw.add_argument("--threads", type=_positive_int, help="CPU threads for --roofline (default: torch's)")
    hw.add_argument("--figures", metavar="DIR", help="draw the accesses, utilisation and roofline figures here")
    hw.add_argument("--per-layer", action=argparse.BooleanOptionalAction, default=True, help="per-layer table")
    hw.add_argument("--format", choices=("table", "json"), default="table")
    hw.set_defaults(func=_cmd_hardware)

    from dnnmeter.study import DEFAULT_BATCH_SIZES, DEFAULT_TIME_BUDGET_S

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
    study.add_argument("--batch-sizes", type=_batch_sizes, default=DEFAULT_BATCH_SIZES,
                       help="comma list (default %(default)s; the paper's sweep is 1,2,4,8,16,32,64)")
    study.add_argument("--threads", type=_positive_int)
    study.add_argument("--out", default="study-out", help="output folder (default: study-out)")
    study.add_argument("--time-budget", type=float, default=DEFAULT_TIME_BUDGET_S, help="seconds of sampling per point")
    study.add_argument("--max-latency-ms", type=float, help="budget: the most accurate model under this latency")
    study.add_argument("--max-memory-mb", type=float, help="budget: the most accurate model under this memory")
    study.add_argument("--max-energy-j", type=float, help="budget: the most accurate model under this energy per image")
    study.add_argument("--data", metavar="PATH|digits", help="measure accuracy on this data (else: published figures)")
    study.add_argument("--weights", metavar="FILE|default", help="weights for the measured accuracy")
    study.add_argument("--eval-limit", type=_positive_int, help="evaluate on this many images")
    study.add_argument("--op", action="append", choices=OPS, help="modifications: applied cumulatively to each model")
    study.add_argument("--epochs", type=_positive_int, help="modifications: epochs (default 10 on digits, 100 on a folder)")
    study.add_argument("--batch-size", type=_positive_int, help="modifications: training batch size")
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
    report.add_argument("out_dir", metavar="DIR")
    report.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DnnmeterError as exc:
        if args.debug:
            raise
        print(f"dnnmeter: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dnnmeter: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
