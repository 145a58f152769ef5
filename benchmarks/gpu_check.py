#!/usr/bin/env python
"""Prove dnnmeter's CUDA paths on a real NVIDIA GPU in one short run.

    python benchmarks/gpu_check.py [--out DIR] [--quick] [--budget-s S]

On the first CUDA device (a few minutes on an H100 or H200) it runs dnnmeter's own API and CLI
and checks each figure against an independent one measured in the same run:

- device: GPU name, driver, CUDA, cuDNN and torch versions, memory, clocks, power limit;
- bench: resnet50 and vit_b_16 at batch 1, 8, 64 in float32, float16, bfloat16 through
  ``dnnmeter.measure.benchmark`` (CUDA-event timing): the median against
  ``torch.utils.benchmark.Timer.blocked_autorange`` on the same model and input (goal: within
  5%; medians of three rounds of each, interleaved, since one round at a small batch can catch
  a host-side slow episode on either side), the SM clock around each, the cold call apart, cudnn.benchmark as recorded, peak memory allocated <= reserved <=
  NVML's figure for this process, energy per image above idle;
- power: idle power, then NVML's total-energy counter against dnnmeter's sampled-power path
  (``nvmlDeviceGetPowerUsage``, trapezoid rule) over the same window (goal: within 10%), energy
  per image above idle, SM and memory clocks and temperature sampled during the load, throttling
  flagged (NVML's clocks-event reasons);
- roofline: ``measure_ceilings('cuda')`` matmul FLOP/s per dtype and copy bandwidth as a
  fraction of the data sheet's dense figures; resnet50's layers placed under that roof and its
  measured latency against the roof's bound;
- train, eval: ``dnnmeter train`` then ``dnnmeter eval`` of the trained checkpoint on the
  built-in digits under torchrun (two processes and nccl when there are two GPUs; with one,
  dnnmeter runs the one-process job without a process group, and the row says so);
- nccl: dnnmeter's training collectives (GroupSync's sum and max of CPU counts, a DDP step,
  replica_difference) and evaluation's process_group in a one-process nccl group, so that nccl
  is tried on a machine with one GPU too;
- predict: ``dnnmeter calibrate --device cuda`` on a coarse grid (``--per-group 10``, 2 min),
  ``dnnmeter predict`` of six torchvision models at batch 1, 8, 64 against ``dnnmeter bench`` of
  the same (recorded: share within +-10% and +-20%, Spearman), and the whole torchvision zoo's
  prediction time (goal under 10 s);
- deploy: ``dnnmeter deploy resnet50 --device cuda --batch-size 8`` within 2.5 min: every CUDA
  configuration (channels_last, cudnn.benchmark, float16, bfloat16, CUDA graphs, torch.compile,
  ONNX Runtime where its CUDA provider is installed) accepted, rejected or skipped with its
  reason, never failed; the recommendation and its exported artefact;
- study: ``dnnmeter study --device cuda`` on the seed models at batch sizes 1..64 with a short
  sampling budget, so that report.html has time, power and memory against batch size.

Writes DIR/gpu_check.json and DIR/gpu_check.md (a table per check: expected, measured,
verdict), keeps the study under DIR/study (report.html, figures/), and exits 1 when a check
fails. Each check has its own time slice and runs in its own process, so a failure or a hang in
one never stops the others; the whole run keeps to the budget (480 s, 180 s with --quick),
skipping what would not fit and saying so. On a machine without a GPU every check is reported
skipped with the reason and the exit status is 0.

Without a GPU, ``--rehearse`` runs the same code on the CPU with tiny models (the figures mean
nothing; it catches plumbing errors before a GPU session is spent on them).

--quick leaves out: in bench, batch 8, bfloat16 and vit_b_16 in float32 (it measures resnet50 in
float32 and float16 and vit_b_16 in float16, at batch 1 and 64), and the cudnn.benchmark=True
point; the float64 ceiling; it shortens the idle and power windows, trains one epoch instead of
two, and studies three models (alexnet, resnet50, tiny_alexnet) at batch 1, 8, 64 instead of all
the seed models at 1, 2, 4, ..., 64.

On a GPU machine that has only a copy of the repository (no venv), in one command of about 9
minutes (install ~1-2 min, then a 390 s budget; docs/bench.md, "Checking on a real GPU"):

    python3 -m venv /tmp/gv && . /tmp/gv/bin/activate && pip install -q torch==2.14.1 torchvision==0.29.1 && pip install -q -c constraints.txt -e '.[gpu,timm]' && python benchmarks/gpu_check.py --out "${OUT:-.}/gpu-check" --budget-s 390
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "dnnmeter-gpu-check/1"
# --rehearse (for developers without a GPU) runs every check's code on the CPU with tiny models,
# to catch a broken command line or a misread result before a GPU session; its figures mean nothing.
DEVICE = "cuda"
REHEARSE = False
VERDICTS = ("pass", "fail", "skipped", "recorded")  # "recorded": a figure kept, nothing to judge
NO_CUDA = "no CUDA device: torch.cuda.is_available() is False"
FULL_BUDGET_S, QUICK_BUDGET_S = 480.0, 180.0
LATENCY_TOLERANCE = 0.05  # dnnmeter's median against torch.utils.benchmark's
ENERGY_TOLERANCE = 0.10  # NVML's energy counter against integrated sampled power
# A ceiling below 30% of the data sheet means the wrong kernels ran (half precision off the
# tensor cores is ~7-14% of the dense tensor figure); above 105% the measurement is wrong.
CEILING_BAND = (0.30, 1.05)
ROOF_SLACK = 1.05  # nothing runs faster than its roof; 5% for the clock's boost above the sheet
TRAIN_MIN_ACCURACY = 0.80  # tiny_alexnet on digits: 0.93 after one epoch, 0.97 after two (CPU)
EVAL_TOLERANCE = 0.01  # eval of the checkpoint against train's own validation accuracy

# Dense peak figures (no sparsity) from NVIDIA's data sheets, in FLOP/s and bytes/s. The sheets
# quote the TF32/FP16/BF16 tensor-core figures "with sparsity"; the dense figure is half of it.
# float64 is the FP64 tensor-core figure (cuBLAS's DGEMM uses those cores on Hopper); float32
# is plain FP32, what torch.mm runs while torch.backends.cuda.matmul.allow_tf32 is False (the
# default), and "tf32" is used in its place when it is True.
# H100 SXM and PCIe: https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet
# H200 SXM: https://www.nvidia.com/en-us/data-center/h200/
DATASHEETS: dict[str, dict[str, float]] = {
    "H100 SXM": {"float64": 67e12, "float32": 67e12, "tf32": 494.5e12, "float16": 989.5e12,
                 "bfloat16": 989.5e12, "bandwidth": 3.35e12},
    "H100 PCIe": {"float64": 51e12, "float32": 51e12, "tf32": 378e12, "float16": 756.5e12,
                  "bfloat16": 756.5e12, "bandwidth": 2.0e12},
    "H200 SXM": {"float64": 67e12, "float32": 67e12, "tf32": 494.5e12, "float16": 989.5e12,
                 "bfloat16": 989.5e12, "bandwidth": 4.8e12},
}  # fmt: skip
DATASHEET_URLS = {
    "H100 SXM": "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
    "H100 PCIe": "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
    "H200 SXM": "https://www.nvidia.com/en-us/data-center/h200/",
}

# NVML's clocks-event (throttle) reason bits, from nvml.h; the slowdowns are what "throttled" means.
THROTTLE_BITS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting",
}  # fmt: skip
SLOWDOWN_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


# --- results ----------------------------------------------------------------------------------


@dataclass
class Item:
    """One row of a check's table."""

    what: str
    expected: str
    measured: str
    verdict: str
    reason: str | None = None

    def __post_init__(self) -> None:
        assert self.verdict in VERDICTS, self.verdict


@dataclass
class Check:
    name: str
    title: str
    items: list[Item] = field(default_factory=list)
    reason: str | None = None  # why the whole check was skipped or failed
    elapsed_s: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    on_add: Callable[[], None] | None = field(default=None, repr=False, compare=False)  # a child saves each row

    @property
    def verdict(self) -> str:
        return check_verdict(self.items)

    def add(self, what: str, expected: str, measured: str, verdict: str, reason: str | None = None) -> Item:
        item = Item(what, expected, measured, verdict, reason)
        self.items.append(item)
        if self.on_add is not None:
            self.on_add()
        return item

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "verdict": self.verdict, "reason": self.reason,
                "elapsed_s": self.elapsed_s, "items": [asdict(i) for i in self.items], "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Check:
        return cls(raw["name"], raw["title"], [Item(**i) for i in raw.get("items", [])], raw.get("reason"),
                   raw.get("elapsed_s"), raw.get("data", {}))


def check_verdict(items: Sequence[Item]) -> str:
    """fail if any row failed; pass if any passed; skipped otherwise (nothing was judged)."""
    verdicts = {i.verdict for i in items}
    if "fail" in verdicts:
        return "fail"
    return "pass" if "pass" in verdicts else "skipped"


def run_verdict(checks: Sequence[Check]) -> str:
    return check_verdict([Item(c.name, "", "", c.verdict) for c in checks])


# --- pure comparisons (tests/test_gpu_check.py checks them with hand numbers) -------------------


def relative_difference(measured: float | None, reference: float | None) -> float | None:
    """(measured - reference) / reference, or None when either is missing or reference is 0."""
    if measured is None or reference is None or reference == 0:
        return None
    return (measured - reference) / reference


def within(measured: float | None, reference: float | None, tolerance: float) -> str:
    """pass when measured is within ``tolerance`` (a fraction) of reference; skipped when missing."""
    diff = relative_difference(measured, reference)
    if diff is None:
        return "skipped"
    return "pass" if abs(diff) <= tolerance else "fail"


def band_verdict(value: float | None, low: float, high: float) -> str:
    if value is None:
        return "skipped"
    return "pass" if low <= value <= high else "fail"


