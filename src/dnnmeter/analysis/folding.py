"""Tables people ask for, as data: layers folded into their parents to a depth (torchinfo's
``depth``), and the costliest layers. The API is :meth:`Analysis.fold` and
:meth:`Analysis.top_layers`; text, JSON and CSV are made in report/text.py.

>>> from dnnmeter.analysis import analyze
>>> a = analyze("resnet18")
>>> [(r.name, r.layers) for r in a.fold(1)][:3]
[('conv1', 1), ('bn1', 1), ('relu', 1)]
>>> [(r.rank, r.name) for r in a.top_layers(2)]
[(1, 'conv1'), (2, 'layer1.0.conv1')]
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from dnnmeter._serial import Record
from dnnmeter.analysis.layer import LayerCost, flops_of
from dnnmeter.errors import InvalidInputError

if TYPE_CHECKING:
    from dnnmeter.analysis.result import Analysis

TOP_LEVEL = "(model)"  # the row of ops run directly in the model's own forward


@dataclass
class FoldedRow(Record):
    """The layers under one module path, summed; shares are of the model's totals."""

    name: str
    layers: int = 0  # rows of the analysis folded in
    params: int = 0
    macs: int = 0
    elementwise_flops: int = 0
    activations: int = 0
    params_share: float = 0.0
    macs_share: float = 0.0

    _derived: ClassVar[tuple[str, ...]] = ("flops",)

    @property
    def flops(self) -> int:
        return flops_of(self.macs, self.elementwise_flops)


@dataclass(slots=True)
class RankedLayer(LayerCost):
    """One row of the analysis with its rank by MACs (1: the costliest) and its shares of the
    model's params and MACs."""

    rank: int = 0
    params_share: float = 0.0
    macs_share: float = 0.0


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


def top_layers(a: Analysis, k: int) -> list[RankedLayer]:
    """The ``k`` rows with the most MACs (ties: more FLOPs, then first run), ranked from 1,
    each with its shares of the model's params and MACs."""
    if not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"bad top {k!r}: give an integer >= 1")
    order = sorted(range(len(a.layers)), key=lambda i: (-a.layers[i].macs, -a.layers[i].flops, i))
    ranked = []
    for rank, i in enumerate(order[:k], 1):
        layer = a.layers[i]
        fields = {f.name: copy.deepcopy(getattr(layer, f.name)) for f in dataclasses.fields(LayerCost)}
        ranked.append(RankedLayer(**fields, rank=rank, params_share=_share(layer.params, a.params),
                                  macs_share=_share(layer.macs, a.macs)))
    return ranked
