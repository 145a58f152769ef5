#!/usr/bin/env python
"""Count the torchvision classification zoo with dnnmeter and its peers; write BENCHMARKS.md.

Every counter runs in its own subprocess (so peak memory is per counter) over every model
at the model's own input size, in the same run, with the same interpreter (the peers'
venv by default, where dnnmeter is installed too). A model's time includes building it:
dnnmeter and torch's FlopCounterMode (a reference, not a peer) build on the meta device;
the peers, as their docs say, build on the CPU (random init) and run a real batch-1
forward in eval mode under ``torch.no_grad``.

    benchmarks/.venv-peers/bin/python benchmarks/count_speed.py --repeat 2   # as published
    benchmarks/.venv-peers/bin/python benchmarks/count_speed.py --models 5 \
        --counters dnnmeter,thop --no-markdown                           # a quick look

Units: each count is compared with torchvision's weights metadata, whose "GFLOPS" are
GMACs. fvcore's "flops" are MACs (one per fused multiply-add); ptflops returns MACs;
calflops returns flops, macs and params (its macs are used); thop's profile returns
(macs, params); FlopCounterMode counts 2 FLOPs per MAC, so its total is halved.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import difflib
import io
import json
import os
import platform
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import _markdown  # noqa: E402  (shared by the benchmark scripts)
PEERS_PYTHON = REPO / "benchmarks" / ".venv-peers" / "bin" / "python"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "count_speed.json"
DEFAULT_MD = REPO / "BENCHMARKS.md"
TITLE = "# Benchmarks"
HEADING = "## Counting the torchvision zoo: dnnmeter against its peers"
BEGIN, END = "<!-- count_speed:begin -->", "<!-- count_speed:end -->"


# --- the counters: each returns (params, macs) for one model, construction included ---


def _cpu_model(name: str) -> Any:
    from dnnmeter.zoo import create_model

    return create_model(name, device="cpu")


def _cpu_input(size: tuple[int, ...]) -> Any:
    import torch

    return torch.randn(1, *size)


def count_dnnmeter(name: str, size: tuple[int, ...]) -> tuple[int, int]:
    from dnnmeter.analysis import analyze

    result = analyze(name)
    return result.params, result.macs


def count_torch_meta(name: str, size: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dnnmeter.zoo import create_model

    model = create_model(name)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.empty(1, *size, device="meta"))
    params = sum(p.numel() for p in model.parameters())
    return params, counter.get_total_flops() // 2  # FlopCounterMode: 2 FLOPs per MAC


def count_fvcore(name: str, size: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from fvcore.nn import FlopCountAnalysis, parameter_count

    model, x = _cpu_model(name), _cpu_input(size)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        macs = analysis.tracer_warnings("none").total()  # fvcore's "flops" are MACs
    return parameter_count(model)[""], macs


def count_ptflops(name: str, size: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from ptflops import get_model_complexity_info

    model, said = _cpu_model(name), io.StringIO()
    with torch.no_grad(), contextlib.redirect_stdout(said):
        macs, params = get_model_complexity_info(
            model, tuple(size), as_strings=False, print_per_layer_stat=False,
            backend="aten", verbose=False,
        )
    if macs is None:  # ptflops catches the forward's exception and prints it
        lines = [ln for ln in said.getvalue().splitlines() if ln.startswith("<class")]
        raise RuntimeError(f"ptflops returned None: {lines[0] if lines else said.getvalue()}")
    return params, macs


def count_calflops(name: str, size: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from calflops import calculate_flops

    model = _cpu_model(name)
    with torch.no_grad():
        _flops, macs, params = calculate_flops(
            model, input_shape=(1, *size), print_results=False, output_as_string=False
        )
    return params, macs


def count_thop(name: str, size: tuple[int, ...]) -> tuple[int, int]:
    import torch
    from thop import profile

    model, x = _cpu_model(name), _cpu_input(size)
    with torch.no_grad():
        macs, params = profile(model, inputs=(x,), verbose=False)
    return params, macs


@dataclasses.dataclass(frozen=True)
class Counter:
    count: Callable[[str, tuple[int, ...]], tuple[int, int]]
    distribution: str  # whose version is reported
    module: str  # imported before the clock starts
    peer: bool = True


COUNTERS: dict[str, Counter] = {
    "dnnmeter": Counter(count_dnnmeter, "dnnmeter", "dnnmeter.analysis", peer=False),
    "torch FlopCounterMode (meta)": Counter(
        count_torch_meta, "torch", "torch.utils.flop_counter", peer=False
    ),
    "fvcore": Counter(count_fvcore, "fvcore", "fvcore.nn"),
    "ptflops (aten)": Counter(count_ptflops, "ptflops", "ptflops"),
    "calflops": Counter(count_calflops, "calflops", "calflops"),
    "thop": Counter(count_thop, "thop", "thop"),
}
SHORT_NAMES = {"torch": "torch FlopCounterMode (meta)", "ptflops": "ptflops (aten)"}


# --- the worker: one subprocess per counter, one JSON line per model ---


class ModelTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that peers' ``except Exception`` let it through."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise ModelTimeout


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:240]


def count_one(counter: Counter, name: str, size: tuple[int, ...], limit_s: int) -> dict:
    record: dict[str, Any] = {"model": name}
    signal.alarm(limit_s)
    start = time.perf_counter()
    try:
        params, macs = counter.count(name, size)
        record.update(params=int(params), macs=round(float(macs)))
    except ModelTimeout:
        record["error"] = f"timeout: over {limit_s} s"
    except Exception as exc:  # noqa: BLE001 -- a peer failing on a model is a result
        record["error"] = _short(exc)
    finally:
        signal.alarm(0)
    record["time_s"] = round(time.perf_counter() - start, 3)
    record["peak_rss_mb"] = round(_peak_rss_mb())
    return record


def run_worker(counter_name: str, models: list[str], jsonl: Path, limit_s: int) -> None:
    import torch

    from dnnmeter.zoo import resolve

    counter = COUNTERS[counter_name]
    import_module(counter.module)
    sizes = {name: tuple(resolve(name).input_size) for name in models}
    signal.signal(signal.SIGALRM, _on_alarm)
    header = {
        "counter": counter_name, "version": metadata.version(counter.distribution),
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    with jsonl.open("w") as out:
        out.write(json.dumps(header) + "\n")
        for name in models:
            out.write(json.dumps(count_one(counter, name, sizes[name], limit_s)) + "\n")
            out.flush()


# --- the parent: run each counter, collect, judge against torchvision's metadata ---


def run_counter(name: str, models: list[str], args: argparse.Namespace, work: Path) -> dict:
    slug = re.sub(r"\W+", "_", name).strip("_")
    jsonl, log = work / f"{slug}.jsonl", work / f"{slug}.log"
    work.mkdir(parents=True, exist_ok=True)
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", name,
           "--models", ",".join(models), "--jsonl", str(jsonl),
           "--model-timeout", str(args.model_timeout)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            exit_status: Any = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            exit_status = f"killed after the counter timeout of {args.timeout} s"
    return collect(name, models, jsonl, log, exit_status)


def collect(name: str, models: list[str], jsonl: Path, log: Path, exit_status: Any) -> dict:
    lines = jsonl.read_text().splitlines() if jsonl.exists() else []
    header = json.loads(lines[0]) if lines else {"counter": name}
    done = {r["model"]: r for r in map(json.loads, lines[1:])}
    tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
    missing = f"not reached: worker exit {exit_status}"
    if isinstance(exit_status, int) and exit_status != 0 and tail:
        missing += f"; log: {tail[0][:160]}"
    records = [done.get(m, {"model": m, "error": missing}) for m in models]
    return {**header, "exit": exit_status, "log": str(log), "models": records}


def total_s(result: dict) -> float:
    return sum(r.get("time_s", 0.0) for r in result["models"])


def run_rounds(counters: list[str], models: list[str], args: argparse.Namespace) -> dict:
    """Run each counter ``args.repeat`` times, round-robin so that the machine's load falls
    on all alike; keep each counter's fastest run and every run's total."""
    work = Path(tempfile.mkdtemp(prefix="count_speed-"))
    print(f"{len(models)} models, counters: {', '.join(counters)}; logs in {work}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in counters}
    for round_ in range(1, args.repeat + 1):
        for name in counters:
            result = run_counter(name, models, args, work / f"round{round_}")
            runs[name].append(result)
            done = sum("error" not in r for r in result["models"])
            print(f"  round {round_}, {name}: {done}/{len(models)} counted in"
                  f" {total_s(result):.1f} s, exit {result['exit']}", flush=True)
    return {name: {**min(found, key=total_s), "run_totals_s": [round(total_s(r), 1) for r in found]}
            for name, found in runs.items()}


def published(models: list[str]) -> dict[str, dict]:
    """torchvision's own figures, read from its weights metadata (not through dnnmeter)."""
    from torchvision import models as tvm

    out = {}
    for name in models:
        meta = tvm.get_model_weights(name).DEFAULT.meta
        out[name] = {"params": meta["num_params"], "gmacs": meta["_ops"]}
    return out


