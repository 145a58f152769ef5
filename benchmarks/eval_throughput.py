#!/usr/bin/env python
"""Does `dnnmeter eval` keep the model busy? End-to-end images/s against the pure forward pass.

On the CPU with one torch thread, resnet18 (initial weights) at batch size 32:

- forward: the model alone on tensors decoded and preprocessed beforehand (the peer: no
  reading, decoding or resizing at all);
- evaluate: `dnnmeter.accuracy.evaluate` over a synthetic ImageFolder of JPEGs written to a
  temporary folder (320x240 random pixels: noise compresses badly, so decoding costs more
  than for photographs), reading, decoding, resizing, cropping and scoring every image;
  with workers=0 (decoding in the main process) and workers=1 (decoding in a worker process).

The three alternate round by round, so a change in the machine's load reaches all alike;
medians over rounds are compared. Goal: evaluate at >= 80% of the forward pass's images/s.

    .venv/bin/python benchmarks/eval_throughput.py            # writes its BENCHMARKS.md section
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _markdown import command_line, cpu_name, publish  # noqa: E402

from dnnmeter.data import eval_transform, open_data  # noqa: E402
from dnnmeter.accuracy import evaluate  # noqa: E402
from dnnmeter.zoo import create_model  # noqa: E402

BEGIN, END = "<!-- eval_throughput:begin -->", "<!-- eval_throughput:end -->"
GOAL = 0.80


def write_jpegs(root: Path, n: int, classes: int = 4, size: tuple[int, int] = (320, 240)) -> int:
    """``n`` random-content JPEGs in ``classes`` class folders; returns the bytes written."""
    rng = np.random.default_rng(0)
    total = 0
    for i in range(n):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"{i:04d}.JPEG"
        Image.fromarray(pixels).save(path, quality=90)
        total += path.stat().st_size
    return total


def predecoded(root: Path, batch_size: int) -> list[torch.Tensor]:
    data = open_data(root, eval_transform(224), 224)
    images = [data[i][0] for i in range(len(data))]
    return [torch.stack(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]


def forward_rate(model: nn.Module, batches: list[torch.Tensor]) -> float:
    with torch.inference_mode():
        model(batches[0])  # warm-up
        start = time.perf_counter()
        for x in batches:
            model(x)
        elapsed = time.perf_counter() - start
    return sum(len(x) for x in batches) / elapsed


def eval_rate(model: nn.Module, root: Path, batch_size: int, workers: int) -> float:
    result = evaluate(model, str(root), input_size=224, batch_size=batch_size, workers=workers)
    assert result.images_per_s is not None and not result.skipped
    return result.images_per_s


def measure(n: int, batch_size: int, rounds: int) -> dict[str, object]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = create_model("resnet18", device="cpu")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            size = write_jpegs(root, n)
            batches = predecoded(root, batch_size)
            rates: dict[str, list[float]] = {"forward": [], "workers=0": [], "workers=1": []}
            for _ in range(rounds):
                rates["forward"].append(forward_rate(model, batches))
                rates["workers=0"].append(eval_rate(model, root, batch_size, 0))
                rates["workers=1"].append(eval_rate(model, root, batch_size, 1))
    finally:
        torch.set_num_threads(threads)
    return {"rates": rates, "bytes": size, "n": n, "batch_size": batch_size, "load": load}


def section(command: str, m: dict[str, object]) -> str:
    rates: dict[str, list[float]] = m["rates"]  # type: ignore[assignment]
    forward = statistics.median(rates["forward"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = []
    for key, label in (("forward", "forward only, pre-decoded tensors (the peer)"),
                       ("workers=0", "`evaluate`, workers=0 (decoding in the main process)"),
                       ("workers=1", "`evaluate`, workers=1 (decoding in one worker process)")):  # fmt: skip
        value = statistics.median(rates[key])
        verdict = "" if key == "forward" else f"**{'met' if value / forward >= GOAL else 'not met'}**"
        per_round = ", ".join(f"{v:.1f}" for v in rates[key])
        rows.append(f"| {label} | {value:.1f} | {value / forward:.1%} | {verdict} | {per_round} |")
    lines = [
        BEGIN, "## Evaluation throughput: `evaluate` against the forward pass alone", "",
        f"Produced by `{command}` on {datetime.date.today()} on {cpu_name()} ({cores} cores available),"
        f" torch {torch.__version__}, Python {platform.python_version()}; load average at start"
        f" {', '.join(f'{v:.2f}' for v in m['load']) if m['load'] else 'unknown'}"  # type: ignore[attr-defined]
        " (other work on the machine competes with the worker process for the second core).", "",
        f"resnet18 (initial weights), CPU, 1 torch thread, batch size {m['batch_size']}, input 224."
        f" Data: {m['n']} JPEGs of 320x240 random pixels ({int(m['bytes']) / m['n'] / 1024:.0f} KiB each"
        " on average; noise decodes more slowly than photographs) in an ImageFolder in a temporary folder,"
        " resized to 256 and centre-cropped to 224. `evaluate`'s images/s is end to end: reading,"
        " decoding, preprocessing, the forward pass and scoring, worker start-up included."
        " The three runs alternate round by round; the table shows medians over rounds.", "",
        "| run | images/s | of forward | goal >= 80% | per round |", "|---|--:|--:|---|---|",
        *rows, "", END,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args()
    m = measure(args.images, args.batch_size, args.rounds)
    publish(section(command_line("eval_throughput.py", sys.argv[1:]), m), BEGIN, END, write=not args.no_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
