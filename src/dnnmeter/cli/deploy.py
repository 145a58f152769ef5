"""The ``deploy`` command: the fastest way to run a model here within an accuracy tolerance."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from dnnmeter.cli import common

STATUS_STYLE = {"accepted": "green", "rejected": "red", "failed": "red", "skipped": "dim"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.3g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _speedup(c: Any) -> str:
    if c.speedup is None:
        return "-"
    return f"{c.speedup:.2f}x [{c.speedup_low:.2f}, {c.speedup_high:.2f}]"


def _agree(c: Any) -> str:
    """Top-1 agreement and how many images it comes from (the screen's, or all of them)."""
    return _pct(c.top1_agreement) + ("" if c.images is None or c.top1_agreement is None else f" ({c.images})")


def _sqnr(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if value == float("inf") else f"{value:.1f}"


def _size(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}"


def _throughput(c: Any) -> str:
    return "-" if c.images_per_s_at_throughput_batch is None else f"{c.images_per_s_at_throughput_batch:.3g}"


def configs_table(result: Any) -> Any:
    from rich.table import Table

    table = Table(title=f"{result.model} on {result.device}, batch {result.batch_size}: {result.images} images "
                  f"compared, tolerance {result.tolerance:.1%} ({result.tolerance_on})")
    larger = next((c.throughput_batch_size for c in result.configs if c.throughput_batch_size), None)
    for column in ("configuration", "status", "median ms", "p10-p90 ms", "speed-up [95%]",
                   f"img/s @{larger}" if larger else "img/s", "top-1 agree (images)",
                   "top-1 change", "max |logit err|", "SQNR dB", "first call ms", "size MB", "reason"):
        table.add_column(column, justify="left" if column in ("configuration", "status", "reason") else "right")
    for c in result.configs:
        mark = " *" if c.name == result.recommended else ""
        table.add_row(c.name + mark, f"[{STATUS_STYLE.get(c.status, '')}]{c.status}[/]", _ms(c.latency_s_median),
                      f"{_ms(c.latency_s_p10)}-{_ms(c.latency_s_p90)}", _speedup(c), _throughput(c),
                      _agree(c),
                      _pct(c.top1_change), "-" if c.logit_max_abs_error is None else f"{c.logit_max_abs_error:.3g}",
                      _sqnr(c.sqnr_db), _ms(c.first_call_s), _size(c.size_bytes),
                      "" if c.status == "accepted" and c.kind != "eager-float32" else (c.reason or ""))
    return table


def _list_configs(args: argparse.Namespace) -> int:
    from dnnmeter.deployment import configs as cfg

    caps = cfg.probe(args.device)
    planned = cfg.plan(args.device, caps, args.threads, args.configs)
    rows = [{"name": c.name, "kind": c.kind, "threads": c.threads, "skipped": cfg.skip_reason(c, caps, args.device)}
            for c in planned]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    runnable = sum(r["skipped"] is None for r in rows)
    for r in rows:
        print(f"{r['name']}" + (f"  (skipped: {r['skipped']})" if r["skipped"] else ""))
    print(f"dnnmeter: {len(rows)} configurations, {runnable} runnable here", file=sys.stderr)
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from dnnmeter.deployment import deploy
    from dnnmeter.report.deploy_text import rechecks_sentence

    if args.list_configs:
        return _list_configs(args)
    (name,) = common.resolve_all([args.model])
    with common.progress(True) as progress:
        task = progress.add_task(f"deploying {name}", total=None)
        started = time.perf_counter()

        def landed(c: Any) -> None:
            left_min = args.budget_min - (time.perf_counter() - started) / 60
            compared = "" if c.images is None else f" on {c.images} images"
            progress.update(task, description=f"{c.name}: {c.status}{compared} ({max(0.0, left_min):.1f} of "
                            f"{args.budget_min:g} min left)")

        result = deploy(name, device=args.device, batch_size=args.batch_size, threads=args.threads, data=args.data,
                        weights=args.weights, tolerance=args.tolerance, tolerance_on=args.tolerance_on,
                        budget_min=args.budget_min, configs=args.configs, export=args.export, out=args.out,
                        images=args.images, on_config=landed, throughput_batch_size=args.throughput_batch,
                        store=args.store, screen_images=args.screen_images)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    console = common.console()
    console.print(configs_table(result))
    console.print(f"images: {result.images_note}", markup=False)
    rechecked = rechecks_sentence(result.rechecks)
    if rechecked:
        console.print(f"baseline: {rechecked}", markup=False)
    if result.search_s is not None and result.budget_s is not None:
        console.print(f"search: {result.search_s / 60:.1f} min of a {result.budget_s / 60:g} min budget",
                      markup=False)
    console.print(f"recommended: {result.recommended} ({result.recommendation_reason})", markup=False)
    if args.export:
        console.print(f"exported to {args.export}", markup=False)
    return 0


def add_commands(sub: Any) -> None:
    """Add ``deploy`` to the ``dnnmeter`` parser."""
    from dnnmeter.cli.choices import DEPLOY_IMAGES, DEPLOY_SCREEN_IMAGES

    deploy = sub.add_parser(
        "deploy", help="find the fastest way to run a model here within an accuracy tolerance",
        description="Measure MODEL in every runtime configuration (eager float32, channels_last, bfloat16, "
        "torch.ao int8, torch.compile, ONNX Runtime at each optimisation level in float32 and int8, each thread "
        "count), each in a process of its own; compare each with eager float32 on the same real images and "
        "recommend the fastest one within --tolerance whose speed-up is sure. See docs/deploy.md.",
    )
    deploy.add_argument("model", metavar="MODEL")
    deploy.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    deploy.add_argument("--batch-size", type=common.positive_int, default=1)
    deploy.add_argument("--threads", type=common.positive_int, help="only this thread count (default: 1 to the cores)")
    deploy.add_argument("--data", metavar="PATH|digits", help="images to compare on, opened as `dnnmeter eval` does "
                        "(default: digits for the tiny family, else crops of scikit-learn's sample photographs)")
    deploy.add_argument("--weights", metavar="FILE|default")
    deploy.add_argument("--tolerance", default="1%", help="largest loss allowed, e.g. 1%% or 0.5%% (default 1%%)")
    deploy.add_argument("--tolerance-on", choices=("agreement", "accuracy"), default="agreement",
                        help="agreement: top-1 agreement with float32; accuracy: top-1 drop (needs labels)")
    deploy.add_argument("--throughput-batch", type=common.non_negative_int, metavar="N",
                        help="also time each configuration at this larger batch, for images/s (default: 8, or twice "
                        "--batch-size when that is larger; 0: do not)")
    deploy.add_argument("--images", type=common.positive_int, default=DEPLOY_IMAGES,
                        help="images the recommendation is compared on (default %(default)s)")
    deploy.add_argument("--screen-images", type=common.positive_int, default=DEPLOY_SCREEN_IMAGES,
                        help="images every configuration is first compared on; only the candidates for the "
                        "recommendation run all --images (default %(default)s)")
    deploy.add_argument("--budget-min", type=common.positive_seconds, default=10.0,
                        help="minutes for the whole search, comparisons included: what does not fit is skipped "
                        "with the reason 'budget' (default 10)")
    deploy.add_argument("--configs", type=common.names, metavar="LIST", help="comma list of kinds to try "
                        "(eager-float32 is always measured); see --list-configs")
    deploy.add_argument("--list-configs", action="store_true", help="list the configurations and exit")
    deploy.add_argument("--export", type=common.output_folder, metavar="DIR", help="write the recommended artefact here")
    deploy.add_argument("--out", type=common.output_folder, metavar="DIR",
                        help="keep the store here: a rerun measures only what is missing")
    common.add_store_argument(deploy, "OUT/results.sqlite (a temporary folder without --out)")
    common.add_format_and_run(deploy, _cmd_deploy)
