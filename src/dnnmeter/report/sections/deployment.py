"""How to run it (``dnnmeter study --deploy``): per model, every runtime configuration the deploy
search tried, its latency, speed-up with the 95% interval, throughput at the larger batch,
agreement and accuracy change and verdict, and the recommendation with its reason; one figure
of the speed-ups with their intervals (rejected configurations greyed)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from dnnmeter.report.deploy_text import rechecks_sentence
from dnnmeter.report.format import num, pct
from dnnmeter.report.markup import cell, figure_html, head, row, table
from dnnmeter.report.plot import FigureResult, figure_result
from dnnmeter.report.sections import Page
from dnnmeter.results.records import DeployConfigRecord, DeployRecord, finite

ACCEPTED, RECOMMENDED, REJECTED = "#0072B2", "#D55E00", "#AAAAAA"


def _speedup(c: DeployConfigRecord) -> str:
    if finite(c.speedup) is None:
        return "-"
    interval = "" if finite(c.speedup_low) is None else f" [{c.speedup_low:.2f}, {c.speedup_high:.2f}]"
    return f"{c.speedup:.2f}x{interval}"


def _verdict(c: DeployConfigRecord, d: DeployRecord) -> str:
    if c.name == d.recommended:
        return f"{c.status}, recommended"
    return c.status


def _why(c: DeployConfigRecord, d: DeployRecord) -> str:
    """The reason shown: every verdict's but the plain baseline's."""
    if c.name == d.baseline:
        return "the baseline (the reference of agreement)"
    return c.reason or ""


def _larger_batch(d: DeployRecord) -> int | None:
    return next((c.throughput_batch_size for c in d.configs if c.throughput_batch_size), None)


def _table(d: DeployRecord) -> str:
    rows = []
    for c in d.configs:
        rows.append(row([
            f'<td class="l">{escape(c.name)}</td>', f'<td class="l">{escape(_verdict(c, d))}</td>',
            cell(num(finite(c.latency_s_median), 3, 1e3), "measured"),
            cell(_speedup(c), "measured", c.reason if c.status in ("failed", "skipped") else None),
            cell(num(finite(c.images_per_s_at_throughput_batch), 3), "measured", c.throughput_unavailable_reason),
            cell(pct(finite(c.top1_agreement)), "measured"),
            cell("-" if c.images is None else str(c.images), "measured"),  # the screen's, or all of them
            cell(pct(finite(c.top1_change), signed=True), "measured",
                 "no labels: only agreement with float32" if c.status in ("accepted", "rejected") else None),
            f'<td class="l">{escape(_why(c, d))}</td>',
        ]))  # fmt: skip
    larger = _larger_batch(d)
    header = head("configuration", "verdict", f"latency (ms, batch {d.batch_size})", "speed-up [95%]",
                  f"images/s at batch {larger}" if larger else "images/s (larger batch)", "top-1 agreement",
                  "on images", "top-1 change", "reason", left=2)
    return table(header, rows)


def _model_html(d: DeployRecord) -> str:
    title = f'<h3 id="deploy-{escape(d.model)}">{escape(d.model)}</h3>'
    if d.error:
        return title + f'<p class="skipped">{escape(d.error)}</p>'
    on = "top-1 agreement with eager float32" if d.tolerance_on == "agreement" else "top-1 accuracy drop"
    what = (f"Batch {d.batch_size} on {d.device}; {d.images} images compared ({d.images_note}); tolerance "
            f"{pct(d.tolerance)} on {on}.")
    reason = escape(d.recommendation_reason or "")
    rechecked = rechecks_sentence(d.rechecks)
    if rechecked:
        what = f"{what} {rechecked}"
    return (title + f"<p>{escape(what)}</p>" + _table(d)
            + f"<p>Recommended: <b>{escape(d.recommended or '-')}</b> ({reason}).</p>")


def _drawn(records: Sequence[DeployRecord]) -> list[tuple[DeployRecord, list[DeployConfigRecord]]]:
    found = []
    for d in records:
        shown = [c for c in d.configs if finite(c.speedup) is not None and c.status in ("accepted", "rejected")]
        if shown:
            found.append((d, shown))
    return found


def speedup_figure(records: Sequence[DeployRecord], stem: Path) -> FigureResult:
    """Each configuration's speed-up over eager float32 at its thread count, with its 95% interval;
    one panel per model; rejected configurations grey, the recommended one marked."""
    title = "Speed-up of each configuration over eager float32"
    caption = ("Points: the ratio of median latencies against eager float32 at the same thread count; bars: "
               "its 95% bootstrap interval; grey: rejected (outside the accuracy tolerance, never recommended); "
               "orange: recommended; the dashed line is no speed-up. Failed and skipped configurations are in "
               "the tables, not here.")
    panels = _drawn(records)
    if not panels:
        return figure_result("no configuration has a measured speed-up", stem, title, caption)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    heights = [max(1.6, 0.28 * len(shown) + 0.9) for _, shown in panels]
    fig = Figure(figsize=(7.6, sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, (d, shown) in zip(axes, panels):
        for y, c in enumerate(shown):
            colour = RECOMMENDED if c.name == d.recommended else REJECTED if c.status == "rejected" else ACCEPTED
            low, high = finite(c.speedup_low), finite(c.speedup_high)
            if low is not None and high is not None:
                ax.plot([low, high], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt")
            ax.plot([c.speedup], [y], "o", color=colour, markersize=5)
        ax.axvline(1.0, color="#444444", linestyle="--", linewidth=0.9)
        ax.set_yticks(range(len(shown)), [c.name for c in shown], fontsize=8)
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_title(f"{d.model}, batch {d.batch_size}", fontsize=9, loc="left")
        ax.grid(True, axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xlabel("speed-up over eager float32 (x), 95% interval")
    legend = [Line2D([], [], color=ACCEPTED, marker="o", label="accepted"),
              Line2D([], [], color=RECOMMENDED, marker="o", label="recommended"),
              Line2D([], [], color=REJECTED, marker="o", label="rejected")]
    axes[0].legend(handles=legend, fontsize=8, loc="best")
    return figure_result(fig, stem, title, caption)


def html(page: Page) -> str:
    """The deploy searches of ``study --deploy``; empty when none was asked for."""
    records = page.data.deployment
    if not records:
        return ""
    intro = ("How to run each model fastest on this machine within an accuracy tolerance (dnnmeter deploy, one "
             "process per configuration, docs/deploy.md). The speed-up is against eager float32 at the same "
             "thread count, each timed alone in its own process, with its 95% bootstrap interval; the "
             "recommendation is the fastest accepted configuration whose interval lies above 1, otherwise eager "
             "float32. Throughput is images per second at the larger batch, timed in the configuration's own "
             "process; a dash's tooltip says why a figure is missing.")
    parts = ['<h2 id="deployment">How to run it</h2>', f"<p>{escape(intro)}</p>"]
    parts += [_model_html(d) for d in records]
    parts.append(figure_html(speedup_figure(records, page.figures_dir / "deploy_speedups"), page.base))
    return "".join(parts)
