"""The study's figures: counterparts of Canziani et al.'s and the seed report's.

Figures are ``matplotlib.figure.Figure`` objects drawn on an Agg canvas: no pyplot, so no
global state, no backend switch at import, and nothing opens a window. A figure whose data
do not exist (no power meter, no accuracy) is not drawn; its :class:`FigureResult` says why.
Every figure is saved as PNG (110 dpi) and SVG. What each shows: docs/report.md.

>>> results = render_figures(study, Path("out/figures"))        # doctest: +SKIP
>>> [r.name for r in results if r.skipped_reason]                # doctest: +SKIP
['power_vs_batch', 'gmacs_vs_power', 'power_vs_time']
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dnnmeter.errors import InvalidInputError
from dnnmeter.report import fits as F
from dnnmeter.report.model_marks import (
    accuracy_axis_label,
    add_family_legend,
    at_batch,
    bars,
    blob_sizes,
    failed_points_note,
    gmacs,
    has_power,
    label_handles,
    largest_batch,
    mparams,
    no_power_reason,
    pick,
    scatter_models,
    top1_pct,
    weights_mb,
)
from dnnmeter.report.plot import FigureResult, colour, figure_result, log_scale, new_figure
from dnnmeter.results.records import ModelRecord, StudyData, finite

__all__ = ["FIGURES", "FigureResult", "Spec", "render_figures"]

Model = ModelRecord


@dataclass
class Context:
    """What every figure builder reads: the models, their fits, and notes for the caption."""

    models: list[Model]
    fits: F.StudyFits
    notes: list[str] = field(default_factory=list)


Drawn = Figure | str  # a figure, or the reason it was not drawn
Builder = Callable[[Context], Drawn]


def draw_top1_per_network(ctx: Context) -> Drawn:
    models, _, acc = pick(ctx.models, lambda m: 0.0, top1_pct)
    if not models:
        return "no accuracy: no model has a top-1 figure"
    order = np.argsort(acc)
    fig, (ax,) = new_figure()
    bars(ax, [models[i] for i in order], [acc[i] for i in order])
    ax.set_ylabel(accuracy_axis_label(models))
    ax.set_ylim(min(acc) * 0.9 if min(acc) > 20 else 0, min(100.0, max(acc) * 1.04))
    ax.legend(handles=label_handles(models), fontsize=7, title="accuracy", title_fontsize=7, loc="upper left")
    return fig


def draw_top1_vs_gmacs(ctx: Context) -> Drawn:
    models, x, y = pick(ctx.models, gmacs, top1_pct)
    if not models:
        return "no accuracy: no model has both a top-1 figure and an operation count"
    fig, (ax,) = new_figure()
    scatter_models(ax, models, x, y, blob_sizes([mparams(m) or 0.0 for m in models]))
    log_scale(ax, "x")
    ax.set_xlabel("operations per image (GMACs, log scale)")
    ax.set_ylabel(accuracy_axis_label(models))
    add_family_legend(ax, models, loc="lower right")
    return fig


def draw_top1_per_mparam(ctx: Context) -> Drawn:
    rows = [d for d in ctx.fits.density if d.top1_per_mparam is not None]
    if not rows:
        return "no accuracy: no model has both a top-1 figure and a parameter count"
    rows.sort(key=lambda d: d.top1_per_mparam or 0.0)
    by_name = {m.model: m for m in ctx.models}
    fig, (ax,) = new_figure()
    bars(ax, [by_name[d.model] for d in rows], [100.0 * (d.top1_per_mparam or 0.0) for d in rows])
    log_scale(ax, "y")
    ax.set_ylabel("top-1 accuracy per M parameters (% / M, log scale)")
    ax.legend(handles=label_handles([by_name[d.model] for d in rows]), fontsize=7, title="accuracy",
              title_fontsize=7, loc="upper left")
    return fig


def draw_top1_vs_images_per_s(ctx: Context) -> Drawn:
    models, x, y = pick(ctx.models, at_batch("images_per_s", 1), top1_pct)
    if not models:
        return "no accuracy or throughput: no model has both a top-1 figure and images/s at batch size 1"
    fig, (ax,) = new_figure()
    scatter_models(ax, models, x, y, blob_sizes([gmacs(m) or 0.0 for m in models]))
    extra = []
    bound = ctx.fits.upper_bound
    if bound.fit.ok and bound.fit.slope is not None and bound.fit.intercept is not None:
        xs = np.linspace(0, max(x) * 1.05, 50)
        (line,) = ax.plot(xs, 100 * (bound.fit.slope * xs + bound.fit.intercept), "--", color="#555555",
                          label="linear upper bound")
        extra.append(line)
    else:
        ctx.notes.append(f"no upper bound drawn: {bound.reason}")
    ax.set_xlabel("throughput at batch size 1 (images/s)")
    ax.set_ylabel(accuracy_axis_label(models))
    ax.set_ylim(min(y) - 5, max(y) + 5)
    add_family_legend(ax, models, extra, loc="lower left")
    return fig


# --- against batch size ------------------------------------------------------------------------

LINESTYLES = ("-", "--", ":", "-.")


def series(m: Model, key: str, scale: float) -> tuple[list[int], list[float]]:
    """(batch sizes, values x scale) of a model's ``ok`` points that have ``key``."""
    pts = [(p.batch_size, finite(getattr(p, key))) for p in m.bench if p.status == "ok"]
    kept = sorted((b, v * scale) for b, v in pts if v is not None)
    return [b for b, _ in kept], [v for _, v in kept]


