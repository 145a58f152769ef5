"""Learning curves: loss and accuracy per epoch, train and validation, one or many runs.

One run gives the figure saved beside its checkpoint; several runs on one figure is the
seed study's comparison of the AlexNet variants (solid lines validation, dashed training,
one colour per run).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnnmeter.training.result import TrainResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVES_DPI = 120


def _as_dict(run: TrainResult | dict[str, Any]) -> dict[str, Any]:
    return run.to_dict() if isinstance(run, TrainResult) else run


def _label(run: dict[str, Any]) -> str:
    dist = run.get("distributed") or {}
    if dist.get("world_size", 1) > 1:
        return f"{run['model']} ({dist['strategy']} x{dist['world_size']})"
    return str(run["model"])


def plot_curves(results: Sequence[TrainResult | dict[str, Any]], path: str | Path) -> Path:
    """Draw loss and accuracy per epoch of every run in ``results`` into ``path`` (PNG, SVG...)."""
    path = Path(path)
    curves_figure(results).savefig(path, dpi=CURVES_DPI)
    return path


def curves_figure(results: Sequence[TrainResult | dict[str, Any]]) -> Figure:
    """Loss and accuracy per epoch of every run in ``results``, as one two-panel figure."""
    import matplotlib
    from matplotlib.figure import Figure

    # A Figure without pyplot: no backend switch, no global figure list, nothing left open.
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(_as_dict(r) for r in results):
        colour, label = colours[i % len(colours)], _label(run)
        epochs = [h["epoch"] for h in run["history"]]
        for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
            ax.plot(
                epochs,
                [h[f"val_{key}"] for h in run["history"]],
                "-o",
                ms=3,
                color=colour,
                label=f"{label} val",
            )
            ax.plot(
                epochs,
                [h[f"train_{key}"] for h in run["history"]],
                "--",
                color=colour,
                label=f"{label} train",
            )
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy", ylim=(0, 1))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    acc_ax.legend(fontsize="small", loc="lower right")
    return fig
