"""The report's hardware section: accesses with and without reuse, the roofline, array
utilisation, as one HTML fragment.

It reads only stored dicts (``HardwareResult.to_dict()``, ``RooflineResult.to_dict()``) and
the figures drawn from them (:mod:`dnnmeter.report.hardware_figures`), so the report can be
rebuilt from the store. Every hardware count is estimated (a model of the hardware, not a
measurement); the ceilings and the measured times of the roofline are measured.

>>> html = hardware_section([hw.to_dict()], [roof.to_dict()], figures, Path("out"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnnmeter.report.format import num
from dnnmeter.report.hardware_figures import draw_accesses, draw_roofline, draw_utilization
from dnnmeter.report.markup import cell, figure_html, head, mark, row, table
from dnnmeter.report.plot import FigureResult
from dnnmeter.report.sections import Page

__all__ = ["hardware_section", "html"]

# The model whose per-layer accesses and array utilisation the report draws: the hardware
# study's example network; the first model with a hardware result when it is absent.
EXAMPLE_MODELS = ("alexnet", "resnet18")

Result = Mapping[str, Any]


def _text(value: Any) -> str:
    return f'<td class="l">{escape(str(value))}</td>'


def _settings_line(results: Sequence[Result]) -> str:
    settings = [dict(r.get("settings") or {}) for r in results]
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


def _energy_unit(results: Sequence[Result]) -> tuple[str, str]:
    units = {((r.get("totals") or {}).get("energy") or {}).get("unit") for r in results}
    if units == {"J"}:
        return "J", "mJ"
    return "normalized", "G x one MAC"


def summary_table(results: Sequence[Result]) -> str:
    unit, shown = _energy_unit(results)
    hdr = head("network", "GMACs", "naive accesses (M)", "with all reuse (M)", "DRAM lower bound (M)",
               "reuse gain (x)", "array DRAM (M)", "DRAM / bound", "array cycles (M)", "utilisation (%)",
               f"energy naive ({shown})", f"energy reuse ({shown})", f"energy array ({shown})")
    rows = []
    for r in results:
        t = r.get("totals") or {}
        e = t.get("energy") or {}
        e_unit = e.get("unit", unit)
        rows.append(row([
            _text(r.get("model")), cell(num(t.get("macs"), 4, 1e-9)), cell(num(t.get("naive_accesses"), 4, 1e-6)),
            cell(num((t.get("accesses_with_reuse") or {}).get("all"), 4, 1e-6)),
            cell(num(t.get("dram_lower_bound"), 4, 1e-6)), cell(num((t.get("reduction_by_reuse") or {}).get("all"), 3)),
            cell(num(t.get("dram_accesses"), 4, 1e-6)), cell(num(t.get("dram_vs_lower_bound"), 3)),
            cell(num(t.get("cycles"), 4, 1e-6)),
            cell(num(t.get("utilization"), 3, 100), why_missing="no layer on the array"),
            _energy(e.get("naive"), e_unit), _energy(e.get("reuse"), e_unit), _energy(e.get("systolic"), e_unit),
        ]))
    legend = ("<p class=\"muted\">Naive: 4 accesses per MAC (read weight, input and partial sum, write the sum). "
              "With all reuse: what is left when convolutional, filter, image and partial-sum reuse are all "
              "exploited on chip; the lower bound moves each weight, input and output once. Array DRAM: the "
              "simulated systolic array's DRAM traffic with these SRAMs. Energy reuse: an ideal memory hierarchy; "
              "energy array: the simulated array's SRAM and DRAM traffic"
              + (" (eyeriss units: one 16-bit ALU MAC = 1)" if unit != "J" else "") + ".</p>")
    return table(hdr, rows) + legend


def _reuse_table(results: Sequence[Result]) -> str:
    kinds = ("convolutional", "filter", "image", "psum", "all")
    hdr = head("network", *[f"{k} reuse alone (x fewer)" if k != "all" else "all reuse (x fewer)" for k in kinds])
    rows = [row([_text(r.get("model")),
                 *[cell(num(((r.get("totals") or {}).get("reduction_by_reuse") or {}).get(k), 3)) for k in kinds]])
            for r in results]
    return "<h3>What each kind of data reuse saves</h3>" + table(hdr, rows)


# --- roofline ---------------------------------------------------------------------------------


def _ceilings_text(ceilings: Mapping[str, Any]) -> str:
    if not ceilings.get("peak_flops_per_s"):
        return f"<p>No ceilings: {escape(str(ceilings.get('unavailable_reason') or 'not measured'))}.</p>"
    label = str(ceilings.get("label") or "measured")
    return (f"<p>Ceilings of {escape(str(ceilings.get('device_name') or ceilings.get('device')))} "
            f"({escape(str(ceilings.get('dtype')))}, {escape(str(ceilings.get('threads') or '-'))} thread(s)): peak "
            f"{num(ceilings['peak_flops_per_s'], 3, 1e-9)}{mark(label)} GFLOP/s "
            f"({escape(str(ceilings.get('flops_method')))}), bandwidth "
            f"{num(ceilings['bandwidth_bytes_per_s'], 3, 1e-9)}{mark(label)} GB/s "
            f"({escape(str(ceilings.get('bandwidth_method')))}); ridge point "
            f"{num(ceilings.get('ridge_flops_per_byte'), 3)} FLOPs per byte. A layer whose arithmetic intensity "
            "(2 x MACs per byte of its DRAM lower bound) is below the ridge is memory-bound.</p>")


def roofline_table(rooflines: Sequence[Result]) -> str:
    hdr = head("network", "batch", "GFLOPs (2 x GMACs)", "FLOPs per byte", "compute-bound layers",
               "memory-bound layers", "attainable (ms)", "measured (ms)", "of the roofline (%)")
    rows = []
    for r in rooflines:
        t = r.get("totals") or {}
        bounds = t.get("bound_counts") or {}
        rows.append(row([
            _text(r.get("model")), cell(str(r.get("batch_size", "-"))), cell(num(t.get("flops"), 4, 1e-9)),
            cell(num(t.get("arithmetic_intensity_flops_per_byte"), 3)), cell(str(bounds.get("compute", 0))),
            cell(str(bounds.get("memory", 0))), cell(num(t.get("attainable_time_s"), 3, 1e3), "estimated"),
            cell(num(t.get("measured_latency_s"), 3, 1e3), "measured", r.get("latency_unavailable_reason")),
            cell(num(t.get("fraction_of_roofline"), 3, 100), "measured", r.get("latency_unavailable_reason")),
        ]))
    note = ("<p class=\"muted\">Attainable: the sum over conv, linear and matmul layers of 2 x MACs / "
            "min(peak, intensity x bandwidth); element-wise layers are not in it. Measured: median forward "
            "latency. Of the roofline: attainable / measured; 100 % would be the machine's limit.</p>")
    return table(hdr, rows) + note


# --- per layer ----------------------------------------------------------------------------------


def _layer_rows(result: Result | None, roof: Result | None) -> list[str]:
    by_name = {layer["name"]: layer for layer in (roof or {}).get("layers") or []}
    layers = (result or {}).get("layers") or [{"name": n, "kind": v.get("kind")} for n, v in by_name.items()]
    reason = (roof or {}).get("layer_times_unavailable_reason")
    rows = []
    for layer in layers:
        rl = by_name.get(layer["name"], {})
        rows.append(row([
            _text(layer["name"]), _text(layer.get("kind")), cell(num(layer.get("macs"), 4, 1e-6)),
            cell(num(layer.get("naive_accesses"), 4, 1e-6)),
            cell(num((layer.get("accesses_with_reuse") or {}).get("all"), 4, 1e-6)),
            cell(num(layer.get("dram_lower_bound"), 4, 1e-6)), cell(num(layer.get("dram_accesses"), 4, 1e-6)),
            cell(num(layer.get("cycles"), 4, 1e-3)), cell(num(layer.get("utilization"), 3, 100)),
            cell(num(layer.get("mapping_efficiency"), 3, 100)),
            cell(num(rl.get("arithmetic_intensity_flops_per_byte"), 3)), _text(rl.get("bound", "-")),
            cell(num(rl.get("attainable_time_s"), 3, 1e3)),
            cell(num(rl.get("measured_time_s"), 3, 1e3), "measured", reason or "not measured"),
            cell(num(rl.get("fraction_of_roofline"), 3, 100), None, reason or "not measured"),
        ]))
    return rows


def layers_details(result: Result | None, roof: Result | None) -> str:
    """One model's per-layer table, folded (a network can have hundreds of layers)."""
    model = (result or roof or {}).get("model", "?")
    hdr = head("layer", "kind", "MACs (M)", "naive (M)", "all reuse (M)", "lower bound (M)", "array DRAM (M)",
               "cycles (k)", "utilisation (%)", "mapping (%)", "FLOPs/byte", "bound", "attainable (ms)",
               "measured (ms)", "of roofline (%)", left=2)
    rows = _layer_rows(result, roof)
    notes = [*((result or {}).get("notes") or []), *((roof or {}).get("notes") or [])]
    if (roof or {}).get("layer_times_unavailable_reason"):
        notes.append("measured per layer: " + str(roof["layer_times_unavailable_reason"]))  # type: ignore[index]
    note = "".join(f"<li>{escape(str(n))}</li>" for n in notes)
    return (f"<details><summary>{escape(str(model))}: per layer ({len(rows)} layers)</summary>"
            + table(hdr, rows) + (f"<ul class=\"muted\">{note}</ul>" if note else "") + "</details>")


