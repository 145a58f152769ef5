"""``dnnmeter.estimate_hardware(...)``: one model's hardware cost in one call, as one result.

It puts together what the other modules of this package compute from a model's product
layers: the access counts with and without data reuse and the DRAM lower bound
(:mod:`.accesses`), a systolic array's cycles, utilisation and SRAM/DRAM traffic
(:mod:`.systolic`), and the energy of each, always **estimated** (:mod:`.energy`). Nothing
runs on a device: the layers are found on the meta device, the rest is arithmetic, so it
answers in milliseconds.

>>> from dnnmeter.hardware import estimate_hardware, original_alexnet_layers
>>> r = estimate_hardware(original_alexnet_layers())
>>> r.totals.macs, r.totals.naive_accesses, r.totals.dram_lower_bound
(724406816, 2897627264, 62028963)
>>> r = estimate_hardware("resnet18", array="16x16", dataflow="ws", bits=8)
>>> r.to_dict()["layers"][0]["utilization"]          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dnnmeter.analysis import parse_input_size
from dnnmeter.analysis.result import flops_of
from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware.accesses import (
    REUSE_KINDS,
    AccessReport,
    LayerAccesses,
    count_accesses,
)
from dnnmeter.hardware.energy import (
    EnergyEstimate,
    EnergyTable,
    estimate_energy,
    get_energy_table,
)
from dnnmeter.hardware.layers import LayerShape, extract_layers
from dnnmeter.hardware.records import EnergyTotals, HardwareLayer, HardwareRecord, HardwareTotals
from dnnmeter.hardware.scalesim_io import ScaleSimConfig, export_scalesim, read_topology
from dnnmeter.hardware.systolic import (
    DATAFLOWS,
    LayerSystolic,
    SystolicResult,
    simulate,
)
from dnnmeter.zoo import resolve

__all__ = ["DEFAULT_BITS", "DEFAULT_SRAM_KB", "HardwareResult", "estimate_hardware", "model_input_size", "parse_array",
           "parse_sram_kb"]

# SCALE-Sim's defaults: 64 KB for each of the ifmap, filter and ofmap SRAMs, 1-byte words.
DEFAULT_SRAM_KB: tuple[int, int, int] = (64, 64, 64)
DEFAULT_BITS = 8
SHAPE_FIELDS: tuple[str, ...] = ("N", "C", "H", "W", "M", "R", "S", "E", "F", "U", "pad", "dilation", "groups")


# --- argument parsing (shared with the CLI, which passes the strings through) -----------------


def parse_array(array: str | int | Sequence[int]) -> tuple[int, int]:
    """(rows, cols) from ``"32x32"``, ``"32"`` (square), 32 or (32, 32)."""
    if isinstance(array, str):
        parts = array.lower().replace("×", "x").split("x")
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            raise InvalidInputError(f"bad array {array!r}: give ROWSxCOLS, e.g. 32x32, or one number for a square")
        sizes = [int(p) for p in parts]
    elif isinstance(array, int) and not isinstance(array, bool):
        sizes = [array]
    else:
        try:
            sizes = [int(a) for a in array]
        except (TypeError, ValueError):
            raise InvalidInputError(f"bad array {array!r}: give (rows, cols) or ROWSxCOLS, e.g. 32x32") from None
    rows, cols = (sizes[0], sizes[0]) if len(sizes) == 1 else (sizes[0], sizes[-1])
    if len(sizes) > 2 or rows < 1 or cols < 1:
        raise InvalidInputError(f"bad array {array!r}: give ROWSxCOLS with both >= 1, e.g. 32x32")
    return rows, cols


def parse_sram_kb(sram_kb: str | int | Sequence[int]) -> tuple[int, int, int]:
    """(ifmap, filter, ofmap) KB from 64, "64", "64,32,32" or (64, 32, 32)."""
    if isinstance(sram_kb, str):
        parts = [p.strip() for p in sram_kb.split(",")]
        if not all(p.isdigit() for p in parts):
            raise InvalidInputError(f"bad SRAM size {sram_kb!r}: give KB as N or IFMAP,FILTER,OFMAP, e.g. 64")
        sizes = [int(p) for p in parts]
    elif isinstance(sram_kb, int) and not isinstance(sram_kb, bool):
        sizes = [sram_kb]
    else:
        sizes = [int(s) for s in sram_kb]
    if len(sizes) == 1:
        sizes = sizes * 3
    if len(sizes) != 3 or min(sizes) < 1:
        raise InvalidInputError(f"bad SRAM size {sram_kb!r}: give KB as N or IFMAP,FILTER,OFMAP, each >= 1")
    return sizes[0], sizes[1], sizes[2]


def _check_settings(dataflow: str, bits: int, batch_size: int) -> None:
    if dataflow not in DATAFLOWS:
        raise InvalidInputError(f"unknown dataflow {dataflow!r}: use one of {', '.join(DATAFLOWS)}")
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise InvalidInputError(f"bad precision {bits!r}: give bits per word >= 1, e.g. 8 or 16")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"bad batch size {batch_size!r}: give an integer >= 1")


# --- the result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HardwareResult:
    """One model's hardware cost: its layers, their accesses, a systolic run and energies.

    ``accesses``, ``systolic`` and ``energy`` are the full records of the other modules;
    :attr:`totals` (a :class:`HardwareTotals`) and :meth:`record` flatten them into the
    figures a table or a store wants. Counts are words (one operand of ``bits`` bits) for the whole batch; energies
    are estimated, in ``energy_table.unit`` (joules, or units of one ALU MAC for eyeriss).
    """

    model: str
    source: str  # "zoo", "module", "layers" or "topology"
    settings: dict[str, Any]
    layers: list[LayerShape]
    accesses: AccessReport
    systolic: SystolicResult
    energy: dict[str, EnergyEstimate]  # "naive", "reuse", "systolic"
    layer_energy: list[dict[str, float]]  # per layer, the same three scenarios
    energy_table: EnergyTable
    notes: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    exported: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> HardwareTotals:
        acc, run = self.accesses, self.systolic
        return HardwareTotals(**_access_fields(acc), **_systolic_totals(run), energy=self._energy_totals())

    def _energy_totals(self) -> EnergyTotals:
        table = self.energy_table
        return EnergyTotals(
            label="estimated", table=table.name, unit=table.unit, bits=self.settings["bits"], source=table.source,
            **{scenario: estimate.total for scenario, estimate in self.energy.items()},
            by_level={s: dict(e.by_level) for s, e in self.energy.items()},
            notes=sorted({n for e in self.energy.values() for n in e.notes}),
        )

    def layer_records(self) -> list[HardwareLayer]:
        return [_layer_record(shape, acc, sys, energy) for shape, acc, sys, energy in
                zip(self.layers, self.accesses.layers, self.systolic.layers, self.layer_energy)]

    def layer_dicts(self) -> list[dict[str, Any]]:
        return [layer.to_dict() for layer in self.layer_records()]

    def record(self) -> HardwareRecord:
        """The figures a table or a store wants, as one typed record."""
        return HardwareRecord(model=self.model, source=self.source, settings=dict(self.settings), totals=self.totals,
                              layers=self.layer_records(), unsupported=list(self.unsupported),
                              notes=list(self.notes), exported=dict(self.exported))

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_dict()


def _access_fields(acc: AccessReport | LayerAccesses) -> dict[str, Any]:
    """The access figures shared by the totals and each layer."""
    naive, by_reuse = acc.naive_accesses, acc.by_reuse
    with_reuse = {kind: by_reuse[kind].total for kind in REUSE_KINDS}
    return {
        "macs": acc.macs,
        "flops": flops_of(acc.macs),  # products only: element-wise work is not in a hardware layer
        "naive_accesses": naive,
        "weights": acc.weights,
        "inputs": acc.inputs,
        "outputs": acc.outputs,
        "dram_lower_bound": acc.lower_bound,
        "accesses_with_reuse": with_reuse,
        # naive / accesses left: how many times fewer accesses each reuse (and all) gives
        "reduction_by_reuse": {kind: (naive / n if n else None) for kind, n in with_reuse.items()},
        "accesses_by_operand": {kind: by_reuse[kind] for kind in REUSE_KINDS},
    }


def _systolic_totals(run: SystolicResult) -> dict[str, Any]:
    sram_r, sram_w = run.sram_reads, run.sram_writes
    return {
        "cycles": run.cycles,
        "utilization": run.utilization if run.cycles else None,  # no layer: nothing to utilise
        "sram_reads": sram_r,
        "sram_writes": sram_w,
        "sram_accesses": sum(sram_r.values()) + sum(sram_w.values()),
        "dram_reads": run.dram_reads,
        "dram_writes": run.dram_writes,
        "dram_accesses": run.dram_accesses,
        "dram_bytes": run.dram_bytes,
        "dram_vs_lower_bound": run.dram_vs_lower_bound if run.lower_bound else None,
    }


def _layer_record(shape: LayerShape, acc: LayerAccesses, sys: LayerSystolic,
                  energy: dict[str, float]) -> HardwareLayer:
    reuse_factors = {k: getattr(acc, k) for k in (
        "weight_conv_reuse", "weight_filter_reuse", "input_conv_reuse", "input_conv_reuse_approx",
        "input_image_reuse", "psum_accumulations")}
    return HardwareLayer(
        name=shape.name, kind=shape.kind, **{k: getattr(shape, k) for k in SHAPE_FIELDS}, **_access_fields(acc),
        reuse_factors=reuse_factors, cycles=sys.cycles, folds=sys.folds, utilization=sys.utilization,
        compute_utilization=sys.compute_utilization, mapping_efficiency=sys.mapping_efficiency,
        sram_reads=dict(sys.sram_reads), sram_writes=dict(sys.sram_writes), sram_accesses=sys.sram_accesses,
        dram_reads=dict(sys.dram_reads), dram_writes=dict(sys.dram_writes), dram_accesses=sys.dram_accesses,
        dram_vs_lower_bound=sys.dram_vs_lower_bound,
        **{f"energy_{scenario}": value for scenario, value in energy.items()},
    )


# --- where the layers come from ---------------------------------------------------------------


def _layers_from(model: Any, topology: Any, input_size: Any, batch_size: int
                 ) -> tuple[str, str, list[LayerShape], list[str]]:
    """(label, source, layers, warnings raised while finding them)."""
    if isinstance(model, (str, Path)) and str(model).lower().endswith(".csv") and topology is None:
        model, topology = None, model  # a .csv is a SCALE-Sim topology, not a model
    if (model is None) == (topology is None):
        raise InvalidInputError("give exactly one of a model (name, nn.Module or layers) and a topology file")
    if topology is not None:
        if input_size is not None:
            raise InvalidInputError("a topology fixes every layer's input size; drop input_size")
        path = Path(topology)
        if not path.is_file():
            raise InvalidInputError(f"no topology file {path}: give the path of a SCALE-Sim topology CSV")
        # A topology describes one image: the batch multiplies each layer's N.
        layers = [dataclasses.replace(layer, N=layer.N * batch_size) for layer in read_topology(path)]
        return path.stem, "topology", layers, []
    if isinstance(model, (list, tuple)) and all(isinstance(item, LayerShape) for item in model):
        if batch_size != 1 or input_size is not None:
            raise InvalidInputError("layers given as LayerShapes carry their own batch and sizes; "
                                    "drop batch_size and input_size")
        return "layers", "layers", list(model), []
    if not isinstance(model, (str, nn.Module)):
        raise InvalidInputError(f"cannot read a model from {type(model).__name__}: "
                                "give a zoo name, an nn.Module, a list of LayerShape or a topology")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layers = extract_layers(model, input_size, batch_size)
    label = model if isinstance(model, str) else type(model).__name__
    return label, "zoo" if isinstance(model, str) else "module", layers, [str(w.message) for w in caught]


def _layer_energies(layers: list[LayerShape], run: SystolicResult, table: EnergyTable,
                    bits: int) -> list[dict[str, float]]:
    """Each layer's estimated energy in the three scenarios; they sum to the totals."""
    out = []
    for shape, sys in zip(layers, run.layers):
        one_run = dataclasses.replace(run, layers=[sys])
        out.append({
            "naive": estimate_energy([shape], table, bits=bits, scenario="naive").total,
            "reuse": estimate_energy([shape], table, bits=bits, scenario="reuse").total,
            "systolic": estimate_energy(one_run, table).total,
        })
    return out


