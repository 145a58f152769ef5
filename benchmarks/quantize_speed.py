#!/usr/bin/env python
"""resnet18 in float32 against its int8 version: serialized size and latency at batch 1.

The int8 model comes from ``dnnmeter.transforms.quantize.quantize_int8`` (post-training static,
torch's ``x86`` quantized engine), calibrated on random batches: size and speed do not
depend on the weights' values, so the initial weights do. Both models are timed with
dnnmeter's timing loop in this process on the same thread count, alternating round by
round so that a change in the machine's load reaches both.

    .venv/bin/python benchmarks/quantize_speed.py            # writes its BENCHMARKS.md section
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _markdown import command_line, cpu_name, publish  # noqa: E402

from dnnmeter.measure.environment import capture_environment  # noqa: E402
from dnnmeter.measure.timing import TimingSettings, time_calls  # noqa: E402
from dnnmeter.transforms.quantize import model_size_bytes, quantize_int8, sqnr_db  # noqa: E402
from dnnmeter.zoo import create_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- quantize_speed:begin -->", "<!-- quantize_speed:end -->"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "quantize_speed.json"
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
# Instruction sets the kernels are limited to, one child process each: fbgemm reads
# FBGEMM_ENABLE_INSTRUCTIONS and oneDNN ONEDNN_MAX_CPU_ISA once, when first used.
ISAS = {
    "native": {},
    "AVX-512 VNNI": {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512_E1", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"},
    "AVX-512 without VNNI": {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "AVX2": {"FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def measure(rounds: int, budget: float, threads: int) -> dict[str, object]:
    torch.manual_seed(0)
    model = create_model("resnet18", device="cpu").eval()
    x = torch.randn(1, 3, 224, 224)
    calibration = [torch.randn(4, 3, 224, 224) for _ in range(4)]
    result = quantize_int8(model, x, calibration)
    int8 = result.module
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        settings = TimingSettings(time_budget_s=budget)
        fp32_s, int8_s, fp32_best, int8_best = [], [], [], []
        with torch.inference_mode():
            sqnr = sqnr_db(model(x), int8(x))
            for _ in range(rounds):
                for module, medians, best in ((model, fp32_s, fp32_best), (int8, int8_s, int8_best)):
                    timing = time_calls(lambda m=module: m(x), settings)  # type: ignore[misc]
                    medians.append(timing.median_s)
                    best.append(min(timing.samples_s))
        environment = capture_environment("cpu", threads=threads)
    finally:
        torch.set_num_threads(before)
    return {
        "model": "resnet18", "batch_size": 1, "threads": threads, "rounds": rounds,
        "fp32_size_bytes": model_size_bytes(model), "int8_size_bytes": model_size_bytes(int8),
        "fp32_latency_s": fp32_s, "int8_latency_s": int8_s,
        "fp32_best_s": min(fp32_best), "int8_best_s": min(int8_best),
        "speedup": statistics.median(fp32_s) / statistics.median(int8_s),
        "speedup_best": min(fp32_best) / min(int8_best),
        "sqnr_db_random_input": sqnr, "int8": result.to_dict(),
        "quantized_engine": torch.backends.quantized.engine, "environment": environment,
        "load_average": list(os.getloadavg()),
    }  # fmt: skip


def _isa_row(r: dict) -> str:  # type: ignore[type-arg]
    fp32, int8 = statistics.median(r["fp32_latency_s"]), statistics.median(r["int8_latency_s"])
    limits = ", ".join(f"`{k}={v}`" for k, v in r["isa_env"].items()) or "none (what the CPU has)"
    return (f"| {r['isa']} | {limits} | {1e3 * fp32:.2f} | {1e3 * int8:.2f} | {r['speedup']:.2f}x |"
            f" {1e3 * r['fp32_best_s']:.2f} | {1e3 * r['int8_best_s']:.2f} | {r['speedup_best']:.2f}x |")


def section(command: str, runs: list[dict]) -> str:  # type: ignore[type-arg]
    r = runs[0]
    mb = lambda v: f"{v / 1e6:.2f}"  # noqa: E731
    env = r["environment"]
    flags = [f for f in INT8_FLAGS if f in env["cpu_flags"]] or ["none of " + ", ".join(INT8_FLAGS)]
    reasons = "; ".join(r["int8"]["fallback_reasons"]) or "none"
    loads = sorted({round(v, 1) for run in runs for v in run["load_average"][:1]})
    lines = [
        BEGIN, "## Quantization: resnet18 float32 against int8 on the CPU", "",
        (f"Produced by `{command}` on {datetime.date.today()} on {cpu_name()}, torch {torch.__version__},"
        f" Python {platform.python_version()}; batch 1, {r['threads']} thread, medians of"
        f" {r['rounds']} rounds alternating float32 and int8, one process per instruction-set limit."
        f" The machine was shared with other jobs (1-minute load average {loads[0]} to {loads[-1]} on"
        f" {env['cpu_cores_available']} cores), which makes single rounds noisy. Medians are of the"
        " rounds' medians; *best* is the fastest sample of any round, the figure least disturbed by"
        " other jobs."), "",
        (f"Size (`torch.save` of the state dict): float32 **{mb(r['fp32_size_bytes'])} MB**, int8"
        f" **{mb(r['int8_size_bytes'])} MB** ({r['fp32_size_bytes'] / r['int8_size_bytes']:.2f}x smaller)."
        f" int8 path: **{r['int8']['path']}** on the `{r['quantized_engine']}` quantized engine;"
        f" earlier paths that failed: {reasons}. Output SQNR against float32 on a random input:"
        f" {r['sqnr_db_random_input']:.1f} dB."), "",
        ("| kernels limited to | environment | float32 ms | int8 ms | speed-up | float32 best ms | int8 best ms"
         " | speed-up of bests |"),
        "|---|---|--:|--:|--:|--:|--:|--:|",
        *[_isa_row(run) for run in runs], "",
        (f"This CPU reports {', '.join(flags)} (torch's CPU capability: {env['cpu_capability']}). The"
        " x86 engine runs int8 convolutions through fbgemm (and oneDNN for some shapes); with AVX-512"
        " VNNI one `vpdpbusd` multiplies four 8-bit pairs and adds them into a 32-bit lane, where"
        " AVX2 and AVX-512 without VNNI need three instructions (`vpmaddubsw`, `vpmaddwd`, `vpaddd`)."
        " Limiting the instruction sets, as in the rows above, shows what each feature is worth on"
        " this machine; float32 convolutions (oneDNN) are limited alike. The rows ran one after"
        " another on a shared machine: compare the ratio within a row, not milliseconds across rows."), "",
        f"Raw results: `{DEFAULT_OUT.relative_to(REPO)}`.", END,
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def run_child(isa: str, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """measure() in a fresh process whose kernels are limited to ``isa``."""
    env = {**os.environ, **ISAS[isa]}
    command = [sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--budget", str(args.budget),
               "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict = json.loads(done.stdout.splitlines()[-1])  # type: ignore[type-arg]
    return {**result, "isa": isa, "isa_env": ISAS[isa]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--isas", default=",".join(ISAS), help=f"comma-separated, of: {', '.join(ISAS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds, args.budget, args.threads)))
        return 0
    runs = [run_child(isa.strip(), args) for isa in args.isas.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=1))
    publish(section(command_line("quantize_speed.py", sys.argv[1:]), runs), BEGIN, END, write=not args.no_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