def window_samples(samples: Sequence[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    """``(time_s, power_w)`` samples cut to [t0, t1], the ends linearly interpolated, so that a
    series sampled around a window integrates over exactly that window."""
    ordered = sorted(samples)
    if t1 <= t0 or len(ordered) < 2 or ordered[0][0] > t0 or ordered[-1][0] < t1:
        raise ValueError("the samples must cover the window [t0, t1] with t0 < t1")

    def at(t: float) -> float:
        for (ta, pa), (tb, pb) in zip(ordered, ordered[1:]):
            if ta <= t <= tb:
                return pa if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
        raise AssertionError("unreachable: the window is covered")

    inside = [(t, p) for t, p in ordered if t0 < t < t1]
    return [(t0, at(t0)), *inside, (t1, at(t1))]


def trapezoid_j(samples: Sequence[tuple[float, float]]) -> float:
    """Energy from ``(time_s, power_w)`` samples: dnnmeter's own trapezoid rule."""
    from dnnmeter.measure.meters import trapezoid_j as dnnmeter_trapezoid

    return dnnmeter_trapezoid(samples)


def compare_energy(counter_j: float | None, sampled_j: float | None,
                   tolerance: float = ENERGY_TOLERANCE) -> dict[str, Any]:
    """The counter's energy against the integrated sampled power over the same window."""
    diff = relative_difference(sampled_j, counter_j)
    return {"counter_j": counter_j, "sampled_j": sampled_j, "relative_difference": diff,
            "verdict": within(sampled_j, counter_j, tolerance)}


def energy_above_idle_j(energy_j: float | None, duration_s: float, idle_w: float | None,
                        images: int) -> float | None:
    """Energy per image above the idle draw over the same time; None when a part is missing."""
    if energy_j is None or idle_w is None or images <= 0:
        return None
    return (energy_j - idle_w * duration_s) / images


def datasheet_for(device_name: str | None) -> tuple[str | None, str | None]:
    """(row of DATASHEETS, None), or (None, why there is none) for a device's name as torch or
    NVML gives it ("NVIDIA H100 80GB HBM3" is the SXM part, "NVIDIA H200" the H200 SXM)."""
    name = (device_name or "").upper()
    if "H200" in name and "NVL" not in name:
        return "H200 SXM", None
    if "H100" in name and "NVL" not in name:
        if "PCIE" in name:
            return "H100 PCIe", None
        if "HBM3" in name or "SXM" in name:
            return "H100 SXM", None
    known = ", ".join(DATASHEETS)
    return None, f"no data-sheet figures for {device_name or 'an unnamed device'} (known: {known})"


def datasheet_fraction(device_name: str | None, what: str, measured: float | None) -> dict[str, Any]:
    """``measured`` as a fraction of the data sheet's dense figure for ``what`` (a dtype, "tf32"
    or "bandwidth"); the fraction is None with the reason for an unknown device or figure."""
    row, reason = datasheet_for(device_name)
    reference = DATASHEETS[row].get(what) if row else None
    if row and reference is None:
        reason = f"the {row} data sheet has no {what} figure here"
    if measured is None and reason is None:
        reason = "not measured"
    fraction = measured / reference if measured is not None and reference else None
    return {"datasheet": row, "what": what, "reference": reference, "measured": measured,
            "fraction": fraction, "reason": reason, "url": DATASHEET_URLS.get(row or "")}


def memory_order(allocated: int | None, reserved: int | None, nvml_used: int | None,
                 nvml_reason: str | None = None) -> tuple[str, str | None]:
    """Peak allocated <= peak reserved (the caching allocator holds what tensors use) <= NVML's
    figure for the process (reserved plus the CUDA context). (verdict, reason)."""
    if allocated is None or reserved is None:
        return "skipped", "the allocator's peaks were not recorded"
    if allocated > reserved:
        return "fail", "peak allocated exceeds peak reserved"
    if nvml_used is None:
        return "pass", f"NVML's figure missing ({nvml_reason or 'not read'}); allocated <= reserved holds"
    if reserved > nvml_used:
        return "fail", "peak reserved exceeds what NVML says the process uses"
    return "pass", None


def throttle_names(mask: int | None) -> list[str]:
    if mask is None:
        return []
    return [name for bit, name in THROTTLE_BITS.items() if mask & bit]


def slot_timeout(remaining_s: float, slice_s: float, later_min_s: float, min_s: float) -> float | None:
    """Seconds a check may take: its slice, cut so that the checks after it keep their
    minimum; None when even its own minimum no longer fits."""
    available = remaining_s - later_min_s
    if available < min_s:
        return None
    return min(slice_s, available)


# --- formatting ----------------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1e3 * seconds:.3f} ms"


def mib(nbytes: float | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:.0f} MiB"


def pct(fraction: float | None, signed: bool = False) -> str:
    if fraction is None:
        return "n/a"
    return f"{100 * fraction:+.1f}%" if signed else f"{100 * fraction:.1f}%"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# dnnmeter GPU check", "",
        f"`{report['command']}`, started {report['started_utc']}; {report['elapsed_s']:.0f} s of a "
        f"{report['budget_s']:.0f} s budget{' (--quick)' if report['quick'] else ''}. "
        f"Verdict: **{report['verdict']}** ({_tally(report['checks'])}).", "",
    ]
    device = report.get("device") or {}
    if device:
        lines += ["Device: " + ", ".join(f"{k} {v}" for k, v in device.items() if v is not None) + ".", ""]
    for check in report["checks"]:
        took = f", {check['elapsed_s']:.1f} s" if check.get("elapsed_s") is not None else ""
        lines += [f"## {check['name']}: {check['title']} ({check['verdict']}{took})", ""]
        if check.get("reason"):
            lines += [check["reason"], ""]
        lines += ["| what | expected | measured | verdict |", "|---|---|---|---|"]
        for item in check["items"]:
            verdict = item["verdict"] + (f": {item['reason']}" if item.get("reason") else "")
            lines.append(f"| {_cell(item['what'])} | {_cell(item['expected'])} | {_cell(item['measured'])} "
                         f"| {_cell(verdict)} |")
        lines.append("")
    return "\n".join(lines)


def _tally(checks: Sequence[dict[str, Any]]) -> str:
    counts = {v: sum(c["verdict"] == v for c in checks) for v in ("pass", "fail", "skipped")}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no checks"


# --- the run: a plan of checks, each in its own time slice ----------------------------------------


@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    full_s: float  # its slice in a full run
    quick_s: float
    min_s: float  # below this it is skipped rather than started
    child: bool  # True: runs in a child process of this script; False: runs commands itself
    default: bool = True  # False: runs only when --only names it


PLANS = (
    Plan("device", "GPU, driver and software (--device-info)", 45, 30, 10, True),
    Plan("bench", "latency vs torch.utils.benchmark, cold call, cudnn.benchmark, memory, energy", 150, 55, 30, True),
    Plan("power", "idle power, NVML energy counter vs sampled power, clocks, temperature, throttling", 45, 30, 20, True),
    Plan("roofline", "CUDA ceilings vs the data sheet, resnet50 on the roofline", 45, 25, 15, True),
    Plan("train", "dnnmeter train under torchrun on digits", 90, 45, 25, False),
    Plan("eval", "dnnmeter eval of the trained checkpoint under torchrun", 60, 35, 20, False),
    Plan("nccl", "dnnmeter's collectives on nccl in a one-process group (training's sync, evaluation's gather)",
         40, 30, 12, True),
    # Not in the default run (it fits a lent machine's minutes as it is): --only predict,deploy.
    Plan("predict", "dnnmeter calibrate and predict --device cuda against bench on the same models", 240, 150, 60,
         False, default=False),
    Plan("deploy", "dnnmeter deploy resnet50 --device cuda: every configuration, its speed-up and agreement",
         190, 120, 60, False, default=False),
    Plan("study", "dnnmeter study --device cuda on the seed models, and its report", 10_000, 10_000, 45, False),
)
TIMING_ROUNDS = 3  # bench: dnnmeter's timing and torch.utils.benchmark's, interleaved (_timer_medians)
STUDY_RESERVE_S = 30.0  # after a study stopped at its slice: `dnnmeter report` re-renders the store
WRITE_RESERVE_S = 5.0
GRACE_S = 15.0  # a child stops itself this long before its hard timeout


class Clock:
    """Elapsed time since the run began, and progress lines that show it."""

    def __init__(self, t0: float, deadline: float) -> None:
        self.t0, self.deadline = t0, deadline

    def elapsed(self) -> float:
        return time.time() - self.t0

    def left(self) -> float:
        return self.deadline - time.time()

    def say(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {text}", flush=True)


def cuda_status() -> tuple[bool, str | None, bool]:
    """(usable, why not, whether that is a failure). No CUDA on a machine without a GPU is a
    skip; torch seeing no GPU where NVML sees one (a driver older than torch's CUDA, say) fails."""
    import torch

    if torch.cuda.is_available():
        return True, None, False
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False, f"{NO_CUDA} (CUDA_VISIBLE_DEVICES={visible!r} hides every GPU)", False
    seen = _nvml_gpu_count()
    if seen:
        count, driver = seen
        return False, (f"{NO_CUDA}, yet NVML lists {count} GPU(s) with driver {driver}: torch {torch.__version__} "
                       f"is built for CUDA {torch.version.cuda}; is the driver too old for it?"), True
    return False, NO_CUDA, False


def _nvml_gpu_count() -> tuple[int, str] | None:
    try:
        import pynvml as nv
    except ImportError:
        return None
    try:
        nv.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library: no GPU to speak of
        return None
    try:
        count = int(nv.nvmlDeviceGetCount())
        driver = nv.nvmlSystemGetDriverVersion()
        return (count, driver.decode() if isinstance(driver, bytes) else driver) if count else None
    except Exception:  # noqa: BLE001
        return None
    finally:
        nv.nvmlShutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.rehearse:
        rehearse()
    if args.child:
        return run_child(args)
    out = Path(args.out)
    for sub in ("checks", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    budget = args.budget_s or (QUICK_BUDGET_S if args.quick else FULL_BUDGET_S)
    started = time.time()
    clock = Clock(started, started + budget)
    report: dict[str, Any] = {
        "schema": SCHEMA, "command": " ".join(["python benchmarks/gpu_check.py", *(argv or sys.argv[1:])]),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick, "budget_s": budget, "host": platform.node(), "python": platform.python_version(),
    }
    clock.say(f"gpu_check: budget {budget:.0f} s{' (--quick)' if args.quick else ''}, writing to {out}")
    usable, why, failed = (True, None, False) if REHEARSE else cuda_status()

    def write(checks: list[Check], complete: bool) -> None:
        # After every check, so that a run killed from outside still leaves what it measured.
        import torch

        report.update(device=_device_line(checks, torch), checks=[c.to_dict() for c in checks],
                      verdict=run_verdict(checks) if complete else "incomplete", elapsed_s=clock.elapsed(),
                      complete=complete)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
        (out / "gpu_check.md").write_text(render_markdown(report))

    if not usable:
        clock.say(f"every check skipped: {why}")
        checks = [_whole(Check(p.name, p.title), why or NO_CUDA, "fail" if failed else "skipped")
                  for p in chosen_plans(args)]
    else:
        checks = run_plans(args, out, clock, lambda done: write(done, complete=False))
    write(checks, complete=True)
    print_summary(checks)
    clock.say(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}: {report['verdict']} ({_tally(report['checks'])})")
    return 1 if report["verdict"] == "fail" else 0


def print_summary(checks: Sequence[Check]) -> None:
    """One line per check, and every failed row in full: the end of the output says it all."""
    for check in checks:
        print(f"  {check.name:9s} {check.verdict:8s} {check.title}")
        for item in check.items:
            if item.verdict == "fail":
                print(f"    FAIL {item.what}: expected {item.expected}; measured {item.measured}"
                      + (f" ({item.reason})" if item.reason else ""))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="gpu-check", help="output folder (default: gpu-check)")
    parser.add_argument("--quick", action="store_true", help=f"the short form ({QUICK_BUDGET_S:.0f} s)")
    parser.add_argument("--budget-s", type=float, help=f"total seconds (default {FULL_BUDGET_S:.0f}, "
                        f"{QUICK_BUDGET_S:.0f} with --quick)")
    parser.add_argument("--only", type=_check_names, default=None,
                        help=f"run these checks alone, comma-separated (of {', '.join(p.name for p in PLANS)}; "
                        f"{', '.join(p.name for p in PLANS if not p.default)} run only when named): "
                        "a rerun of what failed, on a machine lent for minutes")
    parser.add_argument("--rehearse", action="store_true", help="run every check on the CPU with tiny models "
                        "(no GPU needed; checks the script, not the figures)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one check, run by the parent
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--stop-at", type=float, help=argparse.SUPPRESS)
    return parser


def _check_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in {p.name for p in PLANS}]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown check(s) {', '.join(unknown) or '(none given)'}; "
                                         f"choose from {', '.join(p.name for p in PLANS)}")
    return names


def rehearse() -> None:
    global DEVICE, REHEARSE
    DEVICE, REHEARSE = "cpu", True


def _whole(check: Check, reason: str, verdict: str) -> Check:
    """A check that did not run, or stopped, as one row with the reason."""
    check.reason = reason
    check.add("the whole check", "runs", "not run" if verdict == "skipped" else "failed", verdict, reason)
    return check


def _device_line(checks: Sequence[Check], torch: Any) -> dict[str, Any]:
    for check in checks:
        if check.name == "device" and check.data:
            d = check.data
            return {"gpu": d.get("gpu_name"), "driver": d.get("gpu_driver"), "cuda": d.get("cuda_version"),
                    "torch": d.get("torch"), "memory": mib(d.get("gpu_memory_total_bytes"))}
    return {"gpu": None, "torch": torch.__version__, "cuda": torch.version.cuda}


def chosen_plans(args: argparse.Namespace) -> list[Plan]:
    """Those --only names, else the default run's."""
    return [p for p in PLANS if (p.name in args.only if args.only else p.default)]


def run_plans(args: argparse.Namespace, out: Path, clock: Clock,
              saved: Callable[[list[Check]], None] = lambda done: None) -> list[Check]:
    checks: list[Check] = []
    plans = chosen_plans(args)
    for i, plan in enumerate(plans):
        later = sum(p.min_s for p in plans[i + 1:]) + WRITE_RESERVE_S
        slice_s = plan.quick_s if args.quick else plan.full_s
        timeout = slot_timeout(clock.left(), slice_s, later, plan.min_s)
        check = Check(plan.name, plan.title)
        if timeout is None:
            reason = (f"would not fit: needs at least {plan.min_s:.0f} s, {clock.left():.0f} s of the budget left "
                      f"and {later:.0f} s kept for the checks after it")
            clock.say(f"{plan.name}: skipped, {reason}")
            checks.append(_whole(check, reason, "skipped"))
            saved(checks)
            continue
        clock.say(f"{plan.name}: {plan.title} (at most {timeout:.0f} s)")
        t = time.time()
        try:
            if plan.child:
                check = run_child_process(plan, args, out, clock, timeout)
            else:
                STEPS[plan.name](check, args, out, clock, timeout, checks)
        except Exception as exc:  # noqa: BLE001 - one check's failure never stops the others
            check.add("the check itself", "runs to the end", f"{type(exc).__name__}: {exc}", "fail")
        check.elapsed_s = time.time() - t
        clock.say(f"{plan.name}: {check.verdict} in {check.elapsed_s:.1f} s")
        checks.append(check)
        saved(checks)
    return checks


def _run(command: Sequence[str], timeout: float, log: Path, env: dict[str, str] | None = None,
         stdout: str = "show") -> tuple[int | None, str]:
    """Run ``command`` in its own session (so a timeout ends its children too, torchrun's
    workers and bench's), stderr to ``log``; stdout "show"n, "capture"d or sent to the "log".
    Returns (exit status, or None on a timeout; the captured stdout)."""
    with open(log, "w") as err:
        where = {"show": None, "capture": subprocess.PIPE, "log": err}[stdout]
        proc = subprocess.Popen(list(command), stdout=where, stderr=err, text=True, env=env, start_new_session=True)
        try:
            text, _ = proc.communicate(timeout=timeout)
            return proc.returncode, text or ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                text, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                text, _ = proc.communicate()
            return None, text or ""


def _tail(log: Path, lines: int = 1) -> str:
    try:
        text = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " ".join(text[-lines:])[-400:]


def run_child_process(plan: Plan, args: argparse.Namespace, out: Path, clock: Clock, timeout: float) -> Check:
    result = out / "checks" / f"{plan.name}.json"
    result.unlink(missing_ok=True)
    log = out / "logs" / f"{plan.name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", plan.name, "--out", str(out),
               "--t0", str(clock.t0), "--stop-at", str(time.time() + max(timeout - GRACE_S, timeout / 2))]
    flags = (["--quick"] if args.quick else []) + (["--rehearse"] if REHEARSE else [])
    status, _ = _run(command + flags, timeout, log)
    check = Check.from_dict(json.loads(result.read_text())) if result.exists() else Check(plan.name, plan.title)
    if status is None:
        check.add("the check's process", f"ends within its {timeout:.0f} s slice", "killed at its timeout", "fail",
                  f"a hang? what it had written is above; log: {log}")
    elif status != 0:
        check.add("the check's process", "exits 0", f"exit status {status}", "fail", _tail(log) or f"log: {log}")
    return check


