"""The report's hardware section: accesses with and without reuse, the roofline, array
utilisation, as one HTML fragment.

It reads the stored records (:class:`~dnnmeter.hardware.records.HardwareRecord`,
:class:`~dnnmeter.hardware.roofline.RooflineRecord`, e.g. ``HardwareResult.record()``) and the
figures drawn from them (:mod:`dnnmeter.report.hardware_figures`), so the report can be
rebuilt from the store. Every hardware count is estimated (a model of the hardware, not a
measurement); the ceilings and the measured times of the roofline are measured.

>>> html = hardware_section([hw.record()], [roof.record()], figures, Path("out"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnnmeter.hardware.ceilings import Ceilings
from dnnmeter.hardware.records import HardwareLayer, HardwareRecord
from dnnmeter.hardware.roofline import RooflineLayer, RooflineRecord
from dnnmeter.report.format import num
from dnnmeter.report.hardware_figures import draw_accesses, draw_roofline, draw_utilization
from dnnmeter.report.markup import cell, figure_html, head, mark, row, table
from dnnmeter.report.plot import FigureResult
from dnnmeter.report.sections import Page

__all__ = ["hardware_section", "html"]

# The model whose per-layer accesses and array utilisation the report draws: the hardware
# study's example network; the first model with a hardware result when it is absent.
EXAMPLE_MODELS = ("alexnet", "resnet18")

def _text(value: Any) -> str:
    return f'<td class="l">{escape(str(value))}</td>'


def _settings_line(results: Sequence[HardwareRecord]) -> str:
    settings = [dict(r.settings) for r in results]
    distinct = {(tuple(s.get("array") or ()), s.get("dataflow"), tuple(s.get("sram_kb") or ()), s.get("bits"),
                 s.get("energy_table")) for s in settings}
    if len(distinct) != 1:
        return "<p>Array settings differ between models; each model's are in results.json.</p>"
    array, dataflow, sram, bits, energy = next(iter(distinct))
    sram_text = "/".join(str(v) for v in sram)
    return (f"<p>Systolic array {escape('x'.join(str(a) for a in array))}, dataflow {escape(str(dataflow))}, "
            f"SRAMs (ifmap/filter/ofmap) {escape(sram_text)} KB, {escape(str(bits))}-bit words; energy table "
            f"{escape(str(energy))}. Accesses are counted in words for the whole batch. Counts and energies are "
            f"estimated {mark('estimated')} from layer shapes (docs/hardware.md); nothing here was metered.</p>")


def _energy(value: float | None, unit: str) -> str:
    if value is None:
        return cell("-", why_missing="no energy estimate")
    if unit == "J":
        return cell(num(value, 3, 1e3), "estimated")
    return cell(num(value, 3, 1e-9), "estimated")


def _energy_unit(results: Sequence[HardwareRecord]) -> tuple[str, str]:
    if {r.totals.energy.unit for r in results} == {"J"}:
        return "J", "mJ"
    return "normalized", "G x one MAC"


def summary_table(results: Sequence[HardwareRecord]) -> str:
    unit, shown = _energy_unit(results)
    hdr = head("network", "GMACs", "naive accesses (M)", "with all reuse (M)", "DRAM lower bound (M)",
               "reuse gain (x)", "array DRAM (M)", "DRAM / bound", "array cycles (M)", "utilisation (%)",
               f"energy naive ({shown})", f"energy reuse ({shown})", f"energy array ({shown})")
    rows = []
    for r in results:
        t, e = r.totals, r.totals.energy
        rows.append(row([
            _text(r.model), cell(num(t.macs, 4, 1e-9)), cell(num(t.naive_accesses, 4, 1e-6)),
            cell(num(t.accesses_with_reuse.get("all"), 4, 1e-6)),
            cell(num(t.dram_lower_bound, 4, 1e-6)), cell(num(t.reduction_by_reuse.get("all"), 3)),
            cell(num(t.dram_accesses, 4, 1e-6)), cell(num(t.dram_vs_lower_bound, 3)),
            cell(num(t.cycles, 4, 1e-6)),
            cell(num(t.utilization, 3, 100), why_missing="no layer on the array"),
            _energy(e.naive, e.unit), _energy(e.reuse, e.unit), _energy(e.systolic, e.unit),
        ]))
    legend = ("<p class=\"muted\">Naive: 4 accesses per MAC (read weight, input and partial sum, write the sum). "
              "With all reuse: what is left when convolutional, filter, image and partial-sum reuse are all "
              "exploited on chip; the lower bound moves each weight, input and output once. Array DRAM: the "
              "simulated systolic array's DRAM traffic with these SRAMs. Energy reuse: an ideal memory hierarchy; "
              "energy array: the simulated array's SRAM and DRAM traffic"
              + (" (eyeriss units: one 16-bit ALU MAC = 1)" if unit != "J" else "") + ".</p>")
    return table(hdr, rows) + legend


def _reuse_table(results: Sequence[HardwareRecord]) -> str:
    kinds = ("convolutional", "filter", "image", "psum", "all")
    hdr = head("network", *[f"{k} reuse alone (x fewer)" if k != "all" else "all reuse (x fewer)" for k in kinds])
    rows = [row([_text(r.model), *[cell(num(r.totals.reduction_by_reuse.get(k), 3)) for k in kinds]])
            for r in results]
    return "<h3>What each kind of data reuse saves</h3>" + table(hdr, rows)


# --- roofline ---------------------------------------------------------------------------------


def _ceilings_text(c: Ceilings) -> str:
    if not c.peak_flops_per_s:
        return f"<p>No ceilings: {escape(str(c.unavailable_reason or 'not measured'))}.</p>"
    label = c.label or "measured"
    return (f"<p>Ceilings of {escape(str(c.device_name or c.device))} "
            f"({escape(str(c.dtype))}, {escape(str(c.threads or '-'))} thread(s)): peak "
            f"{num(c.peak_flops_per_s, 3, 1e-9)}{mark(label)} GFLOP/s "
            f"({escape(str(c.flops_method))}), bandwidth "
            f"{num(c.bandwidth_bytes_per_s, 3, 1e-9)}{mark(label)} GB/s "
            f"({escape(str(c.bandwidth_method))}); ridge point "
            f"{num(c.ridge_flops_per_byte, 3)} FLOPs per byte. A layer whose arithmetic intensity "
            "(2 x MACs per byte of its DRAM lower bound) is below the ridge is memory-bound.</p>")


def roofline_table(rooflines: Sequence[RooflineRecord]) -> str:
    hdr = head("network", "batch", "GFLOPs (2 x GMACs)", "FLOPs per byte", "compute-bound layers",
               "memory-bound layers", "attainable (ms)", "measured (ms)", "of the roofline (%)")
    rows = []
    for r in rooflines:
        t = r.totals
        rows.append(row([
            _text(r.model), cell(str(r.batch_size)), cell(num(t.flops, 4, 1e-9)),
            cell(num(t.arithmetic_intensity_flops_per_byte, 3)), cell(str(t.bound_counts.get("compute", 0))),
            cell(str(t.bound_counts.get("memory", 0))), cell(num(t.attainable_time_s, 3, 1e3), "estimated"),
            cell(num(t.measured_latency_s, 3, 1e3), "measured", r.latency_unavailable_reason),
            cell(num(t.fraction_of_roofline, 3, 100), "measured", r.latency_unavailable_reason),
        ]))
    note = ("<p class=\"muted\">Attainable: the sum over conv, linear and matmul layers of 2 x MACs / "
            "min(peak, intensity x bandwidth); element-wise layers are not in it. Measured: median forward "
            "latency. Of the roofline: attainable / measured; 100 % would be the machine's limit.</p>")
    return table(hdr, rows) + note


# --- per layer ----------------------------------------------------------------------------------


def _layer_row(name: str, kind: str, hw: HardwareLayer | None, rl: RooflineLayer | None, reason: str | None) -> str:
    def of(field: str) -> Any:
        return None if hw is None else getattr(hw, field)

    return row([
        _text(name), _text(kind), cell(num(of("macs"), 4, 1e-6)), cell(num(of("naive_accesses"), 4, 1e-6)),
        cell(num(None if hw is None else hw.accesses_with_reuse.get("all"), 4, 1e-6)),
        cell(num(of("dram_lower_bound"), 4, 1e-6)), cell(num(of("dram_accesses"), 4, 1e-6)),
        cell(num(of("cycles"), 4, 1e-3)), cell(num(of("utilization"), 3, 100)),
        cell(num(of("mapping_efficiency"), 3, 100)),
        cell(num(rl and rl.arithmetic_intensity_flops_per_byte, 3)), _text(rl.bound if rl else "-"),
        cell(num(rl and rl.attainable_time_s, 3, 1e3)),
        cell(num(rl and rl.measured_time_s, 3, 1e3), "measured", reason or "not measured"),
        cell(num(rl and rl.fraction_of_roofline, 3, 100), None, reason or "not measured"),
    ])


def _layer_rows(result: HardwareRecord | None, roof: RooflineRecord | None) -> list[str]:
    by_name = {layer.name: layer for layer in (roof.layers if roof else [])}
    reason = roof.layer_times_unavailable_reason if roof else None
    if result is not None and result.layers:
        return [_layer_row(hl.name, hl.kind, hl, by_name.get(hl.name), reason) for hl in result.layers]
    return [_layer_row(name, rl.kind, None, rl, reason) for name, rl in by_name.items()]


def layers_details(result: HardwareRecord | None, roof: RooflineRecord | None) -> str:
    """One model's per-layer table, folded (a network can have hundreds of layers)."""
    model = result.model if result is not None else roof.model if roof is not None else "?"
    hdr = head("layer", "kind", "MACs (M)", "naive (M)", "all reuse (M)", "lower bound (M)", "array DRAM (M)",
               "cycles (k)", "utilisation (%)", "mapping (%)", "FLOPs/byte", "bound", "attainable (ms)",
               "measured (ms)", "of roofline (%)", left=2)
    rows = _layer_rows(result, roof)
    notes = [*(result.notes if result else []), *(roof.notes if roof else [])]
    if roof is not None and roof.layer_times_unavailable_reason:
        notes.append("measured per layer: " + roof.layer_times_unavailable_reason)
    note = "".join(f"<li>{escape(str(n))}</li>" for n in notes)
    return (f"<details><summary>{escape(str(model))}: per layer ({len(rows)} layers)</summary>"
            + table(hdr, rows) + (f"<ul class=\"muted\">{note}</ul>" if note else "") + "</details>")


