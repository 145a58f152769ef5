"""Tables of quantization and pruning sweeps, for the terminal (rich).

Each takes the sweep's points as records (``QuantPoint``, ``PrunePoint``); a stored sweep reads
back with ``QuantPoint.from_dict`` (or a study's ``CompressionData``) and renders the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from dnnmeter.transforms.prune import PrunePoint
from dnnmeter.transforms.quantize import QuantPoint
from dnnmeter.report.format import fixed, millions, ms, pct





def _size_unit(values: Sequence[float | None]) -> tuple[str, float]:
    """MB, or kB when every size is under a megabyte (the tiny models)."""
    largest = max((v for v in values if v is not None), default=0)
    return ("MB", 1e6) if largest >= 1e6 else ("kB", 1e3)


def _bytes(n: float | None, scale: float) -> str:
    return fixed(None if n is None else n / scale, 3)


def _pct(fraction: float | None, signed: bool = False) -> str:
    return pct(fraction, sign=False, signed=signed)


def quant_table(points: Sequence[QuantPoint], title: str = "Quantization") -> Table:
    """One row per variant: float, fake-quantised at each bit width, int8."""
    rows = list(points)
    unit, scale = _size_unit([p.size_bytes for p in rows])
    table = Table(title=title, title_justify="left")
    for name in ("variant", "bits", f"size {unit}", "size", "latency ms", "SQNR dB", "top-1 %", "change (pp)"):
        table.add_column(name, justify="left" if name in ("variant", "size") else "right")
    for p in rows:
        variant = p.kind if p.kind != "int8" else f"int8 ({p.int8_path or 'failed'})"
        sqnr = "-" if p.sqnr_db is None else f"{p.sqnr_db:.1f}"
        table.add_row(variant, str(p.bits), _bytes(p.size_bytes, scale), p.size_kind, ms(p.latency_s),
                      sqnr, _pct(p.top1), _pct(p.accuracy_delta, signed=True))
    return table


def quant_notes(points: Sequence[QuantPoint]) -> list[str]:
    """The reasons behind the table's dashes and estimates, one line each, without repeats."""
    notes: list[str] = []
    unmeasured: dict[str, list[str]] = {}  # reason -> variants
    for p in points:
        if p.latency_s is None and p.latency_reason:
            unmeasured.setdefault(p.latency_reason, []).append(f"{p.kind} {p.bits}-bit")
        if p.size_kind == "estimated":
            notes.append("estimated sizes: conv/linear weights packed at b bits plus a float32 scale per channel")
        notes.extend(f"int8 fallback: {reason}" for reason in p.fallback_reasons or [])
    notes.extend(f"no latency for {', '.join(variants)}: {reason}" for reason, variants in unmeasured.items())
    return list(dict.fromkeys(notes))


def prune_table(points: Sequence[PrunePoint], title: str | None = None) -> Table:
    """One row per sparsity (and method)."""
    rows = list(points)
    methods = sorted({p.method for p in rows})
    unit, scale = _size_unit([p.size_bytes for p in rows])
    table = Table(title=title or f"Pruning ({', '.join(methods)})", title_justify="left")
    columns = ("method", "sparsity %", "params M", "non-zero M", f"size {unit}", f"compressed {unit}", "MMACs",
               "effective MMACs", "cycles (32x32 os)", "latency ms", "top-1 %", "change (pp)")
    for name in columns:
        table.add_column(name, justify="left" if name == "method" else "right")
    for p in rows:
        compressed = _bytes(p.compressed_size_bytes, scale) + ("*" if p.compressed_size_kind == "estimated" else "")
        cycles = (p.hardware or {}).get("cycles")
        table.add_row(p.method, pct(p.sparsity, 0, sign=False), millions(p.params, 3), millions(p.nonzero_params, 3),
                      _bytes(p.size_bytes, scale), compressed, millions(p.macs, 3), millions(p.effective_macs, 3),
                      fixed(cycles, 0), ms(p.latency_s), _pct(p.top1),
                      _pct(p.accuracy_delta, signed=True))
    return table


def prune_notes(points: Sequence[PrunePoint]) -> list[str]:
    """What the starred and effective figures mean, and the layers structured pruning skipped."""
    rows = list(points)
    notes: list[str] = []
    if any(p.compressed_size_kind == "estimated" for p in rows):
        notes.append(f"* estimated: {rows[0].compressed_format}")
    if any(p.method == "unstructured" for p in rows):
        notes.append("unstructured pruning keeps every shape: dense MACs, size, cycles and latency do not change; "
                     "effective MACs are what a zero-skipping accelerator would do")
    skipped: dict[str, str] = {}
    for p in rows:
        skipped.update(p.skipped_layers or {})
    notes.extend(f"not pruned: {name}: {reason}" for name, reason in skipped.items())
    return notes