# --- checks that run commands (train, eval, study) -------------------------------------------------


def _env() -> dict[str, str]:
    """This environment without a torchrun job's variables (each command starts its own)."""
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    return {k: v for k, v in os.environ.items() if k not in drop} | {"PYTHONUNBUFFERED": "1"}


def _nproc() -> int:
    import torch

    return 2 if torch.cuda.device_count() >= 2 else 1


def _torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "dnnmeter"]


def _expected_distributed(nproc: int) -> str:
    return "world_size 2, backend nccl" if nproc > 1 else "world_size 1 (one torchrun process: no process group)"


def _json_out(stdout: str) -> Any:
    """The JSON document a command printed, even after other lines (a progress bar's, say)."""
    decoder = json.JSONDecoder()
    for i, char in enumerate(stdout):
        if char in "{[":
            try:
                return decoder.raw_decode(stdout[i:])[0]
            except json.JSONDecodeError:
                continue
    return None


def step_train(check: Check, args: argparse.Namespace, out: Path, clock: Clock, timeout: float,
               done: list[Check]) -> None:
    nproc, epochs = _nproc(), 1 if args.quick else 2
    folder = out / "train"
    command = [*_torchrun(nproc), "train", "tiny_alexnet", "--data", "digits", "--epochs", str(epochs),
               "--device", DEVICE, "--out", str(folder), "--overwrite", "--format", "json"]
    check.data["command"] = " ".join(command[1:])
    clock.say(f"train: torchrun --nproc-per-node={nproc} dnnmeter train tiny_alexnet, {epochs} epoch(s)")
    result = _command_json(check, command, timeout, out / "logs" / "train.log")
    if result is NOT_RUN:
        return
    result = result[0] if isinstance(result, list) else result
    check.data["result"] = {k: result.get(k) for k in ("val_accuracy", "history", "distributed", "seconds",
                                                       "checkpoint")} if result else None
    if not result:
        check.add("output", "one JSON result on stdout", "none", "fail")
        return
    device = (result.get("settings") or {}).get("device")
    check.add("device", f"{DEVICE} (cuda:LOCAL_RANK under torchrun)", str(device),
              "pass" if str(device).startswith(DEVICE) else "fail")
    history = result.get("history") or []
    check.add("epochs", str(epochs), str(len(history)), "pass" if len(history) == epochs else "fail")
    acc = result.get("val_accuracy")
    check.add("validation accuracy", f">= {TRAIN_MIN_ACCURACY:.2f} (0.93 after one epoch on the CPU)",
              "n/a" if acc is None else f"{acc:.4f}", band_verdict(acc, TRAIN_MIN_ACCURACY, 1.0))
    epoch_s = [h.get("epoch_s") for h in history]
    check.add("time per epoch", "recorded", ", ".join(f"{s:.2f} s" for s in epoch_s if s is not None), "recorded")
    _distributed_item(check, nproc, result.get("distributed"), train=True)
    checkpoint = folder / "model.safetensors"
    check.add("checkpoint", "model.safetensors written", str(checkpoint) if checkpoint.exists() else "missing",
              "pass" if checkpoint.exists() else "fail")


def _command_ran(check: Check, status: int | None, timeout: float, log: Path) -> bool:
    if status is None:
        check.add("the command", f"ends within {timeout:.0f} s", "killed at its timeout", "fail", f"log: {log}")
        return False
    if status != 0:
        check.add("the command", "exit status 0", f"exit status {status}", "fail", _tail(log, 2) or f"log: {log}")
        return False
    return True


NOT_RUN = object()  # _command_json: the command did not run to exit 0 (its row says why)


def _command_json(check: Check, command: Sequence[str], timeout: float, log: Path) -> Any:
    """Run ``command``, its stdout captured: the JSON document it printed (None when it printed
    none), or NOT_RUN when it timed out or failed, with the row that says so added."""
    status, stdout = _run(command, timeout, log, _env(), stdout="capture")
    return _json_out(stdout) if _command_ran(check, status, timeout, log) else NOT_RUN


def _distributed_item(check: Check, nproc: int, described: dict[str, Any] | None, train: bool) -> None:
    described = described or {}
    world, backend = described.get("world_size", 1), described.get("backend")
    measured = f"world_size {world}, backend {backend}"
    if nproc > 1:
        ok = world == 2 and backend == "nccl"
        if train:
            diff = described.get("replica_max_abs_diff")
            measured += f", replicas differ by at most {diff}"
            ok = ok and diff == 0.0
        check.add("process group", _expected_distributed(nproc) + (", replicas identical" if train else ""),
                  measured, "pass" if ok else "fail")
    else:
        check.add("process group", _expected_distributed(nproc), measured if described else "none (one process)",
                  "pass" if world == 1 and backend is None else "fail",
                  "nccl not exercised: one GPU, and dnnmeter runs a one-process torchrun job without a group")


