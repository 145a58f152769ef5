"""The commands that list, count, time and score models: models, analyze, bench, eval."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dnnmeter.cli import common
from dnnmeter.cli.choices import DTYPES, FLOAT_DTYPES, OPTIMIZER_NAMES, SOURCES
from dnnmeter.errors import DnnmeterError, InvalidInputError


def _cmd_models(args: argparse.Namespace) -> int:
    from dnnmeter.report import text
    from dnnmeter.zoo import list_models

    prefixed = next((s for s in ("timm", "hf") if args.pattern.startswith(s + ":")), None)
    source = prefixed if args.source is None else args.source
    entries = list_models(args.pattern, source=source)
    if not entries:
        raise DnnmeterError(_nothing_matches(args.pattern, source))
    if args.format == "json":
        print(text.to_json(entries))
    else:
        common.console().print(text.models_table(entries))
    return 0


def _nothing_matches(pattern: str, source: str | None) -> str:
    where = f"the {source} models" if source else "the torchvision and seed models"
    elsewhere = [] if source == "timm" else [f"timm's with `dnnmeter models 'timm:{pattern.removeprefix('timm:')}'`"]
    elsewhere += ["`dnnmeter models` for every name", "or give an ONNX file or package.module:callable "
                  "to any command directly"]
    return f"no model matches {pattern!r} among {where}; try " + ", ".join(elsewhere)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import analyze, parse_input_size, parse_specs
    from dnnmeter.report import text

    _check_one_list(args)
    names = common.resolve_all(args.models)
    size = parse_input_size(args.input_size)
    specs = parse_specs(args.inputs) if args.inputs else None
    analyses = []
    with common.progress(len(names) > 1) as progress:
        task = progress.add_task("counting", total=len(names))
        for name in names:
            progress.update(task, description=f"counting {name}")
            analyses.append(analyze(name, input_size=size, batch_size=args.batch_size, inputs=specs,
                                    mode=args.mode, optimizer=args.optimizer, dtype=args.dtype,
                                    seq_len=args.seq_len))
            progress.advance(task)
    if args.format == "json":
        print(text.analyses_json(analyses, depth=args.depth, top=args.top))
    elif args.format == "csv":
        sys.stdout.write(text.analyses_csv(analyses, per_layer=args.per_layer, depth=args.depth, top=args.top))
    else:
        _print_analyses(analyses, args.per_layer, args.depth, args.top)
    for a in analyses:  # on stderr in every format: a csv or json total may be incomplete too
        note = text.unsupported_text(a)
        if note:
            common.console(stderr=True).print(note, style="yellow", markup=False)
    return 0


def _check_one_list(args: argparse.Namespace) -> None:
    """JSON and CSV hold one list of rows per model (the table prints one table per option)."""
    # --per-layer leaves the JSON as it is (it always lists the layers)
    given = [f"--{name.replace('_', '-')}" for name in ("per_layer", "depth", "top")
             if getattr(args, name) and (args.format == "csv" or name != "per_layer")]
    if args.format in ("json", "csv") and len(given) > 1:
        raise InvalidInputError(f"{' and '.join(given)} with --format {args.format}: it lists one set of rows "
                                "per model; give one of them, or --format table for a table of each")


def _print_analyses(analyses: list[Any], per_layer: bool, depth: int | None = None, top: int | None = None) -> None:
    from dnnmeter.report import text

    console = common.console()
    for a in analyses if per_layer else []:
        console.print(text.layers_table(a))
        console.print(text.kinds_table(a))
    for a in analyses if depth else []:
        console.print(text.folded_table(a, a.fold(depth), depth))  # type: ignore[arg-type]
    for a in analyses if top else []:
        console.print(text.top_table(a, a.top_layers(top)))  # type: ignore[arg-type]
    console.print(text.summary_table(analyses))
    console.print(text.conv_fc_table(analyses))
    for a in analyses:
        if a.training_memory is not None:
            console.print(text.training_memory_table(a))
            if per_layer:
                console.print(text.layer_memory_table(a))


def _cmd_bench(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import parse_input_size
    from dnnmeter.measure import benchmark

    names = common.resolve_all(args.models)
    if args.inputs and args.input_size:
        raise DnnmeterError("dnnmeter bench: give --input or --input-size, not both")
    batch_sizes = args.batch_sizes or _spec_batch(args.inputs)
    landed: list[Any] = []
    with common.progress(True) as progress:
        task = progress.add_task("measuring", total=len(names) * len(set(batch_sizes)))

        def keep(result: Any) -> None:
            landed.append(result)
            progress.update(task, advance=1, description=f"{result.model} batch {result.batch_size}: {result.status}")

        try:
            benchmark(names, device=args.device, batch_sizes=batch_sizes,
                      threads=args.threads, dtype=args.dtype, input_size=parse_input_size(args.input_size),
                      time_budget_s=args.time_budget, on_result=keep, inputs=tuple(args.inputs or ()),
                      seq_len=args.seq_len, heap=args.heap)
        except KeyboardInterrupt:
            _render_bench(landed, args.format)  # what was measured is not lost
            print(f"dnnmeter: interrupted after {len(landed)} points", file=sys.stderr)
            return 130
    _render_bench(landed, args.format)
    return _bench_status(landed)


def _spec_batch(texts: list[str] | None) -> tuple[int, ...]:
    """Without --batch-sizes, the batch of the first --input spec (else 1)."""
    from dnnmeter.analysis import parse_specs

    first = parse_specs(texts).first if texts else None
    return (first.shape[0],) if first is not None and first.shape else (1,)


def _bench_status(results: list[Any]) -> int:
    """0 when every model was measured, 1 when a point failed or nothing was measured.

    An out-of-memory ends a sweep by design (the larger batch sizes are then skipped), so
    it fails the run only when the model measured nothing at all; an error never passes.
    Each point that is not ok gets one line on stderr.
    """
    for r in results:
        if r.status != "ok":
            print(f"dnnmeter: {r.model} batch {r.batch_size}: {r.status}: {r.error}", file=sys.stderr)
    measured = {r.model for r in results if r.status == "ok"}
    failed = any(r.status == "error" for r in results) or any(r.model not in measured for r in results)
    return 1 if failed or not results else 0


def _render_bench(results: list[Any], fmt: str) -> None:
    from dnnmeter.report import text

    if fmt == "json":
        print(text.to_json(results))
    elif fmt == "csv":
        sys.stdout.write(text.bench_csv(results))
    else:
        console = common.console()
        for table in text.bench_tables(results):
            console.print(table)


def _cmd_eval(args: argparse.Namespace) -> int:
    from dnnmeter.accuracy import evaluate
    from dnnmeter.report import text

    (name,) = common.resolve_all([args.model])
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 shows and prints
    with common.progress(main_rank) as progress:
        task = progress.add_task(f"evaluating {name}", total=None)
        result = evaluate(name, args.data, weights=args.weights, input_size=args.input_size,
                          batch_size=args.batch_size, workers=args.workers, limit=args.limit,
                          strict=args.strict, device=args.device, num_classes=args.num_classes,
                          progress=lambda done, total: progress.update(task, completed=done, total=total))
    if not main_rank:
        return 0
    if args.format == "json":
        print(text.to_json([result]))
    else:
        console = common.console()
        for table in text.eval_tables(result):
            console.print(table)
    return 0


def add_commands(sub: Any) -> None:
    """Add this area's commands to the ``dnnmeter`` parser."""
    models = sub.add_parser("models", help="list the models dnnmeter can build")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: all)")
    models.add_argument("--source", choices=SOURCES, help="only this source")
    common.add_format_and_run(models, _cmd_models)

    analyze = sub.add_parser(
        "analyze", help="count parameters, MACs, FLOPs and activations without running the model",
        description="Count parameters, MACs, FLOPs and activations on the meta device. "
        "MODEL is a zoo name (see `dnnmeter models`), `seed` for the seed studies' list, "
        "timm:NAME, an ONNX file, or package.module:callable.",
    )
    analyze.add_argument("models", nargs="+", metavar="MODEL")
    analyze.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    analyze.add_argument("--input", dest="inputs", action="append", metavar="SPEC",
                         help="a forward argument, repeatable: [NAME=]DIMxDIM...[:DTYPE], batch first "
                              "(--input 1x3x224x224; --input ids=1x128:int64 --input mask=1x128:bool); "
                              "replaces --input-size and --batch-size")
    analyze.add_argument("--seq-len", type=common.positive_int, metavar="L",
                         help="hf: models: token ids of this length (default 128)")
    analyze.add_argument("--mode", choices=("inference", "train"), default="inference",
                         help="train: one training step, forward + backward through autograd")
    analyze.add_argument("--optimizer", type=str.lower, choices=OPTIMIZER_NAMES,
                         help="with --mode train: estimate the memory of a step with this optimizer "
                              "(weights, gradients, optimizer state, saved activations, peak)")
    analyze.add_argument("--dtype", choices=FLOAT_DTYPES,
                         help="count the model as if cast to this dtype (default: its own)")
    analyze.add_argument("--batch-size", type=common.positive_int,
                         help="default: 1, or the batch an ONNX file was exported with")
    analyze.add_argument("--per-layer", action="store_true", help="one row per layer")
    analyze.add_argument("--depth", type=common.positive_int, metavar="N",
                         help="the layers folded into their parent modules to depth N (1: the model's "
                              "children), with each row's share of params and MACs; in json/csv, the rows listed")
    analyze.add_argument("--top", type=common.positive_int, metavar="K",
                         help="the K costliest layers by MACs, ranked; in json/csv, the rows listed")
    common.add_format_and_run(analyze, _cmd_analyze, ("table", "json", "csv"))

    bench = sub.add_parser(
        "bench", help="measure latency, throughput, memory, power and energy across batch sizes",
        description="Measure each model in a subprocess of its own, at each batch size.",
    )
    bench.add_argument("models", nargs="+", metavar="MODEL")
    bench.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    bench.add_argument("--batch-sizes", type=common.batch_sizes,
                       help="comma list, e.g. 1,2,4,8,16,32,64 (default: --input's batch, else 1)")
    bench.add_argument("--threads", type=common.positive_int, help="CPU threads (default: half the available cores)")
    bench.add_argument("--dtype", choices=DTYPES, default="float32")
    bench.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    common.add_input_argument(bench, "a forward argument, repeatable: [NAME=]DIMxDIM...[:DTYPE], batch first "
                              "(--input ids=1x128:int64 --input mask=1x128:bool); each point replaces the batch; "
                              "floats are random, integers 0, booleans true")
    bench.add_argument("--seq-len", type=common.positive_int, metavar="L",
                       help="hf: models: token ids of this length (default 128)")
    bench.add_argument("--time-budget", type=common.positive_seconds, default=2.0, help="seconds of sampling per point (default 2)")
    common.add_heap_argument(bench, "each point is measured with")
    common.add_format_and_run(bench, _cmd_bench, ("table", "json", "csv"))

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
    evaluate.add_argument("--input-size", type=common.positive_int, help="square input size (default: the model's own)")
    evaluate.add_argument("--num-classes", type=common.positive_int, metavar="N",
                          help="build MODEL with N outputs (weights fine-tuned on N classes; default: the checkpoint's or 1000)")
    evaluate.add_argument("--batch-size", type=common.positive_int, default=32)
    evaluate.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    evaluate.add_argument("--limit", type=common.positive_int, help="evaluate this many images, spread over the data set")
    evaluate.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    evaluate.add_argument("--device", default="cpu")
    common.add_format_and_run(evaluate, _cmd_eval)
