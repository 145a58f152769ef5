"""The hardware figures: accesses per layer, the roofline, array utilisation per layer.

Each function takes the stored records (:class:`~dnnmeter.hardware.records.HardwareRecord`,
:class:`~dnnmeter.hardware.roofline.RooflineRecord`: ``result.record()``, or read back from
the store), so that a report can redraw them, and an output stem (``out/figures/resnet18_accesses``); it writes ``stem.png`` and ``stem.svg``
and returns a :class:`~dnnmeter.report.figures.FigureResult` (its paths, or why nothing was
drawn), which ``dnnmeter.report.html.figure_html`` embeds.

>>> draw_accesses(estimate_hardware("resnet18").record(), Path("out/resnet18_accesses"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dnnmeter.hardware.ceilings import Ceilings
from dnnmeter.hardware.records import HardwareRecord
from dnnmeter.hardware.roofline import RooflineRecord
from dnnmeter.report.plot import FigureResult, figure_result, log_scale, new_figure

__all__ = ["draw_accesses", "draw_hardware_figures", "draw_roofline", "draw_utilization"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MAX_TICK_LABELS = 40  # beyond this, every k-th layer is named so the labels stay readable
MAX_LABEL_CHARS = 26  # longer layer names keep their tail, which tells layers apart


def _width(n_layers: int) -> float:
    return min(18.0, max(7.6, 4.0 + 0.28 * n_layers))


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else "…" + name[-(MAX_LABEL_CHARS - 1):]


def _layer_ticks(ax: Axes, names: Sequence[str]) -> None:
    step = max(1, math.ceil(len(names) / MAX_TICK_LABELS))
    ticks = list(range(0, len(names), step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([_short(names[i]) for i in ticks], rotation=60, ha="right", fontsize=6.5)
    ax.set_xlim(-0.6, len(names) - 0.4)


# --- accesses with and without reuse ------------------------------------------------------------


def _positive(values: Sequence[float]) -> list[float]:
    # A log axis cannot show 0: a layer with nothing to move is drawn as an empty slot.
    return [v if v > 0 else np.nan for v in values]


def _draw_accesses(result: HardwareRecord) -> Figure | str:
    layers = result.layers
    if not layers:
        return "no convolution, linear or matmul layer to draw"
    names = [layer.name for layer in layers]
    series = [
        ("naive: 4 per MAC", [float(layer.naive_accesses) for layer in layers], "#bbbbbb"),
        ("all reuse (ideal on-chip)", [float(layer.accesses_with_reuse["all"]) for layer in layers], "#1f77b4"),
        ("DRAM of the systolic array", [float(layer.dram_accesses) for layer in layers], "#ff7f0e"),
    ]
    fig, (ax,) = new_figure(width=_width(len(layers)), height=4.8)
    x, width = np.arange(len(layers)), 0.8 / len(series)
    for i, (label, values, colour) in enumerate(series):
        ax.bar(x + (i - 1) * width, _positive(values), width, label=label, color=colour, zorder=2)
    bound = [float(layer.dram_lower_bound) for layer in layers]
    ax.scatter(x, _positive(bound), marker="_", s=160, color="black", linewidths=1.6, zorder=3,
               label="DRAM lower bound (each word once)")
    log_scale(ax, "y")
    _layer_ticks(ax, names)
    ax.set_ylabel("memory accesses (words, whole batch)")
    s = result.settings
    ax.set_title(f"{result.model}: accesses per layer; array {_array(s)} {s.get('dataflow', '')}, "
                 f"SRAM {_sram(s)} KB, {s.get('bits', '?')}-bit words", fontsize=9)
    ax.legend(fontsize=7, loc="best", framealpha=0.85)
    return fig


def draw_accesses(result: HardwareRecord, stem: Path | str) -> FigureResult:
    """Per layer, log scale: naive accesses (4 per MAC), accesses left with all data reuse,
    the systolic array's DRAM traffic, and the DRAM lower bound."""
    caption = ("Memory accesses per layer in words, log scale: naive (every MAC reads a weight, an input and "
               "a partial sum and writes the sum), what is left when convolutional, filter, image and "
               "partial-sum reuse are all exploited, the DRAM traffic of the simulated systolic array, and the "
               "lower bound (each weight, input and output moved once). Counts, not measurements")
    return figure_result(_draw_accesses(result), stem, f"{result.model}: accesses per layer",
                  caption)