def hardware_section(results: Sequence[HardwareRecord], rooflines: Sequence[RooflineRecord] = (),
                     figures: Sequence[FigureResult] = (), base: Path = Path(".")) -> str:
    """The report's hardware section: settings, a table per model (accesses, reuse, array,
    energy), the roofline table, per-layer tables (folded) and the figures. ``base`` is the
    report's directory (for the SVG links)."""
    if not results and not rooflines:
        return "<h2 id=\"hardware\">Hardware</h2><p>No hardware results: run <code>dnnmeter hardware</code>.</p>"
    parts = ["<h2 id=\"hardware\">Hardware: memory accesses, data reuse, roofline, systolic array</h2>"]
    if results:
        parts += [_settings_line(results), summary_table(results), _reuse_table(results)]
    if rooflines:
        parts += ["<h3>Roofline</h3>", _ceilings_text(rooflines[0].ceilings), roofline_table(rooflines)]
    roofs = {r.model: r for r in rooflines}
    by_model = {r.model: r for r in results}
    names = list(dict.fromkeys([*by_model, *roofs]))
    parts.append("<h3>Per layer</h3>")
    parts += [layers_details(by_model.get(n), roofs.get(n)) for n in names]
    if figures:
        parts.append("<h3>Figures</h3>")
        parts += [figure_html(f, base) for f in figures]
    return "".join(parts)


def html(page: Page) -> str:
    """The hardware section of the study's models, with its figures (empty without any)."""
    results = [m.hardware for m in page.data.models if m.hardware is not None]
    roofs = [m.roofline for m in page.data.models if m.roofline is not None]
    if not results and not roofs:
        return ""
    figures: list[FigureResult] = []
    example = next((r for name in EXAMPLE_MODELS for r in results if r.model == name), None)
    example = example or (results[0] if results else None)
    if example is not None:
        stem = page.figures_dir / f"hardware_{example.model}"
        figures += [draw_accesses(example, f"{stem}_accesses"), draw_utilization(example, f"{stem}_utilization")]
    if roofs:
        figures.append(draw_roofline(roofs, page.figures_dir / "hardware_roofline"))
    return hardware_section(results, roofs, figures, page.base)