def step_eval(check: Check, args: argparse.Namespace, out: Path, clock: Clock, timeout: float,
              done: list[Check]) -> None:
    nproc = _nproc()
    trained = next((c for c in done if c.name == "train"), None)
    weights = out / "train" / "model.safetensors"
    train_acc = ((trained.data.get("result") or {}).get("val_accuracy")) if trained else None
    command = [*_torchrun(nproc), "eval", "tiny_alexnet", "--data", "digits", "--device", DEVICE, "--format", "json"]
    if weights.exists():
        command += ["--weights", str(weights)]
    else:
        command += ["--limit", "300"]  # no trained checkpoint: initial weights, the run itself is checked
    check.data["command"] = " ".join(command[1:])
    clock.say(f"eval: torchrun --nproc-per-node={nproc} dnnmeter eval tiny_alexnet"
              + (" (trained checkpoint)" if weights.exists() else " (initial weights: no checkpoint)"))
    result = _command_json(check, command, timeout, out / "logs" / "eval.log")
    if result is NOT_RUN:
        return
    result = result[0] if isinstance(result, list) and result else result
    if not isinstance(result, dict):
        check.add("output", "one JSON result on stdout", "none", "fail")
        return
    settings = result.get("settings") or {}
    check.data["result"] = {k: result.get(k) for k in ("n", "top1", "top5", "images_per_s", "seconds")}
    check.add("device", DEVICE, str(settings.get("device")), "pass" if str(settings.get("device")).startswith(DEVICE) else "fail")
    n, top1 = result.get("n"), result.get("top1")
    expected_n = 359 if weights.exists() else 300
    check.add("images evaluated", f"{expected_n} (the held-out digits)" if weights.exists() else "300 (--limit)",
              str(n), "pass" if n == expected_n else "fail")
    if weights.exists() and train_acc is not None:
        check.add("top-1 of the checkpoint", f"train's validation accuracy {train_acc:.4f} +/- {EVAL_TOLERANCE}",
                  "n/a" if top1 is None else f"{top1:.4f}",
                  band_verdict(top1, train_acc - EVAL_TOLERANCE, train_acc + EVAL_TOLERANCE))
    else:
        check.add("top-1", "in [0, 1] (initial weights: no trained checkpoint to compare with)",
                  "n/a" if top1 is None else f"{top1:.4f}", band_verdict(top1, 0.0, 1.0))
    check.add("throughput", "recorded", f"{result.get('images_per_s') or 0:.0f} images/s", "recorded")
    _distributed_item(check, nproc, settings.get("distributed"), train=False)


QUICK_STUDY = ("alexnet", "resnet50", "tiny_alexnet")
STUDY_FIRST = ("alexnet", "resnet50", "vgg16", "googlenet", "resnet18", "inception_v3", "bn_alexnet", "enet")
FIGURES = ("time_vs_batch", "power_vs_batch", "memory_vs_batch")


def study_models(quick: bool) -> tuple[list[str], str | None]:
    """The seed models, the paper's best-known first (a study stopped at its slice has those),
    without timm's when timm is not installed (with a note)."""
    from dnnmeter.zoo import SEED_MODELS

    if REHEARSE:
        return ["tiny_alexnet"], "rehearsal on the CPU: one tiny model"
    models = list(QUICK_STUDY) if quick else [*STUDY_FIRST, *(m for m in SEED_MODELS if m not in STUDY_FIRST)]
    try:
        import timm  # noqa: F401
    except ImportError:
        dropped = [m for m in models if m.startswith("timm:")]
        if dropped:
            return [m for m in models if not m.startswith("timm:")], f"timm is not installed: {', '.join(dropped)} left out"
    return models, None


def step_study(check: Check, args: argparse.Namespace, out: Path, clock: Clock, timeout: float,
               done: list[Check]) -> None:
    folder = out / "study"
    models, note = study_models(args.quick)
    batches = "1,2" if REHEARSE else ("1,8,64" if args.quick else "1,2,4,8,16,32,64")
    command = [sys.executable, "-m", "dnnmeter", "study", "--device", DEVICE, "--models", ",".join(models),
               "--batch-sizes", batches, "--time-budget", "0.1", "--out", str(folder)]
    check.data.update(command=" ".join(command[1:]), models=models, note=note)
    slice_s = max(10.0, min(timeout, clock.left() - WRITE_RESERVE_S) - STUDY_RESERVE_S)
    clock.say(f"study: {len(models)} models at batch {batches} (at most {slice_s:.0f} s, then the report)")
    status, _ = _run(command, slice_s, out / "logs" / "study.log", _env(), stdout="log")
    if status is None:
        check.reason = f"the study stopped at its {slice_s:.0f} s slice; the report is rendered from its store"
        clock.say("study: slice spent; dnnmeter report renders what is stored")
        status, _ = _run([sys.executable, "-m", "dnnmeter", "report", str(folder)], STUDY_RESERVE_S - 5,
                         out / "logs" / "report.log", _env(), stdout="log")
        check.add("study", f"finishes within {slice_s:.0f} s, or is re-rendered from its store",
                  "stopped at its slice; `dnnmeter report` " + ("re-rendered it" if status == 0 else "failed"),
                  "pass" if status == 0 else "fail", None if status == 0 else _tail(out / "logs" / "report.log"))
    elif status != 0:
        check.add("study", "exit status 0", f"exit status {status}", "fail", _tail(out / "logs" / "study.log", 2))
    else:
        check.add("study", f"finishes within {slice_s:.0f} s", "finished", "pass")
    judge_study(check, folder, models, [int(b) for b in batches.split(",")], note)


def judge_study(check: Check, folder: Path, models: Sequence[str], batches: Sequence[int], note: str | None) -> None:
    results = folder / "results.json"
    if not results.exists():
        check.add("results.json", "written", "missing", "fail")
        return
    data = json.loads(results.read_text())
    points = [p for m in data.get("models", []) for p in m.get("bench") or [] if str(p.get("device", "")).startswith(DEVICE)]
    ok = [p for p in points if p.get("status") == "ok"]
    bad = [f"{p.get('model')} b{p.get('batch_size')}: {p.get('status')} {p.get('error') or ''}".strip()
           for p in points if p.get("status") not in ("ok", "oom", "skipped")]
    complete = [m for m in models if sum(p.get("model") == m and p.get("status") == "ok" for p in points) == len(batches)]
    check.add("models measured", f"{len(models)} models x {len(batches)} batch sizes on {DEVICE}, as time allows",
              f"{len(complete)} models complete, {len(ok)} points ok" + (f"; {note}" if note else ""),
              "pass" if ok else "fail", None if ok else "no point was measured on cuda")
    check.add("bench points", "status ok (or oom) for every point", "all ok" if not bad else "; ".join(bad[:4]),
              "pass" if not bad else "fail")
    powered = [p for p in ok if p.get("power_w") is not None]
    reasons = {p.get("power_unavailable_reason") for p in ok if p.get("power_w") is None}
    check.add("power in the study", "every ok point has NVML power", f"{len(powered)} of {len(ok)}",
              "pass" if ok and len(powered) == len(ok) else ("skipped" if not powered else "fail"),
              "; ".join(sorted(r for r in reasons if r))[:200] or None)
    report = folder / "report.html"
    check.add("report.html", "written", str(report) if report.exists() else "missing", "pass" if report.exists() else "fail")
    for name in FIGURES:
        found = sorted((folder / "figures").glob(f"{name}.*"))
        verdict = "pass" if found else ("skipped" if name == "power_vs_batch" and not powered else "fail")
        check.add(f"figure {name}", "drawn (Canziani et al. Fig. 3-5)", ", ".join(f.name for f in found) or "missing",
                  verdict)
    roofs = [m["model"] for m in data.get("models", []) if m.get("roofline")]
    check.add(f"rooflines on the {DEVICE} ceilings", "one per model", f"{len(roofs)} models", "recorded")
    check.data["points"] = [{k: p.get(k) for k in ("model", "batch_size", "status", "latency_s_median", "power_w",
                                                    "peak_memory_bytes", "energy_j_per_image")} for p in points]


# --- prediction and deployment on the GPU (issues 14 and 15) ---------------------------------------

PREDICT_MODELS = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "vit_b_16")
QUICK_PREDICT = ("resnet18", "resnet50", "mobilenet_v3_large")
PREDICT_BATCHES = (1, 8, 64)
# A coarse grid: 230 shapes and their larger-batch twins (kernels.gpu_twins), ~0.15 s each on an H200
CALIBRATE_PER_GROUP, CALIBRATE_MIN = 10, 2.0
ZOO_PREDICT_GOAL_S = 10.0  # issue 14's goal for the whole torchvision zoo (meta-device analysis)
DEPLOY_MODEL, DEPLOY_BATCH, DEPLOY_MIN = "resnet50", 8, 2.5


