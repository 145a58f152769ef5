"""Terminal tables (rich) for training runs: the per-epoch history, the best and worst
classes, and runs side by side (e.g. one process against DDP and local SGD).

Each takes :class:`~dnnmeter.training.result.TrainResult` records (a result.json reads back with
``TrainResult.from_dict``; a study's variants are ``VariantRecord``s, TrainResults too).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

from rich.table import Table

from dnnmeter.report.format import fixed
from dnnmeter.report.format import pct as percent
from dnnmeter.training.result import TrainResult


def number(x: float | None, digits: int = 4) -> str:
    return fixed(x, digits, grouped=False)


def _threads(n: int | None) -> str:
    return f"{n} thread{'' if n == 1 else 's'}"


def run_label(run: TrainResult) -> str:
    dist = run.distributed or {}
    if dist.get("world_size", 1) > 1:
        every = f", every {dist['average_every']} steps" if dist.get("average_every") else ""
        return f"{run.model} {dist['strategy']} x{dist['world_size']}{every}, {_threads(dist.get('threads_per_process'))} each"
    threads = run.environment.get("torch_threads")
    return f"{run.model} (1 process{f', {_threads(threads)}' if threads else ''})"


def history_table(run: TrainResult) -> Table:
    """One row per epoch: losses, accuracies and seconds."""
    table = Table(title=f"{run_label(run)} on {run.data}", title_justify="left")
    for col in ("epoch", "train loss", "train acc", "val loss", "val acc", "train s", "val s"):
        table.add_column(col, justify="right")
    for h in run.history:
        table.add_row(
            str(h.epoch), number(h.train_loss), percent(h.train_accuracy), number(h.val_loss),
            percent(h.val_accuracy), f"{h.epoch_s:.2f}", f"{h.val_s:.2f}",
        )  # fmt: skip
    settings = run.settings
    table.caption = (
        f"measured; batch {settings.get('batch_size')}, lr {settings.get('lr')}, "
        f"augment {','.join(settings.get('augment') or []) or 'none'}; train loss/acc: running means over "
        "the epoch's batches as trained"
    )
    return table


def classes_table(run: TrainResult) -> Table:
    """The five best and five worst classes by final validation accuracy."""
    table = Table(title="best and worst classes (validation, final epoch)", title_justify="left")
    for col, justify in (
        ("", "left"),
        ("class", "left"),
        ("description", "left"),
        ("correct", "right"),
        ("images", "right"),
        ("accuracy", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for label, rows in (("best", run.best_classes), ("worst", run.worst_classes)):
        for i, row in enumerate(rows):
            table.add_row(
                label if i == 0 else "", row.class_name, row.description or "",
                str(row.correct), str(row.count), percent(row.accuracy),
            )  # fmt: skip
        table.add_section()
    return table


def comparison_table(runs: Sequence[TrainResult]) -> Table:
    """Runs side by side: final accuracy, wall time and time per epoch; speed-up against the
    first single-process run of the same model, when there is one."""
    table = Table(title="training runs compared", title_justify="left")
    for col in ("run", "epochs", "val acc", "train acc", "median epoch s", "total s", "speed-up"):
        table.add_column(col, justify="left" if col == "run" else "right")
    single: dict[str, float] = {}
    for run in runs:
        if (run.distributed or {}).get("world_size", 1) == 1:
            single.setdefault(run.model, run.seconds)
    for run in runs:
        base = single.get(run.model)
        table.add_row(
            run_label(run), str(len(run.history)), percent(run.val_accuracy), percent(run.train_accuracy),
            f"{median(h.epoch_s for h in run.history):.2f}", f"{run.seconds:.1f}",
            f"{base / run.seconds:.2f}x" if base and run.seconds else "-",
        )  # fmt: skip
    table.caption = (
        "total s: wall time of the training run (data, epochs, validation), process start-up excluded"
    )
    return table
