"""The hardware model's figures as typed records: what ``HardwareResult.to_dict()`` writes
and a study stores, read back by the report.

:class:`HardwareTotals` is the whole model, :class:`HardwareLayer` one product layer; counts
are words of ``bits`` bits for the whole batch, energies are estimated (see
:mod:`dnnmeter.hardware.energy`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from dnnmeter._serial import Record, to_dict
from dnnmeter.hardware.accesses import OperandAccesses
from dnnmeter.hardware.layers import LayerDims

__all__ = ["EnergyTotals", "HardwareLayer", "HardwareRecord", "HardwareTotals"]


@dataclass(frozen=True)
class EnergyTotals(Record):
    """The model's estimated energy in three scenarios (no reuse, full reuse, the systolic
    array), in ``unit`` of the energy table ``table``."""

    label: str
    table: str
    unit: str
    bits: int
    source: str
    naive: float
    reuse: float
    systolic: float
    by_level: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HardwareTotals(Record):
    """The whole model's accesses (no reuse, each reuse, the DRAM lower bound), its systolic
    run (cycles, utilisation, SRAM and DRAM traffic) and its estimated energy.

    ``reduction_by_reuse`` is naive / accesses left, for each reuse kind (None when none is left).
    """

    macs: int
    flops: int  # products only: element-wise work is not in a hardware layer
    naive_accesses: int
    weights: int
    inputs: int
    outputs: int
    dram_lower_bound: int
    accesses_with_reuse: dict[str, int]
    reduction_by_reuse: dict[str, float | None]
    accesses_by_operand: dict[str, OperandAccesses]
    cycles: int
    utilization: float | None
    sram_reads: dict[str, int]
    sram_writes: dict[str, int]
    sram_accesses: int
    dram_reads: dict[str, int]
    dram_writes: dict[str, int]
    dram_accesses: int
    dram_bytes: int
    dram_vs_lower_bound: float | None
    energy: EnergyTotals

    def __getitem__(self, key: str) -> Any:
        """``totals["macs"]`` as the dict of earlier versions had it; use ``totals.macs``."""
        warnings.warn(f'totals["{key}"] is deprecated: read the attribute, totals.{key}', DeprecationWarning,
                      stacklevel=2)
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return to_dict(getattr(self, key))


@dataclass(frozen=True)
class HardwareLayer(LayerDims):
    """One product layer: its shape (see :class:`~dnnmeter.hardware.layers.LayerShape`), its
    accesses and reuse factors, its systolic run and its estimated energy per scenario."""

    U: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    macs: int
    flops: int
    naive_accesses: int
    weights: int
    inputs: int
    outputs: int
    dram_lower_bound: int
    accesses_with_reuse: dict[str, int]
    reduction_by_reuse: dict[str, float | None]
    accesses_by_operand: dict[str, OperandAccesses]
    reuse_factors: dict[str, float]
    cycles: int
    folds: int
    utilization: float
    compute_utilization: float
    mapping_efficiency: float
    sram_reads: dict[str, int]
    sram_writes: dict[str, int]
    sram_accesses: int
    dram_reads: dict[str, int]
    dram_writes: dict[str, int]
    dram_accesses: int
    dram_vs_lower_bound: float | None
    energy_naive: float | None = None
    energy_reuse: float | None = None
    energy_systolic: float | None = None


@dataclass(frozen=True)
class HardwareRecord(Record):
    """One model's hardware cost as stored: settings, totals, layers and the notes."""

    model: str
    source: str  # "zoo", "module", "layers" or "topology"
    settings: dict[str, Any]
    totals: HardwareTotals
    layers: list[HardwareLayer] = field(default_factory=list)
    label: str = "estimated"
    unit: str = "words of `bits` bits for accesses; cycles; energy in totals.energy.unit"
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exported: dict[str, str] = field(default_factory=dict)