def _ratio_rows(predicted: Sequence[dict[str, Any]], measured: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Predicted against measured per (model, batch size), where both have a figure."""
    bench = {(p.get("model"), p.get("batch_size")): p.get("latency_s_median") for p in measured
             if p.get("status") == "ok" and p.get("latency_s_median")}
    rows = []
    for p in predicted:
        got = bench.get((p.get("model"), p.get("batch_size")))
        if got and p.get("latency_s"):
            rows.append({"model": p["model"], "batch_size": p["batch_size"], "predicted_s": p["latency_s"],
                         "predicted_low_s": p.get("latency_s_low"), "predicted_high_s": p.get("latency_s_high"),
                         "measured_s": got, "error": p["latency_s"] / got - 1.0})
    return rows


def prediction_scores(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """benchmarks/predict_accuracy.py's scores (share within +-10% and +-20%, median and p90
    absolute error, Spearman and Kendall from 3 points); None figures when nothing was compared."""
    if not rows:
        return {"n": 0, "within_10pct": None, "within_20pct": None, "median_abs_error": None, "spearman": None}
    sys.path.insert(0, str(Path(__file__).parent))
    from predict_accuracy import scores

    return scores([r["measured_s"] for r in rows], [r["predicted_s"] for r in rows])


def step_predict(check: Check, args: argparse.Namespace, out: Path, clock: Clock, timeout: float,
                 done: list[Check]) -> None:
    """calibrate --device cuda (a coarse grid, kernels timed with CUDA events), predict, then
    bench the same models: predicted against measured, and the whole zoo's prediction time."""
    folder, logs, started = out / "calibration", out / "logs", time.time()
    models = ("tiny_alexnet", "squeezenet1_1") if REHEARSE else (QUICK_PREDICT if args.quick else PREDICT_MODELS)
    batches = (1, 2) if REHEARSE else PREDICT_BATCHES
    per_group, minutes = (2, 0.5) if REHEARSE else (CALIBRATE_PER_GROUP, CALIBRATE_MIN)
    dnnmeter = [sys.executable, "-m", "dnnmeter"]
    calibrate = [*dnnmeter, "calibrate", "--device", DEVICE, "--per-group", str(per_group), "--budget-min",
                 str(minutes), "--out", str(folder)]
    check.data["commands"] = [" ".join(calibrate[2:])]
    clock.say(f"predict: calibrate on {DEVICE}, {per_group} shapes per kernel group, at most {minutes:g} min")
    t = time.time()
    limit = min(timeout, minutes * 60 + 60)  # its budget, the fit included, and a minute to start and save
    status, _ = _run(calibrate, limit, logs / "calibrate.log", _env(), stdout="log")
    if not _command_ran(check, status, limit, logs / "calibrate.log"):
        return
    saved = sorted(folder.glob("*.json"))
    calibration = json.loads(saved[-1].read_text()) if saved else {}
    identity = calibration.get("machine") or {}
    diagnostics = calibration.get("diagnostics") or {}
    check.add("calibration", f"saved, device {DEVICE}, the GPU named in its identity",
              f"{len(saved)} file(s), device {calibration.get('device')}, {identity.get('gpu_name')}",
              "pass" if saved and calibration.get("device") == DEVICE and (REHEARSE or identity.get("gpu_name"))
              else "fail")
    check.add("calibration time and size", "recorded",
              f"{time.time() - t:.0f} s, {diagnostics.get('kernels')} kernels and {diagnostics.get('networks')} "
              f"networks, {diagnostics.get('failed')} failed; per-layer overhead "
              f"{1e6 * float((calibration.get('overhead') or {}).get('per_layer_s') or 0.0):.1f} us", "recorded")
    sizes = ",".join(str(b) for b in batches)
    predict = [*dnnmeter, "predict", *models, "--device", DEVICE, "--batch-sizes", sizes, "--calibration",
               str(folder), "--format", "json"]
    predicted = _command_json(check, predict, 120, logs / "predict.log")
    if predicted is NOT_RUN:
        return
    predicted = predicted or []
    complete = [p for p in predicted if p.get("latency_s") and
                (p.get("latency_s_low") or 0) <= p["latency_s"] <= (p.get("latency_s_high") or 0)]
    check.add("predictions", f"{len(models) * len(batches)}, each inside its own interval",
              f"{len(complete)} of {len(predicted)}", "pass" if len(complete) == len(models) * len(batches) else "fail")
    # The zoo's prediction timed inside one process, as benchmarks/predict_accuracy.py times it
    # (the goal is the prediction's, not Python's start: about 5 s more on an H200's host).
    t = time.time()
    zoo = [sys.executable, "-c", "import json, sys, time; from dnnmeter.prediction import predict; "
           "t0 = time.perf_counter(); got = predict('torchvision', device=sys.argv[1], calibration_dir=sys.argv[2]); "
           "print(json.dumps({'models': sum(p.latency_s is not None for p in got), 'seconds': time.perf_counter() - t0}))",
           DEVICE, str(folder)]
    timed = _command_json(check, zoo, 120, logs / "predict_zoo.log")
    if timed is not NOT_RUN:
        timed = timed or {}
        n, seconds = timed.get("models") or 0, timed.get("seconds")
        check.add("the torchvision zoo predicted", f"under {ZOO_PREDICT_GOAL_S:.0f} s (dnnmeter.predict, in one process)",
                  f"{n} models in {seconds or 0:.1f} s; {time.time() - t:.1f} s with Python's start",
                  "pass" if n and seconds is not None and seconds < ZOO_PREDICT_GOAL_S else "fail")
    bench = [*dnnmeter, "bench", *models, "--device", DEVICE, "--batch-sizes", sizes, "--time-budget", "0.3",
             "--format", "json"]
    check.data["commands"] += [" ".join(predict[2:]), "dnnmeter.predict('torchvision')", " ".join(bench[2:])]
    left = timeout - (time.time() - started) - 5
    measured = _command_json(check, bench, max(left, 10.0), logs / "predict_bench.log")
    if measured is NOT_RUN:
        return
    rows = _ratio_rows(predicted, measured or [])
    check.data["rows"] = rows
    for r in rows:
        check.add(f"{r['model']} b{r['batch_size']}", "predicted against measured (recorded)",
                  f"{ms(r['predicted_s'])} against {ms(r['measured_s'])} ({pct(r['error'], signed=True)})", "recorded")
    scores = prediction_scores(rows)
    check.data["scores"] = scores
    check.add("points compared", f"{len(models) * len(batches)}", str(scores["n"]),
              "pass" if scores["n"] == len(models) * len(batches) else "fail")
    spearman = "n/a" if scores["spearman"] is None else f"{scores['spearman']:.3f}"
    check.add("accuracy on this GPU", "recorded (the issue's goals are for the CPU)",
              f"within +-10%: {pct(scores['within_10pct'])}, within +-20%: {pct(scores['within_20pct'])}, "
              f"median error {pct(scores['median_abs_error'])}, Spearman {spearman}", "recorded",
              "a coarse calibration (--per-group) in the time a GPU is lent; a full one times about 3,400 "
              "kernels on a GPU (every shape and its larger-batch twin)")


def step_deploy(check: Check, args: argparse.Namespace, out: Path, clock: Clock, timeout: float,
                done: list[Check]) -> None:
    """deploy --device cuda: every CUDA configuration built, timed and compared, or its reason."""
    model, batch, minutes = ("tiny_alexnet", 2, 0.5) if REHEARSE else (DEPLOY_MODEL, DEPLOY_BATCH, DEPLOY_MIN)
    minutes = max(0.2, min(minutes, (timeout - 45) / 60))
    folder = out / "deploy"
    command = [sys.executable, "-m", "dnnmeter", "deploy", model, "--device", DEVICE, "--batch-size", str(batch),
               "--budget-min", f"{minutes:.2f}", "--out", str(folder), "--export", str(folder / "export"),
               "--format", "json"]
    check.data["command"] = " ".join(command[2:])
    clock.say(f"deploy: {model} at batch {batch} on {DEVICE}, at most {minutes:.1f} min")
    result = _command_json(check, command, timeout, out / "logs" / "deploy.log")
    if result is NOT_RUN:
        return
    if not isinstance(result, dict):
        check.add("output", "one JSON result on stdout", "none", "fail")
        return
    configs = result.get("configs") or []
    check.data["result"] = result
    by_status: dict[str, int] = {}
    for c in configs:
        by_status[c.get("status")] = by_status.get(c.get("status"), 0) + 1
    check.add("configurations", "each accepted, rejected, skipped (with its reason) or failed",
              ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())), "recorded")
    baseline = next((c for c in configs if c.get("name") == result.get("baseline")), {})
    check.add("baseline", f"{result.get('baseline')} timed on {DEVICE}", ms(baseline.get("latency_s_median")),
              "pass" if baseline.get("latency_s_median") else "fail")
    for c in configs:
        if c.get("status") in ("accepted", "rejected"):
            low, high, sqnr = c.get("speedup_low"), c.get("speedup_high"), c.get("sqnr_db")
            check.add(c["name"], "timed and compared (recorded)",
                      f"{ms(c.get('latency_s_median'))}, speed-up {c.get('speedup') or 0:.2f}x "
                      f"[{low or 0:.2f}, {high or 0:.2f}], top-1 agreement {pct(c.get('top1_agreement'))}, "
                      f"SQNR {'n/a' if sqnr is None else f'{sqnr:.1f} dB'}", "recorded",
                      c.get("reason"))
        elif c.get("status") == "failed":
            check.add(c["name"], "runs, or is skipped with its reason", "failed", "fail", str(c.get("reason"))[:300])
    check.add("recommended", "a configuration, with the images compared", f"{result.get('recommended')} "
              f"on {result.get('images')} images", "pass" if result.get("recommended") else "fail")
    exported = sorted(p.name for p in (folder / "export").glob("*")) if (folder / "export").exists() else []
    check.add("--export", "the artefact and its JSON written", ", ".join(exported) or "nothing",
              "pass" if exported else "fail")


STEPS: dict[str, Callable[..., None]] = {"train": step_train, "eval": step_eval, "study": step_study,
                                           "predict": step_predict, "deploy": step_deploy}


# --- child processes: one check each, on the GPU ---------------------------------------------------


class ChildContext:
    """What a child check has: its folder, its clock, and a file it rewrites after every row,
    so that the parent keeps the rows even when the child is killed."""

    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.out, self.quick = Path(args.out), args.quick
        self.clock = Clock(args.t0 or time.time(), args.stop_at or time.time() + plan.full_s)
        self.path = self.out / "checks" / f"{plan.name}.json"
        self.check = Check(plan.name, plan.title, on_add=self.save)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.check.to_dict(), indent=2, default=str))
        tmp.replace(self.path)

    def fits(self, needed_s: float) -> bool:
        return self.clock.left() >= needed_s

    def no_time(self, needed_s: float) -> str:
        return f"its time slice is spent ({max(0.0, self.clock.left()):.0f} s left, ~{needed_s:.0f} s needed)"


def run_child(args: argparse.Namespace) -> int:
    plan = next(p for p in PLANS if p.name == args.child)
    ctx = ChildContext(args, plan)
    ctx.save()
    t = time.time()
    try:
        CHILDREN[plan.name](ctx)
    finally:
        ctx.check.elapsed_s = time.time() - t
        ctx.save()
    return 0