CHECKS = ("params_exact", "macs_exact", "macs_1pct")


def judge(record: dict, ref: dict) -> dict:
    if "macs" not in record:
        return dict.fromkeys(CHECKS, False)
    gmacs = record["macs"] / 1e9
    # The published figure carries 3 decimals, so it is itself uncertain by 0.0005 GMACs,
    # more than 1% below 0.05 GMACs (shufflenet_v2_x0_5: 0.04).
    tolerance = max(0.01 * ref["gmacs"], 0.0005)
    return {
        "params_exact": record["params"] == ref["params"],
        "macs_exact": abs(round(gmacs, 3) - ref["gmacs"]) < 1e-9,
        "macs_1pct": abs(gmacs - ref["gmacs"]) <= tolerance,
    }


def summarize(result: dict, refs: dict[str, dict]) -> dict:
    records = result["models"]
    ok = [r for r in records if "error" not in r]
    verdicts = [judge(r, refs[r["model"]]) for r in records]
    return {
        "counted": len(ok),
        "errors": len(records) - len(ok),
        **{key: sum(v[key] for v in verdicts) for key in CHECKS},
        "total_s": total_s(result),
        "run_totals_s": result.get("run_totals_s", [round(total_s(result), 1)]),
        "median_s": statistics.median([r["time_s"] for r in ok]) if ok else None,
        "peak_rss_mb": max((r.get("peak_rss_mb", 0) for r in records), default=None) or None,
        "off_1pct": [
            r["model"] for r, v in zip(records, verdicts) if "macs" in r and not v["macs_1pct"]
        ],
    }


