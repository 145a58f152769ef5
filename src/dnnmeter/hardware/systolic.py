"""A closed-form model of a systolic array, per layer, that reproduces SCALE-Sim 3's compute cycles.

Each layer is ``groups`` matrix products (P x K) @ (K x Q) by im2col (see
:func:`~dnnmeter.hardware.layers.gemm_shape`). SCALE-Sim maps two of the three GEMM
dimensions onto the array's rows and columns and streams the third in time (T):

============  ====================  ====================  ===========  =========================
dataflow      rows (S_r)            columns (S_c)         time (T)     cycles per fold
============  ====================  ====================  ===========  =========================
``os``        P output pixels       Q filters             K window     T + rows + cols - 2
``ws``        K window              Q filters             P pixels     T + 2*rows + cols - 2
``is``        K window              P pixels              Q filters    T + 2*rows + cols - 2
============  ====================  ====================  ===========  =========================

The operands are cut into ``ceil(S_r/rows) * ceil(S_c/cols)`` folds run one after another;
per fold, the stream takes T cycles, the skewed fill and drain take the rest (WS and IS also
spend ``rows`` cycles loading the stationary operand). These are the lengths of the demand
matrices SCALE-Sim's ``systolic_compute_os/ws/is`` build; with no memory stalls its
"Total Cycles" is their sum minus one (it reports the index of the last cycle, counted from
0), and so is :attr:`LayerSystolic.cycles`. See docs/hardware.md for every formula, the SRAM
counts and the DRAM model.

>>> from dnnmeter.hardware import simulate, original_alexnet_layers
>>> result = simulate(original_alexnet_layers(), array=(32, 32), dataflow="os", bits=8)
>>> result.cycles, round(result.utilization, 3)
(2591338, 0.273)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import ceil
from typing import Any, ClassVar

from dnnmeter._serial import Record
from dnnmeter import names
from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware.accesses import lower_bound
from dnnmeter.hardware.layers import LayerShape, gemm_shape

__all__ = [
    "DATAFLOWS",
    "GemmMapping",
    "LayerSystolic",
    "SystolicResult",
    "fold_cycles",
    "map_gemm",
    "simulate",
    "simulate_layer",
]

DATAFLOWS = names.DATAFLOWS  # output-, weight- and input-stationary
OPERANDS: tuple[str, ...] = ("ifmap", "filter", "ofmap")


@dataclass(frozen=True, slots=True)
class GemmMapping:
    """One GEMM's spatial (S_r, S_c) and temporal (T) dimensions and its folds on the array."""

    rows: int
    cols: int
    S_r: int
    S_c: int
    T: int

    @property
    def row_folds(self) -> int:
        return ceil(self.S_r / self.rows)

    @property
    def col_folds(self) -> int:
        return ceil(self.S_c / self.cols)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def mapping_efficiency(self) -> float:
        """Mean over folds of the fraction of PEs given work: S_r*S_c / (folds*rows*cols)."""
        return self.S_r * self.S_c / (self.folds * self.rows * self.cols)


def map_gemm(P: int, K: int, Q: int, array: tuple[int, int], dataflow: str) -> GemmMapping:
    """SCALE-Sim's S_r, S_c, T for (P x K) @ (K x Q) under ``dataflow``."""
    rows, cols = array
    if dataflow == "os":
        return GemmMapping(rows, cols, P, Q, K)
    if dataflow == "ws":
        return GemmMapping(rows, cols, K, Q, P)
    if dataflow == "is":
        return GemmMapping(rows, cols, K, P, Q)
    raise InvalidInputError(f"unknown dataflow {dataflow!r}: use one of {', '.join(DATAFLOWS)}")


def fold_cycles(mapping: GemmMapping, dataflow: str) -> int:
    """Cycles of one fold: stream T, plus skewed fill and drain (and the weight load for WS/IS)."""
    if dataflow == "os":
        return mapping.T + mapping.rows + mapping.cols - 2
    return mapping.T + 2 * mapping.rows + mapping.cols - 2


def _fold_util_cycles(mapping: GemmMapping, dataflow: str) -> int:
    """The per-fold cycle count SCALE-Sim divides by in its "Compute Util" (not its cycles)."""
    if dataflow == "os":
        return mapping.T + mapping.rows + mapping.cols - 2
    return mapping.T + 2 * mapping.rows + 2 * mapping.cols - 3


