"""Figures of quantization and pruning sweeps: accuracy against bits, against sparsity.

Drawn on an Agg canvas (no pyplot: no global state, no window). Each function takes the
sweep's points (``QuantPoint`` or ``PrunePoint`` records) and an output path stem, writes
``stem.png`` and ``stem.svg`` and returns both paths. A figure whose data do not exist
(no accuracy measured) raises InvalidInputError saying so.

>>> accuracy_vs_bits(points, Path("out/quantization"))      # doctest: +SKIP
(PosixPath('out/quantization.png'), PosixPath('out/quantization.svg'))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dnnmeter.errors import InvalidInputError
from dnnmeter.transforms.prune import PrunePoint
from dnnmeter.transforms.quantize import QuantPoint
from dnnmeter.report.plot import new_figure, save





def accuracy_vs_bits(points: Sequence[QuantPoint], stem: Path | str, title: str = "Accuracy against bits") -> tuple[Path, Path]:
    """Top-1 against bit width (fake quantization as a line, float and int8 as markers),
    with the output SQNR on a second axis."""
    rows = [p for p in points if p.top1 is not None]
    if not rows:
        raise InvalidInputError("accuracy against bits: no point has a measured top-1")
    fig, (ax,) = new_figure(1, 6.0, 4.0, grid=False)
    fixed = sorted((p for p in rows if p.kind in ("float", "fake")), key=lambda p: p.bits)
    ax.plot([p.bits for p in fixed], [100 * p.top1 for p in fixed], "o-", label="fixed point (fake-quantised)")
    for p in rows:
        if p.kind == "int8":
            ax.plot([8], [100 * p.top1], "s", ms=9, mfc="none", label=f"int8 kernels ({p.int8_path})")
    sqnr = [p for p in fixed if p.sqnr_db is not None]
    if sqnr:
        twin = ax.twinx()
        twin.plot([p.bits for p in sqnr], [p.sqnr_db for p in sqnr], "^:", color="grey", label="output SQNR")
        twin.set_ylabel("output SQNR against float (dB)")
        twin.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("bits (weights and activations; 32 = float)")
    ax.set_ylabel("top-1 accuracy (%)")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.5))  # flat lines get an automatic margin past 100%
    ax.set_xticks(sorted({p.bits for p in rows}))
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return save(fig, stem)


def _by_method(rows: list[PrunePoint]) -> dict[str, list[PrunePoint]]:
    groups: dict[str, list[PrunePoint]] = {}
    for p in rows:
        groups.setdefault(p.method, []).append(p)
    return {m: sorted(g, key=lambda p: p.sparsity) for m, g in groups.items()}


def accuracy_vs_sparsity(points: Sequence[PrunePoint], stem: Path | str,
                         title: str = "Accuracy and cost against sparsity") -> tuple[Path, Path]:
    """Left: top-1 against sparsity, one line per method. Right: MACs (dense and
    effective) and size (dense and compressed) relative to the unpruned model."""
    rows = list(points)
    if not any(p.top1 is not None for p in rows):
        raise InvalidInputError("accuracy against sparsity: no point has a measured top-1")
    fig, (acc, cost) = new_figure(2, 10.0, 4.0, grid=False)
    for i, (method, group) in enumerate(_by_method(rows).items()):
        colour = f"C{i}"  # one colour per method in both panels; the line style says the quantity
        xs = [100 * p.sparsity for p in group]
        acc.plot(xs, [None if p.top1 is None else 100 * p.top1 for p in group], "o-", color=colour, label=method)
        base = group[0]
        for key, style, label in (("macs", "-", "MACs"), ("effective_macs", ":", "effective MACs"),
                                  ("size_bytes", "--", "size"), ("compressed_size_bytes", "-.", "compressed size")):
            if method == "structured" and key in ("effective_macs", "compressed_size_bytes"):
                continue  # identical to the dense figures: the layers are physically smaller
            cost.plot(xs, [getattr(p, key) / getattr(base, key) for p in group], style, marker=".", color=colour,
                      label=f"{label} ({method})")
    acc.set_xlabel("sparsity (%)")
    acc.set_ylabel("top-1 accuracy (%)")
    acc.grid(alpha=0.3)
    acc.legend(fontsize=8)
    cost.set_xlabel("sparsity (%)")
    cost.set_ylabel("relative to the unpruned model")
    cost.set_ylim(bottom=0)
    cost.grid(alpha=0.3)
    cost.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save(fig, stem)
