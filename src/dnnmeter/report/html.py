"""The study as one self-contained HTML file: tables, fits, figures, environment, method.

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

from dnnmeter.errors import InvalidInputError
from dnnmeter.report import fits as F
from dnnmeter.report.families import colour
from dnnmeter.report.figures import render_figures
from dnnmeter.report.format import num
from dnnmeter.report.markup import CSS, SCRIPT, cell, figure_html, head, mark, plain, row, table
from dnnmeter.report.plot import FigureResult

Model = Mapping[str, Any]


# --- header: what was run ----------------------------------------------------------------------


def run_line(study: Mapping[str, Any]) -> str:
    s = study.get("settings") or {}
    models = s.get("models") or [F.name_of(m) for m in study.get("models") or []]
    threads = s.get("threads")
    parts = [
        f"{len(models)} models ({', '.join(str(m) for m in models)})",
        f"on {s.get('device', '?')}",
        f"batch sizes {plain(s.get('batch_sizes'))}",
        f"{num(F.number(s.get('time_budget_s')))} s of timing per point",
        f"{'default' if threads is None else threads} thread(s)"
        + (f" ({s['threads_chosen']})" if s.get("threads_chosen") else ""),
    ]
    budgets = [f"{k} = {s[k]}" for k in ("max_latency_ms", "max_memory_mb", "max_energy_j") if s.get(k) is not None]
    parts.append("budgets: " + ", ".join(budgets) if budgets else "no budget")
    return "<p>What was run: " + escape("; ".join(parts)) + ".</p>"


def header(study: Mapping[str, Any]) -> str:
    s = study.get("settings") or {}
    n = len(study.get("models") or [])
    stamp = f"dnnmeter {study.get('dnnmeter_version', '?')}, results of {study.get('created_utc', '?')}"
    if not n:  # only a modifications study in this store
        return f"<h1>dnnmeter study: operation modifications</h1><p class=\"muted\">{escape(stamp)}</p>"
    title = f"dnnmeter study: {n} models on {s.get('device', '?')}"
    return (f"<h1>{escape(title)}</h1><p class=\"muted\">{escape(stamp)}</p>" + run_line(study))


# --- the summary table (the seed's Table I) ----------------------------------------------------


def batch1(m: Model, key: str, scale: float, digits: int = 3) -> str:
    """A cell for a measured value at batch size 1, or a dash saying why there is none."""
    p = F.bench_point(m, 1)
    value = F.measured(m, 1, key)
    if value is not None:
        return cell(num(value, digits, scale), "measured")
    if p is None:
        return cell("-", why_missing="not measured at batch size 1")
    if p.get("status") != "ok":
        return cell("-", why_missing=f"{p.get('status')}: {p.get('error') or ''}")
    why = p.get("power_unavailable_reason") if key == "power_w" else None
    return cell("-", why_missing=why or f"no {key}")


def summary_row(m: Model) -> str:
    label = F.accuracy_label(m)
    no_acc = "no accuracy for this model"
    macs = F.macs_per_image(m)
    swatch = f'<span class="swatch" style="background:{colour(m.get("family"))}"></span>'
    return row([
        f'<td class="l">{escape(F.name_of(m))}</td>',
        f'<td class="l">{swatch}{escape(str(m.get("family") or "-"))}</td>',
        cell(num(F.top1(m), 4, 100), label, no_acc),
        cell(num(F.top5(m), 4, 100), label, no_acc),
        cell(num(F.analysis_value(m, "params"), 4, 1e-6), "measured", "no analysis"),
        cell(num(None if macs is None else 2 * macs, 4, 1e-9), "measured", "no analysis"),
        batch1(m, "power_w", 1.0),
        batch1(m, "latency_s_per_image", 1e3),
        batch1(m, "peak_memory_bytes", 1e-6),
    ])


def summary_table(study: Mapping[str, Any]) -> str:
    models = study.get("models") or []
    hdr = head("network", "family", "top-1 (%)", "top-5 (%)", "parameters (M)", "GFLOPs (2 x GMACs)",
               "power (W)", "ms per image", "peak memory (MB)", left=2)
    legend = ("<p class=\"muted\">Per image; time, power and memory at batch size 1. Sources: "
              f"{mark('measured')} measured in this run (parameters and operations counted by dnnmeter; "
              f"time, memory and power measured on this machine), {mark('published')} published "
              f"(e.g. torchvision's weights metadata), {mark('estimated')} estimated. "
              "A dash has a tooltip saying why the value is missing.</p>")
    return "<h2>Summary</h2>" + table(hdr, [summary_row(m) for m in models]) + legend


# --- the fits ----------------------------------------------------------------------------------


def fit_row(relation: str, form: str, numbers: str, r2: float | None, n: int, reason: str | None) -> str:
    if reason:
        return row([f'<td class="l">{escape(relation)}</td>', f'<td class="l">{escape(form)}</td>',
                    f'<td class="l na" colspan="3">not fitted: {escape(reason)}</td>'])
    return row([f'<td class="l">{escape(relation)}</td>', f'<td class="l">{escape(form)}</td>',
                f'<td class="l">{escape(numbers)}</td>', f"<td>{num(r2, 4)}</td>", f"<td>{n}</td>"])


def ops_time_rows(fits: F.StudyFits) -> list[str]:
    rows = []
    for f in fits.ops_time:
        lf = f.fit
        numbers = "" if not lf.ok else (f"a = {num(lf.slope, 4, 1e12)} ms per GMAC, "
                                        f"b = {num(lf.intercept, 3, 1e3)} ms")
        rows.append(fit_row(f"operations against time, batch size {f.batch_size}",
                            "time per image = a x GMACs + b", numbers, lf.r2, lf.n, lf.reason))
    return rows


def upper_bound_row(fits: F.StudyFits) -> str:
    ub = fits.upper_bound
    lf = ub.fit
    numbers = "" if not lf.ok else (
        f"a = {num(lf.intercept, 4, 100)} %, s = {num(lf.slope, 3, 100)} % per image/s "
        f"(least squares through the frontier {', '.join(ub.frontier)}, raised by {num(ub.lift, 3, 100)} %)")
    return fit_row("accuracy against throughput, batch size 1 (upper bound)",
                   "top-1 <= a + s x images/s", numbers, lf.r2, lf.n, lf.reason)


def hyperbola_row(fits: F.StudyFits) -> str:
    h = fits.hyperbola
    numbers = "" if h.reason else f"a = {num(h.a, 4, 100)} %, b = {num(h.b, 3, 1e5)} % x ms"
    if h.b is not None and h.b <= 0:
        numbers += " (b <= 0: here the slower models are not the more accurate, so no hyperbola)"
    return fit_row("accuracy against time, batch size 1", "top-1 = a - b / (ms per image)", numbers,
                   h.r2, h.n, h.reason)


def memory_row(fits: F.StudyFits) -> str:
    mf = fits.memory
    numbers = "" if mf.reason else (f"floor = {num(mf.floor_bytes, 3, 1e-6)} MB, slope = {num(mf.slope, 3)} "
                                    "(the paper: 200 MB and 1.30 on its board)")
    return fit_row("memory against parameters, batch size 1", "peak memory = floor + slope x weight MB",
                   numbers, mf.fit.r2, mf.fit.n, mf.reason)


def power_rows(fits: F.StudyFits) -> list[str]:
    metered = [p for p in fits.power if p.mean_w is not None]
    if not metered:
        reasons = sorted({p.reason for p in fits.power if p.reason})
        return [fit_row("power against batch size", "mean power per model", "", None, 0,
                        "no power readings: " + "; ".join(reasons) if reasons else "no models")]
    text = "; ".join(f"{p.model} {num(p.mean_w, 3)} W (over batch sizes {plain(p.batch_sizes)})" for p in metered)
    return [fit_row("power against batch size", "mean power per model", text, None, len(metered), None)]


def density_text(fits: F.StudyFits) -> str:
    rows = sorted((d for d in fits.density if d.top1_per_mparam is not None),
                  key=lambda d: -(d.top1_per_mparam or 0.0))
    if not rows:
        return "<p>Information density: no model has both a top-1 figure and a parameter count.</p>"
    body = "; ".join(f"{d.model} {num(d.top1_per_mparam, 3, 100)}" for d in rows)
    return f"<p>Information density (top-1 % per million parameters), highest first: {escape(body)}.</p>"


def fits_section(fits: F.StudyFits) -> str:
    hdr = head("relation", "form", "fitted values", "R\u00b2", "n", left=3)
    rows = [*ops_time_rows(fits), upper_bound_row(fits), hyperbola_row(fits), memory_row(fits), *power_rows(fits)]
    note = ("<p class=\"muted\">R\u00b2 of the upper bound is that of the least-squares line through the "
            "frontier, before it is raised to bound every model. Methods: docs/report.md.</p>")
    return "<h2>Fits</h2>" + table(hdr, rows) + note + density_text(fits)


# --- the Pareto front and the best model within the budget -------------------------------------


def reasons_table(first: str, reasons: Mapping[str, str]) -> str:
    rows = [row([f'<td class="l">{escape(k)}</td>', f'<td class="l">{escape(v)}</td>']) for k, v in reasons.items()]
    return table(head(first, "why", left=2), rows) if rows else ""


def pareto_section(fits: F.StudyFits) -> str:
    front = fits.pareto
    out = ["<h2>Accuracy against time: the Pareto front</h2>"]
    if front.reason:
        out.append(f"<p>No front: {escape(front.reason)}.</p>")
    else:
        members = ", ".join(f"{p.model} ({num(p.top1, 4, 100)} %, {num(p.latency_s, 3, 1e3)} ms)"
                            for p in front.members)
        out.append(f"<p>At batch size {front.batch_size}, no other model is both more accurate and faster "
                   f"than: {escape(members)}.</p>")
    out.append(reasons_table("not on the front", {**front.dominated, **front.missing}))
    out.append(choice_text(fits.choice))
    return "".join(out)


def choice_text(choice: F.Choice | None) -> str:
    if choice is None:
        return ("<p>No budget was given (--max-latency-ms, --max-memory-mb, --max-energy-j), so no single model is "
                "chosen: for any budget the best model is on the front above.</p>")
    b = choice.budget
    limits = [f"{name} {value:g} {unit}" for name, value, unit in (
        ("latency at most", b.max_latency_ms, "ms"), ("memory at most", b.max_memory_mb, "MB"),
        ("energy at most", b.max_energy_j, "J per image")) if value is not None]
    intro = f"<h3>Best within the budget</h3><p>Budget at batch size {b.batch_size}: {escape(', '.join(limits))}. "
    if choice.model is None:
        verdict = f"{escape(choice.reason or 'no model fits')}.</p>"
    else:
        verdict = (f"The most accurate model that fits is <b>{escape(choice.model)}</b>: top-1 "
                   f"{num(choice.top1, 4, 100)} %, {num(choice.latency_s, 3, 1e3)} ms per call, "
                   f"{num(choice.peak_memory_bytes, 3, 1e-6)} MB peak memory.</p>")
    return intro + verdict + reasons_table("model", choice.not_chosen)


# --- figures -----------------------------------------------------------------------------------


def figures_section(figures: Sequence[FigureResult], base: Path) -> str:
    return "<h2>Figures</h2>" + "".join(figure_html(f, base) for f in figures)


# --- environment and method --------------------------------------------------------------------


def environment_section(study: Mapping[str, Any]) -> str:
    env = study.get("environment") or {}
    if not env:
        return "<h2>Environment</h2><p>No environment was recorded.</p>"
    rows = [row([f'<td class="l">{escape(str(k))}</td>', f'<td class="l">{escape(plain(v))}</td>'])
            for k, v in env.items()]
    return "<h2>Environment</h2>" + table(head("field", "value", left=2), rows)


def runs_section(study: Mapping[str, Any]) -> str:
    """Time per image at batch 1 in every run configuration the store holds (runs and machines)."""
    runs = study.get("runs") or []
    if len(runs) < 2:
        return ""
    names = [m["model"] for m in study.get("models", [])]
    header_cells = "".join(f'<th class="l">{escape(r["machine"] or "?")}<br>{escape(str(r["device"]))}, '
                           f'{escape(str(r["threads"]))} thread(s), {escape(str(r["first_utc"]))}</th>' for r in runs)
    rows = []
    for name in names:
        cells = [f'<td class="l">{escape(name)}</td>']
        for r in runs:
            value = (r["latency_s_per_image"].get(name) or {}).get("1")
            cells.append(cell(num(value, 2, 1e3)) if value is not None else '<td class="na">-</td>')
        rows.append(row(cells))
    return ("<h2>Runs in this store</h2><p>Milliseconds per image at batch size 1, median, for every "
            "machine and setting that measured these models into this store.</p>"
            + table(f'<tr><th class="l">network</th>{header_cells}</tr>', rows))


def distinct(study: Mapping[str, Any], key: str) -> list[str]:
    values = (p.get(key) for m in study.get("models") or [] for p in m.get("bench") or [])
    return list(dict.fromkeys(str(v) for v in values if v))


def methodology_section(study: Mapping[str, Any]) -> str:
    sources = distinct(study, "power_source")
    power = ("power source: " + ", ".join(sources)) if sources else \
        ("no power was measured: " + "; ".join(distinct(study, "power_unavailable_reason") or ["no meter"]))
    items = [
        "MAC = one multiply-accumulate. FLOPs = 2 x MACs + element-wise FLOPs (norm, activation, pooling, add); "
        "the table's GFLOPs are 2 x GMACs, like the seed study's. torchvision's published \"GFLOPS\" are GMACs.",
        "Operations are counted per image on the meta device at the model's input size, batch size 1.",
        "Latency is the median of the timed samples at each batch size (p10 and p90 are in results.json); "
        "time per image is that median divided by the batch size; images/s is its inverse.",
        "Memory: " + ("; ".join(distinct(study, "memory_kind")) or "not measured") + ".",
        power[0].upper() + power[1:] + ". A value that could not be measured is shown as a dash, never 0.",
        "Accuracy is a fraction shown in %; each figure is marked measured, published or estimated.",
        "A point whose run failed (out of memory, error) is left out of the fits and figures and named in the "
        "figure's caption.",
    ]
    return "<h2>Methodology and conventions</h2><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


# --- the page ----------------------------------------------------------------------------------


def page(study: Mapping[str, Any], figures: Sequence[FigureResult], fits: F.StudyFits, base: Path,
         sections: Sequence[str] = ()) -> str:
    models_part = [summary_table(study), fits_section(fits), pareto_section(fits), figures_section(figures, base)]
    body = "".join([header(study), *(models_part if study.get("models") else []), *sections,
                    runs_section(study), environment_section(study), methodology_section(study)])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>dnnmeter study</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
            f"<body>{body}</body></html>\n")


def write_report(study: Mapping[str, Any], figures: Sequence[FigureResult], fits: F.StudyFits | None,
                 out: Path, sections: Sequence[str] = ()) -> Path:
    """Write the self-contained report of ``study`` to ``out``; returns ``out``. ``sections``
    are HTML fragments placed after the models study's figures."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = page(study, figures, fits or F.compute_fits(study), out.parent, sections)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a report
    return out


def render_all(study_dir: Path) -> Path:
    """Read DIR/results.json, draw DIR/figures/*.png|svg, write DIR/report.html; returns its path."""
    study_dir = Path(study_dir)
    source = study_dir / "results.json"
    try:
        study = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"no {source}; run `dnnmeter study --out {study_dir}` first") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    from dnnmeter.report.sections import extra_sections

    fits = F.compute_fits(study)
    figures = render_figures(study, study_dir / "figures", fits) if study.get("models") else []
    sections = extra_sections(study, study_dir / "figures", study_dir)
    return write_report(study, figures, fits, study_dir / "report.html", sections)
