"""The prediction section's figures: predicted against measured latency (with the FLOPs line
beside it) and the torchvision zoo's predicted accuracy/latency front.

Both return a ``Figure`` or the reason nothing was drawn, as :mod:`dnnmeter.report.figures`'s
builders do; :func:`dnnmeter.report.plot.figure_result` saves them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dnnmeter.report.plot import colour, log_scale, new_figure
from dnnmeter.report.prediction_scores import FrontPoint
from dnnmeter.results.records import PredictedPoint

BAND = 0.10  # the ±10% band shaded around y = x


def draw_predicted_vs_measured(points: Sequence[PredictedPoint]) -> Figure | str:
    """Log-log: measured (x) against predicted (y) per batch, ms; y = x and the ±10% band;
    the predictor's points in their family colour (circles, the interval as a bar), the FLOPs
    line's as grey crosses. Points used to calibrate are left out."""
    shown = [p for p in points if not p.used_to_calibrate and p.measured_latency_s and p.latency_s]
    if not shown:
        return "no model has both a measured and a predicted latency"
    fig, (ax,) = new_figure(width=6.8, height=5.4)
    x = np.array([p.measured_latency_s for p in shown], float) * 1e3  # type: ignore[misc]
    y = np.array([p.latency_s for p in shown], float) * 1e3  # type: ignore[misc]
    base = [(p.measured_latency_s * 1e3, p.flops_line_latency_s * 1e3) for p in shown  # type: ignore[operator]
            if p.flops_line_latency_s]
    everything = np.concatenate([x, y, [b for _, b in base]])
    lo, hi = everything.min() / 1.6, everything.max() * 1.6
    line = np.geomspace(lo, hi, 50)
    ax.fill_between(line, line * 0.8, line * 1.2, color="#deebf7", alpha=0.6, linewidth=0, label="within ±20%")
    ax.fill_between(line, line * (1 - BAND), line * (1 + BAND), color="#6baed6", alpha=0.55, linewidth=0,
                    label="within ±10%")
    ax.plot(line, line, color="#333333", linewidth=0.9, label="predicted = measured")
    if base:
        ax.scatter([b[0] for b in base], [b[1] for b in base], marker="x", color="#888888", s=28, linewidths=1.0,
                   label="FLOPs line (t = c x FLOPs)", zorder=3)
    for p, xi, yi in zip(shown, x, y):
        if p.latency_s_low and p.latency_s_high:
            ax.plot([xi, xi], [p.latency_s_low * 1e3, p.latency_s_high * 1e3], color=colour(p.family),
                    alpha=0.35, linewidth=1.0, zorder=2)
        ax.scatter([xi], [yi], color=colour(p.family), edgecolor="#333333", linewidth=0.5, s=30, zorder=4)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], marker="o", linestyle="", color="#777777", markeredgecolor="#333333",
                          label="dnnmeter predict (bar: its interval)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    log_scale(ax, "x")
    log_scale(ax, "y")
    ax.set_xlabel("measured latency per batch (ms, log scale; dnnmeter bench median)")
    ax.set_ylabel("predicted latency per batch (ms, log scale)")
    return fig


def draw_predicted_front(points: Sequence[PredictedPoint], front: Sequence[FrontPoint]) -> Figure | str:
    """Predicted batch-1 latency (x, log) against published top-1 (y); the front joined and named."""
    shown = [p for p in points if p.latency_s and p.published_top1 is not None]
    if not shown:
        return "no zoo model has both a predicted latency and a published top-1"
    fig, (ax,) = new_figure(width=7.6, height=5.2)
    on_front = {f.model for f in front}
    rest = [p for p in shown if p.model not in on_front]
    ax.scatter([p.latency_s * 1e3 for p in rest], [p.published_top1 * 100 for p in rest],  # type: ignore[operator]
               color=[colour(p.family) for p in rest], alpha=0.45, s=18, linewidth=0)
    fx, fy = [f.latency_s * 1e3 for f in front], [f.top1 * 100 for f in front]
    ax.step(fx, fy, where="post", color="#d62728", linewidth=1.0, alpha=0.8)
    ax.scatter(fx, fy, color="#d62728", edgecolor="#333333", linewidth=0.5, s=34, zorder=4,
               label="predicted front")
    previous = -np.inf
    for f in front:  # up and to the left of each: no model lies there, by the front's definition
        close = f.top1 * 100 - previous < 0.9  # as accurate as the last one: its label would cover this one's
        ax.annotate(f.model, (f.latency_s * 1e3, f.top1 * 100), fontsize=6.5, xytext=(4, -3) if close else (-4, 2),
                    ha="left" if close else "right", va="top" if close else "bottom", textcoords="offset points")
        previous = f.top1 * 100
    ax.set_xlim(min(fx + [p.latency_s * 1e3 for p in rest]) / 4, None)  # type: ignore[operator]  # room for labels
    log_scale(ax, "x")
    ax.set_xlabel("predicted latency at batch size 1 (ms, log scale; predicted, not measured)")
    ax.set_ylabel("top-1 accuracy (%), published")
    handles = [Line2D([], [], marker="o", linestyle="", color="#999999", label="predicted, not on the front "
                      "(family colour)"),
               Line2D([], [], marker="o", color="#d62728", markeredgecolor="#333333", label="predicted front")]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    return fig
