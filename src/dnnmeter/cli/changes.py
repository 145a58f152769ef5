"""The commands that change a model and measure the change: modify, train, quantize, prune."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from dnnmeter.cli import choices, common
from dnnmeter.cli.choices import AUGMENTATIONS, BETWEEN, OPS, STRATEGIES, TRAIN_BATCH_SIZE, TRAIN_LR

NUM_CLASSES_HELP = "build MODEL with N outputs (weights fine-tuned on N classes; default: the checkpoint's or 1000)"


def _cmd_modify(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import parse_input_size
    from dnnmeter.transforms import compare
    from dnnmeter.report.modify_text import modify_json, modify_tables

    (name,) = common.resolve_all([args.model])
    size, batch = common.image_input(args, "modify", "the rewrites and the latency run take one image input")
    with common.progress(args.latency) as progress:
        progress.add_task("timing the model before and after", total=None)
        result = compare(name, args.op, args.layers, input_size=parse_input_size(size),
                         batch_size=batch, measure_latency=args.latency, xception=args.xception,
                         projection=args.projection, between=args.between, strict=args.strict,
                         threads=args.threads)
    if args.out:
        common.write_text(args.out, modify_json(result))
    if args.format == "json":
        print(modify_json(result))
    else:
        console = common.console()
        for table in modify_tables(result):
            console.print(table)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from dnnmeter.report.train_text import classes_table, history_table
    from dnnmeter.training import train

    (name,) = common.resolve_all([args.model])
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 shows and prints
    with common.progress(main_rank) as progress:
        task = progress.add_task(f"training {name}", total=None)

        def show(epoch: int, epochs: int, batch: int, batches: int) -> None:
            progress.update(task, description=f"{name}: epoch {epoch}/{epochs}", completed=batch, total=batches)

        try:
            result = train(name, args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           augment=args.augment or (), out=args.out, seed=args.seed, device=args.device,
                           input_size=args.input_size, nproc=args.nproc, strategy=args.strategy,
                           average_every=args.average_every, threads=args.threads, workers=args.workers,
                           progress=show, overwrite=args.overwrite)
        except KeyboardInterrupt:
            where = f"; the epochs finished are in {args.out}/history.json" if args.out else ""
            print(f"dnnmeter: interrupted{where}", file=sys.stderr)
            return 130
    if not main_rank:
        return 0
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        console = common.console()
        console.print(history_table(result))
        console.print(classes_table(result))
        for path in (result.checkpoint, result.curves):
            if path:
                print(f"  {path}")
    return 0


def _compression_inputs(args: argparse.Namespace) -> tuple[str, Any, Any, Any]:
    """The model (with its weights), the data prepared as `dnnmeter eval` would, and whether
    it is held out."""
    from dnnmeter.accuracy import build_with_weights, held_out_data

    (name,) = common.resolve_all([args.model])
    module = build_with_weights(name, args.weights, num_classes=args.num_classes)
    data, held = held_out_data(name, args.data, args.weights, args.input_size)
    if args.weights is None:  # after the inputs are known good: an error stays the only line
        print(f"dnnmeter: note: {name} has its initial weights (no --weights): its accuracy means little",
              file=sys.stderr)
    return name, module, data, held


def _render_points(points: list[Any], fmt: str, table: Any, notes: Any, held: Any) -> None:
    if fmt == "json":
        extra = {"held_out": held.held_out, "held_out_note": held.note}
        print(json.dumps([{**p.to_dict(), **extra} for p in points], indent=2))
        return
    console = common.console()
    console.print(table(points))
    for note in notes(points):
        console.print(f"note: {note}", style="yellow")


def _cmd_quantize(args: argparse.Namespace) -> int:
    from dnnmeter.transforms.quantize import quantization_sweep
    from dnnmeter.report.compression_text import quant_notes, quant_table

    name, module, data, held = _compression_inputs(args)
    with common.progress(True) as progress:
        progress.add_task(f"quantizing {name} and scoring each model", total=None)
        points = quantization_sweep(module, data=data, bits=args.bits, int8=args.int8, eval_limit=args.limit,
                                    activations=not args.weights_only, threads=args.threads)
    _render_points(points, args.format, quant_table, quant_notes, held)
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from dnnmeter.transforms.prune import pruning_sweep
    from dnnmeter.report.compression_text import prune_notes, prune_table

    name, module, data, held = _compression_inputs(args)
    methods = ("unstructured", "structured") if args.method == "both" else (args.method,)
    points: list[Any] = []
    with common.progress(True) as progress:
        progress.add_task(f"pruning {name} and scoring each model", total=None)
        for method in methods:
            points += pruning_sweep(module, data=data, sparsities=args.sparsities, method=method, scope=args.scope,
                                    eval_limit=args.limit, threads=args.threads)
    _render_points(points, args.format, prune_table, prune_notes, held)
    return 0


def add_commands(sub: Any) -> None:
    """Add this area's commands to the ``dnnmeter`` parser."""
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
    mod.add_argument("--batch-size", type=common.positive_int, default=1)
    common.add_input_argument(mod)
    mod.add_argument("--latency", action="store_true", help="also measure latency before and after (in this process)")
    mod.add_argument("--threads", type=common.positive_int, help="CPU threads for --latency")
    mod.add_argument("--no-strict", dest="strict", action="store_false", help="warn, not fail, when an op changes nothing")
    mod.add_argument("--out", metavar="FILE", type=common.output_file, help="also write the result as JSON to FILE")
    common.add_format_and_run(mod, _cmd_modify)

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
    tr.add_argument("--epochs", type=common.positive_int, help="default 10 on digits, 100 on a folder")
    tr.add_argument("--batch-size", type=common.positive_int, default=TRAIN_BATCH_SIZE, help="the global batch")
    tr.add_argument("--lr", type=float, default=TRAIN_LR)
    tr.add_argument("--augment", metavar=",".join(AUGMENTATIONS), help="comma list of augmentations")
    tr.add_argument("--input-size", type=common.positive_int, help="square input (default: 32 on digits, the model's own)")
    tr.add_argument("--out", metavar="DIR", help="write model.safetensors, history.json, curves.png, result.json")
    tr.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --out (refused without)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--nproc", type=common.positive_int, default=1, help="processes on this machine (default 1)")
    tr.add_argument("--strategy", choices=STRATEGIES, default="ddp",
                    help="ddp: synchronous; average: local SGD, models averaged every --average-every steps")
    tr.add_argument("--average-every", type=common.positive_int, metavar="STEPS", help="default: once an epoch")
    tr.add_argument("--threads", type=common.positive_int, help="CPU threads per process")
    tr.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    common.add_format_and_run(tr, _cmd_train)

    def compression_parser(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description + " MODEL is scored as `dnnmeter eval` "
                           "scores it: a dnnmeter checkpoint (--weights model.safetensors) brings its classes, "
                           "input size and normalisation.")
        p.add_argument("model", metavar="MODEL")
        p.add_argument("--data", default="digits", metavar="digits|PATH", help="evaluation data (default digits)")
        p.add_argument("--weights", metavar="FILE|default", help="trained weights (a state dict or safetensors)")
        p.add_argument("--input-size", type=common.positive_int, help="square input size (default: the model's own)")
        p.add_argument("--num-classes", type=common.positive_int, metavar="N", help=NUM_CLASSES_HELP)
        p.add_argument("--limit", type=common.positive_int, help="evaluate each model on this many images")
        p.add_argument("--threads", type=common.positive_int, default=1, help="CPU threads for the latency (default 1)")
        p.add_argument("--format", choices=("table", "json"), default="table")
        return p

    quant = compression_parser(
        "quantize", "int8 and fixed-point quantization: size, latency, SQNR and accuracy",
        "Quantize MODEL to int8 with torch.ao (pt2e, FX, eager: the first that works, the others' failures "
        "recorded) and fake-quantize it to fixed point at each of --bits; per model the size, the latency "
        "(float and int8), the output SQNR against float and the accuracy.")
    quant.add_argument("--bits", type=common.batch_sizes, default=(32, 16, 8, 6, 4), help="comma list (default 32,16,8,6,4)")
    quant.add_argument("--no-int8", dest="int8", action="store_false", help="skip torch's int8 kernels")
    quant.add_argument("--weights-only", action="store_true", help="fixed point for the weights only")
    quant.set_defaults(func=_cmd_quantize)

    prune = compression_parser(
        "prune", "magnitude and channel pruning sweeps: accuracy, size, MACs, latency, hardware cost",
        "Prune MODEL to each sparsity: unstructured (smallest weights zeroed, torch.nn.utils.prune; the size "
        "if stored sparse is estimated) or structured (whole conv channels removed: fewer MACs); per sparsity "
        "the accuracy, non-zero parameters, sizes, MACs, latency and the hardware model on the pruned shapes.")
    prune.add_argument("--method", choices=(*choices.PRUNE_METHODS, "both"), default="both")
    prune.add_argument("--sparsities", type=common.fractions, default=tuple(i / 10 for i in range(10)),
                       help="comma list of fractions (default 0,0.1,...,0.9)")
    prune.add_argument("--scope", choices=choices.PRUNE_SCOPES, default="global",
                       help="unstructured: one threshold for all layers, or the same fraction in each")
    prune.set_defaults(func=_cmd_prune)
