"""SCALE-Sim 3 topologies and configs: read them as LayerShapes, write LayerShapes as them.

Topology CSV (convolution form), one row per layer, every row ending in a comma (SCALE-Sim
drops the text after the last comma)::

    Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
    Conv1, 227, 227, 11, 11, 3, 96, 4,

SCALE-Sim knows no padding, groups, dilation or batch, so:

- IFMAP sizes are the **padded** input, trimmed to the rows the windows read:
  (E - 1)*U + R, at most H + 2*pad. SCALE-Sim's output size ceil((IFMAP - R + U) / U) is
  then torch's E (on the untrimmed padded size it is one more whenever U does not divide
  H + 2*pad - R, e.g. torchvision AlexNet's conv1: 228 -> 56 instead of 55).
- Reading a topology gives layers with pad 0, H and W as given, and SCALE-Sim's own output
  size (the padding cannot be told from the data).
- a depthwise layer (groups = C) is written with ``DP`` in its name, Channels = C and
  Num Filter = M/C: SCALE-Sim runs it as C one-channel layers. Any other name has ``DP``
  written ``Dp`` so that SCALE-Sim does not split it.
- a grouped layer (and a batched matmul, which is one) becomes one row per group,
  ``name_g0``, ``name_g1``, ... with C/groups channels and M/groups filters.
- a linear layer of ``rows`` inputs is a 1 x 1 convolution over a rows x 1 input.
- a convolution with batch N > 1 cannot be written in this form: use ``fmt="gemm"``.
- dilation d is written as the dilated kernel extent (R - 1)*d + 1, which over-counts MACs;
  a warning says so.

GEMM form (``fmt="gemm"``, run with SCALE-Sim's ``-i gemm``): ``Layer, M, N, K,`` with M = P
(N*E*F rows), N = Q (M/groups filters), K = C/groups*R*S, one row per group.

Configs (:class:`ScaleSimConfig`) are the ``scale.cfg`` files SCALE-Sim 3.0 reads, every
section it requires included ([general], [architecture_presets], [layout], [sparsity],
[run_presets]); :func:`write_layout` writes the layout CSV it also asks for.
"""

from __future__ import annotations

import configparser
import csv
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware.layers import LayerShape, gemm_shape, linear_layer

__all__ = [
    "CONV_HEADER",
    "GEMM_HEADER",
    "ScaleSimConfig",
    "export_scalesim",
    "read_config",
    "read_topology",
    "scalesim_out",
    "topology_rows",
    "write_config",
    "write_layout",
    "write_topology",
]

CONV_HEADER = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
               "Channels", "Num Filter", "Strides")
GEMM_HEADER = ("Layer", "M", "N", "K")


def _safe_name(name: str) -> str:
    # SCALE-Sim splits any layer whose name contains "DP" into per-channel layers; commas
    # would break the CSV.
    return (name or "layer").replace("DP", "Dp").replace(",", "_").replace(" ", "_")


def _read_extent(out: int, stride: int, kernel: int) -> int:
    """The padded input extent the windows read: (out - 1) * stride + kernel.

    Torch drops the last (H + 2*pad - R) % U rows of the padded input; SCALE-Sim's output
    size ceil((H_in - R + U) / U) would count one more output row for them. Writing the
    extent that is read makes SCALE-Sim's output size torch's."""
    return (out - 1) * stride + kernel