def _export(layers: list[LayerShape], directory: Any, label: str, array: tuple[int, int], dataflow: str,
            sram: tuple[int, int, int], bits: int, notes: list[str]) -> dict[str, str]:
    config = ScaleSimConfig(array_rows=array[0], array_cols=array[1], ifmap_sram_kb=sram[0],
                            filter_sram_kb=sram[1], ofmap_sram_kb=sram[2], dataflow=dataflow,
                            run_name="".join(c if c.isalnum() else "_" for c in label) or "dnnmeter")
    # The convolution form describes one image; batched convolutions need the GEMM form.
    fmt = "gemm" if any(layer.N > 1 and layer.kind != "linear" for layer in layers) else "conv"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            paths = export_scalesim(layers, directory, config, fmt=fmt)
        except InvalidInputError as exc:  # e.g. unequal strides: the GEMM form still holds it
            notes.append(f"SCALE-Sim export in GEMM form: {exc}")
            fmt = "gemm"
            paths = export_scalesim(layers, directory, config, fmt=fmt)
    notes.extend(str(w.message) for w in caught)
    if bits != 8:
        notes.append(f"SCALE-Sim counts 1-byte words: at {bits} bits its SRAMs of the same KB hold "
                     f"{bits / 8:g}x the words dnnmeter's do, so SRAM-limited DRAM traffic differs")
    if fmt == "gemm":
        notes.append("SCALE-Sim topology written in GEMM form: run it with -i gemm")
    return {"format": fmt, **{k: str(v) for k, v in paths.items()}}


