"""The study as one self-contained HTML file: a header, then every section of :data:`SECTIONS`
in order (tables, fits, figures, hardware, modifications, environment, method).

Everything is inside the file (figures as base64 PNG data URIs, inline CSS, one small inline
script), so it can be mailed or archived and opened offline. All text from the data is
escaped. A tiny script marks ``<body data-figures-ok="N/M">`` once the page has loaded: N of
the M images decoded, which a headless browser can check.

>>> render_all(Path("study-out"))          # doctest: +SKIP
PosixPath('study-out/report.html')
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnnmeter._serial import SerialError
from dnnmeter.errors import InvalidInputError
from dnnmeter.report import fits as F
from dnnmeter.report.format import num
from dnnmeter.report.markup import CSS, SCRIPT, plain
from dnnmeter.report.plot import FigureResult
from dnnmeter.report.sections import (
    Page,
    Section,
    compression,
    deployment,
    environment,
    hardware,
    models,
    modifications,
    prediction,
)
from dnnmeter.results.records import StudyData, finite
from dnnmeter.results.settings import StudySettings

__all__ = ["SECTIONS", "page", "render_all", "write_report"]

# The page's sections in order; a new section is one module in sections/ and one line here.
SECTIONS: tuple[Section, ...] = (
    Section("models", models.html),
    Section("prediction", prediction.html, draws=True),
    Section("hardware", hardware.html, draws=True),
    Section("modifications", modifications.html, draws=True),
    Section("compression", compression.html, draws=True),
    Section("deployment", deployment.html),  # draws its figure even beside pre-rendered fragments
    Section("runs", environment.runs_html),
    Section("environment", environment.html),
    Section("methodology", environment.methodology_html),
)


def run_line(data: StudyData) -> str:
    s = data.settings or StudySettings(models=(), device="?", batch_sizes=())
    models = list(s.models) or [m.model for m in data.models]
    parts = [
        f"{len(models)} models ({', '.join(str(m) for m in models)})",
        f"on {s.device}",
        f"batch sizes {plain(s.batch_sizes)}",
        f"{num(finite(s.time_budget_s))} s of timing per point",
        f"{'default' if s.threads is None else s.threads} thread(s)"
        + (f" ({s.threads_chosen})" if s.threads_chosen else ""),
    ]
    budgets = [f"{k} = {getattr(s, k)}" for k in ("max_latency_ms", "max_memory_mb", "max_energy_j")
               if getattr(s, k) is not None]
    parts.append("budgets: " + ", ".join(budgets) if budgets else "no budget")
    return "<p>What was run: " + escape("; ".join(parts)) + ".</p>"


def header(data: StudyData) -> str:
    n = len(data.models)
    stamp = f"dnnmeter {data.dnnmeter_version}, results of {data.created_utc}"
    if not n:  # only a modifications study in this store
        return f"<h1>dnnmeter study: operation modifications</h1><p class=\"muted\">{escape(stamp)}</p>"
    title = f"dnnmeter study: {n} models on {data.settings.device if data.settings else '?'}"
    return (f"<h1>{escape(title)}</h1><p class=\"muted\">{escape(stamp)}</p>" + run_line(data))


def body(page: Page, fragments: Sequence[str] | None = None) -> str:
    """The header and every section; ``fragments`` replace the sections that draw their own
    figures (hardware, modifications, compression), at the place of the first of them."""
    parts = [header(page.data)]
    for section in SECTIONS:
        if section.draws and fragments is not None:
            parts.extend(fragments)
            fragments = ()
            continue
        parts.append(section.html(page))
    return "".join(parts)


def page(study: Mapping[str, Any], figures: Sequence[FigureResult], fits: F.StudyFits, base: Path,
         sections: Sequence[str] = ()) -> str:
    """The page of ``study`` with its models figures drawn already and ``sections`` as the
    HTML fragments after them."""
    data = _records(study, base)
    return document(body(Page(data, fits, base / "figures", base, figures), list(sections)))


def document(body_html: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>dnnmeter study</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
            f"<body>{body_html}</body></html>\n")


def write_report(study: Mapping[str, Any], figures: Sequence[FigureResult], fits: F.StudyFits | None,
                 out: Path, sections: Sequence[str] = ()) -> Path:
    """Write the self-contained report of ``study`` to ``out``; returns ``out``. ``sections``
    are HTML fragments placed after the models study's figures."""
    return _write(out, page(study, figures, fits or F.compute_fits(_records(study, out.parent)), out.parent, sections))


def render_all(study_dir: Path) -> Path:
    """Read DIR/results.json, draw DIR/figures/*.png|svg, write DIR/report.html; returns its path."""
    study_dir = Path(study_dir)
    data = _records(_read(study_dir / "results.json"), study_dir)
    text = document(body(Page(data, F.compute_fits(data), study_dir / "figures", study_dir)))
    return _write(study_dir / "report.html", text)


def _read(source: Path) -> dict[str, Any]:
    try:
        return json.loads(source.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except FileNotFoundError:
        raise InvalidInputError(f"no {source}; run `dnnmeter study --out {source.parent}` first") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _records(study: Mapping[str, Any], study_dir: Path) -> StudyData:
    """``study`` as typed records: every key the report reads is there (missing optional ones
    at their defaults), and a file that does not fit is refused in one line."""
    try:
        return StudyData.from_dict(study)
    except SerialError as exc:
        raise InvalidInputError(f"{study_dir / 'results.json'} does not fit this dnnmeter's results ({exc}); "
                                f"write it again from the store: dnnmeter report --out {study_dir}") from None


def _write(out: Path, text: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a report
    return out
