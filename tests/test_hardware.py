"""dnnmeter.hardware: layer extraction, accesses and reuse, energy, SCALE-Sim files.

Oracles: counts by hand for small layers; the original AlexNet's published figures
(724M MACs, ~2.9G naive accesses, ~62M DRAM accesses); dnnmeter.analyze for extraction.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

import dnnmeter
from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware import (
    ENERGY_TABLES,
    ScaleSimConfig,
    conv_layer,
    count_accesses,
    estimate_energy,
    export_scalesim,
    extract_layers,
    layer_accesses,
    linear_layer,
    load_energy_table,
    matmul_layer,
    original_alexnet_layers,
    read_config,
    read_topology,
    simulate,
    write_topology,
)
from dnnmeter.hardware.accesses import touched_extent
from dnnmeter.hardware.scalesim_io import topology_rows

# --- layers -------------------------------------------------------------------------------


def test_conv_layer_output_size_follows_torch() -> None:
    layer = conv_layer("c", 3, 224, 224, 64, 11, stride=4, pad=2)
    ref = nn.Conv2d(3, 64, 11, stride=4, padding=2)(torch.empty(1, 3, 224, 224, device="meta"))
    assert (layer.E, layer.F) == tuple(ref.shape[2:]) == (55, 55)


def test_linear_and_matmul_are_gemms_with_the_right_macs() -> None:
    assert linear_layer("fc", 9216, 4096, rows=3).macs == 3 * 9216 * 4096
    mm = matmul_layer("bmm", batch=12, m=197, k=64, n=197)
    assert mm.macs == 12 * 197 * 64 * 197
    assert mm.groups == 12 and mm.kind == "matmul"


def test_layer_shape_rejects_channels_not_divisible_by_groups() -> None:
    with pytest.raises(InvalidInputError, match="groups"):
        conv_layer("bad", 6, 8, 8, 4, 3, groups=4)


def test_extract_alexnet_matches_analyze() -> None:
    layers = extract_layers("alexnet")
    assert [layer.kind for layer in layers] == ["conv"] * 5 + ["linear"] * 3
    assert layers[0].name == "features.0" and layers[0].U == (4, 4) and layers[0].pad == (2, 2)
    assert sum(layer.macs for layer in layers) == dnnmeter.analyze("alexnet").macs == 714_188_480


def test_extract_resnet18_matches_analyze_conv_and_linear_macs() -> None:
    layers = extract_layers("resnet18", batch_size=2)
    kinds = dnnmeter.analyze("resnet18", batch_size=2).by_kind
    assert sum(layer.macs for layer in layers) == kinds["conv"].macs + kinds["linear"].macs
    assert {layer.N for layer in layers} == {2}


def test_extract_mobilenet_finds_depthwise_layers() -> None:
    layers = extract_layers("mobilenet_v2")
    depthwise = [layer for layer in layers if layer.kind == "depthwise_conv"]
    assert depthwise and all(layer.groups == layer.C for layer in depthwise)
    assert sum(layer.macs for layer in layers) == dnnmeter.analyze("mobilenet_v2").macs


def test_extract_user_module_leaves_it_on_cpu_and_names_layers() -> None:
    model = nn.Sequential(nn.Conv1d(4, 8, 3), nn.Flatten(), nn.Linear(8 * 14, 5))
    layers = extract_layers(model, input_size=(4, 16), batch_size=3)
    assert [(layer.name, layer.kind) for layer in layers] == [("0", "conv"), ("2", "linear")]
    conv = layers[0]
    assert (conv.N, conv.C, conv.H, conv.W, conv.M, conv.R, conv.S, conv.E, conv.F) == (3, 4, 16, 1, 8, 3, 1, 14, 1)
    assert layers[1].N == 3 and layers[1].macs == 3 * 112 * 5
    assert all(p.device.type == "cpu" for p in model.parameters())


class _Attention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.view(x.shape[0], 4, 10, 8)
        return nn.functional.scaled_dot_product_attention(q, q, q)


def test_extract_attention_as_two_matmuls() -> None:
    layers = extract_layers(_Attention(), input_size=(4, 10, 8), batch_size=2)
    assert [layer.kind for layer in layers] == ["matmul", "matmul"]
    assert all(layer.groups == 2 * 4 and layer.E == 10 for layer in layers)
    assert sum(layer.macs for layer in layers) == dnnmeter.analyze(_Attention(), input_size=(4, 10, 8), batch_size=2).macs


def test_extract_warns_about_transposed_convolutions() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 2, 2))
    with pytest.warns(UserWarning, match="transposed convolution x1"):
        layers = extract_layers(model, input_size=(3, 8, 8))
    assert len(layers) == 1


# --- accesses and reuse -------------------------------------------------------------------


def test_single_conv_counted_by_hand() -> None:
    # 2 channels of 5x5, 3 filters of 3x3, no padding: a 3x3 output.
    acc = layer_accesses(conv_layer("c", 2, 5, 5, 3, 3))
    assert acc.macs == 3 * 2 * 9 * 9 == 486
    assert acc.naive_accesses == 4 * 486
    assert (acc.weights, acc.inputs, acc.outputs) == (54, 50, 27)
    assert acc.lower_bound == 54 + 50 + 27
    assert (acc.weight_conv_reuse, acc.weight_filter_reuse, acc.input_image_reuse) == (9, 1, 3)
    assert acc.psum_accumulations == 18
    assert acc.input_conv_reuse == pytest.approx(81 / 25)  # E*F*R*S / touched pixels
    conv = acc.by_reuse["convolutional"]
    assert (conv.weight_reads, conv.input_reads) == (54, 3 * 2 * 25)
    assert acc.by_reuse["image"].input_reads == 486 // 3
    assert acc.by_reuse["psum"].psum_reads == 0 and acc.by_reuse["psum"].psum_writes == 27
    assert acc.by_reuse["all"].total == acc.lower_bound


def test_depthwise_conv_counted_by_hand() -> None:
    acc = layer_accesses(conv_layer("dw", 4, 6, 6, 4, 3, pad=1, groups=4))
    assert acc.macs == 4 * 1 * 9 * 36
    assert acc.weights == 36 and acc.psum_accumulations == 9 and acc.input_image_reuse == 1
    assert acc.by_reuse["image"].input_reads == acc.macs  # one filter per group: no image reuse
    assert acc.by_reuse["all"].input_reads == 4 * 36


def test_stride_two_one_by_one_reads_a_quarter_of_its_input() -> None:
    acc = layer_accesses(conv_layer("down", 8, 8, 8, 16, 1, stride=2))
    assert acc.macs == 16 * 8 * 16
    assert acc.inputs == 8 * 64 and acc.by_reuse["all"].input_reads == 8 * 16
    assert acc.input_conv_reuse_approx == 0.25


@pytest.mark.parametrize("size,kernel,stride,pad,dilation", [
    (11, 3, 1, 1, 1), (227, 11, 4, 0, 1), (9, 1, 2, 0, 1), (10, 3, 2, 2, 2), (7, 2, 3, 0, 1), (5, 3, 1, 0, 3),
])
def test_touched_extent_against_brute_force(size: int, kernel: int, stride: int, pad: int, dilation: int) -> None:
    out = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    brute = {e * stride - pad + r * dilation for e in range(out) for r in range(kernel)} & set(range(size))
    assert touched_extent(size, kernel, stride, pad, dilation, out) == len(brute)


def test_batch_four_multiplies_what_it_should() -> None:
    one = layer_accesses(conv_layer("c", 16, 14, 14, 32, 3, pad=1))
    four = layer_accesses(conv_layer("c", 16, 14, 14, 32, 3, pad=1, N=4))
    assert four.macs == 4 * one.macs and four.naive_accesses == 4 * one.naive_accesses
    assert four.inputs == 4 * one.inputs and four.outputs == 4 * one.outputs
    assert four.weights == one.weights  # weights are shared by the batch
    assert four.weight_filter_reuse == 4
    assert four.by_reuse["filter"].weight_reads == one.macs  # = 4 * macs / 4


def test_original_alexnet_check_figures() -> None:
    report = count_accesses(original_alexnet_layers())
    assert report.macs == 724_406_816
    assert report.macs == pytest.approx(724.4e6, rel=1e-3)
    assert report.naive_accesses == 4 * report.macs == 2_897_627_264
    assert report.weights == 60_954_656  # ~61M weights, biases not counted
    assert report.lower_bound == 62_028_963
    assert report.lower_bound == pytest.approx(62e6, rel=0.03)
    assert report.by_reuse["all"].total == report.lower_bound


def test_original_alexnet_batch_size() -> None:
    one, four = count_accesses(original_alexnet_layers()), count_accesses(original_alexnet_layers(4))
    assert four.macs == 4 * one.macs and four.weights == one.weights


def test_reuse_factors_of_alexnet_conv3() -> None:
    conv3 = layer_accesses(original_alexnet_layers()[2])  # 256 -> 384, 3x3, 13x13, pad 1
    assert conv3.weight_conv_reuse == 13 * 13
    assert conv3.input_conv_reuse_approx == 9
    assert conv3.input_conv_reuse == pytest.approx(9.0)  # every input is touched: 169*9/169
    assert conv3.input_image_reuse == 384
    assert conv3.psum_accumulations == 256 * 9


def test_access_report_totals_equal_layer_sums_and_serialise() -> None:
    report = count_accesses(extract_layers("resnet18"))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["macs"] == sum(layer["macs"] for layer in d["layers"])
    assert d["by_reuse"]["all"]["total"] == sum(layer["by_reuse"]["all"]["total"] for layer in d["layers"])
    assert d["by_reuse"]["none"]["total"] == d["naive_accesses"]


# --- energy -------------------------------------------------------------------------------


def test_energy_is_labelled_estimated_and_reuse_saves_most() -> None:
    layers = original_alexnet_layers()
    naive = estimate_energy(layers, "eyeriss", bits=16, scenario="naive")
    reuse = estimate_energy(layers, "eyeriss", bits=16, scenario="reuse")
    assert naive.label == reuse.label == "estimated" and naive.unit == "normalized"
    assert naive.energy_j is None
    assert naive.by_level["dram"] == 200 * 2_897_627_264
    assert reuse.by_level["dram"] == 200 * 62_028_963
    assert reuse.by_level["alu"] == 724_406_816
    assert reuse.total < naive.total / 10


def test_energy_scales_with_bits_and_table() -> None:
    layers = original_alexnet_layers()
    e8 = estimate_energy(layers, "45nm", bits=8, scenario="naive")
    e32 = estimate_energy(layers, "45nm", bits=32, scenario="naive")
    assert e32.by_level["dram"] == pytest.approx(4 * e8.by_level["dram"])
    assert e32.by_level["dram"] == pytest.approx(2_897_627_264 * 640e-12)
    assert e8.mac_cost.bits == 8 and e32.mac_cost.type == "float"
    assert e8.by_level["alu"] == pytest.approx(724_406_816 * 0.23e-12)
    assert e8.energy_j == pytest.approx(e8.total)
    # The 45 nm table has no register file: those accesses are charged as 8 KB SRAM reads.
    reuse = estimate_energy(layers, "45nm", bits=32)
    assert reuse.by_level["rf"] == pytest.approx(2_897_627_264 * 5e-12)
    assert any("rf accesses" in note for note in reuse.notes)


def test_energy_table_from_json_and_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = {"name": "mine", "unit": "J", "reference_bits": 8, "levels": {"buffer": 1.0, "dram": 100.0},
             "arithmetic": [{"type": "int", "bits": 8, "mac": 0.5}]}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(table))
    layers = [linear_layer("fc", 10, 10)]
    e = estimate_energy(layers, path, bits=16, scenario="naive")
    assert e.table == "mine" and e.by_level["dram"] == 400 * 100.0 * 2 and e.by_level["alu"] == 50.0
    toml = tmp_path / "mine.toml"
    toml.write_text('name = "t"\nunit = "J"\nreference_bits = 8\n[levels]\ndram = 3.0\n'
                    '[[arithmetic]]\ntype = "int"\nbits = 8\nmult = 1.0\nadd = 0.5\n')
    assert load_energy_table(toml).mac_cost(8).mac == 1.5
    assert estimate_energy(layers, toml, bits=8).by_level["rf"] == 400 * 3.0  # all levels fall to dram
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"levels": {"l3": 1}}))
    with pytest.raises(InvalidInputError, match="arithmetic"):
        load_energy_table(bad)


def test_energy_of_a_systolic_run_uses_its_counts() -> None:
    run = simulate(original_alexnet_layers(), bits=8)
    e = estimate_energy(run, "45nm")
    assert e.scenario == "systolic" and e.bits == 8
    assert e.accesses_by_level["dram"] == run.dram_accesses
    with pytest.raises(InvalidInputError, match="bits"):
        estimate_energy(run, "45nm", bits=16)
    assert set(ENERGY_TABLES) == {"eyeriss", "45nm"}


# --- SCALE-Sim files ----------------------------------------------------------------------

SCALESIM_ALEXNET = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
Conv1     ,224         ,224        ,11           ,11          ,3       ,96        ,4      ,
Conv2     ,27         ,27        ,5            ,5           ,96      ,256       ,1      ,
Conv3     ,13          ,13         ,3            ,3           ,256     ,384       ,1      ,
"""


