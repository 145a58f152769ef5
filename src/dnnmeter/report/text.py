"""Terminal tables (rich), JSON and CSV for analyses and the model list.

The only place where numbers become text: units humans read (M, G, MB) appear here and
nowhere in the data.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

from dnnmeter.analysis.folding import FoldedRow, RankedLayer
from dnnmeter.analysis.result import Analysis, LayerCost
from dnnmeter.accuracy.result import EvalResult
from dnnmeter.results.records import VariantRecord
from dnnmeter.report.format import billions, millions, ms, pct, share, size_text
from dnnmeter.zoo.registry import ModelEntry


def to_json(items: Iterable[Any]) -> str:
    return json.dumps([item.to_dict() for item in items], indent=2)


# --- models ---------------------------------------------------------------------------------


def models_table(entries: Sequence[ModelEntry]) -> Table:
    table = Table(title=f"{len(entries)} models", title_justify="left")
    for col, justify in (("name", "left"), ("source", "left"), ("family", "left"),
                         ("input", "right"), ("params (M)", "right"), ("GMACs", "right"),
                         ("top-1", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for e in entries:
        pub = e.published
        table.add_row(
            e.name, e.source, e.family, size_text(e.input_size),
            millions(pub.params) if pub and pub.params else "",
            f"{pub.gmacs:.3f}" if pub and pub.gmacs is not None else "",
            f"{100 * pub.top1:.2f}%" if pub and pub.top1 is not None else "",
        )
    table.caption = "params, GMACs and top-1 are published figures (torchvision weights metadata)"
    return table


# --- analyses -------------------------------------------------------------------------------


def summary_table(analyses: Sequence[Analysis]) -> Table:
    """One row per model: totals, and how they compare with published figures."""
    table = Table(title="Static cost (batch size x input, counted on the meta device)", title_justify="left")
    for col in ("model", "input", "batch", "params (M)", "GMACs", "GFLOPs", "elementwise GFLOPs",
                "activations (M)", "weights (MB)", "published params (M)", "published GMACs"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for a in analyses:
        pub = a.published
        table.add_row(
            a.model, size_text(a.input_size), str(a.batch_size), millions(a.params),
            billions(a.macs), billions(a.flops), billions(a.elementwise_flops),
            millions(a.activations), f"{a.weight_bytes / 1e6:,.1f}",
            millions(pub.params) if pub and pub.params else "",
            f"{pub.gmacs:.3f}" if pub and pub.gmacs is not None else "",
        )
    table.caption = "GFLOPs = 2 x GMACs + element-wise GFLOPs; published = torchvision weights metadata (GFLOPS there are GMACs)"
    return table


def conv_fc_table(analyses: Sequence[Analysis]) -> Table:
    """The seed study's slide: where parameters and operations sit, conv against FC."""
    table = Table(title="Convolutional against fully connected layers", title_justify="left")
    for col in ("model", "conv params (M)", "FC params (M)", "FC share of params",
                "conv GMACs", "FC GMACs", "conv share of MACs"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for a in analyses:
        split = a.conv_vs_fc()
        conv, fc = split["conv"], split["fc"]
        table.add_row(
            a.model, millions(conv.params), millions(fc.params), share(fc.params, a.params),
            billions(conv.macs), billions(fc.macs), share(conv.macs, a.macs),
        )
    return table


def kinds_table(a: Analysis) -> Table:
    table = Table(title=f"{a.model}: by kind of layer", title_justify="left")
    for col in ("kind", "layers", "params (M)", "params", "GMACs", "MACs"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, t in a.by_kind.items():
        if t.layers or t.params or t.macs:
            table.add_row(kind, str(t.layers), millions(t.params), share(t.params, a.params),
                          billions(t.macs), share(t.macs, a.macs))
    return table


def layers_table(a: Analysis) -> Table:
    table = Table(title=f"{a.model}: per layer ({len(a.layers)} rows)", title_justify="left")
    for col in ("layer", "type", "kind", "input", "output", "params", "MACs", "FLOPs", "activations"):
        table.add_column(col, justify="right" if col in ("params", "MACs", "FLOPs", "activations") else "left")
    for layer in a.layers:
        table.add_row(
            layer.name + ("" if layer.executed else " (not run)"), layer.type, layer.kind,
            " ".join(size_text(s) for s in layer.input_shapes[:2]),
            " ".join(size_text(s) for s in layer.output_shapes[:2]),
            f"{layer.params:,}", f"{layer.macs:,}", f"{layer.flops:,}", f"{layer.activations:,}",
        )
    table.add_row("total", "", "", "", "", f"{a.params:,}", f"{a.macs:,}", f"{a.flops:,}",
                  f"{a.activations:,}", style="bold")
    return table


def unsupported_text(a: Analysis) -> str | None:
    if not a.unsupported_ops:
        return None
    ops = ", ".join(f"{name} x{count}" for name, count in a.unsupported_ops.items())
    return f"{a.model}: ops without a cost formula (not in the totals): {ops}"


SUMMARY_FIELDS = ("model", "source", "input_size", "batch_size", "params", "trainable_params",
                  "macs", "flops", "elementwise_flops", "activations", "weight_bytes")
LAYER_FIELDS = ("name", "type", "kind", "input_shapes", "output_shapes", "params", "macs",
                "flops", "elementwise_flops", "activations", "executed")


def analyses_json(analyses: Sequence[Analysis], depth: int | None = None, top: int | None = None) -> str:
    """Each analysis's dict; with ``depth`` its ``layers`` are the folded rows (``depth`` said
    before them), with ``top`` the ``top`` costliest rows, ranked. Give at most one of them."""
    if depth is None and top is None:
        return to_json(analyses)
    out = []
    for a in analyses:
        d = a.to_dict(per_layer=False)
        del d["layers"]
        rows: Sequence[FoldedRow | RankedLayer] = a.fold(depth) if depth is not None else a.top_layers(top or 0)
        d.update({"depth": depth} if depth is not None else {"top": top})
        d["layers"] = [r.to_dict() for r in rows]
        out.append(d)
    return json.dumps(out, indent=2)


FOLDED_FIELDS = ("name", "layers", "params", "params_share", "macs", "macs_share", "flops", "elementwise_flops",
                 "activations")
RANKED_FIELDS = ("rank", *LAYER_FIELDS, "params_share", "macs_share")


def analyses_csv(analyses: Sequence[Analysis], per_layer: bool = False, depth: int | None = None,
                 top: int | None = None) -> str:
    """One row per model; with ``per_layer`` one row per layer, with ``depth`` one per folded
    module, with ``top`` one per costliest layer (the model in column 1). Give at most one."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if depth is not None:
        writer.writerow(("model", "depth", *FOLDED_FIELDS))
        for a in analyses:
            for folded in a.fold(depth):
                row = folded.to_dict()
                writer.writerow((a.model, depth, *(row[f] for f in FOLDED_FIELDS)))
    elif top is not None:
        writer.writerow(("model", *RANKED_FIELDS))
        for a in analyses:
            for ranked in a.top_layers(top):
                row = ranked.to_dict()
                writer.writerow((a.model, *(_cell(row[f]) for f in RANKED_FIELDS)))
    elif per_layer:
        writer.writerow(("model", *LAYER_FIELDS))
        for a in analyses:
            for layer in a.layers:
                row = layer.to_dict()
                writer.writerow((a.model, *(_cell(row[f]) for f in LAYER_FIELDS)))
    else:
        writer.writerow((*SUMMARY_FIELDS, *(f"{k}_{m}" for k in ("conv", "fc") for m in ("params", "macs"))))
        for a in analyses:
            row = a.to_dict(per_layer=False)
            split = a.conv_vs_fc()
            writer.writerow((*(_cell(row[f]) for f in SUMMARY_FIELDS),
                             split["conv"].params, split["conv"].macs, split["fc"].params, split["fc"].macs))
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return json.dumps(value, separators=(",", ":"))
    return value


# --- bench ----------------------------------------------------------------------------------


def bench_tables(results: Sequence[Any]) -> list[Table]:
    """One table per model: a row per batch size."""
    tables: list[Table] = []
    by_model: dict[str, list[Any]] = {}
    for r in results:
        by_model.setdefault(r.model, []).append(r)
    for model, points in by_model.items():
        first = points[0]
        table = Table(title=f"{model} on {first.device}, {first.dtype}, {first.threads} thread(s), input {size_text(first.input_size)}",
                      title_justify="left")
        for col in ("batch", "status", "ms/batch", "ms/image", "images/s", "memory (MB)", "power (W)",
                    "energy/image (mJ)", "samples", "spread", "stable"):
            table.add_column(col, justify="left" if col == "status" else "right")
        for r in points:
            table.add_row(
                str(r.batch_size), r.status if r.status == "ok" else f"{r.status}: {r.error}",
                ms(r.latency_s_median), ms(r.latency_s_per_image),
                "-" if r.images_per_s is None else f"{r.images_per_s:,.1f}",
                "-" if r.peak_memory_bytes is None else f"{r.peak_memory_bytes / 1e6:,.1f}",
                "-" if r.power_w is None else f"{r.power_w:.1f}",
                "-" if r.energy_j_per_image is None else f"{1e3 * r.energy_j_per_image:.2f}",
                str(r.n_samples), "-" if r.spread is None else f"{100 * r.spread:.1f}%",
                "-" if r.stable is None else ("yes" if r.stable else "no"),
            )
        notes = [p.power_unavailable_reason for p in points if p.power_unavailable_reason][:1]
        notes += [p.memory_kind for p in points if p.memory_kind][:1]
        notes += [p.settings.get("threads_chosen") for p in points if p.settings.get("threads_chosen")][:1]
        table.caption = "; ".join(f"{n}" for n in notes if n)
        tables.append(table)
    return tables


BENCH_FIELDS = ("model", "device", "batch_size", "input_size", "dtype", "threads", "status", "error",
                "latency_s_median", "latency_s_p10", "latency_s_p90", "latency_s_cold", "latency_s_per_image",
                "images_per_s", "peak_memory_bytes", "memory_kind", "power_w", "idle_power_w",
                "energy_j_per_image", "energy_j_per_image_above_idle", "power_source",
                "power_unavailable_reason", "stable", "spread", "n_samples", "samples_s")


def bench_csv(results: Sequence[Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(BENCH_FIELDS)
    for r in results:
        row = r.to_dict()
        writer.writerow([_cell(row[f]) for f in BENCH_FIELDS])
    return buf.getvalue()


# --- eval -----------------------------------------------------------------------------------


def eval_tables(result: EvalResult) -> list[Table]:
    """The totals, then the five best and five worst classes."""
    top = Table(title=f"{result.model} on {result.data} ({result.n} images; weights: {result.weights})",
                title_justify="left")
    for col in ("top-1", f"top-{getattr(result, 'top5_k', 5)}", "images/s", "skipped"):
        top.add_column(col, justify="right")
    top.add_row(pct(result.top1), pct(result.top5), f"{result.images_per_s:,.1f}", str(len(result.skipped)))
    tables = [top]
    for title, rows in (("best classes", result.best_classes), ("worst classes", result.worst_classes)):
        t = Table(title=title, title_justify="left")
        for col in ("class", "name", "correct", "images", "accuracy"):
            t.add_column(col, justify="left" if col == "name" else "right")
        for r in rows:
            t.add_row(str(r.class_index), r.class_name, str(r.correct), str(r.count), pct(r.accuracy))
        tables.append(t)
    return tables


def modifications_table(variants: Sequence[VariantRecord]) -> Table:
    """The modifications study: per variant its cost, accuracy and time per epoch."""
    table = Table(title="operation modifications (measured; ratios against the first variant)")
    for name in ("variant", "params (M)", "MMACs", "train acc.", "val acc.", "s / epoch", "epochs", "processes"):
        table.add_column(name, justify="left" if name == "variant" else "right")
    first = variants[0] if variants else None

    def with_ratio(value: float | None, base: float | None, text: str) -> str:
        return text if value is None or not base or value == base else f"{text} ({value / base:.2f}x)"

    for v in variants:
        assert first is not None
        epoch_s = v.time_per_epoch_s
        table.add_row(
            v.variant,
            with_ratio(v.params, first.params, millions(v.params, 3)),
            with_ratio(v.macs, first.macs, millions(v.macs, 2)),
            pct(v.train_accuracy), pct(v.val_accuracy),
            with_ratio(epoch_s, first.time_per_epoch_s, "-" if epoch_s is None else f"{epoch_s:.2f}"),
            str(len(v.history)), str(v.nproc),
        )  # fmt: skip
    return table


# --- training memory ------------------------------------------------------------------------


def megabytes(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f}"


def training_memory_table(a: Analysis) -> Table:
    """What one training step holds, estimated on the meta device (analysis/train_memory.py)."""
    m = a.training_memory
    assert m is not None
    table = Table(title=f"{a.model}: training memory, batch {m.batch_size}, {m.dtype}, {m.optimizer}",
                  title_justify="left")
    table.add_column("part")
    table.add_column("MB", justify="right")
    for part, n in (("weights", m.weight_bytes), ("buffers", m.buffer_bytes), ("inputs", m.input_bytes),
                    ("gradients", m.gradient_bytes), ("optimizer state", m.optimizer_state_bytes),
                    ("activations saved for backward", m.saved_activation_bytes)):
        table.add_row(part, megabytes(n))
    table.add_row(f"peak, first step (in the {m.peak_phase})", megabytes(m.peak_bytes), style="bold")
    table.add_row("peak, later steps (optimizer state kept)", megabytes(m.steady_peak_bytes), style="bold")
    table.caption = "tensor memory (CUDA's max_memory_allocated); a CPU process adds its runtime and allocator"
    return table


def layer_memory_table(a: Analysis) -> Table:
    m = a.training_memory
    assert m is not None
    table = Table(title=f"{a.model}: training memory per layer (bytes)", title_justify="left")
    for col in ("layer", "weights", "gradients", "optimizer state", "saved activations"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in m.layers:
        table.add_row(r.name, f"{r.weight_bytes:,}", f"{r.gradient_bytes:,}", f"{r.optimizer_state_bytes:,}",
                      f"{r.saved_activation_bytes:,}")
    table.add_row("total", f"{m.weight_bytes:,}", f"{m.gradient_bytes:,}", f"{m.optimizer_state_bytes:,}",
                  f"{m.saved_activation_bytes:,}", style="bold")
    return table


# --- folded and top layers ------------------------------------------------------------------


def percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f}%"


def folded_table(a: Analysis, rows: Sequence[FoldedRow], depth: int) -> Table:
    """``analyze --depth N``: rows of :meth:`Analysis.fold`."""
    table = Table(title=f"{a.model}: layers folded to depth {depth} ({len(rows)} rows)", title_justify="left")
    for col in ("module", "layers", "params", "params share", "MACs", "MACs share", "FLOPs"):
        table.add_column(col, justify="left" if col == "module" else "right")
    for r in rows:
        table.add_row(r.name, str(r.layers), f"{r.params:,}", percent(r.params_share), f"{r.macs:,}",
                      percent(r.macs_share), f"{r.flops:,}")
    table.add_row("total", str(sum(r.layers for r in rows)), f"{a.params:,}", percent(1.0 if a.params else 0.0),
                  f"{a.macs:,}", percent(1.0 if a.macs else 0.0), f"{a.flops:,}", style="bold")
    return table


def top_table(a: Analysis, top: Sequence[RankedLayer]) -> Table:
    """``analyze --top K``: rows of :meth:`Analysis.top_layers`."""
    table = Table(title=f"{a.model}: the {len(top)} costliest layers by MACs", title_justify="left")
    for col in ("rank", "layer", "type", "output", "params", "MACs", "MACs share", "FLOPs"):
        table.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for layer in top:
        table.add_row(str(layer.rank), layer.name, layer.type, " ".join(size_text(s) for s in layer.output_shapes[:2]),
                      f"{layer.params:,}", f"{layer.macs:,}", percent(layer.macs_share), f"{layer.flops:,}")
    return table
