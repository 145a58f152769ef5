"""The plotting kit every figure of the report uses: a new figure, saving it, its result.

Figures are ``matplotlib.figure.Figure`` objects drawn on an Agg canvas: no pyplot, so no
global state, no backend switch at import, and nothing opens a window. Every figure is saved
as PNG (110 dpi) and SVG without a date, so the same data give the same file. A figure whose
data do not exist is not drawn: its :class:`FigureResult` carries the reason instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from dnnmeter.report.families import colour

__all__ = ["DPI", "FigureResult", "colour", "figure_result", "log_scale", "new_figure", "save"]

DPI = 110


@dataclass(frozen=True)
class FigureResult:
    """One figure: where its files are, or why it was not drawn."""

    name: str
    title: str
    png: Path | None = None
    svg: Path | None = None
    skipped_reason: str | None = None
    caption: str = ""
    notes: tuple[str, ...] = ()


def new_figure(ncols: int = 1, width: float = 7.6, height: float = 4.8, grid: bool = True) -> tuple[Figure, list[Axes]]:
    """A figure of ``ncols`` panels side by side on an Agg canvas, with a light grid."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # draw with Agg explicitly; no pyplot backend is consulted
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    if grid:
        for ax in axes:
            ax.grid(True, color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
    return fig, list(axes)


def save(fig: Figure, stem: Path | str, dpi: int = DPI) -> tuple[Path, Path]:
    """Write ``stem``.png (at ``dpi``) and ``stem``.svg (folders made as needed); returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")
    fig.savefig(png, dpi=dpi, format="png")
    # The layout is settled by the PNG's draw; solving it again for the SVG would double the cost.
    fig.set_layout_engine("none")
    # No date in the SVG, so that the same data give the same file.
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return png, svg


def figure_result(drawn: Figure | str, stem: Path | str, title: str, caption: str = "",
                  notes: tuple[str, ...] = (), dpi: int = DPI) -> FigureResult:
    """Save ``drawn`` at ``stem``, or, when it is the reason nothing was drawn, say so.
    The figure's name (its HTML anchor) is the stem's file name."""
    name = Path(stem).name
    if isinstance(drawn, str):
        return FigureResult(name, title, skipped_reason=drawn, caption=caption, notes=notes)
    png, svg = save(drawn, stem, dpi)
    return FigureResult(name, title, png, svg, caption=caption, notes=notes)


def _minor_label(v: float, span: float) -> str:
    """Label a minor log tick only when major ticks are too few to read values from."""
    if v <= 0 or span >= 100:
        return ""
    mantissa = round(v / 10 ** math.floor(math.log10(v)), 6)
    return f"{v:g}" if span < 3 or mantissa in (2.0, 5.0) else ""


def log_scale(ax: Axes, which: Literal["x", "y"]) -> None:
    """A log axis labelled with plain numbers (0.1, 1, 70), not 7x10^1."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))

    def minor(v: float, _: object) -> str:
        lo, hi = sorted(axis.get_view_interval())
        return _minor_label(v, hi / lo if lo > 0 else math.inf)

    axis.set_minor_formatter(FuncFormatter(minor))