def test_read_scalesim_topology_uses_its_output_rule(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "alexnet.csv"
    path.write_text(SCALESIM_ALEXNET)
    conv1, conv2, conv3 = read_topology(path)
    assert conv1.name == "Conv1" and (conv1.E, conv1.F) == (55, 55)  # ceil((224-11+4)/4)
    assert conv1.macs == 55 * 55 * 11 * 11 * 3 * 96  # SCALE-Sim's num_mac
    assert (conv2.E, conv3.E) == (23, 11) and conv2.pad == (0, 0)


def test_scalesim_round_trip_keeps_every_gemm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    layers = original_alexnet_layers()
    paths = export_scalesim(layers, tmp_path, ScaleSimConfig(array_rows=16, array_cols=8, dataflow="ws"))
    back = read_topology(paths["topology"])
    assert len(back) == 11  # conv2, conv4 and conv5 are a row per tower
    assert sum(layer.macs for layer in back) == sum(layer.macs for layer in layers)
    assert simulate(back, (16, 8), "ws").cycles == simulate(layers, (16, 8), "ws").cycles
    config = read_config(paths["config"])
    assert config.array == (16, 8) and config.dataflow == "ws" and config.sram_kb == (64, 64, 64)
    text = paths["topology"].read_text().splitlines()
    assert text[0] == "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
    assert text[1] == "conv1, 227, 227, 11, 11, 3, 96, 4,"
    assert len(paths["layout"].read_text().splitlines()) == 12


def test_export_trims_the_padded_input_to_what_torch_reads() -> None:
    (row,) = topology_rows(extract_layers("alexnet")[:1])
    assert row[1:4] == (227, 227, 11)  # 224 + 2*2 = 228, but the 55th window ends at 227


def test_export_depthwise_grouped_matmul_and_gemm_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    layers = [conv_layer("DPish", 8, 6, 6, 8, 3, pad=1), conv_layer("dw", 8, 6, 6, 8, 3, pad=1, groups=8),
              matmul_layer("mm", 2, 5, 7, 6)]
    rows = topology_rows(layers)
    assert rows[0][0] == "Dpish" and rows[1][0] == "dw_DP" and rows[1][5:7] == (8, 1)
    assert [r[0] for r in rows[2:]] == ["mm_g0", "mm_g1"]
    back = read_topology(write_topology(layers, tmp_path / "t.csv"))
    assert back[1].kind == "depthwise_conv" and back[1].groups == 8
    assert sum(b.macs for b in back) == sum(layer.macs for layer in layers)
    gemm = read_topology(write_topology(layers, tmp_path / "g.csv", fmt="gemm"))
    assert sum(b.macs for b in gemm) == sum(layer.macs for layer in layers)
    assert (tmp_path / "g.csv").read_text().startswith("Layer, M, N, K,\n")


def test_export_refuses_a_batched_convolution_and_warns_on_dilation() -> None:
    with pytest.raises(InvalidInputError, match="fmt='gemm'"):
        topology_rows([conv_layer("c", 3, 8, 8, 4, 3, N=2)])
    assert topology_rows([conv_layer("c", 3, 8, 8, 4, 3, N=2)], fmt="gemm") == [("c", 2 * 36, 4, 27)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (row,) = topology_rows([conv_layer("d", 3, 12, 12, 4, 3, dilation=2)])
    assert row[3] == 5 and "dilation" in str(caught[0].message)