def _conv_rows(layer: LayerShape) -> list[tuple[Any, ...]]:
    name = _safe_name(layer.name)
    if layer.N > 1 and layer.kind != "linear":
        raise InvalidInputError(
            f"{layer.name}: SCALE-Sim convolution topologies describe one image; "
            "export at batch size 1, or write the GEMM form (fmt='gemm')"
        )
    if layer.kind == "linear":  # rows x in_features as a rows x 1 image of in_features channels
        return [(name, layer.N, 1, 1, 1, layer.C, layer.M, 1)]
    if layer.U[0] != layer.U[1] and not (layer.W == 1 and layer.S == 1):  # a 1-d layer has one stride
        raise InvalidInputError(f"{layer.name}: SCALE-Sim has one stride for both axes, not {layer.U}")
    if max(layer.dilation) > 1:
        warnings.warn(f"{layer.name}: dilation {layer.dilation} written as the dilated kernel extent; "
                      "SCALE-Sim will count more MACs than the layer does", stacklevel=2)
    r = (layer.R - 1) * layer.dilation[0] + 1
    s = (layer.S - 1) * layer.dilation[1] + 1
    h, w = _read_extent(layer.E, layer.U[0], r), _read_extent(layer.F, layer.U[1], s)
    if layer.kind == "depthwise_conv":
        return [(f"{name}_DP", h, w, r, s, layer.C, layer.M // layer.groups, layer.U[0])]
    per_c, per_m = layer.C // layer.groups, layer.M // layer.groups
    if layer.groups == 1:
        return [(name, h, w, r, s, per_c, per_m, layer.U[0])]
    return [(f"{name}_g{g}", h, w, r, s, per_c, per_m, layer.U[0]) for g in range(layer.groups)]


def _gemm_rows(layer: LayerShape) -> list[tuple[Any, ...]]:
    P, K, Q, groups = gemm_shape(layer)
    name = _safe_name(layer.name)
    if groups == 1:
        return [(name, P, Q, K)]
    return [(f"{name}_g{g}", P, Q, K) for g in range(groups)]


def topology_rows(layers: Iterable[LayerShape], fmt: str = "conv") -> list[tuple[Any, ...]]:
    """The topology's rows (without header) for ``layers`` in ``fmt`` "conv" or "gemm"."""
    if fmt not in ("conv", "gemm"):
        raise InvalidInputError(f"unknown topology format {fmt!r}: use conv or gemm")
    convert = _conv_rows if fmt == "conv" else _gemm_rows
    return [row for layer in layers for row in convert(layer)]


def _write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    lines = [", ".join(header) + ","] + [", ".join(str(v) for v in row) + "," for row in rows]
    path.write_text("\n".join(lines) + "\n")


def write_topology(layers: Iterable[LayerShape], path: str | Path, fmt: str = "conv") -> Path:
    """Write ``layers`` as a SCALE-Sim topology CSV; returns the path."""
    path = Path(path)
    rows = topology_rows(layers, fmt)
    _write_rows(path, CONV_HEADER if fmt == "conv" else GEMM_HEADER, rows)
    return path


def _cells(line: str) -> list[str]:
    # As SCALE-Sim reads a row: split on commas, drop what follows the last one.
    return [c.strip() for c in line.split(",")[:-1]]


def scalesim_out(size: int, kernel: int, stride: int) -> int:
    """SCALE-Sim's output size: ceil((size - kernel + stride) / stride)."""
    return -(-(size - kernel + stride) // stride)


def _integers(cells: list[str], names: Sequence[str], where: str) -> list[int]:
    """The row's values after the layer name, each named in the message when it is wrong."""
    values = cells[1:1 + len(names)]
    if len(values) < len(names):
        raise InvalidInputError(f"{where}: {len(values)} values after the layer name, expected {len(names)} "
                                f"({', '.join(names)})")
    numbers = []
    for name, value in zip(names, values):
        try:
            number = int(value)
        except ValueError:
            raise InvalidInputError(f"{where}: {name} is {value!r}, not an integer") from None
        if number < 1:
            raise InvalidInputError(f"{where}: {name} is {number}; every size and stride must be >= 1")
        numbers.append(number)
    return numbers


def _conv_layer_from(cells: list[str], where: str) -> LayerShape:
    name = cells[0]
    h, w, r, s, c, m, u = _integers(cells, CONV_HEADER[1:], where)
    if r > h or s > w:
        raise InvalidInputError(f"{where}: a {r}x{s} filter (Filter Height x Width) is larger than the "
                                f"{h}x{w} IFMAP (IFMAP Height x Width)")
    if h == w == r == s == 1:
        return linear_layer(name, c, m)
    # The output size is SCALE-Sim's (it can exceed torch's by one when the stride does not
    # divide), so that the layer is the one SCALE-Sim simulates.
    e, f = scalesim_out(h, r, u), scalesim_out(w, s, u)
    if "DP" in name:  # SCALE-Sim runs it as c one-channel layers of m filters each
        return LayerShape(name, "depthwise_conv" if c > 1 else "conv", 1, c, h, w, c * m, r, s, e, f,
                          (u, u), groups=c)
    return LayerShape(name, "conv", 1, c, h, w, m, r, s, e, f, (u, u))


def read_topology(path: str | Path) -> list[LayerShape]:
    """Layers from a SCALE-Sim topology CSV, convolution or GEMM form (told by the header).

    Convolution rows become layers with pad 0 on the given (padded) IFMAP; 1 x 1 rows on a
    1 x 1 IFMAP become linear layers; ``DP`` rows depthwise layers. GEMM rows become linear
    layers of M rows, K inputs and N outputs."""
    path = Path(path)
    lines = [line for line in _topology_text(path).splitlines() if line.strip()]
    if len(lines) < 2:
        raise InvalidInputError(f"{path}: {'a header and ' if lines else ''}no layers; a SCALE-Sim topology has "
                                f"a header ({', '.join(CONV_HEADER)}) and one row per layer")
    header = [h.lower() for h in next(csv.reader([lines[0]]))]
    gemm = len(header) > 3 and [h.strip() for h in header[1:4]] == ["m", "n", "k"]
    layers = []
    for number, line in enumerate(lines[1:], start=2):
        cells = _cells(line if line.rstrip().endswith(",") else line + ",")
        where = f"{path}:{number}"
        if gemm:
            m, n, k = _integers(cells, GEMM_HEADER[1:], where)
            layers.append(linear_layer(cells[0], k, n, rows=m))
        else:
            layers.append(_conv_layer_from(cells, where))
    return layers


def _topology_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read topology {path}: {exc.strerror}") from None
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\0"), data.index(b"\0") + 1, "NUL byte")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not a text CSV (binary data); give a SCALE-Sim topology CSV") from None


_LAYOUT_HEADER = (
    "Layer name", "IFMAP Height Intraline Factor", "IFMAP Width Intraline Factor",
    "Filter Height Intraline Factor", "Filter Width Intraline Factor", "Channel Intraline Factor",
    "Num Filter Intraline Factor", "IFMAP Height Intraline Order", "IFMAP Width Intraline Order",
    "Channel Intraline Order", "IFMAP Height Interline Order", "IFMAP Width Interline Order",
    "Channel Interline Order", "Num Filter Intraline Order", "Channel Intraline Order",
    "Filter Height Intraline Order", "Filter Width Intraline Order", "Num Filter Interline Order",
    "Channel Interline Order", "Filter Height Interline Order", "Filter Width Interline Order",
)
# Intraline factors of 1 and the dimension orders of SCALE-Sim's own layouts/conv_nets files.
_LAYOUT_VALUES = (1, 1, 1, 1, 1, 1, 1, 2, 0, 4, 5, 3, 3, 0, 1, 2, 7, 4, 5, 6)


def write_layout(layers: Iterable[LayerShape], path: str | Path, fmt: str = "conv") -> Path:
    """The layout CSV SCALE-Sim 3 requires, one row per topology row. Its values only matter
    with IfmapCustomLayout/FilterCustomLayout on, which :func:`write_config` leaves off."""
    path = Path(path)
    _write_rows(path, _LAYOUT_HEADER, [(row[0], *_LAYOUT_VALUES) for row in topology_rows(layers, fmt)])
    return path


@dataclass(frozen=True)
class ScaleSimConfig(Record):
    """The architecture of a SCALE-Sim run. SRAM sizes in KB; bandwidth in words per cycle."""

    array_rows: int = 32
    array_cols: int = 32
    ifmap_sram_kb: int = 64
    filter_sram_kb: int = 64
    ofmap_sram_kb: int = 64
    dataflow: str = "os"
    bandwidth_words: int = 10
    interface_bandwidth: str = "CALC"  # CALC: SCALE-Sim estimates it (no stalls); USER: bandwidth_words
    run_name: str = "dnnmeter"

    @property
    def array(self) -> tuple[int, int]:
        return (self.array_rows, self.array_cols)

    @property
    def sram_kb(self) -> tuple[int, int, int]:
        return (self.ifmap_sram_kb, self.filter_sram_kb, self.ofmap_sram_kb)



def write_config(config: ScaleSimConfig, path: str | Path) -> Path:
    """Write ``config`` as a SCALE-Sim 3 ``scale.cfg``."""
    if config.dataflow not in ("os", "ws", "is"):
        raise InvalidInputError(f"unknown dataflow {config.dataflow!r}: use os, ws or is")
    text = f"""[general]
run_name = {config.run_name}

[architecture_presets]
ArrayHeight : {config.array_rows}
ArrayWidth : {config.array_cols}
IfmapSramSzkB : {config.ifmap_sram_kb}
FilterSramSzkB : {config.filter_sram_kb}
OfmapSramSzkB : {config.ofmap_sram_kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {config.bandwidth_words}
Dataflow : {config.dataflow}
MemoryBanks : 1
ReadRequestBuffer : 512
WriteRequestBuffer : 512

[layout]
IfmapCustomLayout : False
FilterCustomLayout : False
IfmapSRAMBankBandwidth : {config.bandwidth_words}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterSRAMBankBandwidth : {config.bandwidth_words}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : {config.interface_bandwidth}
UseRamulatorTrace : False
"""
    path = Path(path)
    path.write_text(text)
    return path


def read_config(path: str | Path) -> ScaleSimConfig:
    """The architecture in a SCALE-Sim ``scale.cfg`` (v2 or v3; keys are case-insensitive)."""
    parser = configparser.ConfigParser()
    try:
        if not parser.read(Path(path)):
            raise InvalidInputError(f"cannot read SCALE-Sim config {path}")
        arch = parser["architecture_presets"]
        bandwidth = arch.get("Bandwidth", "10").split(",")[0].strip() or "10"
        return ScaleSimConfig(
            array_rows=int(arch["ArrayHeight"]), array_cols=int(arch["ArrayWidth"]),
            ifmap_sram_kb=int(arch["IfmapSramSzkB"]), filter_sram_kb=int(arch["FilterSramSzkB"]),
            ofmap_sram_kb=int(arch["OfmapSramSzkB"]), dataflow=arch.get("Dataflow", "os").strip(),
            bandwidth_words=int(bandwidth),
            interface_bandwidth=parser.get("run_presets", "InterfaceBandwidth", fallback="CALC").strip(),
            run_name=parser.get("general", "run_name", fallback="dnnmeter").strip(),
        )
    except (KeyError, ValueError, configparser.Error) as exc:
        raise InvalidInputError(f"{path}: not a SCALE-Sim config ({exc}); it needs [architecture_presets] "
                                "with ArrayHeight, ArrayWidth, IfmapSramSzkB, FilterSramSzkB, OfmapSramSzkB") from None


def export_scalesim(layers: Sequence[LayerShape], directory: str | Path,
                    config: ScaleSimConfig | None = None, name: str = "topology",
                    fmt: str = "conv") -> dict[str, Path]:
    """Write ``name``.csv (topology), ``name``_layout.csv and scale.cfg into ``directory``.

    Run them with SCALE-Sim 3: ``python -m scalesim.scale -t topology.csv -l
    topology_layout.csv -c scale.cfg -p results`` (add ``-i gemm`` for the GEMM form)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = config or ScaleSimConfig()
    return {
        "topology": write_topology(layers, directory / f"{name}.csv", fmt),
        "layout": write_layout(layers, directory / f"{name}_layout.csv", fmt),
        "config": write_config(config, directory / "scale.cfg"),
    }
