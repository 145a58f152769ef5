"""Memory accesses per layer: the naive four per MAC, data reuse, and the DRAM lower bound.

Every MAC reads a weight, reads an input activation, reads a partial sum and writes it back:
``naive = 4 * macs``. Reuse (Chen et al., Eyeriss, ISSCC 2016 / ISCA 2016) removes most:

- **convolutional reuse**: within one image, a weight is used at every one of the E*F output
  positions, and an input pixel in about R*S/U^2 windows;
- **filter reuse**: a weight is used for each of the N images of the batch;
- **image (input-map) reuse**: an input pixel is used by each of the M/groups filters of
  its group;
- **partial-sum reuse**: an output accumulates C/groups*R*S products in place, so it is
  written once instead of read and written at every MAC.

All counts are in words (one operand), for the whole batch, and are pure functions of a
:class:`~dnnmeter.hardware.layers.LayerShape`. The formulas are in docs/hardware.md.

>>> from dnnmeter.hardware import count_accesses, original_alexnet_layers
>>> report = count_accesses(original_alexnet_layers())
>>> report.macs, report.naive_accesses, report.lower_bound
(724406816, 2897627264, 62028963)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dnnmeter._serial import Record
from dnnmeter.hardware.layers import LayerShape

__all__ = [
    "REUSE_KINDS",
    "AccessReport",
    "LayerAccesses",
    "OperandAccesses",
    "count_accesses",
    "input_count",
    "layer_accesses",
    "lower_bound",
    "naive_accesses",
    "output_count",
    "touched_extent",
    "weight_count",
]

# The reuse scenarios, each applied alone, then all together; "none" is the naive count.
REUSE_KINDS: tuple[str, ...] = ("none", "convolutional", "filter", "image", "psum", "all")


# --- pure functions of shapes ----------------------------------------------------------------


def weight_count(layer: LayerShape) -> int:
    """M * C/groups * R * S: every weight once (biases are not MAC operands and not counted)."""
    return layer.M * (layer.C // layer.groups) * layer.R * layer.S


def input_count(layer: LayerShape) -> int:
    """N * C * H * W: the whole unpadded input (padding zeros are never stored or moved)."""
    return layer.N * layer.C * layer.H * layer.W


def output_count(layer: LayerShape) -> int:
    """N * M * E * F."""
    return layer.N * layer.M * layer.E * layer.F


def naive_accesses(layer: LayerShape) -> int:
    """4 * MACs: read weight, read input, read partial sum, write partial sum."""
    return 4 * layer.macs


def lower_bound(layer: LayerShape) -> int:
    """Each weight, input and output moved once: the fewest DRAM accesses any dataflow needs."""
    return weight_count(layer) + input_count(layer) + output_count(layer)


def touched_extent(size: int, kernel: int, stride: int, pad: int, dilation: int, out: int) -> int:
    """How many of an unpadded dimension's ``size`` positions at least one window reads.

    Less than ``size`` when the stride skips inputs (a 1 x 1 stride-2 convolution reads a
    quarter of its input) or the last window stops short of the edge."""
    if dilation == 1 and stride <= kernel:
        # windows overlap or abut: one contiguous run from the first to the last read position
        first, last = -pad, (out - 1) * stride - pad + kernel - 1
        return max(0, min(last, size - 1) - max(first, 0) + 1)
    seen = bytearray(size)
    for e in range(out):
        base = e * stride - pad
        for r in range(kernel):
            p = base + r * dilation
            if 0 <= p < size:
                seen[p] = 1
    return sum(seen)


def _touched_inputs_per_channel(layer: LayerShape) -> int:
    return (touched_extent(layer.H, layer.R, layer.U[0], layer.pad[0], layer.dilation[0], layer.E)
            * touched_extent(layer.W, layer.S, layer.U[1], layer.pad[1], layer.dilation[1], layer.F))


# --- result records --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperandAccesses(Record):
    """Accesses by operand, in words."""

    weight_reads: int = 0
    input_reads: int = 0
    psum_reads: int = 0
    psum_writes: int = 0

    _derived: ClassVar[tuple[str, ...]] = ("total",)

    @property
    def total(self) -> int:
        return self.weight_reads + self.input_reads + self.psum_reads + self.psum_writes

    def __add__(self, other: OperandAccesses) -> OperandAccesses:
        return OperandAccesses(self.weight_reads + other.weight_reads, self.input_reads + other.input_reads,
                               self.psum_reads + other.psum_reads, self.psum_writes + other.psum_writes)


@dataclass(frozen=True, slots=True)
class LayerAccesses(Record):
    """One layer's MACs, access counts and reuse factors (words; whole batch).

    Reuse factors are how many MACs use one access: ``weight_conv_reuse = E*F``,
    ``weight_filter_reuse = N``, ``input_conv_reuse`` = MACs per input read with convolutional
    reuse (exactly E*F*R*S / touched input pixels; about R*S/U^2, given as
    ``input_conv_reuse_approx``), ``input_image_reuse = M/groups``,
    ``psum_accumulations = C/groups*R*S``. ``by_reuse`` maps each of :data:`REUSE_KINDS` to the
    accesses left when that reuse alone (or all of it) is exploited.
    """

    name: str
    kind: str
    macs: int
    naive_accesses: int
    weights: int
    inputs: int
    outputs: int
    lower_bound: int
    weight_conv_reuse: float
    weight_filter_reuse: float
    input_conv_reuse: float
    input_conv_reuse_approx: float
    input_image_reuse: float
    psum_accumulations: int
    by_reuse: dict[str, OperandAccesses]



def layer_accesses(layer: LayerShape) -> LayerAccesses:
    """Every access count and reuse factor of one layer (formulas in docs/hardware.md)."""
    macs = layer.macs
    ef, per_group_m = layer.E * layer.F, layer.M // layer.groups
    touched = _touched_inputs_per_channel(layer)
    # Convolutional reuse of inputs: each touched input is read once per filter of its group.
    input_conv = layer.N * layer.M * (layer.C // layer.groups) * touched
    # Image reuse: each input read per window position is shared by the group's M/groups filters.
    input_image = macs // per_group_m
    outputs = output_count(layer)
    all_inputs = layer.N * layer.C * touched
    naive = OperandAccesses(macs, macs, macs, macs)
    by_reuse = {
        "none": naive,
        "convolutional": OperandAccesses(macs // ef, input_conv, macs, macs),
        "filter": OperandAccesses(macs // layer.N, macs, macs, macs),
        "image": OperandAccesses(macs, input_image, macs, macs),
        "psum": OperandAccesses(macs, macs, 0, outputs),
        "all": OperandAccesses(weight_count(layer), all_inputs, 0, outputs),
    }
    return LayerAccesses(
        name=layer.name, kind=layer.kind, macs=macs, naive_accesses=4 * macs,
        weights=weight_count(layer), inputs=input_count(layer), outputs=outputs,
        lower_bound=lower_bound(layer),
        weight_conv_reuse=float(ef), weight_filter_reuse=float(layer.N),
        input_conv_reuse=macs / input_conv if input_conv else 0.0,
        input_conv_reuse_approx=layer.R * layer.S / (layer.U[0] * layer.U[1]),
        input_image_reuse=float(per_group_m),
        psum_accumulations=(layer.C // layer.groups) * layer.R * layer.S,
        by_reuse=by_reuse,
    )


@dataclass(frozen=True)
class AccessReport(Record):
    """Access counts of a list of layers: per layer, and totals (words; whole batch)."""

    layers: list[LayerAccesses] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(a.macs for a in self.layers)

    @property
    def naive_accesses(self) -> int:
        return sum(a.naive_accesses for a in self.layers)

    @property
    def weights(self) -> int:
        return sum(a.weights for a in self.layers)

    @property
    def inputs(self) -> int:
        return sum(a.inputs for a in self.layers)

    @property
    def outputs(self) -> int:
        return sum(a.outputs for a in self.layers)

    @property
    def lower_bound(self) -> int:
        return sum(a.lower_bound for a in self.layers)

    @property
    def by_reuse(self) -> dict[str, OperandAccesses]:
        totals = {kind: OperandAccesses() for kind in REUSE_KINDS}
        for layer in self.layers:
            for kind, acc in layer.by_reuse.items():
                totals[kind] = totals[kind] + acc
        return totals

    _derived: ClassVar[tuple[str, ...]] = ("macs", "naive_accesses", "weights", "inputs", "outputs", "lower_bound",
                                           "by_reuse")

    def to_dict(self, per_layer: bool = True) -> dict[str, Any]:
        d = {"unit": "words", **super().to_dict()}
        d["layers"] = d.pop("layers") if per_layer else []
        return d


def count_accesses(layers: Iterable[LayerShape]) -> AccessReport:
    """:func:`layer_accesses` for every layer, with totals."""
    return AccessReport([layer_accesses(layer) for layer in layers])
