"""Terminal tables and JSON for :class:`dnnmeter.transforms.ModifyResult`.

``modify_tables(result)`` gives the before / after / ratio table, the layers changed and
a count of the layers skipped by reason; ``modify_json(result)`` the ``--format json``
text, ``{"model", "ops", "before", "after", ...}``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from rich.table import Table

from dnnmeter.transforms.result import ModifyResult
from dnnmeter.report.text import billions, millions, size_text

_ROWS: tuple[tuple[str, str, Callable[[float | None], str]], ...] = (
    ("params", "params (M)", lambda v: millions(v, 3)),
    ("macs", "GMACs", lambda v: billions(v, 4)),
    ("flops", "GFLOPs (2 x MACs + element-wise)", lambda v: billions(v, 4)),
    ("elementwise_flops", "element-wise GFLOPs", lambda v: billions(v, 4)),
    ("activations", "activations (M elements)", lambda v: millions(v, 3)),
    ("weight_bytes", "weights (MB)", lambda v: "-" if v is None else f"{v / 1e6:,.3f}"),
    ("latency_s", "latency (ms, median)", lambda v: "-" if v is None else f"{v * 1e3:,.3f}"),
)


def modify_json(result: ModifyResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


def cost_table(result: ModifyResult) -> Table:
    title = (f"{result.model}: {' + '.join(result.ops)} at {result.batch_size} x "
             f"{size_text(result.input_size)}")
    table = Table(title=title, title_justify="left")
    for col, justify in (("", "left"), ("before", "right"), ("after", "right"), ("after / before", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for field, label, fmt in _ROWS:
        ratio = result.ratio(field)
        table.add_row(label, fmt(getattr(result.before, field)), fmt(getattr(result.after, field)),
                      "-" if ratio is None else f"{ratio:.3f}")
    reason = result.after.latency_reason or result.before.latency_reason
    if reason:
        table.caption = f"latency {reason}"
    return table


def changes_table(result: ModifyResult) -> Table:
    table = Table(title=f"{len(result.changes)} changes", title_justify="left")
    for col in ("layer", "op", "change", "found by"):
        table.add_column(col)
    for c in result.changes:
        table.add_row(c.name, c.op, c.detail, c.method)
    return table


def skipped_table(result: ModifyResult) -> Table:
    """Skipped layers counted by (op, reason), with the first few names."""
    counts = Counter((s.op, s.reason) for s in result.skipped)
    names: dict[tuple[str, str], list[str]] = {}
    for s in result.skipped:
        names.setdefault((s.op, s.reason), []).append(s.name)
    table = Table(title=f"{len(result.skipped)} layers left unchanged", title_justify="left")
    for col, justify in (("op", "left"), ("layers", "right"), ("reason", "left"), ("e.g.", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for (op, reason), n in counts.most_common():
        shown = names[(op, reason)][:3]
        table.add_row(op, str(n), reason, ", ".join(shown) + (", ..." if n > 3 else ""))
    return table


def modify_tables(result: ModifyResult) -> list[Table]:
    tables = [cost_table(result), changes_table(result)]
    if result.skipped:
        tables.append(skipped_table(result))
    return tables