class NvmlDevice:
    """NVML's handle for ``cuda:<index>`` (through dnnmeter's CUDA_VISIBLE_DEVICES mapping), or
    the reason there is none; every read returns None instead of raising."""

    def __init__(self, cuda_index: int = 0) -> None:
        from dnnmeter.measure.meters import MeterError, nvml_device_for
        from dnnmeter.measure.meters.nvml import import_nvml

        self.nv, self.handle, self.reason = import_nvml(), None, None
        if self.nv is None:
            self.reason = "nvidia-ml-py is not installed: pip install nvidia-ml-py (extra dnnmeter[gpu])"
            return
        try:
            self.nv.nvmlInit()
        except self.nv.NVMLError as err:
            self.nv, self.reason = None, f"NVML does not start: {err}"
            return
        try:
            target = nvml_device_for(cuda_index, os.environ.get("CUDA_VISIBLE_DEVICES"))
            get = self.nv.nvmlDeviceGetHandleByUUID if isinstance(target, str) else self.nv.nvmlDeviceGetHandleByIndex
            self.handle = get(target)
        except (self.nv.NVMLError, MeterError) as err:
            self.reason = f"NVML has no handle for cuda:{cuda_index}: {err}"

    @property
    def ok(self) -> bool:
        return self.handle is not None

    def read(self, fn: str, *args: Any) -> Any:
        if not self.ok or not hasattr(self.nv, fn):
            return None
        try:
            value = getattr(self.nv, fn)(self.handle, *args)
        except self.nv.NVMLError:
            return None
        return value.decode() if isinstance(value, bytes) else value

    def throttle_mask(self) -> int | None:
        for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            value = self.read(fn)
            if value is not None:
                return int(value)
        return None

    def process_used_bytes(self) -> tuple[int | None, str | None]:
        """This process's GPU memory as NVML sees it, or why not. In a container NVML lists
        the host's PIDs: a single listed process is then taken as this one, and said so."""
        procs = self.read("nvmlDeviceGetComputeRunningProcesses")
        if procs is None:
            return None, self.reason or "NVML does not list the GPU's processes here"
        mine = [p for p in procs if int(p.pid) == os.getpid()]
        note = None
        if not mine and len(procs) == 1:
            mine, note = procs, "PID not found (a container?); the one process on the GPU taken as this one"
        if not mine:
            return None, f"this PID is not among the {len(procs)} processes NVML lists (a container?)"
        used = getattr(mine[0], "usedGpuMemory", None)
        if used is None:
            return None, "NVML gives no per-process memory here (usedGpuMemory not available)"
        return int(used), note

    def close(self) -> None:
        if self.nv is not None:
            try:
                self.nv.nvmlShutdown()
            except self.nv.NVMLError:
                pass  # nothing left to release


def child_device(ctx: ChildContext) -> None:
    import torch

    from dnnmeter.measure.environment import capture_environment

    check = ctx.check
    env = capture_environment(f"{DEVICE}:0" if DEVICE == "cuda" else DEVICE)
    props = _gpu_properties()
    nvml = NvmlDevice(0)
    limit = nvml.read("nvmlDeviceGetEnforcedPowerLimit")
    cc = props["compute_capability"]
    check.data.update({k: env.get(k) for k in ("gpu_name", "gpu_driver", "gpu_memory_total_bytes", "gpu_clock_sm_mhz",
                                               "gpu_clock_mem_mhz", "gpu_clock_sm_max_mhz", "gpu_clock_mem_max_mhz",
                                               "cuda_version", "torch", "torchvision", "dnnmeter", "cpu_model",
                                               "gpu_unavailable_reason")})
    check.data.update(
        torch_device_name=props["name"], compute_capability=cc, device_count=props["count"],
        cudnn_version=torch.backends.cudnn.version(), power_limit_w=None if limit is None else limit / 1000,
        temperature_c=nvml.read("nvmlDeviceGetTemperature", getattr(nvml.nv, "NVML_TEMPERATURE_GPU", 0)),
        matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32, cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
        nvml_reason=nvml.reason, pynvml=_version("nvidia-ml-py"), multiprocessor_count=props["sms"],
    )
    d = check.data
    rows = [
        ("GPU", f"{d['torch_device_name']} (compute capability {cc}, {props['sms']} SMs), "
                f"{d['device_count']} visible"),
        ("driver / CUDA / cuDNN", f"{d['gpu_driver'] or 'n/a'} / {d['cuda_version']} / {d['cudnn_version']}"),
        ("torch / torchvision / dnnmeter", f"{d['torch']} / {d['torchvision']} / {d['dnnmeter']}"),
        ("memory", mib(d["gpu_memory_total_bytes"] or props["memory_bytes"])),
        ("clocks now (max)", f"SM {d['gpu_clock_sm_mhz']} ({d['gpu_clock_sm_max_mhz']}) MHz, memory "
                             f"{d['gpu_clock_mem_mhz']} ({d['gpu_clock_mem_max_mhz']}) MHz"),
        ("power limit, temperature", f"{d['power_limit_w']} W, {d['temperature_c']} C"),
        ("TF32", f"matmul {d['matmul_allow_tf32']}, cuDNN {d['cudnn_allow_tf32']}"),
        ("CPU", str(d["cpu_model"])),
    ]
    for what, measured in rows:
        check.add(what, "recorded", measured, "recorded")
    if nvml.ok:
        name = nvml.read("nvmlDeviceGetName")
        check.add("NVML's device is torch's", f"NVML names {d['torch_device_name']}", str(name),
                  "pass" if name == d["torch_device_name"] else "fail")
    else:
        check.add("NVML's device is torch's", "NVML answers", "no NVML", "skipped", nvml.reason)
    row, reason = datasheet_for(d["torch_device_name"])
    check.add("data sheet", "a row for this GPU", row or "none", "recorded", reason)
    nvml.close()


def _gpu_properties() -> dict[str, Any]:
    import torch

    if DEVICE != "cuda":
        return {"name": "cpu (rehearsal)", "compute_capability": None, "sms": None, "memory_bytes": None, "count": 0}
    props = torch.cuda.get_device_properties(0)
    return {"name": torch.cuda.get_device_name(0), "compute_capability": f"{props.major}.{props.minor}",
            "sms": props.multi_processor_count, "memory_bytes": props.total_memory, "count": torch.cuda.device_count()}


def _reserved_bytes() -> int | None:
    import torch

    return torch.cuda.memory_reserved() if DEVICE == "cuda" else None


def _empty_cache() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


BENCH_MODELS = ("resnet50", "vit_b_16")


def bench_plan(quick: bool) -> tuple[list[tuple[str, str]], tuple[int, ...], float]:
    """(sweeps as (model, dtype), batch sizes, seconds of sampling per point)."""
    if REHEARSE:
        return [("tiny_alexnet", "float32")], (1, 2), 0.1
    if quick:
        return [("resnet50", "float32"), ("resnet50", "float16"), ("vit_b_16", "float16")], (1, 64), 0.3
    dtypes = ("float32", "float16", "bfloat16")
    return [(m, d) for m in BENCH_MODELS for d in dtypes], (1, 8, 64), 0.5


def child_bench(ctx: ChildContext) -> None:
    import torch

    from dnnmeter.measure import benchmark

    sweeps, batches, budget = bench_plan(ctx.quick)
    nvml = NvmlDevice(0)
    check = ctx.check
    check.data.update(sweeps=sweeps, batch_sizes=batches, time_budget_s=budget, points=[])
    per_sweep = 4 + len(batches) * (2 * TIMING_ROUNDS * budget + 2.5)  # build, idle; per point: rounds, energy, settling
    for model, dtype in sweeps:
        label = f"{model} {dtype}"
        if not ctx.fits(per_sweep):
            check.add(f"{label} b{','.join(map(str, batches))}", "measured", "not measured", "skipped",
                      ctx.no_time(per_sweep))
            continue
        ctx.clock.say(f"bench: {label} at batch {', '.join(map(str, batches))}")
        seen: dict[int, dict[str, Any]] = {}

        def landed(result: Any, seen: dict[int, dict[str, Any]] = seen) -> None:
            # In this process, right after the point: the model is alive, the cache as it was.
            used, why = nvml.process_used_bytes()
            seen[result.batch_size] = {"nvml_process_used_bytes": used, "nvml_reason": why,
                                       "reserved_now_bytes": _reserved_bytes()}

        try:
            results = benchmark([model], device=DEVICE, batch_sizes=batches, dtype=dtype, time_budget_s=budget,
                                isolate=False, on_result=landed)
            timer = _timer_medians(model, dtype, [r for r in results if r.status == "ok"], budget, nvml)
        except Exception as exc:  # noqa: BLE001 - recorded; the next sweep runs
            check.add(label, "dnnmeter.measure.benchmark and torch.utils.benchmark run",
                      f"{type(exc).__name__}: {exc}", "fail")
            continue
        for r in results:
            _bench_items(check, r, timer.get(r.batch_size), seen.get(r.batch_size, {}))
        _empty_cache()
    if not ctx.quick:
        _cudnn_benchmark_point(ctx, budget)
    nvml.close()


def _timer_medians(model: str, dtype: str, results: Sequence[Any], budget: float,
                   nvml: NvmlDevice | None = None) -> dict[int, dict[str, Any]]:
    """torch.utils.benchmark's median on the same model and input as each point (same shape,
    dtype and cudnn.benchmark setting, inference mode), in this run, right after dnnmeter's,
    in TIMING_ROUNDS rounds interleaved with rounds of dnnmeter's own timing (the function
    its bench times with: ``time_calls`` with CUDA events, the point's settings).

    Why rounds: at small batches a GPU waits on the host's kernel launches, and on the H200
    this was first run on, host-side episodes of a fraction of a second made either timer
    read a third or more slow in one round and not the next (benchmarks/launch_jitter.py, run there:
    six interleaved rounds of resnet50 at batch 1 agreed within 2.5% but for one slow round
    of each timer). One round each compares the episodes, not the timers; the medians of
    interleaved rounds compare the timers. Warm-up as dnnmeter's (TimingSettings.warmup_s,
    then device-timed blocks until two agree); the SM clock is read around each Timer round."""
    import torch
    import torch.utils.benchmark as tub

    from dnnmeter.measure.spec import dtype_of
    from dnnmeter.measure.threads import torch_threads
    from dnnmeter.measure.timing import TimingSettings, settle, cuda_event_block, time_calls
    from dnnmeter.zoo import create_model

    def sm_clock() -> int | None:
        if nvml is None:
            return None
        value = nvml.read("nvmlDeviceGetClockInfo", getattr(nvml.nv, "NVML_CLOCK_SM", 1))
        return None if value is None else int(value)

    if not results:
        return {}
    kind = dtype_of(dtype)
    module = create_model(model, device=DEVICE).to(kind)
    medians: dict[int, dict[str, Any]] = {}
    flag = torch.backends.cudnn.benchmark
    cuda = DEVICE == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    block = cuda_event_block(torch.device(DEVICE)) if cuda else None
    try:
        torch.backends.cudnn.benchmark = bool(results[0].settings.get("cudnn_benchmark", False))
        with torch.inference_mode():
            for r in results:
                x = torch.randn(r.batch_size, *r.input_size, device=DEVICE, dtype=kind)
                t0 = time.perf_counter()
                calls = _load(module, x, 0.2)
                per_call = (time.perf_counter() - t0) / max(calls, 1)
                settled = None
                if block is not None:
                    settled = settle(lambda: module(x), block, per_call, TimingSettings().settle_max_s,
                                      time.perf_counter)[1]
                timer = tub.Timer(stmt="model(x)", globals={"model": module, "x": x},
                                  num_threads=r.threads or torch.get_num_threads())  # dnnmeter's count
                settings = TimingSettings(**(r.settings.get("timing") or {}))
                theirs: list[float] = []
                ours: list[float] = [r.latency_s_median]  # round 0: the bench point itself
                clocks: list[dict[str, int | None]] = []
                for k in range(TIMING_ROUNDS):
                    if k:
                        with torch_threads(r.threads or None):  # as the point ran, and as the Timer runs
                            ours.append(time_calls(lambda: module(x), settings, sync=sync, block=block).median_s)
                    before = sm_clock()
                    theirs.append(timer.blocked_autorange(min_run_time=max(0.2, budget)).median)
                    clocks.append({"before": before, "after": sm_clock()})
                medians[r.batch_size] = {"median_s": statistics.median(theirs), "rounds_s": theirs,
                                         "dnnmeter_median_s": statistics.median(ours), "dnnmeter_rounds_s": ours,
                                         "settled": settled, "sm_clock_mhz": clocks[0], "sm_clocks_mhz": clocks}
    finally:
        torch.backends.cudnn.benchmark = flag
        del module
    return medians


