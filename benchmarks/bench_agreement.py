#!/usr/bin/env python
"""dnnmeter's latency against torch.utils.benchmark, and the harness's own overhead.

1. Agreement: resnet18, batch 1, one CPU thread. dnnmeter's median (its own subprocess,
   as `dnnmeter bench` runs) against `torch.utils.benchmark.Timer.blocked_autorange` in this
   process, alternating the two `--rounds` times so that drift in the machine's load hits
   both alike. Goal: within 5%.
2. Overhead: a model of about 1 ms; dnnmeter's timing loop (in process) against a bare
   `perf_counter` loop around the same calls, alternating. Goal: under 1%.

    .venv/bin/python benchmarks/bench_agreement.py            # writes its BENCHMARKS.md section
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.utils.benchmark as tub
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _markdown import command_line, cpu_name, publish  # noqa: E402

from dnnmeter.measure import benchmark  # noqa: E402
from dnnmeter.measure.timing import TimingSettings, time_calls  # noqa: E402
from dnnmeter.zoo import create_model  # noqa: E402

BEGIN, END = "<!-- bench_agreement:begin -->", "<!-- bench_agreement:end -->"


def dnnmeter_median(budget: float) -> float:
    (point,) = benchmark(["resnet18"], batch_sizes=(1,), threads=1, time_budget_s=budget)
    assert point.status == "ok", point.error
    return point.latency_s_median  # type: ignore[return-value]


def torch_median(model: nn.Module, x: torch.Tensor, budget: float) -> float:
    timer = tub.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=1)
    return timer.blocked_autorange(min_run_time=budget).median


def agreement(rounds: int, budget: float) -> dict[str, object]:
    torch.set_num_threads(1)
    model = create_model("resnet18", device="cpu")
    x = torch.randn(1, 3, 224, 224)
    ours, theirs = [], []
    with torch.inference_mode():
        model(x)
        for _ in range(rounds):
            ours.append(dnnmeter_median(budget))
            theirs.append(torch_median(model, x, budget))
    ratio = statistics.median(ours) / statistics.median(theirs)
    return {"ours_s": ours, "torch_s": theirs, "ratio": ratio}


class _OneMillisecond(nn.Module):
    """A stack of linear layers sized to take about a millisecond on one thread."""

    def __init__(self, width: int = 512, depth: int = 4) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def bare_loop(call, n: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n


def overhead(rounds: int) -> dict[str, object]:
    torch.set_num_threads(1)
    model, x = _OneMillisecond().eval(), torch.randn(64, 512)
    with torch.inference_mode():
        call = lambda: model(x)  # noqa: E731
        per_call = bare_loop(call, 50)
        n = max(1, int(0.5 / per_call))
        ours, bare = [], []
        for _ in range(rounds):
            ours.append(time_calls(call, TimingSettings(time_budget_s=0.5, min_samples=20)).median_s)
            bare.append(bare_loop(call, n))
    return {"ours_s": ours, "bare_s": bare, "per_call_s": statistics.median(bare),
            "overhead": statistics.median(ours) / statistics.median(bare) - 1}


def section(command: str, agree: dict[str, object], over: dict[str, object]) -> str:
    ms = lambda v: f"{1e3 * v:.3f}"  # noqa: E731
    ratio, extra = float(agree["ratio"]), float(over["overhead"])
    lines = [
        BEGIN, "## Latency: dnnmeter against torch.utils.benchmark", "",
        f"Produced by `{command}` on {datetime.date.today()} on {cpu_name()}, torch {torch.__version__},"
        f" Python {platform.python_version()}; these are whole-model medians measured in one run.", "",
        "| check | dnnmeter | peer | ratio | goal |", "|---|--:|--:|--:|---|",
        f"| resnet18, batch 1, 1 thread: median ms, dnnmeter (own subprocess) vs `blocked_autorange` |"
        f" {ms(statistics.median(agree['ours_s']))} | {ms(statistics.median(agree['torch_s']))} |"
        f" {ratio:.3f} | within 5%: **{'met' if abs(ratio - 1) <= 0.05 else 'not met'}** |",
        f"| harness overhead on a {ms(float(over['per_call_s']))} ms model: dnnmeter's loop vs a bare"
        f" `perf_counter` loop | {ms(statistics.median(over['ours_s']))} | {ms(statistics.median(over['bare_s']))} |"
        f" {1 + extra:.4f} | under 1%: **{'met' if extra < 0.01 else 'not met'}** |", "",
        "Per round (ms): dnnmeter " + ", ".join(ms(v) for v in agree["ours_s"])
        + "; blocked_autorange " + ", ".join(ms(v) for v in agree["torch_s"]) + ".",
        "Both alternate round by round, so a change in the machine's load reaches both; on a"
        " loaded machine single rounds can differ by more than the medians do.", END,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args()
    agree = agreement(args.rounds, args.budget)
    over = overhead(args.rounds)
    publish(section(command_line("bench_agreement.py", sys.argv[1:]), agree, over), BEGIN, END, write=not args.no_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