def draw_series(ctx: Context, key: str, scale: float, ylabel: str, log_y: bool) -> Drawn:
    """One line per model against batch size; families share a colour, members differ in dash."""
    drawn = [(m, *series(m, key, scale)) for m in ctx.models]
    drawn = [(m, b, v) for m, b, v in drawn if b]
    if not drawn:
        return f"no model has {key} at any batch size"
    fig, (ax,) = new_figure(width=8.2)
    seen: dict[str, int] = {}
    for m, b, v in drawn:
        fam = m.family
        style = LINESTYLES[seen.get(fam, 0) % len(LINESTYLES)]
        seen[fam] = seen.get(fam, 0) + 1
        ax.plot(b, v, marker="o", markersize=4, linestyle=style, color=colour(fam), label=m.model)
    sizes = sorted({b for _, bs, _ in drawn for b in bs})
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    if log_y:
        log_scale(ax, "y")
    ax.set_xlabel("batch size (log scale)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="model", title_fontsize=7)
    note = failed_points_note(ctx.models)
    if note:
        ctx.notes.append(note)
    return fig


def draw_time_vs_batch(ctx: Context) -> Drawn:
    return draw_series(ctx, "latency_s_per_image", 1e3, "time per image (ms, median, log scale)", True)


def draw_memory_vs_batch(ctx: Context) -> Drawn:
    kinds = {p.memory_kind for m in ctx.models for p in m.bench if p.memory_kind}
    ctx.notes.extend(f"memory: {k}" for k in sorted(kinds))
    return draw_series(ctx, "peak_memory_bytes", 1e-6, "peak memory (MB, log scale)", True)


def draw_power_vs_batch(ctx: Context) -> Drawn:
    if not has_power(ctx.models):
        return no_power_reason(ctx.models)
    return draw_series(ctx, "power_w", 1.0, "mean power while running (W)", False)


# --- memory against parameters -----------------------------------------------------------------


def draw_memory_vs_params(ctx: Context) -> Drawn:
    models, x, y = pick(ctx.models, weights_mb, at_batch("peak_memory_bytes", 1, 1e-6))
    if not models:
        return "no peak memory at batch size 1 for any model with a weight size"
    fig, (ax,) = new_figure()
    scatter_models(ax, models, x, y)
    extra = []
    fit = ctx.fits.memory.fit
    if fit.ok and fit.slope is not None and fit.intercept is not None:
        xs = np.linspace(0, max(x) * 1.05, 50)
        label = f"{fit.intercept / 1e6:.0f} MB + {fit.slope:.2f} x weights (R\u00b2 = {fit.r2:.3f})"
        (line,) = ax.plot(xs, fit.intercept / 1e6 + fit.slope * xs, "--", color="#555555", label=label)
        extra.append(line)
    else:
        ctx.notes.append(f"no fit drawn: {fit.reason}")
    ax.set_xlabel("parameters and buffers (MB, float32 weights)")
    ax.set_ylabel("peak memory at batch size 1 (MB)")
    add_family_legend(ax, models, extra, loc="upper left")
    return fig


# --- operations against time and power ---------------------------------------------------------


def ops_panel(ax: Axes, ctx: Context, batch: int, key: str, scale: float, ylabel: str) -> bool:
    """GMACs against ``key`` at ``batch`` on ``ax``, blobs by parameters; False if no data."""
    models, x, y = pick(ctx.models, gmacs, at_batch(key, batch, scale))
    if not models:
        return False
    scatter_models(ax, models, x, y, blob_sizes([mparams(m) or 0.0 for m in models]))
    log_scale(ax, "x")
    ax.set_xlabel("operations per image (GMACs, log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"batch size {batch}", fontsize=9)
    return True


def fit_line(ax: Axes, fit: F.OpsTimeFit, span_gmacs: tuple[float, float]) -> None:
    """The fitted time = a x ops + b over the data, where positive (the axes are logarithmic)."""
    f = fit.fit
    if not f.ok or f.slope is None or f.intercept is None:
        return
    xs = np.geomspace(span_gmacs[0], span_gmacs[1], 80)
    ys = 1e3 * (f.slope * xs * 1e9 + f.intercept)
    keep = ys > 0
    ax.plot(xs[keep], ys[keep], "--", color="#555555",
            label=f"{1e3 * f.slope * 1e9:.3g} ms/GMAC x ops {1e3 * f.intercept:+.3g} ms (R\u00b2 = {f.r2:.3f})")
    ax.legend(fontsize=7, loc="upper left")


def draw_gmacs_vs_time(ctx: Context) -> Drawn:
    batches = sorted({1, largest_batch(ctx.models, "latency_s_per_image")})
    fig, axes = new_figure(ncols=len(batches), width=5.2 * len(batches) + 1)
    drew = [ops_panel(ax, ctx, b, "latency_s_per_image", 1e3, "time per image (ms, log scale)")
            for ax, b in zip(axes, batches)]
    if not any(drew):
        return "no model has both an operation count and a measured time"
    fits = {f.batch_size: f for f in ctx.fits.ops_time}
    ops = [g for g in (gmacs(m) for m in ctx.models) if g]
    for ax, b in zip(axes, batches):
        log_scale(ax, "y")
        if b in fits and ops:
            fit_line(ax, fits[b], (min(ops), max(ops)))
    return fig


def draw_gmacs_vs_power(ctx: Context) -> Drawn:
    if not has_power(ctx.models):
        return no_power_reason(ctx.models)
    batches = sorted({1, largest_batch(ctx.models, "power_w")})
    fig, axes = new_figure(ncols=len(batches), width=5.2 * len(batches) + 1)
    drew = [ops_panel(ax, ctx, b, "power_w", 1.0, "mean power while running (W)") for ax, b in zip(axes, batches)]
    return fig if any(drew) else "no model has both an operation count and a power reading"


# --- the seed report's: time against top-1, power against time ---------------------------------


def hyperbola_curve(ax: Axes, fit: F.HyperbolaFit, acc_pct: Sequence[float]) -> list[Any]:
    """t = b / (a - top1), the fitted hyperbola, over the accuracies shown."""
    if fit.a is None or fit.b is None or fit.b <= 0:
        return []
    accs = np.linspace(min(acc_pct), min(max(acc_pct), 100 * fit.a - 0.3), 80) / 100
    accs = accs[accs < fit.a]
    if len(accs) < 2:
        return []
    label = f"top-1 = {100 * fit.a:.1f}% - {1e5 * fit.b:.3g} %\u00b7ms / t (R\u00b2 = {fit.r2:.2f})"
    (line,) = ax.plot(100 * accs, 1e3 * fit.b / (fit.a - accs), ":", color="#555555", label=label)
    return [line]


def pareto_line(ax: Axes, front: F.ParetoFront) -> list[Any]:
    """Rings round the front's models, joined when there are several."""
    if not front.members:
        return []
    pts = sorted(front.members, key=lambda p: p.top1)
    (line,) = ax.plot([100 * p.top1 for p in pts], [1e3 * p.latency_s for p in pts], "-o", color="#000000",
                      linewidth=1.0, markersize=13, markerfacecolor="none", alpha=0.6,
                      label="Pareto front (none faster and more accurate)")
    return [line]


def draw_time_vs_top1(ctx: Context) -> Drawn:
    models, x, y = pick(ctx.models, top1_pct, at_batch("latency_s_per_image", 1, 1e3))
    if not models:
        return "no accuracy or time: no model has both a top-1 figure and a time at batch size 1"
    fig, (ax,) = new_figure()
    scatter_models(ax, models, x, y)
    extra = pareto_line(ax, ctx.fits.pareto) + hyperbola_curve(ax, ctx.fits.hyperbola, x)
    log_scale(ax, "y")
    ax.set_xlabel(accuracy_axis_label(models))
    ax.set_ylabel("time per image at batch size 1 (ms, log scale)")
    add_family_legend(ax, models, extra)
    return fig


def draw_power_vs_time(ctx: Context) -> Drawn:
    if not has_power(ctx.models):
        return no_power_reason(ctx.models)
    models, x, y = pick(ctx.models, at_batch("latency_s_per_image", 1, 1e3), at_batch("power_w", 1))
    if not models:
        return "no model has both a time and a power reading at batch size 1"
    fig, (ax,) = new_figure()
    scatter_models(ax, models, x, y)
    log_scale(ax, "x")
    ax.set_xlabel("time per image at batch size 1 (ms, log scale)")
    ax.set_ylabel("mean power while running (W)")
    add_family_legend(ax, models)
    return fig


# --- where the parameters and operations sit: conv against FC ----------------------------------

SPLIT_COLOURS = {"conv": "#0072B2", "FC": "#E69F00", "other": "#BBBBBB"}


def conv_fc(m: Model, key: str) -> dict[str, float] | None:
    """conv / FC / other shares of ``key`` ("params" or "macs"); other = total - conv - FC."""
    a = m.analysis
    if a is None or "conv" not in a.conv_vs_fc or "fc" not in a.conv_vs_fc:
        return None
    total = finite(getattr(a, key))
    conv, fc = finite(getattr(a.conv_vs_fc["conv"], key)), finite(getattr(a.conv_vs_fc["fc"], key))
    if total is None or conv is None or fc is None:
        return None
    return {"conv": conv, "FC": fc, "other": max(0.0, total - conv - fc)}


def split_panel(ax: Axes, models: Sequence[Model], key: str, scale: float, unit: str) -> None:
    """Shares of conv, FC and other as 100% stacked bars; each bar's total written above it."""
    xs = np.arange(len(models))
    splits = [conv_fc(m, key) or {} for m in models]
    totals = np.array([sum(s.values()) for s in splits])
    bottom = np.zeros(len(models))
    for part, col in SPLIT_COLOURS.items():
        vals = np.array([100.0 * s.get(part, 0.0) for s in splits]) / np.where(totals > 0, totals, 1.0)
        ax.bar(xs, vals, bottom=bottom, color=col, edgecolor="#333333", linewidth=0.5, label=part)
        bottom += vals
    for x, total in zip(xs, totals):
        ax.text(float(x), 101, f"{total * scale:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, [m.model for m in models], rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel(f"share (%); total above each bar in {unit}")
    ax.grid(False, axis="x")


def draw_conv_fc_split(ctx: Context) -> Drawn:
    models = [m for m in ctx.models if conv_fc(m, "params") and conv_fc(m, "macs")]
    if not models:
        return "no analysis with a conv/FC split (analysis.conv_vs_fc) for any model"
    fig, axes = new_figure(ncols=2, width=11.0, height=4.8)
    split_panel(axes[0], models, "params", 1e-6, "M parameters")
    split_panel(axes[1], models, "macs", 1e-9, "GMACs per image")
    axes[0].set_title("parameters", fontsize=9)
    axes[1].set_title("operations", fontsize=9)
    axes[1].legend(fontsize=7, loc="lower right", framealpha=0.9)
    ctx.notes.append("'other' is everything outside conv and linear layers (e.g. batch norm, batched matmul)")
    return fig


# --- the list, and rendering -------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    caption: str
    build: Builder


FIGURES: tuple[Spec, ...] = (
    Spec("top1_per_network", "Top-1 accuracy per network", "Canziani et al. Fig. 1.", draw_top1_per_network),
    Spec("top1_vs_gmacs", "Top-1 accuracy against operations, area \u221d parameters",
         "Canziani et al. Fig. 2.", draw_top1_vs_gmacs),
    Spec("time_vs_batch", "Time per image against batch size", "Canziani et al. Fig. 3.", draw_time_vs_batch),
    Spec("power_vs_batch", "Power against batch size", "Canziani et al. Fig. 4.", draw_power_vs_batch),
    Spec("memory_vs_batch", "Peak memory against batch size", "Canziani et al. Fig. 5.", draw_memory_vs_batch),
    Spec("memory_vs_params", "Peak memory against parameter size, with the fitted line",
         "Canziani et al. Fig. 6.", draw_memory_vs_params),
    Spec("gmacs_vs_time", "Operations against time per image, area \u221d parameters",
         "Canziani et al. Fig. 7.", draw_gmacs_vs_time),
    Spec("gmacs_vs_power", "Operations against power, area \u221d parameters", "Canziani et al. Fig. 8.",
         draw_gmacs_vs_power),
    Spec("top1_vs_images_per_s",
         "Top-1 accuracy against throughput, area \u221d operations, with the linear upper bound",
         "Canziani et al. Fig. 9.", draw_top1_vs_images_per_s),
    Spec("top1_per_mparam", "Top-1 accuracy per million parameters (information density)",
         "Canziani et al. Fig. 10.", draw_top1_per_mparam),
    Spec("time_vs_top1", "Time per image against top-1 accuracy, with the Pareto front and the hyperbola",
         "The seed report's inference time against top-1.", draw_time_vs_top1),
    Spec("power_vs_time", "Power against time per image", "The seed report's power against inference time.",
         draw_power_vs_time),
    Spec("conv_fc_split", "Parameters and operations: convolutional against fully connected layers",
         "The seed report's slide on conv and FC layers.", draw_conv_fc_split),
)


def render_one(spec: Spec, ctx: Context, out_dir: Path) -> FigureResult:
    ctx.notes = []
    drawn = spec.build(ctx)
    notes = tuple(dict.fromkeys(ctx.notes))
    if isinstance(drawn, str):
        return FigureResult(spec.name, spec.title, skipped_reason=drawn, caption=spec.caption, notes=notes)
    drawn.suptitle(spec.title, fontsize=10)
    return figure_result(drawn, out_dir / spec.name, spec.title, spec.caption, notes)


def render_figures(study: StudyData | Mapping[str, Any], out_dir: Path, fits: F.StudyFits | None = None,
                   names: Collection[str] | None = None) -> list[FigureResult]:
    """Draw the figures of ``study`` (records, or a results.json dict) into ``out_dir`` as PNG and SVG.

    ``names`` picks some figures (see ``FIGURES``); by default all are drawn.
    """
    unknown = set(names or ()) - {spec.name for spec in FIGURES}
    if unknown:
        known = ", ".join(spec.name for spec in FIGURES)
        raise InvalidInputError(f"unknown figure(s) {', '.join(sorted(unknown))}; known: {known}")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = F.study_data(study)
    ctx = Context(list(data.models), fits or F.compute_fits(data))
    return [render_one(spec, ctx, out_dir) for spec in FIGURES if names is None or spec.name in names]
