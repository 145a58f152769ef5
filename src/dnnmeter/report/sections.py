"""The report's sections beyond the models study: the hardware model of every model, and
the modifications study (variants trained, their curves, what each change bought and cost).

Each function takes results.json's dict and the figures folder, draws its figures there and
returns an HTML fragment (empty when the study holds nothing for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from dnnmeter.report.format import num, ratio
from dnnmeter.report.markup import cell, figure_html, head, row, table
from dnnmeter.report.plot import FigureResult

Study = Mapping[str, Any]
# The model whose per-layer accesses and array utilisation the report draws: the hardware
# study's example network; the first model with a hardware result when it is absent.
EXAMPLE_MODELS = ("alexnet", "resnet18")


def hardware_part(study: Study, figures_dir: Path, base: Path) -> str:
    from dnnmeter.report.hardware_figures import draw_accesses, draw_roofline, draw_utilization
    from dnnmeter.report.hardware_section import hardware_section

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


# --- the modifications study -----------------------------------------------------------------


def _variants_table(variants: Sequence[Mapping[str, Any]]) -> str:
    first = variants[0]
    rows = []
    for v in variants:
        rows.append(row([
            f'<td class="l">{escape(str(v.get("variant")))}</td>',
            f'<td class="l">{escape(", ".join(v.get("ops") or []) or "-")}</td>',
            cell(num(v.get("params"), 4)), cell(ratio(v.get("params"), first.get("params"))),
            cell(num(v.get("macs"), 4, 1e-6)), cell(ratio(v.get("macs"), first.get("macs"))),
            cell(num(v.get("train_accuracy"), 3), "measured"), cell(num(v.get("val_accuracy"), 3), "measured"),
            cell(num(v.get("time_per_epoch_s"), 3), "measured"),
            cell(ratio(v.get("time_per_epoch_s"), first.get("time_per_epoch_s"))),
            cell(str(len(v.get("history") or []))), cell(str(v.get("nproc", 1))),
        ]))  # fmt: skip
    header = head("variant", "ops", "params", "vs first", "MMACs", "vs first", "train acc.", "val acc.",
                  "s / epoch", "vs first", "epochs", "processes", left=2)
    return table(header, rows)


def _classes_text(v: Mapping[str, Any]) -> str:
    def names(rows: Sequence[Mapping[str, Any]]) -> str:
        return ", ".join(f"{r.get('class_name')} ({num(r.get('accuracy'), 2)})" for r in rows) or "-"

    return (f"<p>{escape(str(v.get('variant')))}: best classes {escape(names(v.get('best_classes') or []))}; "
            f"worst classes {escape(names(v.get('worst_classes') or []))}.</p>")


def _averaging_text(variants: Sequence[Mapping[str, Any]]) -> str:
    averaged = [v for v in variants if (v.get("nproc") or 1) > 1]
    single = {(v.get("base_model"), tuple(v.get("ops") or ())): v for v in variants if (v.get("nproc") or 1) == 1}
    parts = []
    for a in averaged:
        s = single.get((a.get("base_model"), tuple(a.get("ops") or ())))
        if s is None:
            continue
        parts.append(
            f"<p>Local SGD ({a.get('nproc')} processes, each on its shard of the data, models averaged "
            f"periodically): validation accuracy {num(a.get('val_accuracy'), 3)} against "
            f"{num(s.get('val_accuracy'), 3)} in one process; {num(a.get('time_per_epoch_s'), 3)} s per epoch "
            f"against {num(s.get('time_per_epoch_s'), 3)} s, on the same machine (its cores shared by the "
            "processes).</p>")
    return "".join(parts)


def _curves_figure(variants: Sequence[Mapping[str, Any]], figures_dir: Path) -> FigureResult:
    from dnnmeter.train.curves import plot_curves

    title = "Training and validation curves of every variant"
    caption = "Loss and top-1 accuracy per epoch; solid lines validation, dashed training (the seed's figure)."
    runs = [{**v, "model": v.get("variant"), "distributed": None} for v in variants if v.get("history")]
    if not runs:
        return FigureResult(name="modifications_curves", title=title, skipped_reason="no variant has a history",
                            caption=caption)
    figures_dir.mkdir(parents=True, exist_ok=True)
    png = plot_curves(runs, figures_dir / "modifications_curves.png")
    svg = plot_curves(runs, figures_dir / "modifications_curves.svg")
    return FigureResult(name="modifications_curves", title=title, png=png, svg=svg, caption=caption)


def modifications_part(study: Study, figures_dir: Path, base: Path) -> str:
    mods = study.get("modifications") or {}
    variants = mods.get("variants") or []
    if not variants:
        return ""
    s = mods.get("settings") or {}
    what = (f"Each variant trained on {s.get('data')} with seed {s.get('seed')}, the same settings for all "
            f"(epochs {variants[0].get('settings', {}).get('epochs', '?')}, batch "
            f"{variants[0].get('settings', {}).get('batch_size', '?')}, augmentation "
            f"{', '.join(s.get('augment') or []) or 'none'}). Ratios are against the first variant.")
    parts = ['<h2 id="modifications">Operation modifications: what each change buys and costs</h2>',
             f"<p>{escape(what)}</p>", _variants_table(variants), _averaging_text(variants)]
    parts += [_classes_text(v) for v in variants if (v.get("nproc") or 1) == 1]
    parts.append(figure_html(_curves_figure(variants, figures_dir), base))
    return "".join(parts)


# --- quantization and pruning ------------------------------------------------------------------


def _figure(draw: Any, points: Sequence[Mapping[str, Any]], stem: Path, title: str, caption: str) -> FigureResult:
    from dnnmeter.errors import DnnmeterError

    try:
        png, svg = draw(points, stem, title=title)
    except DnnmeterError as exc:
        return FigureResult(name=stem.name, title=title, skipped_reason=str(exc), caption=caption)
    return FigureResult(name=stem.name, title=title, png=png, svg=svg, caption=caption)


def _quant_table(points: Sequence[Mapping[str, Any]]) -> str:
    rows = [row([
        f'<td class="l">{escape("float" if p["kind"] == "float" else ("int8 (" + str(p.get("int8_path")) + ")" if p["kind"] == "int8" else str(p["bits"]) + "-bit fixed point"))}</td>',
        cell(num(p.get("size_bytes"), 3, 1e-6), "measured" if p.get("size_kind") == "measured" else "estimated"),
        cell(num(p.get("latency_s"), 3, 1e3), "measured", p.get("latency_reason")),
        cell(num(p.get("sqnr_db"), 3), "measured", p.get("sqnr_reason")),
        cell(num(p.get("top1"), 3), "measured"), cell(num(p.get("accuracy_delta"), 2), "measured"),
    ]) for p in points]  # fmt: skip
    return table(head("model", "size (MB)", "latency (ms, batch 1)", "SQNR (dB)", "top-1", "change"), rows)


def _prune_table(points: Sequence[Mapping[str, Any]]) -> str:
    rows = [row([
        f'<td class="l">{escape(str(p.get("method")))}</td>', cell(f"{100 * p['sparsity']:.0f}%"),
        cell(num(p.get("nonzero_params"), 4)), cell(num(p.get("compressed_size_bytes"), 3, 1e-6), p.get("compressed_size_kind")),
        cell(num(p.get("macs"), 3, 1e-6)), cell(num(p.get("effective_macs"), 3, 1e-6), "estimated"),
        cell(num((p.get("hardware") or {}).get("cycles"), 3)),
        cell(num(p.get("latency_s"), 3, 1e3), "measured", p.get("latency_reason")),
        cell(num(p.get("top1"), 3), "measured"), cell(num(p.get("accuracy_delta"), 2), "measured"),
    ]) for p in points]  # fmt: skip
    header = head("method", "sparsity", "non-zero params", "compressed (MB)", "MMACs", "effective MMACs",
                  "array cycles", "latency (ms)", "top-1", "change")
    return table(header, rows)


def _fine_tune_text(points: Sequence[Mapping[str, Any]]) -> str:
    epochs = {p.get("fine_tune_epochs") or 0 for p in points if p.get("sparsity")}
    if not epochs or epochs == {0}:
        return "No fine-tuning after pruning."
    return (f"Each pruned copy was fine-tuned for {', '.join(str(e) for e in sorted(epochs))} epoch(s) on the "
            "training split before it was scored (pruned weights kept at zero).")


def compression_part(study: Study, figures_dir: Path, base: Path) -> str:
    from dnnmeter.report.compression_figures import accuracy_vs_bits, accuracy_vs_sparsity

    comp = (study.get("modifications") or {}).get("compression") or {}
    quant, prune = comp.get("quantization") or [], comp.get("pruning") or []
    if not quant and not prune:
        return ""
    parts = [f'<h2 id="compression">Quantization and pruning of the trained {escape(str(comp.get("variant")))} '
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


def extra_sections(study: Study, figures_dir: Path, base: Path) -> list[str]:
    """Every section after the models study's figures, in the report's order."""
    parts = (hardware_part(study, figures_dir, base), modifications_part(study, figures_dir, base),
             compression_part(study, figures_dir, base))
    return [part for part in parts if part]