def estimate_hardware(
    model: str | nn.Module | Sequence[LayerShape] | None = None,
    *,
    input_size: Any = None,
    batch_size: int = 1,
    array: str | int | Sequence[int] = (32, 32),
    dataflow: str = "os",
    sram_kb: str | int | Sequence[int] = DEFAULT_SRAM_KB,
    bits: int = DEFAULT_BITS,
    energy_table: str | Path | EnergyTable = "eyeriss",
    topology: str | Path | None = None,
    export_scalesim: str | Path | None = None,
    name: str | None = None,
) -> HardwareResult:
    """The hardware cost of ``model`` (a zoo name, an ``nn.Module`` left untouched, or a list
    of :class:`LayerShape`) or of a SCALE-Sim ``topology`` CSV: exactly one of the two.

    ``array`` is (rows, cols) or "RxC"; ``dataflow`` os, ws or is; ``sram_kb`` one size or
    (ifmap, filter, ofmap) in KB; ``bits`` the word size for the array, the SRAM capacity and
    the energy (8 by default, SCALE-Sim's 1-byte word); ``energy_table`` eyeriss, 45nm, a
    .json/.toml file or an :class:`EnergyTable`. ``export_scalesim`` is a directory to write
    the SCALE-Sim 3 topology, layout and config of the same run into. ``name`` labels the
    result (default: the zoo name, the module's class, "layers" or the topology's stem).
    """
    rows_cols = parse_array(array)
    sram = parse_sram_kb(sram_kb)
    _check_settings(dataflow, bits, batch_size)
    table = get_energy_table(energy_table)
    label, source, layers, found_warnings = _layers_from(model, topology, input_size, batch_size)
    label = name or label
    notes = list(found_warnings)
    unsupported = [w for w in found_warnings if "left out" in w]
    if not layers:
        notes.append("no convolution, linear or matmul layer: every count is 0")
    accesses = count_accesses(layers)
    run = simulate(layers, rows_cols, dataflow, sram, bits)
    energy = {
        "naive": estimate_energy(accesses, table, bits=bits, scenario="naive"),
        "reuse": estimate_energy(accesses, table, bits=bits, scenario="reuse"),
        "systolic": estimate_energy(run, table),
    }
    settings = {
        "batch_size": batch_size if source != "layers" else None,
        "input_size": None if source in ("layers", "topology") else list(model_input_size(model, input_size)),
        "array": list(rows_cols), "dataflow": dataflow, "sram_kb": list(sram), "bits": bits,
        "energy_table": table.name, "topology": None if topology is None else str(topology),
    }
    exported = ({} if export_scalesim is None else
                _export(layers, export_scalesim, label, rows_cols, dataflow, sram, bits, notes))
    return HardwareResult(model=label, source=source, settings=settings, layers=layers, accesses=accesses,
                          systolic=run, energy=energy, layer_energy=_layer_energies(layers, run, table, bits),
                          energy_table=table, notes=notes, unsupported=unsupported, exported=exported)


def model_input_size(model: Any, input_size: Any = None) -> tuple[int, ...]:
    """(C, H, W) the layers are found at: ``input_size`` parsed, else the model's own (as
    :func:`~dnnmeter.hardware.layers.extract_layers` chooses it)."""
    size = parse_input_size(input_size)
    if size:
        return tuple(size)
    if isinstance(model, str):
        return tuple(resolve(model).input_size)
    return tuple(getattr(model, "input_size", None) or (3, 224, 224))