@dataclass(frozen=True, slots=True)
class LayerSystolic(Record):
    """One layer on the array. Access counts are in words (one operand of ``bits``).

    ``utilization`` = MACs / (cycles * rows * cols) (SCALE-Sim's "Overall Util");
    ``compute_utilization`` is SCALE-Sim's "Compute Util" (a per-fold average);
    ``mapping_efficiency`` is the mean fraction of PEs mapped per fold.
    ``sram_reads``/``sram_writes`` and ``dram_reads``/``dram_writes`` map operand
    (``ifmap``, ``filter``, ``ofmap``) to words; ofmap reads are partial sums read back.
    """

    name: str
    kind: str
    dataflow: str
    macs: int
    folds: int
    cycles: int
    utilization: float
    compute_utilization: float
    mapping_efficiency: float
    sram_reads: dict[str, int]
    sram_writes: dict[str, int]
    dram_reads: dict[str, int]
    dram_writes: dict[str, int]
    lower_bound: int

    _derived: ClassVar[tuple[str, ...]] = ("dram_accesses", "sram_accesses", "dram_vs_lower_bound")

    @property
    def dram_accesses(self) -> int:
        return sum(self.dram_reads.values()) + sum(self.dram_writes.values())

    @property
    def sram_accesses(self) -> int:
        return sum(self.sram_reads.values()) + sum(self.sram_writes.values())

    @property
    def dram_vs_lower_bound(self) -> float:
        """DRAM traffic as a multiple of the layer's lower bound (1.0 is ideal)."""
        return self.dram_accesses / self.lower_bound



def _sram_counts(m: GemmMapping, P: int, K: int, Q: int, dataflow: str) -> tuple[dict[str, int], dict[str, int]]:
    """Words read from and written to SRAM by one GEMM, as SCALE-Sim counts requests.

    OS: each column fold streams the whole ifmap (K per pixel), each row fold the filters;
    outputs are written once. WS: filters loaded once; ifmap streamed once per column fold;
    each row fold writes its partial sums (P x Q) and all but the first read them back.
    IS: ifmap loaded once; filters streamed once per column fold; partial sums as WS."""
    if dataflow == "os":
        reads = {"ifmap": m.col_folds * P * K, "filter": m.row_folds * K * Q, "ofmap": 0}
        return reads, {"ofmap": P * Q}
    if dataflow == "ws":
        reads = {"ifmap": m.col_folds * P * K, "filter": K * Q, "ofmap": (m.row_folds - 1) * P * Q}
        return reads, {"ofmap": m.row_folds * P * Q}
    reads = {"ifmap": P * K, "filter": m.col_folds * K * Q, "ofmap": (m.row_folds - 1) * P * Q}
    return reads, {"ofmap": m.row_folds * P * Q}


