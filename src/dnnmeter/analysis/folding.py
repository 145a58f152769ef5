"""Tables people ask for, as data: layers folded into their parents to a depth (torchinfo's
``depth``), and the costliest layers. Text is made in report/text.py.

>>> from dnnmeter.analysis import analyze
>>> from dnnmeter.analysis.folding import fold, top_layers
>>> a = analyze("resnet18")
>>> [(r.name, r.layers) for r in fold(a, 1)][:3]
[('conv1', 1), ('bn1', 1), ('relu', 1)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dnnmeter.analysis.result import Analysis, LayerCost, flops_of
from dnnmeter.errors import InvalidInputError

TOP_LEVEL = "(model)"  # the row of ops run directly in the model's own forward


@dataclass
class FoldedRow:
    """The layers under one module path, summed; shares are of the model's totals."""

    name: str
    layers: int = 0  # rows of the analysis folded in
    params: int = 0
    macs: int = 0
    elementwise_flops: int = 0
    activations: int = 0
    params_share: float = 0.0
    macs_share: float = 0.0

    @property
    def flops(self) -> int:
        return flops_of(self.macs, self.elementwise_flops)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flops"] = self.flops
        return d


def module_path(layer: LayerCost) -> str:
    """The module a row belongs to: ``layer1.0.conv1#2`` -> ``layer1.0.conv1``; an op run in
    a parent's forward (``layer1.0:add``, type ``aten.add``) -> that parent, ``""`` at the top."""
    name = layer.name.removesuffix(" (backward)")
    if layer.type.startswith("aten."):
        return name.rpartition(":")[0]
    return name.partition("#")[0]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def fold(a: Analysis, depth: int) -> list[FoldedRow]:
    """``a``'s rows folded into their module paths cut to ``depth`` names (1: the model's
    children), in order of first appearance; the rows' sums equal the model's totals."""
    if not isinstance(depth, int) or depth < 1:
        raise InvalidInputError(f"bad depth {depth!r}: give an integer >= 1 (1: the model's children)")
    rows: dict[str, FoldedRow] = {}
    for layer in a.layers:
        path = module_path(layer)
        key = ".".join(path.split(".")[:depth]) if path else TOP_LEVEL
        row = rows.setdefault(key, FoldedRow(key))
        row.layers += 1
        row.params += layer.params
        row.macs += layer.macs
        row.elementwise_flops += layer.elementwise_flops
        row.activations += layer.activations
    for row in rows.values():
        row.params_share, row.macs_share = _share(row.params, a.params), _share(row.macs, a.macs)
    return list(rows.values())


def top_layers(a: Analysis, k: int) -> list[tuple[LayerCost, float]]:
    """The ``k`` rows with the most MACs (ties: more FLOPs, then first run), each with its
    share of the model's MACs."""
    if not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"bad top {k!r}: give an integer >= 1")
    order = sorted(range(len(a.layers)), key=lambda i: (-a.layers[i].macs, -a.layers[i].flops, i))
    return [(a.layers[i], _share(a.layers[i].macs, a.macs)) for i in order[:k]]
