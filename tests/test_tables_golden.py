"""The terminal tables of every command, from fixed inputs, against golden files.

Each table is drawn from a record built here (or from a static count, which is exact), never
from a measurement, so the text only changes when the table does. ``pytest --update-golden``
rewrites them; review the diff. The study's own tables are in test_report_golden.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from rich.console import Console

from dnnmeter.accuracy.result import ClassAccuracy, EvalResult
from dnnmeter.measure.result import BenchResult
from dnnmeter.report import text, train_text
from dnnmeter.training.result import EpochRecord, TrainResult


def rendered(*shown: Any | Iterable[Any]) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=160, color_system=None)
    for item in shown:
        for table in item if isinstance(item, list) else [item]:
            console.print(table)
    return buf.getvalue()


def test_analyze_tables_of_a_seed_model(golden) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.analysis import analyze

    a = analyze("tiny_alexnet_dw_res")
    golden("analyze_tiny_alexnet_dw_res.txt",
           rendered(text.layers_table(a), text.kinds_table(a), text.summary_table([a]), text.conv_fc_table([a]))
           + (text.unsupported_text(a) or "no unsupported operations\n"))


def bench_points() -> list[BenchResult]:
    base = dict(model="tiny_alexnet", device="cpu", input_size=(3, 224, 224), dtype="float32", threads=4)
    ok = BenchResult(**base, batch_size=1, latency_s_median=0.0123, latency_s_p10=0.0119,  # type: ignore[arg-type]
                     latency_s_p90=0.0131, latency_s_cold=0.05, samples_s=[0.0119, 0.0123, 0.0131],
                     latency_s_per_image=0.0123, images_per_s=81.3, peak_memory_bytes=123_456_789,
                     memory_kind="process RSS growth", power_unavailable_reason="no RAPL domains under /sys/class/powercap",
                     stable=True, spread=0.04, settings={"threads_chosen": "4 of 8 cores"})
    metered = BenchResult(**base, batch_size=8, latency_s_median=0.0640, latency_s_per_image=0.008,  # type: ignore[arg-type]
                          images_per_s=125.0, peak_memory_bytes=456_000_000, power_w=35.25, idle_power_w=8.0,
                          energy_j_per_image=0.282, power_source="rapl:package-0", samples_s=[0.064] * 12,
                          stable=False, spread=0.12)
    oom = BenchResult(**base, batch_size=64, status="oom", error="out of memory at batch size 64")  # type: ignore[arg-type]
    return [ok, metered, oom]


def test_bench_table_and_csv_of_fixed_points(golden) -> None:  # type: ignore[no-untyped-def]
    points = bench_points()
    golden("bench_fixed.txt", rendered(text.bench_tables(points)) + text.bench_csv(points))


def test_hardware_tables_of_alexnet_2012(golden) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.hardware import estimate_hardware, original_alexnet_layers, roofline
    from dnnmeter.hardware.ceilings import Ceilings
    from dnnmeter.report.hardware_text import hardware_tables

    ceilings = Ceilings(device="cpu", peak_flops_per_s=100e9, bandwidth_bytes_per_s=10e9, label="published",
                        flops_method="the vendor's sheet", bandwidth_method="the vendor's sheet", threads=4)
    roof = roofline(original_alexnet_layers(), ceilings, measure=False).record()
    golden("hardware_alexnet_2012.txt",
           rendered(list(hardware_tables(estimate_hardware(original_alexnet_layers()).record(), roof))))


def classes() -> list[ClassAccuracy]:
    counts = [(9, 10), (7, 10), (10, 10), (0, 0), (3, 12), (5, 5), (6, 9)]
    return [ClassAccuracy(i, f"n0{i}", f"class {i}" if i % 2 else None, c, n, c / n if n else None)
            for i, (c, n) in enumerate(counts)]


def test_eval_tables_of_a_fixed_result(golden) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.accuracy.result import best_and_worst

    rows = classes()
    best, worst = best_and_worst(rows, 3)
    result = EvalResult(model="resnet18", data="/data/val", layout="imagefolder", n=56, top1=40 / 56,
                        top5=50 / 56, top5_k=5, per_class=rows, best_classes=best, worst_classes=worst,
                        images_per_s=1234.5, seconds=0.05, skipped=[{"path": "x.jpg", "reason": "truncated"}],
                        weights="default")
    golden("eval_fixed.txt", rendered(text.eval_tables(result)))


def train_run(model: str, seconds: float, distributed: dict[str, Any] | None = None) -> TrainResult:
    from dnnmeter.accuracy.result import best_and_worst

    history = [EpochRecord(1, 1.9876, 0.35, 1.5, 0.5, 2.5, 0.25), EpochRecord(2, 1.2, 0.6, 1.1, 0.7125, 2.25, 0.25)]
    best, worst = best_and_worst(classes(), 3)
    return TrainResult(model=model, data="digits", layout="digits",
                       settings={"batch_size": 32, "lr": 0.05, "augment": ["flip", "noise"]}, history=history,
                       train_accuracy=0.6, val_accuracy=0.7125, val_loss=1.1, per_class=classes(),
                       best_classes=best, worst_classes=worst, checkpoint=None, curves=None, history_file=None,
                       seconds=seconds, distributed=distributed, environment={"torch_threads": 4})


def test_train_tables_of_fixed_runs(golden) -> None:  # type: ignore[no-untyped-def]
    single = train_run("tiny_alexnet", 6.0)
    ddp = train_run("tiny_alexnet", 3.5, {"world_size": 2, "strategy": "ddp", "threads_per_process": 2})
    golden("train_fixed.txt", rendered(train_text.history_table(single), train_text.classes_table(single),
                                       train_text.history_table(ddp), train_text.comparison_table([single, ddp])))


def test_modify_tables_of_a_seed_model(golden) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.transforms import compare
    from dnnmeter.report.modify_text import modify_tables

    result = compare("tiny_alexnet", ["depthwise-separable", "residual"], input_size="3x32x32")
    golden("modify_tiny_alexnet.txt", rendered(modify_tables(result)))
