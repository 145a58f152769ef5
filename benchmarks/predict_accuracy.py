#!/usr/bin/env python
"""How well `dnnmeter predict` foretells `dnnmeter bench` on this CPU (issue 14).

1. Calibrate (timed): `dnnmeter.calibrate(threads=1)` within --budget-min.
2. Predict the whole torchvision zoo at batch 1 (timed; goal under 10 s).
3. Validation points: every torchvision model predicted under --max-model-s at batch 1, and
   the --few fastest at batch 8 and 32. None was used to calibrate: calibration times single
   kernels and six networks built in dnnmeter.prediction.calib_models (listed in the output).
4. Measure each point with `dnnmeter.benchmark` (one subprocess per model) in two separate
   rounds. The measured latency is the mean of the two medians; the share of points whose
   rounds agree within +-10% is the measurement ceiling no predictor can be shown to beat.
5. Score the predictor and two baselines fitted on the same calibration records, on its
   whole networks (as a FLOPs line is fitted over models in the studies):
   (a) FLOPs line: t = c * FLOPs (through the origin, relative error);
   (b) MACs+bytes line: t = a + b*MACs + c*bytes moved (non-negative, relative error).
   Per family and overall: share within +-10% and +-20%, median and 90th-percentile
   absolute error, Spearman and Kendall rank correlation; and how often the predicted
   interval (latency_s_low to latency_s_high) holds the measurement.

    .venv/bin/python benchmarks/predict_accuracy.py                  # full run, prints the tables
    .venv/bin/python benchmarks/predict_accuracy.py --write          # and writes its BENCHMARKS.md section
    .venv/bin/python benchmarks/predict_accuracy.py --smoke          # 3 small models, tiny budgets
    .venv/bin/python benchmarks/predict_accuracy.py --heap glibc     # both sides with the heap as glibc leaves it

Goals (issue 14): >= 90% of held-out models within +-10% at batch 1, >= 85% across batch
sizes, Spearman >= 0.97, calibration <= 15 min, whole-zoo prediction < 10 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from _markdown import cpu_name, write_section  # noqa: E402

from dnnmeter.analysis import analyze  # noqa: E402
from dnnmeter.measure import benchmark  # noqa: E402
from dnnmeter.measure.heap import HEAP_MODES  # noqa: E402
from dnnmeter.prediction import calib_models, calibrate, predict  # noqa: E402
from dnnmeter.prediction.baseline import per_flop_s  # noqa: E402
from dnnmeter.prediction.fit import fit_line  # noqa: E402
from dnnmeter.prediction.predictor import layer_from_dict  # noqa: E402
from dnnmeter.prediction.records import Records  # noqa: E402
from dnnmeter.zoo import resolve  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- predict_accuracy:begin -->", "<!-- predict_accuracy:end -->"
SMOKE_MODELS = ("squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5")


def _moved_bytes(layers: list[Any]) -> int:
    return sum((sum(int(np.prod(s)) for s in layer.input_shapes + layer.output_shapes) + layer.params) * 4
               for layer in layers)


def baselines(jsonl: Path) -> tuple[float, list[float]]:
    """Fitted, as the studies fit them, on whole networks: the calibration networks' records.

    (a) seconds per FLOP through the origin; (b) a, b, c of t = a + b*MACs + c*bytes moved.
    """
    rows = [r for r in Records(jsonl).rows.values() if "latency_s" in r and r["id"].startswith("network:")]
    layers = [[layer_from_dict(d) for d in r["rows"]] for r in rows]
    f = np.array([sum(layer.flops for layer in net) for net in layers], float)
    t = np.array([r["latency_s"] for r in rows])
    per_flop = per_flop_s(f, t)  # least squares on relative error, as the study's report fits it
    w = np.array([(sum(layer.macs for layer in net), _moved_bytes(net)) for net in layers], float)
    return per_flop, fit_line(w, t)


def baseline_predictions(name: str, batch: int, per_flop: float, line: list[float]) -> tuple[float, float]:
    # copies=True: the rows the calibration networks' records have (their copies move bytes too)
    analysis = analyze(name, batch_size=batch, copies=True)
    layers = [layer for layer in analysis.layers if layer.executed]
    return per_flop * analysis.flops, line[0] + line[1] * analysis.macs + line[2] * _moved_bytes(layers)


def measure_rounds(points: list[tuple[str, int]], rounds: int, budget_s: float,
                   threads: int, heap: str) -> dict[tuple[str, int], list[float]]:
    by_model: dict[str, list[int]] = defaultdict(list)
    for name, batch in points:
        by_model[name].append(batch)
    found: dict[tuple[str, int], list[float]] = defaultdict(list)
    for _ in range(rounds):
        for name, batches in by_model.items():
            for r in benchmark([name], batch_sizes=batches, threads=threads, time_budget_s=budget_s, heap=heap):
                if r.status == "ok" and r.latency_s_median:
                    found[(name, r.batch_size)].append(r.latency_s_median)
    return found


def scores(measured: list[float], predicted: list[float]) -> dict[str, float | int | None]:
    m, p = np.array(measured), np.array(predicted)
    err = np.abs(p / m - 1.0)
    ranked = len(m) >= 3
    return {
        "n": len(m), "within_10pct": float(np.mean(err <= 0.10)), "within_20pct": float(np.mean(err <= 0.20)),
        "median_abs_error": float(np.median(err)), "p90_abs_error": float(np.quantile(err, 0.9)),
        "spearman": float(stats.spearmanr(m, p).statistic) if ranked else None,
        "kendall": float(stats.kendalltau(m, p).statistic) if ranked else None,
    }  # fmt: skip


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    cols = ("n", "within_10pct", "within_20pct", "median_abs_error", "p90_abs_error", "spearman", "kendall")
    lines = ["| subset | method | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for subset, methods in results.items():
        for method, s in methods.items():
            lines.append(f"| {subset} | {method} | " + " | ".join(_fmt(s[c]) for c in cols) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget-min", type=float, default=15.0, help="calibration budget (default 15)")
    ap.add_argument("--per-group", type=int, help="cap on shapes per kernel group (default: the full grid)")
    ap.add_argument("--calibration", help="calibration folder (default: a fresh temporary one)")
    ap.add_argument("--max-model-s", type=float, default=0.5, help="validate models predicted under this at batch 1")
    ap.add_argument("--few", type=int, default=4, help="this many fastest models also at batch 8 and 32")
    ap.add_argument("--bench-budget", type=float, default=2.0, help="seconds of sampling per measured point")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--heap", choices=HEAP_MODES, default=HEAP_MODES[0],
                    help="the C heap of the calibration and of the measured points, both sides alike "
                         "(dnnmeter.measure.heap; default steady, as dnnmeter bench's and calibrate's)")
    ap.add_argument("--smoke", action="store_true", help=f"{', '.join(SMOKE_MODELS)} at batch 1, tiny budgets")
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section and results JSON")
    args = ap.parse_args()
    if args.smoke:
        args.budget_min, args.per_group, args.few, args.bench_budget = 1.5, args.per_group or 6, 0, 0.5
    folder = Path(args.calibration or tempfile.mkdtemp(prefix="dnnmeter-calibration-"))

    t0 = time.perf_counter()
    cal = calibrate(threads=args.threads, budget_s=args.budget_min * 60, out=folder, per_group=args.per_group,
                    heap=args.heap)
    calibrate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    zoo = predict("torchvision", threads=args.threads, calibration_dir=folder)
    predict_zoo_s = time.perf_counter() - t0

    ok = sorted((p for p in zoo if p.latency_s is not None), key=lambda p: p.latency_s)
    chosen = [p.model for p in ok if p.latency_s <= args.max_model_s]
    if args.smoke:
        chosen = list(SMOKE_MODELS)
    points = [(m, 1) for m in chosen] + [(m, b) for m in chosen[: args.few] for b in (8, 32)]
    t0 = time.perf_counter()
    rounds = measure_rounds(points, args.rounds, args.bench_budget, args.threads, args.heap)
    measure_s = time.perf_counter() - t0

    per_flop, line = baselines(folder / f"{cal.key}.jsonl")
    rows = []
    for name, batch in points:
        got = rounds.get((name, batch), [])
        if not got:
            continue
        (p,) = predict(name, batch_sizes=(batch,), threads=args.threads, calibration_dir=folder)
        flop_s, line_s = baseline_predictions(name, batch, per_flop, line)
        agree = len(got) >= 2 and abs(got[0] / got[1] - 1) <= 0.10
        rows.append({"model": name, "family": resolve(name).family, "batch_size": batch,
                     "measured_s": statistics.mean(got), "rounds_s": got, "rounds_agree_10pct": agree,
                     "predicted_s": p.latency_s, "predicted_low_s": p.latency_s_low, "predicted_high_s": p.latency_s_high,
                     "flops_line_s": flop_s, "macs_bytes_line_s": line_s})

    subsets: dict[str, list[dict[str, Any]]] = {"all batch sizes": rows, "batch 1": [r for r in rows if r["batch_size"] == 1]}
    for r in rows:
        if r["batch_size"] == 1:
            subsets.setdefault(f"batch 1, {r['family']}", []).append(r)
    results = {
        name: {method: scores([r["measured_s"] for r in sub], [r[key] for r in sub])
               for method, key in (("dnnmeter predict", "predicted_s"), ("FLOPs line", "flops_line_s"),
                                   ("MACs+bytes line", "macs_bytes_line_s"))}
        for name, sub in subsets.items() if sub
    }  # fmt: skip
    ceiling = float(np.mean([r["rounds_agree_10pct"] for r in rows])) if rows else None
    covered = (float(np.mean([r["predicted_low_s"] <= r["measured_s"] <= r["predicted_high_s"] for r in rows]))
               if rows else None)  # how often the stated interval holds the measurement
    summary = {
        "cpu": cpu_name(), "threads": args.threads, "heap": args.heap, "calibration_key": cal.key, "calibration_complete": cal.complete,
        "kernels_measured": cal.kernels_measured, "calibrate_s": calibrate_s, "predict_zoo_s": predict_zoo_s,
        "zoo_models_predicted": len(ok), "measure_s": measure_s, "points": len(rows),
        "ceiling_rounds_within_10pct": ceiling, "interval_coverage": covered, "calibration_networks": sorted(calib_models.MODELS),
        "scores": results, "rows": rows,
    }  # fmt: skip
    text = (f"{BEGIN}\n## Latency prediction (`benchmarks/predict_accuracy.py`)\n\n"
            f"{cpu_name()}, {args.threads} thread(s); calibration {calibrate_s / 60:.1f} min "
            f"({cal.kernels_measured} kernels and networks), whole torchvision zoo predicted in {predict_zoo_s:.1f} s; "
            f"{len(rows)} held-out points measured twice; ceiling (rounds within +-10%): {_fmt(ceiling)}; "
            f"measurements inside the predicted interval: {_fmt(covered)}. "
            f"Calibration networks (never validated on): {', '.join(sorted(calib_models.MODELS))}.\n\n"
            f"{table(results)}\n{END}\n")
    print(text)
    if args.write and not args.smoke:
        (REPO / "benchmarks" / "results" / "predict_accuracy.json").write_text(json.dumps(summary, indent=2))
        write_section(REPO / "BENCHMARKS.md", BEGIN, END, text)
    else:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("rows", "scores")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