def _array(settings: Mapping[str, Any]) -> str:
    array = settings.get("array") or ["?", "?"]
    return f"{array[0]}x{array[-1]}"


def _sram(settings: Mapping[str, Any]) -> str:
    sizes = settings.get("sram_kb") or ["?"]
    return str(sizes[0]) if len(set(sizes)) == 1 else "/".join(str(v) for v in sizes)


# --- array utilisation ------------------------------------------------------------------------


def _draw_utilization(result: HardwareRecord) -> Figure | str:
    layers = result.layers
    if not layers:
        return "no convolution, linear or matmul layer to draw"
    names = [layer.name for layer in layers]
    x = np.arange(len(layers))
    fig, (ax,) = new_figure(width=_width(len(layers)), height=4.4)
    ax.bar(x, [100 * layer.utilization for layer in layers], 0.7, color="#2ca02c", zorder=2,
           label="utilisation: MACs / (cycles x PEs)")
    ax.scatter(x, [100 * layer.mapping_efficiency for layer in layers], marker="D", s=18, color="#333333",
               zorder=3, label="mapping efficiency: PEs given work per fold")
    overall = result.totals.utilization
    if overall is not None:
        ax.axhline(100 * overall, color="#d62728", linestyle="--", linewidth=1,
                   label=f"whole network {100 * overall:.1f} %")
    ax.set_ylim(0, 125)  # room above the bars for the legend
    ax.set_ylabel("% of the array")
    _layer_ticks(ax, names)
    s = result.settings
    ax.set_title(f"{result.model}: systolic array {_array(s)}, dataflow {s.get('dataflow', '?')}",
                 fontsize=9)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(fontsize=7, loc="upper center", ncols=3, framealpha=0.85)
    return fig


def draw_utilization(result: HardwareRecord, stem: Path | str) -> FigureResult:
    """Per layer: the array's utilisation and mapping efficiency, with the network's line."""
    caption = ("Utilisation of the systolic array per layer (MACs over cycles x PEs, SCALE-Sim's overall "
               "utilisation, from dnnmeter's closed form of its compute model) and mapping efficiency (the "
               "share of PEs that the layer's matrix product fills in each fold); estimated")
    return figure_result(_draw_utilization(result), stem,
                  f"{result.model}: array utilisation per layer", caption)


# --- the roofline -----------------------------------------------------------------------------


def _roof_range(roofs: Sequence[RooflineRecord], ridge: float) -> tuple[float, float]:
    intensities = [layer.arithmetic_intensity_flops_per_byte for r in roofs for layer in r.layers]
    lo = min([*intensities, ridge]) / 3
    hi = max([*intensities, ridge]) * 3
    return lo, hi


def _draw_roof(ax: Axes, ceilings: Ceilings, span: tuple[float, float]) -> None:
    peak, bandwidth, ridge = ceilings.peak_flops_per_s, ceilings.bandwidth_bytes_per_s, ceilings.ridge_flops_per_byte
    assert peak and bandwidth and ridge  # _draw_roofline refuses ceilings without them
    xs = np.geomspace(span[0], span[1], 200)
    ax.plot(xs, np.minimum(peak, xs * bandwidth) / 1e9, color="black", linewidth=1.8, zorder=2)
    ax.axvline(ridge, color="#777777", linestyle=":", linewidth=1)
    ax.annotate(f"ridge {ridge:.3g} FLOP/byte", (ridge, peak / 1e9), xytext=(4, -12), textcoords="offset points",
                fontsize=7, color="#555555")
    ax.annotate(f"peak {peak / 1e9:.3g} GFLOP/s", (span[1], peak / 1e9), xytext=(-4, 4), textcoords="offset points",
                fontsize=7, ha="right")
    ax.annotate(f"bandwidth {bandwidth / 1e9:.3g} GB/s", (span[0] * 1.3, span[0] * 1.3 * bandwidth / 1e9),
                xytext=(8, -12), textcoords="offset points", fontsize=7)