def _dram_counts(layer: LayerShape, m: GemmMapping, dataflow: str,
                 capacity_words: tuple[int, int, int]) -> tuple[dict[str, int], dict[str, int]]:
    """Words moved between DRAM and the three SRAMs by one group's GEMM.

    An operand is fetched once when the part of it that must stay on chip fits in half its
    SRAM (the other half is being refilled: double buffering, as SCALE-Sim's default);
    otherwise it is fetched again on each pass of the outer loop that streams it, and
    partial sums that do not fit spill to DRAM and come back."""
    P, K, Q, _ = gemm_shape(layer)
    cap_i, cap_f, cap_o = (c // 2 for c in capacity_words)
    ifmap = layer.N * (layer.C // layer.groups) * layer.H * layer.W  # unpadded input of one group
    filt, out = K * Q, P * Q
    spill_reads, spill_writes = 0, out
    if dataflow == "os":
        ifmap_reads = ifmap if ifmap <= cap_i else m.col_folds * ifmap
        filter_reads = filt if K * min(m.cols, Q) <= cap_f else m.row_folds * filt
    elif dataflow == "ws":
        ifmap_reads = ifmap if ifmap <= cap_i else m.col_folds * ifmap
        filter_reads = filt
        if P * min(m.cols, Q) > cap_o:
            spill_reads, spill_writes = (m.row_folds - 1) * out, m.row_folds * out
    else:
        ifmap_reads = ifmap
        filter_reads = filt if filt <= cap_f else m.col_folds * filt
        if min(m.cols, P) * Q > cap_o:
            spill_reads, spill_writes = (m.row_folds - 1) * out, m.row_folds * out
    return ({"ifmap": ifmap_reads, "filter": filter_reads, "ofmap": spill_reads},
            {"ofmap": spill_writes})


def _sram_sizes(sram_kb: int | Sequence[int]) -> tuple[int, int, int]:
    sizes = [sram_kb] * 3 if isinstance(sram_kb, int) else [int(s) for s in sram_kb]
    if len(sizes) != 3 or min(sizes) <= 0:
        raise InvalidInputError(f"bad SRAM sizes {sram_kb!r}: give N or (ifmap, filter, ofmap) KB, each > 0")
    return sizes[0], sizes[1], sizes[2]


def _capacity_words(sram_kb: int | Sequence[int], bits: int) -> tuple[int, int, int]:
    i, f, o = (kb * 1024 * 8 // bits for kb in _sram_sizes(sram_kb))
    return i, f, o


def _scaled(counts: dict[str, int], factor: int) -> dict[str, int]:
    return {k: v * factor for k, v in counts.items()}


def simulate_layer(layer: LayerShape, array: tuple[int, int] = (32, 32), dataflow: str = "os",
                   sram_kb: int | Sequence[int] = (64, 64, 64), bits: int = 8) -> LayerSystolic:
    """One layer on a ``rows x cols`` array; its groups run one after another."""
    P, K, Q, groups = gemm_shape(layer)
    m = map_gemm(P, K, Q, array, dataflow)
    folds = groups * m.folds
    # Each group is one SCALE-Sim layer (its topology has a row per group), and SCALE-Sim
    # reports a layer's last cycle index, one less than its cycle count.
    cycles = groups * (m.folds * fold_cycles(m, dataflow) - 1)
    pes = m.rows * m.cols
    sram_r, sram_w = _sram_counts(m, P, K, Q, dataflow)
    dram_r, dram_w = _dram_counts(layer, m, dataflow, _capacity_words(sram_kb, bits))
    return LayerSystolic(
        name=layer.name, kind=layer.kind, dataflow=dataflow, macs=layer.macs, folds=folds,
        cycles=cycles, utilization=layer.macs / (cycles * pes),
        compute_utilization=m.mapping_efficiency * m.T / _fold_util_cycles(m, dataflow),
        mapping_efficiency=m.mapping_efficiency,
        sram_reads=_scaled(sram_r, groups), sram_writes=_scaled(sram_w, groups),
        dram_reads=_scaled(dram_r, groups), dram_writes=_scaled(dram_w, groups),
        lower_bound=lower_bound(layer),
    )


def _validate(array: tuple[int, int], dataflow: str, bits: int) -> tuple[int, int]:
    rows, cols = (int(a) for a in array)
    if rows < 1 or cols < 1:
        raise InvalidInputError(f"bad array {array!r}: give (rows, cols), each >= 1")
    if dataflow not in DATAFLOWS:
        raise InvalidInputError(f"unknown dataflow {dataflow!r}: use one of {', '.join(DATAFLOWS)}")
    if not isinstance(bits, int) or bits < 1:
        raise InvalidInputError(f"bad precision {bits!r}: give bits per word, e.g. 8 or 16")
    return rows, cols


@dataclass(frozen=True)
class SystolicResult(Record):
    """Every layer of a network on one array configuration, with totals (words and cycles)."""

    array: tuple[int, int]
    dataflow: str
    sram_kb: tuple[int, int, int]
    bits: int
    layers: list[LayerSystolic] = field(default_factory=list)
    model: str = "scale-sim-3 compute model (closed form)"

    _derived: ClassVar[tuple[str, ...]] = ("cycles", "macs", "utilization", "sram_reads", "sram_writes", "dram_reads",
                                           "dram_writes", "dram_accesses", "dram_bytes", "lower_bound",
                                           "dram_vs_lower_bound")

    @property
    def cycles(self) -> int:
        return sum(layer.cycles for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def utilization(self) -> float:
        """MACs / (cycles * PEs) over the whole network."""
        cycles = self.cycles
        return self.macs / (cycles * self.array[0] * self.array[1]) if cycles else 0.0

    def _total(self, attribute: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for layer in self.layers:
            for key, value in getattr(layer, attribute).items():
                totals[key] = totals.get(key, 0) + value
        return totals

    @property
    def sram_reads(self) -> dict[str, int]:
        return self._total("sram_reads")

    @property
    def sram_writes(self) -> dict[str, int]:
        return self._total("sram_writes")

    @property
    def dram_reads(self) -> dict[str, int]:
        return self._total("dram_reads")

    @property
    def dram_writes(self) -> dict[str, int]:
        return self._total("dram_writes")

    @property
    def dram_accesses(self) -> int:
        return sum(layer.dram_accesses for layer in self.layers)

    @property
    def dram_bytes(self) -> int:
        return self.dram_accesses * self.bits // 8

    @property
    def lower_bound(self) -> int:
        return sum(layer.lower_bound for layer in self.layers)

    @property
    def dram_vs_lower_bound(self) -> float:
        return self.dram_accesses / self.lower_bound if self.lower_bound else 0.0

    def to_dict(self, per_layer: bool = True) -> dict[str, Any]:
        d = {**super().to_dict(), "unit": "words of `bits` bits; cycles"}
        d["layers"] = d.pop("layers") if per_layer else []
        return d


def simulate(layers: Iterable[LayerShape], array: tuple[int, int] = (32, 32), dataflow: str = "os",
             sram_kb: int | Sequence[int] = (64, 64, 64), bits: int = 8) -> SystolicResult:
    """Run every layer on a ``rows x cols`` systolic array with ``dataflow`` os, ws or is.

    ``sram_kb`` is one size for all three SRAMs or (ifmap, filter, ofmap), in KB; ``bits`` is
    the word size, which sets how many words each SRAM holds (and the bytes moved)."""
    rows, cols = _validate(array, dataflow, bits)
    sizes = _sram_sizes(sram_kb)
    records = [simulate_layer(layer, (rows, cols), dataflow, sizes, bits) for layer in layers]
    return SystolicResult(array=(rows, cols), dataflow=dataflow, sram_kb=sizes, bits=bits, layers=records)
