#!/usr/bin/env python
"""dnnmeter's closed-form systolic model against SCALE-Sim 3, layer by layer.

For AlexNet and ResNet-18 (torchvision, batch 1), OS and WS dataflows, a 32x32 array and
64 KB SRAMs: dnnmeter's `simulate` and SCALE-Sim's cycle count ("Total Cycles" of its
COMPUTE_REPORT, InterfaceBandwidth CALC) for each layer, their agreement (goal: within 1%
per layer) and their time (goal: dnnmeter at least 10,000x faster).

SCALE-Sim needs numpy < 2 and pandas 2.2, so it runs in its own venv, one subprocess per
layer, on files written by `dnnmeter.hardware.export_scalesim`:

    python3 -m venv benchmarks/.venv-scalesim
    benchmarks/.venv-scalesim/bin/pip install scalesim 'numpy<2' 'pandas==2.2.*'
    .venv/bin/python benchmarks/systolic_vs_scalesim.py            # writes BENCHMARKS.md

SCALE-Sim takes about 0.65 ms per simulated cycle here, so layers predicted above
`--max-cycles` (default 400,000: AlexNet's fc6 and fc7, about 80 minutes between them) are
left out and listed. Its results are cached in benchmarks/results/systolic_vs_scalesim.json
and reused unless `--fresh`, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "systolic_vs_scalesim.json"
SCALESIM_PYTHON = REPO / "benchmarks" / ".venv-scalesim" / "bin" / "python"
BEGIN, END = "<!-- systolic_vs_scalesim:begin -->", "<!-- systolic_vs_scalesim:end -->"


# --- the SCALE-Sim side: runs in benchmarks/.venv-scalesim, imports no dnnmeter -------------


def _report_rows(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()[1:]
    return [[c.strip() for c in line.split(",")[:-1]] for line in lines if line.strip()]


def scalesim_worker(directory: str) -> None:
    """Run SCALE-Sim on directory/{topology.csv, topology_layout.csv, scale.cfg}; write result.json."""
    from importlib.metadata import version

    from scalesim.scale_sim import scalesim

    where = Path(directory)
    start = time.perf_counter()
    sim = scalesim(save_disk_space=True, verbose=False, config=str(where / "scale.cfg"),
                   topology=str(where / "topology.csv"), layout=str(where / "topology_layout.csv"))
    sim.run_scale(top_path=str(where / "out"))
    elapsed = time.perf_counter() - start
    (report_dir,) = [p for p in (where / "out").iterdir() if p.is_dir()]
    compute = _report_rows(report_dir / "COMPUTE_REPORT.csv")
    detail = _report_rows(report_dir / "DETAILED_ACCESS_REPORT.csv")
    result = {
        "time_s": elapsed,
        "scalesim": version("scalesim"),
        "numpy": version("numpy"),
        "rows": [{"cycles": int(c[2]), "stall_cycles": int(c[3]), "overall_util_pct": float(c[4]),
                  "mapping_efficiency_pct": float(c[5]), "compute_util_pct": float(c[6]),
                  "sram_ifmap_reads": int(float(d[3])), "sram_filter_reads": int(float(d[6])),
                  "sram_ofmap_writes": int(float(d[9]))}
                 for c, d in zip(compute, detail)],
    }
    (where / "result.json").write_text(json.dumps(result))


# --- the dnnmeter side ----------------------------------------------------------------------


def scalesim_available(python: Path) -> str | None:
    """None when SCALE-Sim can be imported with ``python``, else why not."""
    if not python.exists():
        return f"{python} does not exist (create it as the module docstring says)"
    probe = subprocess.run([str(python), "-c", "import scalesim.scale_sim"], capture_output=True, text=True)
    if probe.returncode:
        return f"import scalesim failed in {python}: {(probe.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def run_scalesim_layer(python: Path, layer: Any, config: Any, timeout_s: float) -> dict[str, Any]:
    """One layer through SCALE-Sim in its own process; a dict with ``error`` if it failed."""
    from dnnmeter.hardware import export_scalesim

    with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
        export_scalesim([layer], tmp, config)
        try:
            proc = subprocess.run([str(python), __file__, "--scalesim-worker", tmp], capture_output=True,
                                  text=True, timeout=timeout_s, cwd=tmp)
        except subprocess.TimeoutExpired:
            return {"error": f"timeout after {timeout_s:.0f} s"}
        result_file = Path(tmp) / "result.json"
        if proc.returncode or not result_file.exists():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"exit {proc.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(result_file.read_text())
    result["measured"] = datetime.datetime.now().isoformat(timespec="seconds")
    return result


def cache_key(layer: Any, config: Any) -> str:
    from dnnmeter.hardware.scalesim_io import topology_rows

    return json.dumps([topology_rows([layer]), config.to_dict()])


def time_dnnmeter(layers: list[Any], array: tuple[int, int], dataflow: str, sram_kb: int) -> float:
    """Seconds per `simulate` call on ``layers``: the best of 5 rounds of enough calls for 0.2 s."""
    from dnnmeter.hardware import simulate

    calls, best = 1, float("inf")
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            simulate(layers, array, dataflow, sram_kb, bits=8)
        if time.perf_counter() - start > 0.2:
            break
        calls *= 4
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            simulate(layers, array, dataflow, sram_kb, bits=8)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def compare(args: argparse.Namespace, cache: dict[str, Any], save: Any) -> list[dict[str, Any]]:
    from dnnmeter.hardware import ScaleSimConfig, extract_layers, gemm_shape, simulate

    rows, cols = args.array
    available = "skipped (--skip-scalesim)" if args.skip_scalesim else scalesim_available(args.python)
    runs = []
    for model in args.models:
        layers = extract_layers(model)
        for dataflow in args.dataflows:
            config = ScaleSimConfig(array_rows=rows, array_cols=cols, ifmap_sram_kb=args.sram_kb,
                                    filter_sram_kb=args.sram_kb, ofmap_sram_kb=args.sram_kb,
                                    dataflow=dataflow, run_name=f"{model}_{dataflow}")
            ours = simulate(layers, (rows, cols), dataflow, args.sram_kb, bits=8)
            todo = [(layer, record) for layer, record in zip(layers, ours.layers)
                    if record.cycles <= args.max_cycles and (args.fresh or cache_key(layer, config) not in cache)]
            if available is None and todo:
                print(f"{model} {dataflow}: {len(todo)} layers to run through SCALE-Sim", flush=True)

                def one(item: tuple[Any, Any]) -> None:
                    layer, record = item
                    result = run_scalesim_layer(args.python, layer, config, args.timeout)
                    cache[cache_key(layer, config)] = result
                    save()
                    got = result.get("rows") and sum(r["cycles"] for r in result["rows"])
                    print(f"  {model} {dataflow} {layer.name}: dnnmeter {record.cycles}, SCALE-Sim "
                          f"{got or result.get('error')} ({result.get('time_s', 0):.1f} s)", flush=True)

                with ThreadPoolExecutor(args.jobs) as pool:
                    list(pool.map(one, todo))
            per_layer = []
            for layer, record in zip(layers, ours.layers):
                found = cache.get(cache_key(layer, config))
                entry: dict[str, Any] = {"layer": layer.name, "kind": layer.kind, "gemm": list(gemm_shape(layer)[:3]),
                                         "dnnmeter_cycles": record.cycles,
                                         "dnnmeter_sram_reads": record.sram_reads}
                if record.cycles > args.max_cycles and not (found and "rows" in found):
                    entry["skipped"] = f"predicted {record.cycles:,} cycles > --max-cycles"
                elif found and "rows" in found:
                    entry.update(scalesim_cycles=sum(r["cycles"] for r in found["rows"]),
                                 scalesim_time_s=found["time_s"], scalesim_rows=found["rows"],
                                 scalesim_version=found.get("scalesim"), measured=found.get("measured"))
                else:
                    entry["skipped"] = (found or {}).get("error") or available or "not run"
                per_layer.append(entry)
            compared = [e for e in per_layer if "scalesim_cycles" in e]
            subset = [layer for layer, e in zip(layers, per_layer) if "scalesim_cycles" in e]
            runs.append({
                "model": model, "dataflow": dataflow, "array": [rows, cols], "sram_kb": args.sram_kb,
                "layers": per_layer,
                # on the layers SCALE-Sim ran, or on all of them when it ran none
                "dnnmeter_time_s": time_dnnmeter(subset or layers, (rows, cols), dataflow, args.sram_kb),
                "scalesim_time_s": sum(e["scalesim_time_s"] for e in compared) if compared else None,
                "scalesim_unavailable": available,
            })
    return runs


# --- the write-up ------------------------------------------------------------------------------


def _diff(e: dict[str, Any]) -> float:
    return (e["dnnmeter_cycles"] - e["scalesim_cycles"]) / e["scalesim_cycles"]


def _sram_agrees(e: dict[str, Any]) -> bool:
    rows = e["scalesim_rows"]
    return (sum(r["sram_ifmap_reads"] for r in rows) == e["dnnmeter_sram_reads"]["ifmap"]
            and sum(r["sram_filter_reads"] for r in rows) == e["dnnmeter_sram_reads"]["filter"])


def summary_row(run: dict[str, Any]) -> str:
    compared = [e for e in run["layers"] if "scalesim_cycles" in e]
    if not compared:
        return (f"| {run['model']} | {run['dataflow'].upper()} | 0/{len(run['layers'])} | - | - | - | - | "
                f"{run['dnnmeter_time_s'] * 1e3:.3f} (all layers) | - | - |")
    within = sum(abs(_diff(e)) <= 0.01 for e in compared)
    ours, theirs = sum(e["dnnmeter_cycles"] for e in compared), sum(e["scalesim_cycles"] for e in compared)
    worst = max(abs(_diff(e)) for e in compared)
    ratio = run["scalesim_time_s"] / run["dnnmeter_time_s"]
    sram = sum(_sram_agrees(e) for e in compared)
    return (f"| {run['model']} | {run['dataflow'].upper()} | {len(compared)}/{len(run['layers'])} | {within}/{len(compared)} "
            f"| {100 * worst:.3f}% | {ours:,} / {theirs:,} | {sram}/{len(compared)} | {run['dnnmeter_time_s'] * 1e3:.3f} "
            f"| {run['scalesim_time_s']:.1f} | {ratio:,.0f}x |")


def layer_table(run: dict[str, Any]) -> list[str]:
    lines = [f"<details><summary>{run['model']}, {run['dataflow'].upper()}: cycles per layer</summary>", "",
             "| layer | GEMM P x K x Q | dnnmeter cycles | SCALE-Sim cycles | difference | SCALE-Sim s |",
             "|---|---|--:|--:|--:|--:|"]
    for e in run["layers"]:
        gemm = " x ".join(str(v) for v in e["gemm"])
        if "scalesim_cycles" in e:
            lines.append(f"| {e['layer']} | {gemm} | {e['dnnmeter_cycles']:,} | {e['scalesim_cycles']:,} "
                         f"| {100 * _diff(e):+.3f}% | {e['scalesim_time_s']:.1f} |")
        else:
            lines.append(f"| {e['layer']} | {gemm} | {e['dnnmeter_cycles']:,} | not run: {e['skipped']} | | |")
    return [*lines, "", "</details>", ""]


def markdown(runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    compared = [e for run in runs for e in run["layers"] if "scalesim_cycles" in e]
    lines = [
        BEGIN,
        "## Systolic arrays: dnnmeter's closed form against SCALE-Sim 3",
        "",
        f"Produced by `.venv/bin/python benchmarks/systolic_vs_scalesim.py` on {meta['date']}. "
        f"Machine: {meta['cpu']}, {meta['cores']} cores, Python {meta['python']}; SCALE-Sim {meta['scalesim']} "
        f"(numpy {meta['numpy']}) in `benchmarks/.venv-scalesim`. Raw results: "
        "`benchmarks/results/systolic_vs_scalesim.json`.",
        "",
        f"Each torchvision model's product layers (batch 1) come from `dnnmeter.hardware.extract_layers`; "
        f"`dnnmeter.hardware.simulate` models them on a {meta['array']} array with {meta['sram_kb']} KB SRAMs, and "
        "each layer is written with `export_scalesim` (padded IFMAP trimmed to the rows the windows read; no "
        "grouped layers here) and run through SCALE-Sim (`scalesim.scale_sim.scalesim`, InterfaceBandwidth CALC, "
        "so no memory stalls) in its own process. Cycles are SCALE-Sim's COMPUTE_REPORT \"Total Cycles\". "
        "SCALE-Sim time is `run_scale` per layer (`time.perf_counter`, imports excluded), summed over the layers "
        "compared; dnnmeter time is one `simulate` call on the same layers (best of 5 rounds). \"SRAM reads "
        "equal\" counts layers whose IFMAP and filter SRAM reads equal SCALE-Sim's detailed access report.",
        "",
        "| model | dataflow | layers compared | within 1% | worst difference | cycles dnnmeter / SCALE-Sim "
        "| SRAM reads equal | dnnmeter ms | SCALE-Sim s | speed-up |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        *[summary_row(run) for run in runs],
        "",
    ]
    unavailable = next((run["scalesim_unavailable"] for run in runs if run["scalesim_unavailable"]), None)
    if compared:
        within = sum(abs(_diff(e)) <= 0.01 for e in compared)
        ours_s = sum(run["dnnmeter_time_s"] or 0 for run in runs)
        theirs_s = sum(run["scalesim_time_s"] or 0 for run in runs)
        met = within == len(compared) and theirs_s / ours_s >= 10_000
        exact = sum(e["dnnmeter_cycles"] == e["scalesim_cycles"] for e in compared)
        lines += [
            f"**Result.** {within}/{len(compared)} layers within 1% of SCALE-Sim's cycles ({exact} equal to the "
            f"cycle; worst {100 * max(abs(_diff(e)) for e in compared):.3f}%); SCALE-Sim took {theirs_s:,.0f} s for them, "
            f"dnnmeter {ours_s * 1e3:.2f} ms: **{theirs_s / ours_s:,.0f}x** faster. "
            f"Goal (every layer within 1%, at least 10,000x faster): **{'met' if met else 'not met'}**.",
            "",
        ]
    elif unavailable:
        lines += [f"**SCALE-Sim could not be run**: {unavailable}. Only dnnmeter's cycles are shown.", ""]
    skipped = sorted({f"{run['model']} {e['layer']} ({run['dataflow'].upper()})" for run in runs
                      for e in run["layers"] if "scalesim_cycles" not in e})
    if skipped:
        lines += ["Not run through SCALE-Sim (over `--max-cycles`, or failed; see the per-layer tables): "
                  + ", ".join(skipped) + ".", ""]
    lines += [
        "Known differences, by design: SCALE-Sim counts `rows + cols` extra OFMAP writes per fold under OS "
        "(dnnmeter counts each output once) and does not count partial sums read back under WS and IS "
        "(dnnmeter does); its DRAM traffic comes from its buffer simulation and is not compared here.",
        "",
    ]
    for run in runs:
        lines += layer_table(run)
    return "\n".join([*lines, END])


def meta_info(args: argparse.Namespace, runs: list[dict[str, Any]], cache: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from _markdown import cpu_name

    versions = next((v for v in cache.values() if "scalesim" in v), {})
    return {"date": datetime.date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version(), "scalesim": versions.get("scalesim", "n/a"),
            "numpy": versions.get("numpy", "n/a"), "array": f"{args.array[0]}x{args.array[1]}",
            "sram_kb": args.sram_kb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scalesim-worker", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--models", default="alexnet,resnet18")
    parser.add_argument("--dataflows", default="os,ws")
    parser.add_argument("--array", default="32x32")
    parser.add_argument("--sram-kb", type=int, default=64)
    parser.add_argument("--max-cycles", type=int, default=400_000,
                        help="leave out layers dnnmeter predicts to take more cycles (SCALE-Sim: ~0.65 ms/cycle)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per SCALE-Sim layer")
    parser.add_argument("--jobs", type=int, default=1, help="SCALE-Sim processes at once")
    parser.add_argument("--python", type=Path, default=SCALESIM_PYTHON, help="the SCALE-Sim venv's python")
    parser.add_argument("--fresh", action="store_true", help="ignore cached SCALE-Sim results")
    parser.add_argument("--skip-scalesim", action="store_true", help="dnnmeter's side only")
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.scalesim_worker:
        scalesim_worker(args.scalesim_worker)
        return
    args.models = [m for m in args.models.split(",") if m]
    args.dataflows = [d for d in args.dataflows.split(",") if d]
    args.array = tuple(int(v) for v in args.array.lower().split("x"))
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    cache: dict[str, Any] = old.get("scalesim_cache", {})
    lock = threading.Lock()  # --jobs > 1 saves from several threads

    def save(runs: list[dict[str, Any]] | None = None) -> None:
        with lock:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            data = {"scalesim_cache": cache, "runs": runs if runs is not None else old.get("runs", [])}
            args.out.write_text(json.dumps(data, indent=1))

    runs = compare(args, cache, save)
    save(runs)
    meta = meta_info(args, runs, cache)
    text = markdown(runs, meta)
    if not args.no_markdown:
        sys.path.insert(0, str(Path(__file__).parent))
        from _markdown import write_section

        write_section(REPO / "BENCHMARKS.md", BEGIN, END, text)
    for run in runs:
        print(summary_row(run))


if __name__ == "__main__":
    main()
