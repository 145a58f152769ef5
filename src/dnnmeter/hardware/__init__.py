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
>>> result = hw.estimate_hardware("resnet18", array="32x32", dataflow="os")   # all of it, one result
>>> roof = hw.roofline("resnet18", hw.measure_ceilings(threads=1), threads=1)  # measures this machine  # doctest: +SKIP

Every figure here is a model's estimate, never a measurement (the roofline's ceilings
excepted, which are measured on this machine); hence the one door in is called
:func:`estimate_hardware`. Its old name, ``hardware``, still works for one release with a
``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

from dnnmeter.hardware.accesses import (
    REUSE_KINDS,
    AccessReport,
    LayerAccesses,
    OperandAccesses,
    count_accesses,
    layer_accesses,
)
from dnnmeter.hardware.estimate import HardwareResult, estimate_hardware, parse_array, parse_sram_kb
from dnnmeter.hardware.ceilings import Ceilings, clear_ceilings_cache, measure_ceilings
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
from dnnmeter.hardware.roofline import (
    RooflineLayer,
    RooflineResult,
    roofline,
    roofline_layer,
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
from dnnmeter.hardware.systolic import (
    DATAFLOWS,
    LayerSystolic,
    SystolicResult,
    simulate,
    simulate_layer,
)

__all__ = [
    "DATAFLOWS",
    "ENERGY_TABLES",
    "REUSE_KINDS",
    "AccessReport",
    "ArithmeticCost",
    "Ceilings",
    "EnergyEstimate",
    "EnergyTable",
    "HardwareResult",
    "LayerAccesses",
    "LayerShape",
    "LayerSystolic",
    "OperandAccesses",
    "RooflineLayer",
    "RooflineResult",
    "ScaleSimConfig",
    "SystolicResult",
    "clear_ceilings_cache",
    "conv_layer",
    "count_accesses",
    "estimate_energy",
    "estimate_hardware",
    "export_scalesim",
    "extract_layers",
    "gemm_shape",
    "get_energy_table",
    "layer_accesses",
    "linear_layer",
    "load_energy_table",
    "matmul_layer",
    "measure_ceilings",
    "original_alexnet_layers",
    "parse_array",
    "parse_sram_kb",
    "read_config",
    "read_topology",
    "roofline",
    "roofline_layer",
    "simulate",
    "simulate_layer",
    "write_config",
    "write_layout",
    "write_topology",
]


def __getattr__(name: str) -> Any:
    # The function's old name, kept one release: ``from dnnmeter.hardware import hardware``.
    if name == "hardware":
        warnings.warn("dnnmeter.hardware.hardware is now dnnmeter.estimate_hardware; the old name goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        return estimate_hardware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
