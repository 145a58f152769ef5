"""The modifications study: the variants trained, their learning curves, what each change of
operations bought (accuracy) and cost (parameters, MACs, time per epoch)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from dnnmeter.accuracy.result import ClassAccuracy
from dnnmeter.report.format import num, ratio
from dnnmeter.report.markup import cell, figure_html, head, row, table
from dnnmeter.report.plot import FigureResult, figure_result
from dnnmeter.report.sections import Page
from dnnmeter.results.records import VariantRecord


def _variants_table(variants: Sequence[VariantRecord]) -> str:
    first = variants[0]
    rows = []
    for v in variants:
        rows.append(row([
            f'<td class="l">{escape(v.variant)}</td>',
            f'<td class="l">{escape(", ".join(v.ops) or "-")}</td>',
            cell(num(v.params, 4)), cell(ratio(v.params, first.params)),
            cell(num(v.macs, 4, 1e-6)), cell(ratio(v.macs, first.macs)),
            cell(num(v.train_accuracy, 3), "measured"), cell(num(v.val_accuracy, 3), "measured"),
            cell(num(v.time_per_epoch_s, 3), "measured"),
            cell(ratio(v.time_per_epoch_s, first.time_per_epoch_s)),
            cell(str(len(v.history))), cell(str(v.nproc)),
        ]))  # fmt: skip
    header = head("variant", "ops", "params", "vs first", "MMACs", "vs first", "train acc.", "val acc.",
                  "s / epoch", "vs first", "epochs", "processes", left=2)
    return table(header, rows)


def _classes_text(v: VariantRecord) -> str:
    def names(rows: Sequence[ClassAccuracy]) -> str:
        return ", ".join(f"{r.class_name} ({num(r.accuracy, 2)})" for r in rows) or "-"

    return (f"<p>{escape(v.variant)}: best classes {escape(names(v.best_classes))}; "
            f"worst classes {escape(names(v.worst_classes))}.</p>")


def _averaging_text(variants: Sequence[VariantRecord]) -> str:
    averaged = [v for v in variants if (v.nproc or 1) > 1]
    single = {(v.base_model, tuple(v.ops)): v for v in variants if (v.nproc or 1) == 1}
    parts = []
    for a in averaged:
        s = single.get((a.base_model, tuple(a.ops)))
        if s is None:
            continue
        parts.append(
            f"<p>Local SGD ({a.nproc} processes, each on its shard of the data, models averaged "
            f"periodically): validation accuracy {num(a.val_accuracy, 3)} against "
            f"{num(s.val_accuracy, 3)} in one process; {num(a.time_per_epoch_s, 3)} s per epoch "
            f"against {num(s.time_per_epoch_s, 3)} s, on the same machine (its cores shared by the "
            "processes).</p>")
    return "".join(parts)


def _curves_figure(variants: Sequence[VariantRecord], figures_dir: Path) -> FigureResult:
    from dnnmeter.training.curves import CURVES_DPI, curves_figure

    title = "Training and validation curves of every variant"
    caption = "Loss and top-1 accuracy per epoch; solid lines validation, dashed training (the seed's figure)."
    runs = [{**v.to_dict(), "model": v.variant, "distributed": None} for v in variants if v.history]
    drawn = curves_figure(runs) if runs else "no variant has a history"
    return figure_result(drawn, figures_dir / "modifications_curves", title, caption, dpi=CURVES_DPI)


def html(page: Page) -> str:
    """The variants trained, their curves, what each change bought and cost."""
    mods = page.data.modifications
    variants = mods.variants
    if not variants:
        return ""
    s = mods.settings
    first = variants[0].settings
    what = (f"Each variant trained on {s.data if s else None} with seed {s.seed if s else None}, the same settings "
            f"for all (epochs {first.get('epochs', '?')}, batch {first.get('batch_size', '?')}, augmentation "
            f"{', '.join(s.augment if s else ()) or 'none'}). Ratios are against the first variant.")
    parts = ['<h2 id="modifications">Operation modifications: what each change buys and costs</h2>',
             f"<p>{escape(what)}</p>", _variants_table(variants), _averaging_text(variants)]
    parts += [_classes_text(v) for v in variants if (v.nproc or 1) == 1]
    parts.append(figure_html(_curves_figure(variants, page.figures_dir), page.base))
    return "".join(parts)


# --- quantization and pruning ------------------------------------------------------------------
