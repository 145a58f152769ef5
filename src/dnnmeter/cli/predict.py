"""The commands that calibrate this machine's latency model and predict with it."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

from dnnmeter.cli import common
from dnnmeter.errors import DnnmeterError

CSV_FIELDS = ("model", "batch_size", "latency_s", "latency_s_low", "latency_s_high", "latency_s_per_image",
              "images_per_s", "macs", "params", "published_top1", "source", "calibration_key", "error", "notes")


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from dnnmeter.prediction import calibrate

    with common.study_progress() as progress:
        task = progress.add_task("calibrating", total=None)

        def show(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=f"calibrating {what}")

        try:
            result = calibrate(device=args.device, threads=args.threads, dtype=args.dtype,
                               budget_s=args.budget_min * 60, out=args.out, per_group=args.per_group, on_progress=show,
                               store=args.store, heap=args.heap)
        except KeyboardInterrupt:
            print("dnnmeter: interrupted; every finished kernel is kept: rerun the same command to resume",
                  file=sys.stderr)
            return 130
    state = "complete" if result.complete else "partial: rerun the same command to measure the rest"
    print(f"dnnmeter: calibration {result.key}: {result.kernels_measured} of {result.kernels_in_grid} kernels "
          f"and networks measured ({result.measured_now} now, {result.elapsed_s:.0f} s; {state})")
    print(f"  {result.path}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from dnnmeter.prediction import predict

    budget = args.max_latency_ms / 1e3 if args.max_latency_ms is not None else None
    found = predict(args.models, batch_sizes=args.batch_sizes, device=args.device, threads=args.threads,
                    dtype=args.dtype, calibration_dir=args.calibration, per_layer=args.per_layer,
                    max_latency_s=budget)
    if args.out:
        _write_outputs(found, Path(args.out))
    if args.format == "json":
        from dnnmeter.report import text

        print(text.to_json(found))
    elif args.format == "csv":
        sys.stdout.write(predictions_csv(found))
    else:
        _print_tables(found, args.per_layer, budget)
    return 0


def predictions_csv(predictions: list[Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for p in predictions:
        writer.writerow({**p.to_dict(), "calibration_key": p.calibration.get("key"), "notes": "; ".join(p.notes)})
    return buf.getvalue()


def _write_outputs(predictions: list[Any], out: Path) -> None:
    from dnnmeter.report import text

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DnnmeterError(f"cannot create {out}: {exc.strerror}; choose another --out") from None
    common.write_text(str(out / "predictions.json"), text.to_json(predictions))
    common.write_text(str(out / "predictions.csv"), predictions_csv(predictions).rstrip("\n"))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _print_tables(predictions: list[Any], per_layer: bool, budget_s: float | None) -> None:
    from rich.table import Table

    console = common.console()
    for p in predictions if per_layer else []:
        layers = Table(title=f"{p.model} batch {p.batch_size}: per layer (predicted)", title_justify="left")
        for col in ("layer", "kind", "fit", "ms"):
            layers.add_column(col, justify="right" if col == "ms" else "left")
        for layer in p.layers or []:
            layers.add_row(layer.name, layer.kind, layer.fit, _ms(layer.latency_s))
        console.print(layers)
    title = f"{len(predictions)} predictions" + (f" within {budget_s * 1e3:g} ms, best published top-1 first"
                                                 if budget_s is not None else "")
    table = Table(title=title + " (predicted, never run)", title_justify="left")
    for col in ("model", "batch", "ms", "ms low-high", "ms/image", "images/s", "GMACs", "top-1 (published)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for p in predictions:
        if p.error:
            table.add_row(p.model, str(p.batch_size), "-", p.error[:60], "", "", "", "")
            continue
        table.add_row(p.model, str(p.batch_size), _ms(p.latency_s), f"{_ms(p.latency_s_low)}-{_ms(p.latency_s_high)}",
                      _ms(p.latency_s_per_image), f"{p.images_per_s:.1f}", f"{p.macs / 1e9:.2f}",
                      "-" if p.published_top1 is None else f"{100 * p.published_top1:.1f}%")
    console.print(table)
    for p in predictions:  # what makes a figure less sure, as JSON and CSV carry it
        for note in p.notes:
            print(f"dnnmeter: note: {p.model} batch {p.batch_size}: {note}", file=sys.stderr)
    if predictions and not predictions[0].error:
        used = predictions[0].calibration
        print(f"calibration: {used.get('path')} (heap: {used.get('heap')})", file=sys.stderr)


def add_commands(sub: Any) -> None:
    """Add this area's commands to the ``dnnmeter`` parser."""
    cal = sub.add_parser(
        "calibrate", help="time single-layer kernels on this machine and fit its latency model",
        description="Time a grid of single-layer kernels (convolutions, depthwise, linear, matmul, norms, "
        "activations, pooling, element-wise) and six networks (three small, three at the zoo's sizes), then "
        "fit the latency model used by `dnnmeter predict`. Every measurement is kept as it is made: rerun "
        "the same command to resume.",
    )
    common.add_timing_arguments(cal)
    cal.add_argument("--budget-min", type=float, default=15.0, help="minutes at most, fit included (default 15)")
    cal.add_argument("--per-group", type=common.positive_int, metavar="N",
                     help="at most N shapes per kernel group (a coarser, quicker calibration)")
    cal.add_argument("--out", metavar="DIR", help="calibration folder (default: $DNNMETER_CALIBRATION_DIR "
                     "or ~/.cache/dnnmeter/calibration)")
    common.add_store_argument(cal, "none (the calibration is a JSON file in --out); with a store, the "
                              "fitted calibration is also a row of it")
    common.add_heap_argument(cal, "each kernel is timed with (as bench's --heap, to match its points)")
    cal.set_defaults(func=_cmd_calibrate)

    pred = sub.add_parser(
        "predict", help="predict latency on this machine without running the model",
        description="Predict each model's latency per batch size from this machine's calibration "
        "(`dnnmeter calibrate`). MODEL is a zoo name, a source (torchvision, seed, timm) or a wildcard "
        "('timm:efficientnet*'). Nothing is run: models are analysed on the meta device.",
    )
    pred.add_argument("models", nargs="+", metavar="MODEL")
    pred.add_argument("--batch-sizes", type=common.batch_sizes, default=(1,), help="comma list, e.g. 1,8,64")
    common.add_timing_arguments(pred)
    pred.add_argument("--max-latency-ms", type=float, metavar="X",
                      help="only models predicted within X ms per batch, best published top-1 first")
    pred.add_argument("--per-layer", action="store_true", help="also each layer's predicted latency")
    pred.add_argument("--format", choices=("table", "json", "csv"), default="table")
    pred.add_argument("--calibration", metavar="DIR", help="where `dnnmeter calibrate --out` wrote (default: "
                      "$DNNMETER_CALIBRATION_DIR or ~/.cache/dnnmeter/calibration)")
    pred.add_argument("--out", metavar="DIR", help="also write predictions.json and predictions.csv here")
    pred.set_defaults(func=_cmd_predict)