# --- machine, markdown ---


def machine(results: dict[str, dict], load: tuple[float, ...]) -> dict:
    cpu = _markdown.cpu_name()
    first = next(iter(results.values()))
    threads = sorted({r.get("threads") for r in results.values()} - {None})
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": first.get("torch"),
        "python": first.get("python"), "torch_threads": threads,
        "load_average_at_start": [round(x, 2) for x in load],
    }


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table(results: dict[str, dict], sums: dict[str, dict], n: int) -> list[str]:
    base = sums.get("dnnmeter", {}).get("total_s")
    lines = [
        (
            "| counter | version | models counted | errors | exact params | MACs exact to 3"
            " decimals | MACs within 1% | total s | median s/model | peak RSS MB"
            " | total / dnnmeter's |"
        ),
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, s in sums.items():
        ratio = f"{s['total_s'] / base:,.1f}x" if base else "—"
        total = _fmt(s["total_s"], 1)
        if len(s["run_totals_s"]) > 1:
            total += f" ({', '.join(_fmt(t, 1) for t in s['run_totals_s'])})"
        lines.append(
            f"| {name} | {results[name].get('version', '?')} | {s['counted']}/{n} | {s['errors']}"
            f" | {s['params_exact']}/{n} | {s['macs_exact']}/{n} | {s['macs_1pct']}/{n}"
            f" | {total} | {_fmt(s['median_s'], 3)} | {_fmt(s['peak_rss_mb'], 0)}"
            f" | {ratio} |"
        )
    return lines


def common_ratio(results: dict[str, dict], peer: str) -> tuple[int, float | None]:
    """The peer's time over dnnmeter's on the models both counted."""
    mine = {r["model"]: r["time_s"] for r in results["dnnmeter"]["models"] if "error" not in r}
    theirs = {r["model"]: r["time_s"] for r in results[peer]["models"] if "error" not in r}
    both = mine.keys() & theirs.keys()
    own = sum(mine[m] for m in both)
    return len(both), (sum(theirs[m] for m in both) / own if own else None)


def verdict(results: dict[str, dict], sums: dict[str, dict], n: int) -> list[str]:
    peers = [c for c in sums if COUNTERS[c].peer]
    if "dnnmeter" not in sums or not peers:
        return [(
            "Goal (dnnmeter at least 10x faster than the fastest peer, and exact): not judged;"
            " this run did not include dnnmeter and a peer."
        )]
    me = sums["dnnmeter"]
    fastest = min(peers, key=lambda c: sums[c]["total_s"])
    ratio = sums[fastest]["total_s"] / me["total_s"] if me["total_s"] else float("inf")
    n_both, both = common_ratio(results, fastest)
    exact = me["params_exact"] == n and me["macs_exact"] == n
    met = "met" if ratio >= 10 and exact else "not met"
    return [(
        f"**Result.** dnnmeter counted {me['counted']}/{n} models in {me['total_s']:.1f} s; the"
        f" fastest peer, {fastest}, took {sums[fastest]['total_s']:.1f} s: **{ratio:.1f}x**"
        f" (on the {n_both} models both counted: {_fmt(both, 1)}x). dnnmeter's counts are exact"
        f" for {me['params_exact']}/{n} parameter totals and {me['macs_exact']}/{n} MAC totals."
        f" Goal (at least 10x faster than the fastest peer, and exact): **{met}**."
    )]


def problems(results: dict[str, dict], sums: dict[str, dict]) -> list[str]:
    lines = []
    for name, s in sums.items():
        errors = [f"{r['model']} ({r['error']})" for r in results[name]["models"] if "error" in r]
        if errors:
            lines.append(f"- {name}, errors: " + "; ".join(errors))
        if s["off_1pct"]:
            off = ", ".join(s["off_1pct"])
            lines.append(f"- {name}, MACs more than 1% from torchvision's: {off}")
    return lines or ["- none"]


METHOD = (
    "Each counter runs in its own subprocess over the whole torchvision classification zoo"
    " (`torchvision.models.list_models(module=torchvision.models)`), each model at its own input"
    " size, batch 1, torch's default thread count for all. A model's time (`time.perf_counter`)"
    " includes building it, and a model is counted once, without warm-up. dnnmeter"
    " (`analyze(name)`) and torch's `FlopCounterMode` (a reference, not a peer) build the model"
    " on the meta device; the peers, as their docs say, build it on the CPU with"
    " `dnnmeter.zoo.create_model(name, device=\"cpu\")` (the architecture of torchvision's"
    " default weights, random init) and run a real forward in eval mode under `torch.no_grad`."
    " Total time sums every model tried, errors and timeouts included; the median is over the"
    " models counted. Peak RSS is the worker's `ru_maxrss`, interpreter and imports included."
    " The reference is torchvision's weights metadata: \"exact params\" means equal to"
    " `num_params`; \"MACs exact\" means the count in GMACs rounds to `_ops` (torchvision's"
    " \"GFLOPS\", which are GMACs) at its three printed decimals; \"within 1%\" allows 1% or"
    " the published figure's own rounding (0.0005 GMACs), whichever is larger. Units:"
    " fvcore's \"flops\", ptflops' and thop's counts and calflops' `macs` are MACs;"
    " FlopCounterMode's FLOPs are halved."
)

READING = (
    "Reading the table: the peers count what the real forward dispatches. In eval mode under"
    " `torch.no_grad`, torchvision's ViT attention (`nn.MultiheadAttention`) runs as one"
    " `aten._native_multi_head_attention` call, which none of the peers counts, so their ViT"
    " totals lack the attention projections and products (about a third of vit_b_16's"
    " 17.564 GMACs). fvcore and thop also add element-wise work (normalisation, pooling,"
    " activations) into the same total, which dnnmeter reports apart from MACs."
)


def section(report: dict) -> str:
    results, sums = report["counters"], report["summary"]
    n, m = report["n_models"], report["machine"]
    load = ", ".join(map(str, m["load_average_at_start"]))
    end = ", ".join(map(str, m["load_average_at_end"]))
    rounds = (
        f"Rounds: {report['repeat']}, round-robin over the counters; each counter's fastest round"
        " is reported, with every round's total in parentheses."
        if report["repeat"] > 1 else "Rounds: 1."
    )
    threads = ", ".join(map(str, m["torch_threads"]))
    where = (
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} (threads: {threads}),"
        f" Python {m['python']}; load average {load} at start, {end} at end."
        f" Raw results: `{report['out']}`."
    )
    lines = [
        BEGIN, HEADING, "", f"Produced by `{report['command']}` on {report['date']}.", where, "",
        f"{METHOD} {rounds}", "", *table(results, sums, n), "", *verdict(results, sums, n), "",
        READING, "", "Errors and MAC totals more than 1% from torchvision's:", "",
        *problems(results, sums), END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace this script's section of ``path``, keeping everything else as it is."""
    _markdown.write_section(path, BEGIN, END, text)


# --- command line ---


def zoo() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def pick(option: str, choices: list[str], what: str) -> list[str]:
    """``option`` is N (the first N) or a comma list of names from ``choices``."""
    if option.isdigit():
        return choices[: int(option)]
    names = [s.strip() for s in option.split(",") if s.strip()]
    for name in names:
        if name not in choices:
            close = difflib.get_close_matches(name, choices, n=3)
            hint = (f"did you mean {', '.join(close)}" if close
                    else "choose from " + ", ".join(choices))
            raise SystemExit(f"unknown {what} {name!r}; {hint}")
    return names


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None, help="N (the first N of the zoo) or a comma list")
    p.add_argument("--counters", default=None,
                   help=f"comma list of: {', '.join(COUNTERS)} (or torch, ptflops)")
    python = str(PEERS_PYTHON) if PEERS_PYTHON.exists() else sys.executable
    p.add_argument("--python", default=python,
                   help="interpreter for every counter (default: benchmarks/.venv-peers)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per counter, whole zoo")
    p.add_argument("--repeat", type=int, default=1, help="rounds over all counters (fastest kept)")
    p.add_argument("--model-timeout", type=int, default=120, help="seconds per model")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="raw per-model results (JSON)")
    p.add_argument("--markdown", type=Path, default=DEFAULT_MD, help="file to write the section to")
    p.add_argument("--no-markdown", action="store_true", help="write the JSON only")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--jsonl", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _relative(path: str) -> str:
    full = os.path.abspath(path)
    return os.path.relpath(full) if full.startswith(os.getcwd() + os.sep) else path


def command_line() -> str:
    return shlex.join([_relative(sys.executable), _relative(sys.argv[0]), *sys.argv[1:]])


def run_all(args: argparse.Namespace) -> dict:
    models = zoo() if args.models is None else pick(args.models, zoo(), "model")
    wanted = [SHORT_NAMES.get(c.strip(), c.strip()) for c in (args.counters or "").split(",")]
    counters = list(COUNTERS)
    if args.counters is not None:
        counters = pick(",".join(wanted), counters, "counter")
    report: dict[str, Any] = {"command": command_line(), "date": datetime.date.today().isoformat()}
    load = os.getloadavg()
    results = run_rounds(counters, models, args)
    refs = published(models)
    report.update(machine=machine(results, load), n_models=len(models), repeat=args.repeat,
                  published=refs, counters=results,
                  summary={c: summarize(results[c], refs) for c in counters})
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker:
        models = args.models.split(",")
        return run_worker(args.worker, models, args.jsonl, args.model_timeout)
    report = run_all(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report["out"] = _relative(str(args.out))
    args.out.write_text(json.dumps(report, separators=(",", ":")) + "\n")
    text = section(report)
    if not args.no_markdown:
        write_section(args.markdown, text)
    print(text)


if __name__ == "__main__":
    main()