def hardware_section(results: Sequence[Result], rooflines: Sequence[Result] = (),
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
        parts += ["<h3>Roofline</h3>", _ceilings_text(rooflines[0].get("ceilings") or {}), roofline_table(rooflines)]
    roofs = {r.get("model"): r for r in rooflines}
    names = list(dict.fromkeys([*(r.get("model") for r in results), *roofs]))
    by_model = {r.get("model"): r for r in results}
    parts.append("<h3>Per layer</h3>")
    parts += [layers_details(by_model.get(n), roofs.get(n)) for n in names]
    if figures:
        parts.append("<h3>Figures</h3>")
        parts += [figure_html(f, base) for f in figures]
    return "".join(parts)


def html(page: Page) -> str:
    """The hardware section of the study's models, with its figures (empty without any)."""
    study, figures_dir, base = page.study, page.figures_dir, page.base
    models = study.get("models") or []
    results = [m["hardware"] for m in models if m.get("hardware")]
    roofs = [m["roofline"] for m in models if m.get("roofline")]
    if not results and not roofs:
        return ""
    figures: list[FigureResult] = []
    example = next((r for name in EXAMPLE_MODELS for r in results if r.get("model") == name), None)
    example = example or (results[0] if results else None)
    if example is not None:
        stem = figures_dir / f"hardware_{example['model']}"
        figures += [draw_accesses(example, f"{stem}_accesses"), draw_utilization(example, f"{stem}_utilization")]
    if roofs:
        figures.append(draw_roofline(roofs, figures_dir / "hardware_roofline"))
    return hardware_section(results, roofs, figures, base)