def _bench_items(check: Check, r: Any, timer: dict[str, Any] | None, seen: dict[str, Any]) -> None:
    label = f"{r.model} {r.dtype} b{r.batch_size}"
    point = {k: getattr(r, k) for k in ("model", "dtype", "batch_size", "status", "error", "latency_s_median",
                                        "latency_s_cold", "peak_memory_bytes", "power_w", "idle_power_w",
                                        "energy_j_per_image", "energy_j_per_image_above_idle", "power_source",
                                        "power_unavailable_reason", "spread", "n_samples", "iterations_per_sample")}
    point.update(cudnn_benchmark=r.settings.get("cudnn_benchmark"),
                 peak_memory_reserved_bytes=r.settings.get("peak_memory_reserved_bytes"), timer=timer, **seen)
    check.data["points"].append(point)
    if r.status != "ok":
        check.add(label, "status ok", f"{r.status}: {r.error}", "fail")
        return
    theirs = timer["median_s"] if timer else None
    ours = timer.get("dnnmeter_median_s", r.latency_s_median) if timer else r.latency_s_median
    diff = relative_difference(ours, theirs)
    rounds = (f" over {len(timer['rounds_s'])} interleaved rounds (dnnmeter {_ms_list(timer['dnnmeter_rounds_s'])}; "
              f"Timer {_ms_list(timer['rounds_s'])})") if timer and timer.get("rounds_s") else ""
    check.add(f"{label}: median latency", f"within {LATENCY_TOLERANCE:.0%} of torch.utils.benchmark's {ms(theirs)}",
              f"{ms(ours)} ({pct(diff, signed=True)}){rounds}; the bench point {ms(r.latency_s_median)}, cold call "
              f"{ms(r.latency_s_cold)}; cudnn.benchmark={point['cudnn_benchmark']}; spread {pct(r.spread)}"
              + _clocks(r.settings.get("sm_clock_mhz"), (timer or {}).get("sm_clock_mhz")),
              within(ours, theirs, LATENCY_TOLERANCE), None if timer else "no Timer median")
    reserved, used = point["peak_memory_reserved_bytes"], seen.get("nvml_process_used_bytes")
    verdict, why = memory_order(r.peak_memory_bytes, reserved, used, seen.get("nvml_reason"))
    check.add(f"{label}: peak memory", "allocated <= reserved <= NVML's process figure",
              f"{mib(r.peak_memory_bytes)} <= {mib(reserved)} <= {mib(used)}", verdict, why)
    above = r.energy_j_per_image_above_idle
    if above is None:
        check.add(f"{label}: energy per image above idle", "> 0 J (NVML)", "n/a", "skipped",
                  r.power_unavailable_reason or "no idle power")
    else:
        check.add(f"{label}: energy per image above idle", "> 0 J (NVML)",
                  f"{1e3 * above:.2f} mJ ({r.power_w:.0f} W running, {r.idle_power_w:.0f} W idle)",
                  "pass" if above > 0 else "fail")


def _ms_list(values: Sequence[float]) -> str:
    return ", ".join(f"{1e3 * v:.2f}" for v in values) + " ms"


