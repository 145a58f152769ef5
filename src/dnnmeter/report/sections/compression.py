"""Quantization and pruning of the modifications study's first variant, trained: accuracy
against bits and against sparsity, with the tables."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnnmeter.transforms.prune import PrunePoint
from dnnmeter.transforms.quantize import QuantPoint
from dnnmeter.report.compression_figures import accuracy_vs_bits, accuracy_vs_sparsity
from dnnmeter.report.format import num
from dnnmeter.report.markup import cell, figure_html, head, row, table
from dnnmeter.report.plot import FigureResult
from dnnmeter.report.sections import Page


def _figure(draw: Any, points: Sequence[Any], stem: Path, title: str, caption: str) -> FigureResult:
    from dnnmeter.errors import DnnmeterError

    try:
        png, svg = draw(points, stem, title=title)
    except DnnmeterError as exc:
        return FigureResult(name=stem.name, title=title, skipped_reason=str(exc), caption=caption)
    return FigureResult(name=stem.name, title=title, png=png, svg=svg, caption=caption)


def _quant_name(p: QuantPoint) -> str:
    if p.kind == "float":
        return "float"
    return f"int8 ({p.int8_path})" if p.kind == "int8" else f"{p.bits}-bit fixed point"


def _quant_table(points: Sequence[QuantPoint]) -> str:
    rows = [row([
        f'<td class="l">{escape(_quant_name(p))}</td>',
        cell(num(p.size_bytes, 3, 1e-6), "measured" if p.size_kind == "measured" else "estimated"),
        cell(num(p.latency_s, 3, 1e3), "measured", p.latency_reason),
        cell(num(p.sqnr_db, 3), "measured", p.sqnr_reason),
        cell(num(p.top1, 3), "measured"), cell(num(p.accuracy_delta, 2), "measured"),
    ]) for p in points]  # fmt: skip
    return table(head("model", "size (MB)", "latency (ms, batch 1)", "SQNR (dB)", "top-1", "change"), rows)


def _prune_table(points: Sequence[PrunePoint]) -> str:
    rows = [row([
        f'<td class="l">{escape(p.method)}</td>', cell(f"{100 * p.sparsity:.0f}%"),
        cell(num(p.nonzero_params, 4)), cell(num(p.compressed_size_bytes, 3, 1e-6), p.compressed_size_kind),
        cell(num(p.macs, 3, 1e-6)), cell(num(p.effective_macs, 3, 1e-6), "estimated"),
        cell(num((p.hardware or {}).get("cycles"), 3)),
        cell(num(p.latency_s, 3, 1e3), "measured", p.latency_reason),
        cell(num(p.top1, 3), "measured"), cell(num(p.accuracy_delta, 2), "measured"),
    ]) for p in points]  # fmt: skip
    header = head("method", "sparsity", "non-zero params", "compressed (MB)", "MMACs", "effective MMACs",
                  "array cycles", "latency (ms)", "top-1", "change")
    return table(header, rows)


def _fine_tune_text(points: Sequence[PrunePoint]) -> str:
    epochs = {p.fine_tune_epochs or 0 for p in points if p.sparsity}
    if not epochs or epochs == {0}:
        return "No fine-tuning after pruning."
    return (f"Each pruned copy was fine-tuned for {', '.join(str(e) for e in sorted(epochs))} epoch(s) on the "
            "training split before it was scored (pruned weights kept at zero).")


def html(page: Page) -> str:
    """The quantization and pruning sweeps of the first variant, trained."""
    figures_dir, base = page.figures_dir, page.base
    comp = page.data.modifications.compression
    quant, prune = (comp.quantization, comp.pruning) if comp is not None else ([], [])
    if comp is None or not quant and not prune:
        return ""
    parts = [f'<h2 id="compression">Quantization and pruning of the trained {escape(str(comp.variant))} '
             "network</h2><p>Accuracy on the validation split it was trained against; fixed point is "
             "fake-quantised (weights per output channel, activations per tensor), so its latency is not "
             "measured; int8 runs torch's int8 kernels. Unstructured pruning zeroes weights (dense hardware "
             "does the same MACs; <em>effective</em> MACs are what a zero-skipping accelerator could skip); "
             "structured pruning removes channels, and the hardware model is re-run on the smaller shapes. "
             f"{_fine_tune_text(prune)}</p>"]
    if quant:
        parts += [_quant_table(quant), figure_html(_figure(
            accuracy_vs_bits, quant, figures_dir / "accuracy_vs_bits", "Accuracy against bits",
            "Top-1 against bit width, and the output SQNR against the float model."), base)]
    if prune:
        parts += [_prune_table(prune), figure_html(_figure(
            accuracy_vs_sparsity, prune, figures_dir / "accuracy_vs_sparsity", "Accuracy against sparsity",
            "Top-1, MACs and size against the fraction of weights pruned."), base)]
    return "".join(parts)
