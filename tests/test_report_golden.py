"""The report's text from a fixed study, against a golden file.

The study is ``fixtures/study_results.json.gz`` (see tests/test_results.py): two test
networks and resnet18 with analysis, bench, hardware and roofline, and a one-epoch
modifications study with its compression sweeps. Figures are left out of the comparison
(their pixels are matplotlib's business); their names, captions and skip reasons stay in.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

from dnnmeter.report.html import render_all

FIXTURE = Path(__file__).parent / "fixtures" / "study_results.json.gz"


def report_text(out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(FIXTURE, "rb") as src, (out / "results.json").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    html = render_all(out).read_text(encoding="utf-8")
    html = re.sub(r'src="data:image/[a-z+]+;base64,[^"]*"', 'src="data:..."', html)
    return re.sub(r"(<(?:/?(?:table|tr|h[1-6]|p|figure|section|div|ul|li)\b[^>]*)>)", r"\1>\n", html).replace(">>\n", ">\n")


def test_the_report_of_a_fixed_study_is_unchanged(tmp_path: Path, golden) -> None:  # type: ignore[no-untyped-def]
    golden("report_fixture.html.txt", report_text(tmp_path / "study"))


def test_the_terminal_tables_of_a_fixed_study_are_unchanged(golden) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    from rich.console import Console

    from dnnmeter.report import text, train_text
    from dnnmeter.report.compression_text import prune_notes, prune_table, quant_notes, quant_table
    from dnnmeter.hardware.records import HardwareRecord
    from dnnmeter.hardware.roofline import RooflineRecord
    from dnnmeter.report.hardware_text import hardware_tables
    from dnnmeter.results.records import CompressionData, VariantRecord

    with gzip.open(FIXTURE, "rt") as f:
        study = json.load(f)
    buf = io.StringIO()
    console = Console(file=buf, width=200, color_system=None)
    sweeps = CompressionData.from_dict(study["modifications"]["compression"])
    for shown in (quant_table(sweeps.quantization), quant_notes(sweeps.quantization),
                  prune_table(sweeps.pruning), prune_notes(sweeps.pruning)):
        console.print(shown)
    for m in study["models"]:
        for table in hardware_tables(HardwareRecord.from_dict(m["hardware"]), RooflineRecord.from_dict(m["roofline"])):
            console.print(table)
    variants = [VariantRecord.from_dict(v) for v in study["modifications"]["variants"]]
    console.print(text.modifications_table(variants))
    console.print(train_text.comparison_table(variants))
    for v in variants:
        console.print(train_text.history_table(v))
    golden("tables_fixture.txt", buf.getvalue())
