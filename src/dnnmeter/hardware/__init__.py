"""Hardware cost: memory accesses and data reuse, energy estimates, systolic arrays.

Each model's product layers become :class:`LayerShape` records (found on the meta device);
pure functions of those shapes give the access counts, the reuse, the energy and the
cycles of a systolic array (SCALE-Sim 3's compute model, in closed form). Formulas and
sources: docs/hardware.md.

>>> from dnnmeter import hardware as hw
>>> layers = hw.original_alexnet_layers()          # Krizhevsky 2012, two towers
>>> report = hw.count_accesses(layers)
>>> report.macs, report.naive_accesses, report.lower_bound
(724406816, 2897627264, 62028963)
>>> run = hw.simulate(hw.extract_layers("resnet18"), array=(32, 32), dataflow="ws")
>>> energy = hw.estimate_energy(layers, "45nm", bits=8)   # estimated, in joules
"""

from __future__ import annotations

from dnnmeter.hardware.accesses import (
    REUSE_KINDS,
    AccessReport,
    LayerAccesses,
    OperandAccesses,
    count_accesses,
    layer_accesses,
)
from dnnmeter.hardware.energy import (
    ENERGY_TABLES,
    ArithmeticCost,
    EnergyEstimate,
    EnergyTable,
    estimate_energy,
    get_energy_table,
    load_energy_table,
)
from dnnmeter.hardware.layers import (
    LayerShape,
    conv_layer,
    extract_layers,
    gemm_shape,
    linear_layer,
    matmul_layer,
    original_alexnet_layers,
)
from dnnmeter.hardware.scalesim_io import (
    ScaleSimConfig,
    export_scalesim,
    read_config,
    read_topology,
    write_config,
    write_layout,
    write_topology,
)
from dnnmeter.hardware.systolic import DATAFLOWS, LayerSystolic, SystolicResult, simulate, simulate_layer

__all__ = [
    "DATAFLOWS",
    "ENERGY_TABLES",
    "REUSE_KINDS",
    "AccessReport",
    "ArithmeticCost",
    "EnergyEstimate",
    "EnergyTable",
    "LayerAccesses",
    "LayerShape",
    "LayerSystolic",
    "OperandAccesses",
    "ScaleSimConfig",
    "SystolicResult",
    "conv_layer",
    "count_accesses",
    "estimate_energy",
    "export_scalesim",
    "extract_layers",
    "gemm_shape",
    "get_energy_table",
    "layer_accesses",
    "linear_layer",
    "load_energy_table",
    "matmul_layer",
    "original_alexnet_layers",
    "read_config",
    "read_topology",
    "simulate",
    "simulate_layer",
    "write_config",
    "write_layout",
    "write_topology",
]
