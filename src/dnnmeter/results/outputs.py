"""results.json and results.csv from :class:`~dnnmeter.results.records.StudyData`, each
written whole or not at all (a reader never sees half a file)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from dnnmeter.results.records import StudyData

CSV_FIELDS = ("model", "family", "source", "params", "macs", "flops", "activations", "weight_bytes",
              "top1", "top5", "accuracy_label", "batch_size", "status", "error", "latency_s_median",
              "latency_s_per_image", "images_per_s", "peak_memory_bytes", "power_w", "energy_j_per_image",
              "stable", "device", "threads", "dtype")
STATIC_FIELDS = ("params", "macs", "flops", "activations", "weight_bytes")


def csv_rows(data: StudyData) -> list[dict[str, Any]]:
    """One row per model and bench point (one row for a model with none)."""
    rows = []
    for m in data.models:
        acc = m.accuracy
        base = {"model": m.model, "family": m.family, "source": m.source,
                **{k: None if m.analysis is None else getattr(m.analysis, k) for k in STATIC_FIELDS},
                "top1": acc and acc.top1, "top5": acc and acc.top5, "accuracy_label": acc and acc.label}
        for point in m.bench or [None]:
            rows.append({**base, **{k: None if point is None else getattr(point, k)
                                    for k in CSV_FIELDS if k not in base}})
    return rows


def write_outputs(out: Path, data: StudyData) -> tuple[Path, Path]:
    """Write DIR/results.json and DIR/results.csv; returns their paths."""
    results_json, results_csv = out / "results.json", out / "results.csv"
    atomic_write(results_json, json.dumps(data.to_dict(), indent=1))
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(csv_rows(data))
    atomic_write(results_csv, buf.getvalue())
    return results_json, results_csv


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, newline="")
    os.replace(tmp, path)
