"""dnnmeter.estimate_hardware(...): the one-call API, its JSON, its tables, figures and report section."""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

import dnnmeter.hardware as hw
from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware import (
    estimate_hardware,
    original_alexnet_layers,
    parse_array,
    parse_sram_kb,
    write_topology,
)
from dnnmeter.hardware.ceilings import Ceilings
from dnnmeter.hardware.records import HardwareRecord
from dnnmeter.hardware.roofline import RooflineRecord, roofline
from dnnmeter.report.hardware_figures import (
    draw_accesses,
    draw_hardware_figures,
    draw_roofline,
    draw_utilization,
)
from dnnmeter.report.sections.hardware import hardware_section
from dnnmeter.report.hardware_text import hardware_tables

ALEXNET_MACS, ALEXNET_NAIVE, ALEXNET_BOUND = 724_406_816, 2_897_627_264, 62_028_963
FAKE = Ceilings(device="cpu", peak_flops_per_s=100e9, bandwidth_bytes_per_s=10e9, label="published")


class Tiny(nn.Module):
    """conv 3->4, 3x3, pad 1 on 8x8, then a linear 256 -> 10: MACs by hand below."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


TINY_MACS = 4 * 3 * 9 * 8 * 8 + 256 * 10  # conv: M C R S E F; linear: in x out


@pytest.fixture(scope="module")
def alexnet() -> hw.HardwareResult:
    return estimate_hardware(original_alexnet_layers(), name="alexnet-2012")


def test_alexnet_check_figures(alexnet: hw.HardwareResult) -> None:
    t = alexnet.to_dict()["totals"]
    assert (t["macs"], t["naive_accesses"], t["dram_lower_bound"]) == (ALEXNET_MACS, ALEXNET_NAIVE, ALEXNET_BOUND)
    assert t["flops"] == 2 * ALEXNET_MACS
    assert t["reduction_by_reuse"]["all"] == pytest.approx(46.71, abs=0.01)
    assert t["accesses_with_reuse"]["psum"] == 1_449_472_904  # docs/hardware.md, totals by scenario
    # docs/hardware.md: OS, 32 x 32, 64 KB SRAMs, 8 bits -> 2,591,338 cycles, utilisation 0.273
    assert t["cycles"] == 2_591_338 and round(t["utilization"], 3) == 0.273
    assert t["energy"]["label"] == "estimated" and t["energy"]["table"] == "eyeriss"
    assert t["energy"]["naive"] > t["energy"]["reuse"] > 0


def test_json_fields_and_totals_are_layer_sums(alexnet: hw.HardwareResult) -> None:
    d = json.loads(json.dumps(alexnet.to_dict()))  # JSON-ready
    assert d["model"] == "alexnet-2012" and d["settings"]["array"] == [32, 32] and d["settings"]["bits"] == 8
    layers, t = d["layers"], d["totals"]
    assert [layer["name"] for layer in layers] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    for key in ("macs", "naive_accesses", "dram_lower_bound", "cycles", "dram_accesses", "sram_accesses"):
        assert t[key] == sum(layer[key] for layer in layers), key
    for kind in ("convolutional", "image", "all"):
        assert t["accesses_with_reuse"][kind] == sum(layer["accesses_with_reuse"][kind] for layer in layers)
    for operand in ("ifmap", "filter", "ofmap"):
        assert t["dram_reads"][operand] == sum(layer["dram_reads"][operand] for layer in layers)
    for scenario in ("naive", "reuse", "systolic"):
        assert t["energy"][scenario] == pytest.approx(sum(layer[f"energy_{scenario}"] for layer in layers))
    conv2 = layers[1]
    assert (conv2["groups"], conv2["E"], conv2["reuse_factors"]["input_image_reuse"]) == (2, 27, 128.0)
    assert {"utilization", "mapping_efficiency", "sram_reads", "sram_writes", "dram_writes",
            "dram_vs_lower_bound"} <= set(conv2)


def test_module_is_counted_and_left_untouched() -> None:
    model = Tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = estimate_hardware(model, input_size=(3, 8, 8), batch_size=2, array="8x4", dataflow="ws", bits=16,
                               energy_table="45nm")
    d = result.to_dict()
    assert d["totals"]["macs"] == 2 * TINY_MACS
    assert [(l["name"], l["kind"]) for l in d["layers"]] == [("conv", "conv"), ("fc", "linear")]
    assert d["settings"]["array"] == [8, 4] and d["settings"]["input_size"] == [3, 8, 8]
    assert d["totals"]["energy"]["unit"] == "J"
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_topology_import_path(tmp_path: Path) -> None:
    path = write_topology(original_alexnet_layers(), tmp_path / "alexnet.csv")
    one = estimate_hardware(topology=path)
    assert one.source == "topology" and one.model == "alexnet"
    assert one.totals.macs == ALEXNET_MACS  # grouped layers become one row per group
    assert len(one.layers) == 11  # conv2, conv4 and conv5 split in two
    assert estimate_hardware(str(path), batch_size=2).totals.macs == 2 * ALEXNET_MACS  # a .csv model is a topology


def test_export_scalesim_writes_the_run(tmp_path: Path) -> None:
    result = estimate_hardware(original_alexnet_layers(), array=(16, 16), dataflow="is", export_scalesim=tmp_path / "ss")
    files = result.exported
    assert files["format"] == "conv"
    assert Path(files["topology"]).read_text().splitlines()[1].startswith("conv1, 227, 227, 11, 11, 3, 96, 4")
    cfg = Path(files["config"]).read_text()
    assert "ArrayHeight : 16" in cfg and "Dataflow : is" in cfg and Path(files["layout"]).exists()
    batched = estimate_hardware(Tiny(), input_size=(3, 8, 8), batch_size=4, export_scalesim=tmp_path / "b")
    assert batched.exported["format"] == "gemm" and any("-i gemm" in n for n in batched.notes)


@pytest.mark.parametrize("kwargs, words", [
    ({"model": "alexnet", "array": "3x"}, "bad array"),
    ({"model": "alexnet", "array": (0, 4)}, "bad array"),
    ({"model": "alexnet", "dataflow": "xx"}, "unknown dataflow"),
    ({"model": "alexnet", "bits": 0}, "bad precision"),
    ({"model": "alexnet", "sram_kb": "64,a"}, "bad SRAM"),
    ({"model": "alexnet", "energy_table": "nope"}, "unknown energy table"),
    ({"topology": "/no/such/topology.csv"}, "no topology file"),
    ({"model": "alexnet", "topology": "x.csv"}, "exactly one"),
    ({}, "exactly one"),
    ({"model": 3}, "cannot read a model"),
])
def test_bad_inputs_are_one_line_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        estimate_hardware(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_parsers() -> None:
    assert parse_array("16x8") == (16, 8) and parse_array("32") == (32, 32) and parse_array(4) == (4, 4)
    assert parse_sram_kb("64") == (64, 64, 64) and parse_sram_kb("32,16,8") == (32, 16, 8)


def test_the_one_door_in_is_a_verb_beside_the_package() -> None:
    import dnnmeter

    assert dnnmeter.estimate_hardware(original_alexnet_layers()).totals.macs == ALEXNET_MACS
    assert dnnmeter.estimate_hardware is hw.estimate_hardware
    assert hw.count_accesses is not None  # the package's parts are still there


def test_text_tables(alexnet: hw.HardwareResult) -> None:
    roof = roofline(original_alexnet_layers(), FAKE, measure=False).record()
    console = Console(record=True, width=200)
    for table in hardware_tables(alexnet.record(), roof):
        console.print(table)
    text = console.export_text()
    assert "DRAM lower bound" in text and "62 M" in text and "fc8" in text and "46.7x" in text
    assert "memory" in text and "10 GB/s" in text


def test_figures_and_html_section(tmp_path: Path, alexnet: hw.HardwareResult) -> None:
    d = alexnet.record()
    roof = roofline(original_alexnet_layers(), FAKE, measure=False).record()
    figures = draw_hardware_figures(d, roof, tmp_path / "figures", prefix="alex")
    assert [f.name for f in figures] == ["alex_accesses", "alex_utilization", "alex_roofline"]
    for fig in figures:
        assert fig.skipped_reason is None and fig.png and fig.png.stat().st_size > 1000
        assert fig.svg and fig.svg.read_text().lstrip().startswith("<?xml")
    html = hardware_section([d], [roof], figures, tmp_path)
    assert html.count("<table>") >= 4 and html.count('src="data:image/png;base64,') == 3
    assert 'id="alex_roofline"' in html and "alexnet-2012" in html and "fc6" in html


def test_figures_say_why_they_are_not_drawn(tmp_path: Path) -> None:
    empty = dataclasses.replace(estimate_hardware(original_alexnet_layers()).record(), model="none", layers=[])
    assert "no convolution" in (draw_accesses(empty, tmp_path / "a").skipped_reason or "")
    assert "no convolution" in (draw_utilization(empty, tmp_path / "u").skipped_reason or "")
    roof = roofline(original_alexnet_layers(), FAKE, measure=False).record()
    roof = dataclasses.replace(roof, ceilings=dataclasses.replace(roof.ceilings, peak_flops_per_s=None,
                                                                  unavailable_reason="no CUDA device"))
    assert "no CUDA device" in (draw_roofline(roof, tmp_path / "r").skipped_reason or "")
    assert not (tmp_path / "r.png").exists()


def test_totals_are_typed_and_the_old_dict_form_warns():
    totals = estimate_hardware(original_alexnet_layers()).totals
    assert totals.macs == ALEXNET_MACS and totals.energy.label == "estimated"
    with pytest.warns(DeprecationWarning, match="totals.naive_accesses"):
        assert totals["naive_accesses"] == totals.naive_accesses
    with pytest.warns(DeprecationWarning):
        assert totals["energy"]["naive"] == totals.energy.naive  # the old nested dict


def test_a_stored_hardware_dict_reads_back_as_the_same_record():
    from dnnmeter.hardware.records import HardwareRecord

    stored = json.loads(json.dumps(estimate_hardware("resnet18", array="16x16").to_dict()))
    record = HardwareRecord.from_dict({**stored, "added_by_a_later_version": 1})
    assert record.totals.cycles == stored["totals"]["cycles"] and record.layers[0].U == (2, 2)
    assert record.to_dict() == stored