def _clocks(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    """The SM clock around each timing (MHz, before-after), where NVML gave it."""
    def span(c: dict[str, Any] | None) -> str | None:
        if not c or c.get("before") is None:
            return None
        return f"{c['before']}-{c.get('after')}"

    a, b = span(ours), span(theirs)
    return "" if a is None and b is None else f"; SM clock MHz: dnnmeter {a or 'n/a'}, Timer {b or 'n/a'}"


def _cudnn_benchmark_point(ctx: ChildContext, budget: float) -> None:
    """One point with cudnn.benchmark on, through dnnmeter's worker code (BenchSpec), beside
    the same point with it off from the sweep above."""
    from dnnmeter.measure.point import measure_model
    from dnnmeter.measure.spec import BenchSpec
    from dnnmeter.measure.timing import TimingSettings

    model, dtype, batch = ("tiny_alexnet", "float32", 2) if REHEARSE else ("resnet50", "float16", 64)
    label = f"{model} {dtype} b{batch} with cudnn.benchmark=True"
    if not ctx.fits(10):
        ctx.check.add(label, "measured", "not measured", "skipped", ctx.no_time(10))
        return
    ctx.clock.say(f"bench: {label}")
    got: list[Any] = []
    spec = BenchSpec(model=model, device=DEVICE, batch_sizes=(batch,), dtype=dtype,
                     timing=TimingSettings(time_budget_s=budget), cudnn_benchmark=True)
    measure_model(spec, got.append)
    off = next((p for p in ctx.check.data["points"] if (p["model"], p["dtype"], p["batch_size"]) ==
                (model, dtype, batch)), None)
    on = got[0] if got else None
    if on is None or on.status != "ok":
        ctx.check.add(label, "status ok", f"{on.status}: {on.error}" if on else "no result", "fail")
        return
    recorded = on.settings.get("cudnn_benchmark") is True
    before = off.get("latency_s_median") if off else None
    ratio = f"ratio {on.latency_s_median / before:.3f}" if before else "no point with it off"
    ctx.check.add(label, "measured; the result records cudnn_benchmark=True",
                  f"{ms(on.latency_s_median)} against {ms(before)} with it off ({ratio}); "
                  f"recorded cudnn_benchmark={on.settings.get('cudnn_benchmark')}", "pass" if recorded else "fail")


class Sampler:
    """NVML on a thread at ``hz``: (time, power W, SM MHz, memory MHz, temperature C, reasons)."""

    def __init__(self, nvml: NvmlDevice, hz: float = 10.0) -> None:
        self.nvml, self.period = nvml, 1.0 / hz
        self.rows: list[tuple[float, float | None, int | None, int | None, int | None, int | None]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-check-sampler", daemon=True)

    def _sample(self) -> None:
        if not self.nvml.ok:
            return
        nv, read = self.nvml.nv, self.nvml.read
        power = read("nvmlDeviceGetPowerUsage")
        self.rows.append((time.perf_counter(), None if power is None else power / 1000.0,
                          read("nvmlDeviceGetClockInfo", nv.NVML_CLOCK_SM), read("nvmlDeviceGetClockInfo", nv.NVML_CLOCK_MEM),
                          read("nvmlDeviceGetTemperature", nv.NVML_TEMPERATURE_GPU), self.nvml.throttle_mask()))

    def _run(self) -> None:
        while not self._done.wait(self.period):
            self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._sample()

    def between(self, t0: float, t1: float) -> list[tuple[Any, ...]]:
        return [row for row in self.rows if t0 <= row[0] <= t1]


def child_power(ctx: ChildContext) -> None:
    import torch

    from dnnmeter.measure.meters import NvmlMeter, meter_for, nvml_device_for
    from dnnmeter.measure.spec import dtype_of
    from dnnmeter.zoo import create_model

    check = ctx.check
    idle_s, warm_s, window_s = (1.0, 1.0, 2.5) if ctx.quick else (2.0, 1.5, 5.0)
    if DEVICE == "cuda":
        torch.cuda.init()
    counter = meter_for(f"{DEVICE}:0" if DEVICE == "cuda" else DEVICE)  # on a GPU: NVML's energy counter
    if not counter.available:
        reason = counter.unavailable_reason or "no meter"
        for what in ("idle power", "energy counter vs sampled power", "energy per image above idle",
                     "clocks and temperature", "throttling"):
            check.add(what, "measured through NVML", "n/a", "skipped", reason)
        return
    nvml = NvmlDevice(0)
    target = nvml_device_for(0, os.environ.get("CUDA_VISIBLE_DEVICES"))
    sampled = NvmlMeter(target, sample_hz=20.0)
    sampled.uses_counter = False  # dnnmeter's fallback for GPUs without the counter: sampled power, trapezoid rule
    check.data["meters"] = {"counter": getattr(counter, "sampling", None), "sampled": sampled.sampling}
    ctx.clock.say(f"power: idle for {idle_s:.0f} s")
    idle_w = counter.idle_power_w(idle_s)
    check.add("idle power (before the load)", "measured, > 0 W", "n/a" if idle_w is None else f"{idle_w:.1f} W",
              "pass" if idle_w and idle_w > 0 else "fail")
    model, batch, dtype = ("tiny_alexnet", 2, "float32") if REHEARSE else ("resnet50", 64, "float16")
    module = create_model(model, device=DEVICE).to(dtype_of(dtype))
    x = torch.randn(batch, 3, 224, 224, device=DEVICE, dtype=dtype_of(dtype))
    ctx.clock.say(f"power: {model} {dtype} batch {batch} for {warm_s + window_s:.1f} s")
    with torch.inference_mode(), Sampler(nvml) as sampler:
        _load(module, x, warm_s)  # the power reading averages over up to a second: start the window at steady load
        t0 = time.perf_counter()
        sampled.start()
        counter.start()
        calls = _load(module, x, window_s)
        reading = counter.stop()
        low = sampled.stop()
        t1 = time.perf_counter()
        _load(module, x, 0.3)  # the sampler reads past the window's end at the same load
    counter.close()
    sampled.close()
    comparison = compare_energy(reading.energy_j, low.energy_j)
    if not getattr(counter, "uses_counter", False):
        comparison["verdict"] = "skipped"  # both sides sampled: nothing independent to compare
    own = [(row[0], row[1]) for row in sampler.rows if row[1] is not None]
    try:
        own_j = trapezoid_j(window_samples(own, t0, t1))
    except ValueError:
        own_j = None
    check.data.update(window_s=reading.duration_s, calls=calls, batch=batch, idle_w=idle_w, comparison=comparison,
                      counter=reading.__dict__, sampled_reading=low.__dict__, own_sampled_j=own_j,
                      samples=[list(row) for row in sampler.rows])
    check.add("energy counter vs sampled power", f"within {ENERGY_TOLERANCE:.0%} over the same window",
              f"counter {_j(reading.energy_j)}, sampled {_j(low.energy_j)} ({low.samples} samples, dnnmeter's "
              f"fallback) ({pct(comparison['relative_difference'], signed=True)}) over {reading.duration_s:.2f} s; "
              f"this script's 10 Hz series {_j(own_j)}", comparison["verdict"],
              None if getattr(counter, "uses_counter", False) else "this GPU has no total-energy counter")
    images = calls * batch
    above = energy_above_idle_j(reading.energy_j, reading.duration_s, idle_w, images)
    check.add("energy per image above idle", "> 0 J",
              "n/a" if above is None else f"{1e3 * above:.2f} mJ ({images} images, {reading.power_w:.0f} W mean, "
                                          f"{idle_w:.0f} W idle)",
              "skipped" if above is None else ("pass" if above > 0 else "fail"))
    limit = nvml.read("nvmlDeviceGetEnforcedPowerLimit")
    limit_w = None if limit is None else limit / 1000
    check.add("mean power under load", "above idle, at most the power limit (+5%)",
              f"{reading.power_w:.0f} W of {limit_w} W" if reading.power_w else "n/a",
              band_verdict(reading.power_w, idle_w or 0.0, (limit_w or math.inf) * 1.05))
    _clock_items(check, sampler.between(t0, t1))
    nvml.close()


def _load(module: Any, x: Any, seconds: float) -> int:
    """Synchronised calls for ``seconds``; returns how many ran."""
    import torch

    calls, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        module(x)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        calls += 1
    return calls


def _j(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} J"


def _clock_items(check: Check, rows: Sequence[tuple[Any, ...]]) -> None:
    def spread(i: int, unit: str) -> str:
        values = [row[i] for row in rows if row[i] is not None]
        if not values:
            return "n/a"
        return f"{min(values)}-{max(values)} {unit} (median {statistics.median(values):g})"

    check.add("clocks during the load", "sampled", f"SM {spread(2, 'MHz')}, memory {spread(3, 'MHz')}",
              "recorded" if rows else "skipped", None if rows else "no samples in the window")
    check.add("temperature during the load", "sampled", spread(4, "C"), "recorded" if rows else "skipped")
    masks = [row[5] for row in rows if row[5] is not None]
    if not masks:
        check.add("throttling", "flagged when a slowdown reason is set", "n/a", "skipped",
                  "NVML gives no clocks-event reasons here")
        return
    slowed = [m for m in masks if m & SLOWDOWN_MASK]
    names = sorted({n for m in slowed for n in throttle_names(m & SLOWDOWN_MASK)})
    check.data["throttle_reasons"] = sorted({n for m in masks for n in throttle_names(m)})
    check.add("throttling", "flagged when a slowdown reason is set",
              f"FLAGGED: {', '.join(names)} in {len(slowed)} of {len(masks)} samples" if slowed
              else f"none in {len(masks)} samples", "recorded")


CEILING_DTYPES_FULL = ("float32", "float16", "bfloat16", "float64")
CEILING_DTYPES_QUICK = ("float32", "float16", "bfloat16")


def child_roofline(ctx: ChildContext) -> None:
    import torch

    from dnnmeter.hardware import measure_ceilings

    check = ctx.check
    dtypes = CEILING_DTYPES_QUICK if ctx.quick else CEILING_DTYPES_FULL
    budget = 1.0 if ctx.quick else 1.5
    name = _gpu_properties()["name"]
    ceilings: dict[str, Any] = {}
    check.data["ceilings"] = {}
    for dtype in dtypes:
        if not ctx.fits(budget + 2):
            check.add(f"matmul {dtype}", "measured", "not measured", "skipped", ctx.no_time(budget + 2))
            continue
        ctx.clock.say(f"roofline: ceilings in {dtype}")
        c = measure_ceilings(DEVICE, dtype=dtype, budget_s=budget, use_cache=False)
        ceilings[dtype] = c
        check.data["ceilings"][dtype] = c.to_dict()
        sheet = "tf32" if dtype == "float32" and torch.backends.cuda.matmul.allow_tf32 else dtype
        f = datasheet_fraction(name, sheet, c.peak_flops_per_s)
        check.data["ceilings"][dtype]["datasheet"] = f
        _fraction_item(check, f"matmul {dtype} ({c.matmul_size}x{c.matmul_size})", f, 1e12, "TFLOP/s",
                       c.unavailable_reason)
    if "float32" in ceilings:
        c = ceilings["float32"]
        f = datasheet_fraction(name, "bandwidth", c.bandwidth_bytes_per_s)
        check.data["bandwidth"] = f
        _fraction_item(check, f"copy bandwidth ({mib(c.copy_bytes)}, read + write)", f, 1e12, "TB/s",
                       c.unavailable_reason)
    _place_resnet50(ctx, ceilings)


def _fraction_item(check: Check, what: str, f: dict[str, Any], scale: float, unit: str, why: str | None) -> None:
    measured = "n/a" if f["measured"] is None else f"{f['measured'] / scale:.1f} {unit}"
    if f["fraction"] is None:
        check.add(what, "a fraction of the data sheet's dense figure", measured,
                  "recorded" if f["measured"] is not None else "skipped", why or f["reason"])
        return
    low, high = CEILING_BAND
    check.add(what, f"{low:.0%}-{high:.0%} of the {f['datasheet']} sheet's dense {f['reference'] / scale:.1f} {unit}",
              f"{measured} = {pct(f['fraction'])}", band_verdict(f["fraction"], low, high))


def _bench_medians(out: Path) -> dict[tuple[str, int], float]:
    """resnet50's medians from the bench check of this run, by (dtype, batch)."""
    path = out / "checks" / "bench.json"
    if not path.exists():
        return {}
    points = json.loads(path.read_text()).get("data", {}).get("points", [])
    return {(p["dtype"], p["batch_size"]): p["latency_s_median"] for p in points
            if p.get("model") == "resnet50" and p.get("status") == "ok" and p.get("latency_s_median")}


def _place_resnet50(ctx: ChildContext, ceilings: dict[str, Any]) -> None:
    from dnnmeter.hardware import roofline

    check, medians = ctx.check, _bench_medians(ctx.out)
    placements = [(d, b) for d, b in sorted(medians) if d in ceilings] or [("float32", 1)]
    check.data["rooflines"] = []
    for dtype, batch in placements:
        c = ceilings.get(dtype)
        label = f"resnet50 {dtype} b{batch} on the roofline"
        if c is None or c.peak_flops_per_s is None:
            check.add(label, "layers placed", "no ceilings", "skipped", f"no {dtype} ceilings measured")
            continue
        r = roofline("resnet50", c, batch_size=batch, dtype_bytes=2 if dtype in ("float16", "bfloat16") else 4,
                     measure=False)
        counts, bound_s, measured = r.counts(), r.attainable_time_s, medians.get((dtype, batch))
        fraction = bound_s / measured if measured else None
        check.data["rooflines"].append({"dtype": dtype, "batch": batch, "measured_s": measured,
                                        "roofline": r.to_dict()})
        placed = f"{len(r.layers)} layers ({counts['compute']} compute-bound, {counts['memory']} memory-bound)"
        if fraction is None:
            check.add(label, "layers placed under the cuda roof", placed, "pass" if r.layers else "fail",
                      "no bench median of this run to set against the roof")
            continue
        verdict, why = ("pass" if r.layers and fraction <= ROOF_SLACK else "fail"), None
        if dtype == "float32" and _cudnn_tf32():
            # torch.mm's float32 roof is plain FP32, but cuDNN runs float32 convolutions in TF32
            verdict, why = "recorded", "cuDNN's float32 convolutions run in TF32 (cudnn.allow_tf32), above this roof"
        check.add(label, f"layers placed; roof's bound / measured latency <= {ROOF_SLACK:g}",
                  f"{placed}; bound {ms(bound_s)} vs measured {ms(measured)} = {fraction:.2f} of the roofline",
                  verdict, why)


def _cudnn_tf32() -> bool:
    import torch

    return DEVICE == "cuda" and bool(torch.backends.cudnn.allow_tf32)


def child_nccl(ctx: ChildContext) -> None:
    """With one GPU torchrun's one-process job has no process group, so nccl would go untried:
    here dnnmeter's own collectives run in a group of one on nccl (gloo in a rehearsal)."""
    import socket

    import torch
    import torch.distributed as dist
    from torch import nn

    from dnnmeter.distributed import process_group
    from dnnmeter.training.distributed import GroupSync, replica_difference

    check, backend = ctx.check, "nccl" if DEVICE == "cuda" else "gloo"
    if backend == "nccl" and not dist.is_nccl_available():
        check.add("nccl", "available in this torch", "not built in", "skipped", "torch.distributed.is_nccl_available() is False")
        return
    device = f"{DEVICE}:0" if DEVICE == "cuda" else DEVICE
    if DEVICE == "cuda":
        torch.cuda.set_device(device)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx.clock.say(f"nccl: a one-process {backend} group on {device}")
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        sync = GroupSync("ddp", None, "gpu_check", 1)
        total = sync.sum(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
        check.add("GroupSync.sum of an epoch's CPU counts", f"[1.0, 2.0, 3.0] on the CPU, reduced on {sync.device}",
                  f"{total.tolist()} on {total.device}",
                  "pass" if total.tolist() == [1.0, 2.0, 3.0] and total.device.type == "cpu" else "fail")
        slowest = sync.max(2.5)
        check.add("GroupSync.max of the epoch time", "2.5", str(slowest), "pass" if slowest == 2.5 else "fail")
        torch.manual_seed(0)
        module = nn.Linear(4, 2).to(device)
        net, optimizer = sync.wrap(module, torch.optim.SGD(module.parameters(), lr=0.1), steps_per_epoch=1)
        net(torch.randn(8, 4, device=device)).square().sum().backward()
        optimizer.step()
        diff = replica_difference(module, sync.device)
        check.add("a DDP step, then replica_difference", "0.0", f"{diff} ({type(net).__name__})",
                  "pass" if diff == 0.0 else "fail")
        with process_group(DEVICE) as group:  # evaluation's door: joins the group already started
            gathered = group.gather({"rank": group.rank})
        check.add("process_group joins the started group (evaluation's door)",
                  f"backend {backend}, device {device}, gather [{{'rank': 0}}]",
                  f"backend {group.backend}, device {group.device}, gather {gathered}",
                  "pass" if gathered == [{"rank": 0}] and group.backend == backend and group.device == device else "fail",
                  "a group of one gathers without a collective")
    finally:
        dist.destroy_process_group()


CHILDREN: dict[str, Callable[[ChildContext], None]] = {
    "device": child_device, "bench": child_bench, "power": child_power, "roofline": child_roofline,
    "nccl": child_nccl,
}


if __name__ == "__main__":
    sys.exit(main())
