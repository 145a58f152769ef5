"""The models study: the summary table (the seed's Table I), the fits, the Pareto front and
the best model within the budget, and the figures of Canziani et al. (:mod:`dnnmeter.report.figures`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from dnnmeter.analysis.result import flops_of
from dnnmeter.report import fits as F
from dnnmeter.report.families import colour
from dnnmeter.report.figures import render_figures
from dnnmeter.report.format import num
from dnnmeter.report.markup import cell, figure_html, head, mark, plain, row, table
from dnnmeter.report.plot import FigureResult
from dnnmeter.report.sections import Page
from dnnmeter.results.records import ModelRecord, finite


def html(page: Page) -> str:
    if not page.data.models:
        return ""
    figures = page.figures
    if figures is None:
        figures = render_figures(page.data, page.figures_dir, page.fits)
    return "".join([summary_table(page.data.models), fits_section(page.fits), pareto_section(page.fits),
                    figures_section(figures, page.base)])


# --- the summary table (the seed's Table I) ----------------------------------------------------


def batch1(m: ModelRecord, field: str, scale: float, digits: int = 3) -> str:
    """A cell for a measured value at batch size 1, or a dash saying why there is none."""
    p = m.point(1)
    if p is None:
        return cell("-", why_missing="not measured at batch size 1")
    if p.status != "ok":
        return cell("-", why_missing=f"{p.status}: {p.error or ''}")
    value = finite(getattr(p, field))
    if value is not None:
        return cell(num(value, digits, scale), "measured")
    why = p.power_unavailable_reason if field == "power_w" else None
    return cell("-", why_missing=why or f"no {field}")


def summary_row(m: ModelRecord) -> str:
    acc, a = m.accuracy, m.analysis
    label = acc.label if acc is not None and acc.label else None
    no_acc = (acc.reason if acc is not None else None) or "no accuracy for this model"
    flops = None if a is None else flops_of(a.macs) / (a.batch_size or 1)  # per image, as the seed's table
    swatch = f'<span class="swatch" style="background:{colour(m.family)}"></span>'
    return row([
        f'<td class="l">{escape(m.model)}</td>',
        f'<td class="l">{swatch}{escape(m.family or "-")}</td>',
        cell(num(finite(acc and acc.top1), 4, 100), label, no_acc),
        cell(num(finite(acc and acc.top5), 4, 100), label, no_acc),
        cell(num(finite(a and a.params), 4, 1e-6), "measured", "no analysis"),
        cell(num(flops, 4, 1e-9), "measured", "no analysis"),
        batch1(m, "power_w", 1.0),
        batch1(m, "latency_s_per_image", 1e3),
        batch1(m, "peak_memory_bytes", 1e-6),
    ])


def summary_table(models: Sequence[ModelRecord]) -> str:
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
