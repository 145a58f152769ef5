"""Predicted latency (issue 14): the study's models predicted against measured, beside a FLOPs
line, and the torchvision zoo's predicted accuracy/latency front on this machine.

Every predicted figure is marked ``predicted``; the calibration used is named, with whether it
was the study's short one. Points used to calibrate are never scored or drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from dnnmeter.report.format import num, pct
from dnnmeter.report.markup import cell, figure_html, head, mark, row, table
from dnnmeter.report.plot import figure_result
from dnnmeter.report.prediction_figures import draw_predicted_front, draw_predicted_vs_measured
from dnnmeter.report.prediction_scores import Agreement, agreement, predicted_front, scored
from dnnmeter.report.sections import Page
from dnnmeter.results.records import CalibrationRecord, PredictedPoint, PredictionsData

FLOPS_LINE = "t = c x FLOPs, c fitted through the origin on the calibration networks' measured latencies"


def html(page: Page) -> str:
    pred = page.data.predictions
    if pred is None:
        return ""
    if pred.reason or pred.calibration is None:
        return ('<h2 id="prediction">Predicted against measured</h2>'
                f"<p>Latency was not predicted: {escape(pred.reason or 'no calibration')}.</p>" + _notes(pred))
    return (measured_section(pred, pred.calibration, page) + _notes(pred)
            + zoo_section(pred, pred.calibration, page))


def _notes(pred: PredictionsData) -> str:
    return "".join(f'<p class="muted">Note: {escape(n)}.</p>' for n in pred.notes)


def calibration_text(c: CalibrationRecord) -> str:
    """Which calibration predicted, and how to predict with a better one."""
    command = "dnnmeter calibrate" + (f" --device {c.device}" if c.device not in (None, "cpu") else "") + (
        f" --threads {c.threads}" if c.threads is not None else "") + (
        f" --dtype {c.dtype}" if c.dtype not in (None, "float32") else "")
    kernels = f"{c.kernels} kernels" if c.kernels is not None else "kernels"
    nets = ", ".join(c.networks) or "none"
    if c.short:
        took = f", in {num(c.elapsed_s, 2)} s" if c.elapsed_s is not None else ""
        text = (f"Calibration: <b>the study's short one</b>, made because this machine had none for "
                f"{escape(str(c.device))}, {escape(str(c.threads))} thread(s), {escape(str(c.dtype))}: "
                f"at most {c.per_group} shapes per kernel group within {num(c.budget_s, 3, 1 / 60)} min "
                f"({escape(kernels)} and the calibration networks{escape(took)}), against about 1,700 kernels for a "
                f"full one (4 min on the 2-core machine of BENCHMARKS.md; at most 15 by default). For a full "
                f"calibration run <code>{escape(command)}</code>, then this "
                "study again: it finds that calibration and predicts again with it (nothing measured is redone).")
    else:
        grid = f"; at most {c.per_group} shapes per kernel group" if c.per_group else ""
        text = (f"Calibration: this machine's, made by <code>dnnmeter calibrate</code> on "
                f"{escape(str(c.created_utc))} ({escape(kernels)} and the calibration networks{escape(grid)}).")
    if c.heap is not None:
        text += f" Its kernels were timed with the {escape(c.heap)} C heap (<code>--heap</code>, docs/bench.md)."
    return (f"<p>{text} Kept at <code>{escape(str(c.path))}</code>. The calibration timed single kernels and "
            f"whole calibration networks built inside dnnmeter ({escape(nets)}, in no zoo); a model measured to "
            "calibrate would be left out of every score and figure below.</p>")


def agreement_row(method: str, a: Agreement, reason: str | None = None) -> str:
    if reason:
        return row([f'<td class="l">{escape(method)}</td>', f'<td class="l na" colspan="6">{escape(reason)}</td>'])
    return row([f'<td class="l">{escape(method)}</td>', cell(str(a.n)), cell(pct(a.within_10pct, 0)),
                cell(pct(a.within_20pct, 0)), cell(pct(a.median_abs_error, 1)), cell(num(a.spearman, 3)),
                cell(num(a.median_ratio, 3))])


def scores_table(points: Sequence[PredictedPoint], c: CalibrationRecord) -> str:
    ours, line = agreement(*scored(points)), agreement(*scored(points, baseline=True))
    hdr = head("method", "points", "within ±10%", "within ±20%", "median abs error", "Spearman",
               "median predicted / measured")
    no_line = None if c.flops_line_s_per_flop is not None else f"no FLOPs line: {c.flops_line_reason or 'not fitted'}"
    return table(hdr, [agreement_row("dnnmeter predict", ours),
                       agreement_row(f"FLOPs line ({FLOPS_LINE})", line, no_line)])


def _error(p: PredictedPoint, predicted: float | None) -> str:
    if predicted is None or not p.measured_latency_s:
        return cell("-", why_missing="no measurement or no prediction")
    return cell(pct(predicted / p.measured_latency_s - 1.0, 0, signed=True))


def points_table(points: Sequence[PredictedPoint]) -> str:
    hdr = head("model", "batch", "measured (ms)", "predicted (ms)", "interval (ms)", "error",
               "FLOPs line (ms)", "error", "note", left=1)
    rows = []
    for p in points:
        interval = (f"{num(p.latency_s_low, 3, 1e3)} - {num(p.latency_s_high, 3, 1e3)}"
                    if p.latency_s_low is not None and p.latency_s_high is not None else "-")
        note = p.error or ("used to calibrate: not scored" if p.used_to_calibrate else "; ".join(p.notes))
        rows.append(row([
            f'<td class="l">{escape(p.model)}</td>', cell(str(p.batch_size)),
            cell(num(p.measured_latency_s, 3, 1e3), "measured", "no successful bench point"),
            cell(num(p.latency_s, 3, 1e3), "predicted", p.error or "not predicted"),
            cell(interval, "predicted", "no interval"), _error(p, p.latency_s),
            cell(num(p.flops_line_latency_s, 3, 1e3), "estimated", "no FLOPs line"),
            _error(p, p.flops_line_latency_s), f'<td class="l">{escape(note)}</td>',
        ]))  # fmt: skip
    return table(hdr, rows)


def measured_section(pred: PredictionsData, c: CalibrationRecord, page: Page) -> str:
    points = pred.study
    parts = ['<h2 id="prediction">Predicted against measured</h2>', calibration_text(c)]
    if not points:
        return "".join(parts) + "<p>None of the study's models was predicted.</p>"
    measured, _ = scored(points)
    excluded = sorted({p.model for p in points if p.used_to_calibrate})
    unmeasured = sum(1 for p in points if not p.used_to_calibrate and not p.measured_latency_s)
    models = len({p.model for p in points if not p.used_to_calibrate})
    parts.append(
        f"<p>Each of the study's models at each of its batch sizes was predicted {mark('predicted')} from the "
        "calibration without being run, and set against its <code>dnnmeter bench</code> median "
        f"{mark('measured')} from this study. Scored: {len(measured)} points of {models} models, none used to "
        f"calibrate (left out: {escape(', '.join(excluded)) or 'none, no study model was'})"
        + (f"; {unmeasured} points without a successful measurement are not scored" if unmeasured else "")
        + ". Error is predicted / measured - 1. The baseline is a FLOPs line "
        f"{mark('estimated')} ({escape(FLOPS_LINE)}: the same calibration data, so neither method saw a study "
        "model). The study's own operations-against-time fit (Fits, above) is fitted on the measured points "
        "themselves, so it is no baseline for prediction. The prediction is for a quiet machine (with one thread "
        "the calibration counts each kernel's CPU time, docs/predict.md); on a machine busy with other work "
        "bench measures more, and every point falls below y = x alike: the median of predicted / measured "
        "shows such an offset, which leaves the ranking (Spearman) intact.</p>")
    parts.append(scores_table(points, c))
    drawn = figure_result(draw_predicted_vs_measured(points), page.figures_dir / "predicted_vs_measured",
                          "Predicted against measured latency",
                          "Each point is one model at one batch size: measured latency per batch (x) against "
                          "predicted (y), log-log; the dark band is ±10% around predicted = measured, the light one ±20%; circles are "
                          "dnnmeter's prediction (bar: its interval), crosses the FLOPs line")
    parts.append(figure_html(drawn, page.base))
    parts.append("<details><summary>Every point</summary>" + points_table(points) + "</details>")
    return "".join(parts)


def zoo_section(pred: PredictionsData, c: CalibrationRecord, page: Page) -> str:
    points = pred.zoo
    if not points:
        return ""
    usable = [(p.model, p.latency_s, p.published_top1) for p in points
              if p.latency_s is not None and p.published_top1 is not None]
    front = predicted_front(usable)  # type: ignore[arg-type]
    failed = [p for p in points if p.error]
    parts = ['<h2 id="predicted-front">Predicted Pareto front of the torchvision zoo</h2>',
             f"<p>All {len(points)} torchvision models predicted {mark('predicted')} at batch size 1 on this machine "
             f"({escape(str(c.device))}, {escape(str(c.threads))} thread(s), {escape(str(c.dtype))}), none of them "
             f"run: latency is predicted, top-1 is torchvision's published figure {mark('published')} (its weight "
             f"metadata, offline). On the front, no other model is both more accurate and predicted faster. "
             f"{len(usable)} models have both figures.</p>"]
    drawn = figure_result(draw_predicted_front(points, front), page.figures_dir / "predicted_front",
                          "Predicted accuracy against latency of the torchvision zoo",
                          "Every point is predicted, not measured: predicted latency at batch size 1 (x, log) "
                          "against published top-1 (y); the red step is the predicted front")
    parts.append(figure_html(drawn, page.base))
    by_name = {p.model: p for p in points}
    rows = [row([f'<td class="l">{escape(f.model)}</td>', cell(num(f.latency_s, 3, 1e3), "predicted"),
                 cell(f"{num(by_name[f.model].latency_s_low, 3, 1e3)} - {num(by_name[f.model].latency_s_high, 3, 1e3)}",
                      "predicted"),
                 cell(num(f.top1, 4, 100), "published"),
                 cell(num(by_name[f.model].measured_latency_s, 3, 1e3), "measured", "not in this study")])
            for f in front]
    parts.append(table(head("model on the predicted front", "predicted (ms)", "interval (ms)", "top-1 (%)",
                            "measured here (ms)"), rows))
    if failed:
        parts.append("<p>Not predicted: " + escape("; ".join(f"{p.model} ({p.error})" for p in failed)) + ".</p>")
    return "".join(parts)
