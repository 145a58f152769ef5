"""Terminal tables (rich) for ``dnnmeter hardware``: totals, per layer, and the roofline.

Each takes the stored records (:class:`~dnnmeter.hardware.records.HardwareRecord`,
:class:`~dnnmeter.hardware.roofline.RooflineRecord`: ``result.record()``, or read back from a
study); numbers become human units (M, G, ms, %) here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from dnnmeter.hardware.ceilings import Ceilings
from dnnmeter.hardware.records import HardwareRecord
from dnnmeter.hardware.roofline import RooflineRecord
from dnnmeter.report.format import energy, si, times
from dnnmeter.report.format import ms as format_ms
from dnnmeter.report.format import pct as format_pct

__all__ = ["ceilings_table", "hardware_layers_table", "hardware_tables", "hardware_totals_table",
           "roofline_layers_table", "roofline_table"]


def pct(x: float | None) -> str:
    return format_pct(x, 1)


def ms(seconds: float | None) -> str:
    return format_ms(seconds, significant=True)


def _settings_text(result: HardwareRecord) -> str:
    s = result.settings
    array = s.get("array") or ["?", "?"]
    sram = "/".join(str(v) for v in s.get("sram_kb") or [])
    return (f"array {array[0]}x{array[-1]}, dataflow {s.get('dataflow')}, SRAM {sram} KB, {s.get('bits')}-bit words, "
            f"batch {s.get('batch_size') or '-'}, energy table {s.get('energy_table')}")


def hardware_totals_table(result: HardwareRecord) -> Table:
    """The whole model: MACs, accesses with and without reuse, array cycles, energies."""
    t = result.totals
    table = Table(title=f"{result.model}: hardware cost (whole batch)", title_justify="left",
                  caption=_settings_text(result), caption_justify="left")
    table.add_column("quantity", justify="left")
    table.add_column("value", justify="right")
    table.add_column("note", justify="left")
    rows = [
        ("MACs", si(t.macs), "products of conv, linear and matmul layers"),
        ("naive accesses", si(t.naive_accesses), "4 per MAC, words"),
    ]
    for kind, left in t.accesses_with_reuse.items():
        if kind != "none":
            rows.append((f"with {kind} reuse" if kind != "all" else "with all reuse", si(left),
                         f"{times(t.reduction_by_reuse[kind])} fewer than naive"))
    rows += [
        ("DRAM lower bound", si(t.dram_lower_bound), "each weight, input and output once"),
        ("array cycles", si(t.cycles), "SCALE-Sim compute model, no stalls"),
        ("array utilisation", pct(t.utilization), "MACs / (cycles x PEs)"),
        ("SRAM reads / writes", f"{si(sum(t.sram_reads.values()))} / {si(sum(t.sram_writes.values()))}", "words"),
        ("DRAM reads / writes", f"{si(sum(t.dram_reads.values()))} / {si(sum(t.dram_writes.values()))}", "words"),
        ("DRAM vs lower bound", times(t.dram_vs_lower_bound), "1x: every word moved once"),
    ]
    joules = t.energy
    for scenario in ("naive", "reuse", "systolic"):
        rows.append((f"energy, {scenario}", energy(getattr(joules, scenario), joules.unit),
                     f"estimated ({joules.table}, {joules.bits} bits)"))
    for row in rows:
        table.add_row(*row)
    return table


def hardware_layers_table(result: HardwareRecord) -> Table:
    """One row per product layer: accesses, the array's cycles and traffic, energy."""
    layers = result.layers
    table = Table(title=f"{result.model}: per layer ({len(layers)} layers; accesses in words)",
                  title_justify="left")
    for col in ("layer", "kind", "MACs", "naive", "all reuse", "lower bound", "cycles", "util.", "map. eff.",
                "SRAM r/w", "DRAM r/w", "DRAM / bound", "energy, reuse (est.)"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    unit = result.totals.energy.unit
    for layer in layers:
        table.add_row(
            layer.name, layer.kind, si(layer.macs), si(layer.naive_accesses),
            si(layer.accesses_with_reuse["all"]), si(layer.dram_lower_bound), si(layer.cycles),
            pct(layer.utilization), pct(layer.mapping_efficiency),
            f"{si(sum(layer.sram_reads.values()))} / {si(sum(layer.sram_writes.values()))}",
            f"{si(sum(layer.dram_reads.values()))} / {si(sum(layer.dram_writes.values()))}",
            times(layer.dram_vs_lower_bound), energy(layer.energy_reuse, unit),
        )
    return table


def ceilings_table(ceilings: Ceilings) -> Table:
    """The machine's measured ceilings and how they were measured."""
    table = Table(title=f"Ceilings of {ceilings.device_name or ceilings.device} "
                        f"({ceilings.label})", title_justify="left")
    table.add_column("ceiling", justify="left")
    table.add_column("value", justify="right")
    table.add_column("how", justify="left")
    reason = ceilings.unavailable_reason
    peak, bandwidth = ceilings.peak_flops_per_s, ceilings.bandwidth_bytes_per_s
    table.add_row("peak compute", "-" if peak is None else f"{peak / 1e9:.3g} GFLOP/s",
                  reason or ceilings.flops_method)
    table.add_row("memory bandwidth", "-" if bandwidth is None else f"{bandwidth / 1e9:.3g} GB/s",
                  reason or ceilings.bandwidth_method)
    ridge = ceilings.ridge_flops_per_byte
    table.add_row("ridge point", "-" if ridge is None else f"{ridge:.3g} FLOP/byte", "peak / bandwidth")
    threads = ceilings.threads
    table.caption = f"{ceilings.dtype}, {threads if threads is not None else '-'} thread(s)"
    return table


def roofline_table(roof: RooflineRecord) -> Table:
    """The whole model against the roof: attainable and measured time, and their ratio."""
    t = roof.totals
    table = Table(title=f"{roof.model}: roofline (batch {roof.batch_size})", title_justify="left")
    table.add_column("quantity", justify="left")
    table.add_column("value", justify="right")
    bounds = t.bound_counts
    latency = t.measured_latency_s
    rows = [
        ("FLOPs (2 x MACs, products)", si(t.flops)),
        ("minimum bytes (DRAM lower bound)", si(t.min_bytes)),
        ("arithmetic intensity (FLOP/byte)", f"{t.arithmetic_intensity_flops_per_byte or 0:.3g}"),
        ("layers compute- / memory-bound", f"{bounds.get('compute', 0)} / {bounds.get('memory', 0)}"),
        ("attainable time (ms)", ms(t.attainable_time_s)),
        ("measured latency (ms)", ms(latency) if latency is not None else f"- ({roof.latency_unavailable_reason})"),
        ("sum of measured layer times (ms)", ms(t.measured_layers_time_s)),
        ("fraction of the roofline", pct(t.fraction_of_roofline)),
    ]
    for row in rows:
        table.add_row(*row)
    notes = list(roof.notes)
    if roof.layer_times_unavailable_reason:
        notes.append("per layer: " + roof.layer_times_unavailable_reason)
    table.caption = "; ".join(notes) or "fraction = attainable time / measured time; 100% is the machine's limit"
    return table


def roofline_layers_table(roof: RooflineRecord) -> Table:
    layers = roof.layers
    table = Table(title=f"{roof.model}: layers under the roof", title_justify="left")
    for col in ("layer", "kind", "GFLOPs", "FLOP/byte", "bound", "attainable (ms)", "measured (ms)", "of roofline"):
        table.add_column(col, justify="left" if col in ("layer", "kind", "bound") else "right")
    for layer in layers:
        table.add_row(layer.name, layer.kind, f"{layer.flops / 1e9:.3g}",
                      f"{layer.arithmetic_intensity_flops_per_byte:.3g}", layer.bound,
                      ms(layer.attainable_time_s), ms(layer.measured_time_s), pct(layer.fraction_of_roofline))
    return table


def hardware_tables(result: HardwareRecord | None, roof: RooflineRecord | None = None,
                    per_layer: bool = True) -> Sequence[Table]:
    """Every table for one model, in the order the CLI prints them."""
    tables: list[Table] = []
    if result is not None:
        tables.append(hardware_totals_table(result))
        if per_layer:
            tables.append(hardware_layers_table(result))
    if roof is not None:
        tables.append(ceilings_table(roof.ceilings))
        tables.append(roofline_table(roof))
        if per_layer:
            tables.append(roofline_layers_table(roof))
    return tables