def _draw_model(ax: Axes, roof: RooflineRecord, colour: str) -> None:
    layers = roof.layers
    xs = [layer.arithmetic_intensity_flops_per_byte for layer in layers]
    ax.scatter(xs, [layer.attainable_flops_per_s / 1e9 for layer in layers], s=30, facecolors="none",
               edgecolors=colour, linewidths=1.0, zorder=3)
    measured = [(x, layer.measured_flops_per_s) for x, layer in zip(xs, layers) if layer.measured_flops_per_s]
    if measured:
        ax.scatter([m[0] for m in measured], [m[1] / 1e9 for m in measured], s=18, color=colour, zorder=4)
    totals = roof.totals
    intensity, latency = totals.arithmetic_intensity_flops_per_byte, totals.measured_latency_s
    if intensity and latency:
        ax.scatter([intensity], [totals.flops / latency / 1e9], marker="*", s=160, color=colour,
                   edgecolors="black", linewidths=0.6, zorder=5)


def _draw_roofline(roofs: Sequence[RooflineRecord]) -> Figure | str:
    roofs = [r for r in roofs if r.layers]
    if not roofs:
        return "no convolution, linear or matmul layer to place"
    ceilings = roofs[0].ceilings
    ridge = ceilings.ridge_flops_per_byte
    if not ceilings.peak_flops_per_s or not ceilings.bandwidth_bytes_per_s or not ridge:
        return f"no ceilings: {ceilings.unavailable_reason or 'peak or bandwidth missing'}"
    fig, (ax,) = new_figure(width=7.6, height=5.2)
    _draw_roof(ax, ceilings, _roof_range(roofs, ridge))
    handles: list[Any] = []
    for i, roof in enumerate(roofs):
        colour = PALETTE[i % len(PALETTE)]
        _draw_model(ax, roof, colour)
        if len(roofs) > 1:
            handles.append(Line2D([], [], marker="o", linestyle="", color=colour, label=roof.model))
    handles += [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="none", color="#555555",
               label="layer, attainable (on the roof)"),
        Line2D([], [], marker="o", linestyle="", color="#555555", label="layer, measured (torch.profiler)"),
        Line2D([], [], marker="*", linestyle="", color="#555555", markersize=10,
               label="whole model, measured latency"),
    ]
    log_scale(ax, "x")
    log_scale(ax, "y")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of the DRAM lower bound)")
    ax.set_ylabel("GFLOP/s (FLOPs = 2 x MACs)")
    threads = ceilings.threads
    ax.set_title(f"Roofline of {ceilings.device_name or ceilings.device}"
                 + (f", {threads} thread(s)" if threads else "") + f", {ceilings.dtype}", fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="lower right", framealpha=0.85)
    return fig


def draw_roofline(roofs: RooflineRecord | Sequence[RooflineRecord], stem: Path | str) -> FigureResult:
    """The roof of the machine's measured ceilings, every layer placed by arithmetic
    intensity at its attainable rate (hollow) and its measured rate (filled), and each
    model's measured whole-forward rate (star). Several rooflines share the first's roof."""
    items = [roofs] if isinstance(roofs, RooflineRecord) else list(roofs)
    names = ", ".join(r.model for r in items)
    caption = ("Ceilings measured on this machine: peak from a large matrix product, bandwidth from a large copy. "
               "A layer left of the ridge is memory-bound, right of it compute-bound. Hollow: the attainable "
               "rate, min(peak, intensity x bandwidth); filled: 2 x MACs over the layer's time in torch.profiler; "
               "star: the model's product FLOPs over its measured forward latency")
    return figure_result(_draw_roofline(items), stem, f"Roofline: {names}", caption)


def draw_hardware_figures(result: HardwareRecord | None, roof: RooflineRecord | None, out_dir: Path | str,
                          prefix: str | None = None) -> list[FigureResult]:
    """All three figures of one model into ``out_dir``, named ``prefix_accesses`` etc."""
    out_dir = Path(out_dir)
    model = result.model if result is not None else roof.model if roof is not None else "model"
    prefix = prefix or "hardware_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in model)
    figures = []
    if result is not None:
        figures.append(draw_accesses(result, out_dir / f"{prefix}_accesses"))
        figures.append(draw_utilization(result, out_dir / f"{prefix}_utilization"))
    if roof is not None:
        figures.append(draw_roofline(roof, out_dir / f"{prefix}_roofline"))
    return figures
