"""dnnmeter.hardware.systolic: SCALE-Sim 3's compute model in closed form.

Oracles: cycle counts worked by hand on a 2x2 array; figures SCALE-Sim 3.0.0 reported for
three small layers on a 4x4 array (run once, kept here); invariants on real networks.
"""

from __future__ import annotations

import json

import pytest

from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware import conv_layer, extract_layers, linear_layer, original_alexnet_layers, simulate
from dnnmeter.hardware.systolic import map_gemm, simulate_layer

# A 4x4 by 4x4 product: P = K = Q = 4.
GEMM_4 = linear_layer("gemm", 4, 4, rows=4)


def test_output_stationary_by_hand() -> None:
    # 2x2 folds of the 4x4 output; each streams K = 4 then fills and drains: 4 + 2 + 2 - 2.
    r = simulate_layer(GEMM_4, (2, 2), "os")
    assert r.folds == 4 and r.cycles == 4 * 6 - 1
    assert r.mapping_efficiency == 1.0
    assert r.utilization == pytest.approx(64 / (23 * 4))
    assert r.sram_reads == {"ifmap": 2 * 16, "filter": 2 * 16, "ofmap": 0}
    assert r.sram_writes == {"ofmap": 16}


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_weight_and_input_stationary_by_hand(dataflow: str) -> None:
    # 2x2 folds of the stationary 4x4 operand; each loads it (2), streams 4, fills and drains.
    r = simulate_layer(GEMM_4, (2, 2), dataflow)
    assert r.folds == 4 and r.cycles == 4 * (4 + 2 * 2 + 2 - 2) - 1
    # the stationary operand is read once; the streamed one once per column fold;
    # partial sums are written by both row folds and read back once
    stationary = "filter" if dataflow == "ws" else "ifmap"
    assert r.sram_reads[stationary] == 16
    assert r.sram_writes == {"ofmap": 32} and r.sram_reads["ofmap"] == 16


# What SCALE-Sim 3.0.0 reported on a 4x4 array (InterfaceBandwidth CALC, no stalls):
# cycles ("Total Cycles"), Overall Util %, Mapping Efficiency %, Compute Util %, and the
# SRAM IFMAP and Filter reads of its detailed access report.
SCALESIM_4X4 = {
    "os": [(431, 56.380510440835266, 75.0, 56.25, 1296, 972), (203, 66.50246305418719, 75.0, 66.17647058823529, 720, 540),
           (272, 36.190257352941174, 66.96428571428571, 36.057692307692314, 525, 441)],
    "ws": [(459, 52.94117647058823, 67.5, 49.591836734693885, 1296, 108),
           (311, 43.40836012861736, 70.3125, 38.793103448275865, 720, 135),
           (209, 47.09928229665072, 65.625, 43.17434210526316, 525, 63)],
    "is": [(719, 33.796940194714885, 90.0, 28.421052631578945, 648, 972),
           (623, 21.669341894060995, 93.75, 17.578125, 720, 540),
           (265, 37.14622641509434, 78.125, 31.96022727272728, 175, 441)],
}
SMALL_LAYERS = [conv_layer("L0", 2, 8, 8, 6, 3), conv_layer("L1", 5, 9, 9, 3, 3, stride=2),
                conv_layer("L2", 7, 5, 5, 9, 1)]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_agrees_with_scalesim_on_small_layers(dataflow: str) -> None:
    result = simulate(SMALL_LAYERS, (4, 4), dataflow)
    for layer, (cycles, util, mapping, compute, ifmap, filt) in zip(result.layers, SCALESIM_4X4[dataflow]):
        assert layer.cycles == cycles
        assert 100 * layer.utilization == pytest.approx(util)
        assert 100 * layer.mapping_efficiency == pytest.approx(mapping)
        assert 100 * layer.compute_utilization == pytest.approx(compute)
        assert (layer.sram_reads["ifmap"], layer.sram_reads["filter"]) == (ifmap, filt)


def test_mapping_of_each_dataflow() -> None:
    dims = {df: map_gemm(100, 27, 8, (16, 4), df) for df in ("os", "ws", "is")}
    assert {df: (m.S_r, m.S_c, m.T) for df, m in dims.items()} == {
        "os": (100, 8, 27), "ws": (27, 8, 100), "is": (27, 100, 8)}
    assert (dims["os"].row_folds, dims["os"].col_folds) == (7, 2)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_invariants_on_real_networks(dataflow: str) -> None:
    for layers in (extract_layers("resnet18"), original_alexnet_layers()):
        result = simulate(layers, (32, 32), dataflow, sram_kb=(64, 64, 64), bits=8)
        for layer in result.layers:
            assert 0 < layer.utilization <= 1 and 0 < layer.mapping_efficiency <= 1
            assert layer.cycles >= layer.macs / (32 * 32)
            assert layer.dram_vs_lower_bound >= 1.0
        assert result.cycles == sum(layer.cycles for layer in result.layers)
        assert 0 < result.utilization <= 1


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_more_sram_or_fewer_bits_never_add_dram_traffic(dataflow: str) -> None:
    layers = original_alexnet_layers()
    small = simulate(layers, (32, 32), dataflow, sram_kb=8, bits=16)
    large = simulate(layers, (32, 32), dataflow, sram_kb=1024, bits=16)
    narrow = simulate(layers, (32, 32), dataflow, sram_kb=8, bits=8)
    assert large.dram_accesses <= small.dram_accesses and narrow.dram_accesses <= small.dram_accesses
    assert large.cycles == small.cycles  # the compute model has no memory stalls
    huge = simulate(layers, (32, 32), dataflow, sram_kb=1 << 20, bits=8)
    assert huge.dram_vs_lower_bound == pytest.approx(1.0)  # everything fits: each word once


def test_small_sram_refetches_the_streamed_operand() -> None:
    # OS with an ifmap larger than half its SRAM: read once per column fold (96 filters / 32).
    conv1 = original_alexnet_layers()[0]
    r = simulate_layer(conv1, (32, 32), "os", sram_kb=(64, 64, 64), bits=8)
    assert r.dram_reads["ifmap"] == 3 * 227 * 227 * 3
    assert r.dram_reads["filter"] == 96 * 363 and r.dram_writes == {"ofmap": 55 * 55 * 96}


def test_groups_run_one_after_another() -> None:
    grouped = simulate_layer(conv_layer("g", 96, 27, 27, 256, 5, pad=2, groups=2), (32, 32), "ws")
    tower = simulate_layer(conv_layer("t", 48, 27, 27, 128, 5, pad=2), (32, 32), "ws")
    assert grouped.cycles == 2 * tower.cycles and grouped.macs == 2 * tower.macs
    assert grouped.sram_reads == {k: 2 * v for k, v in tower.sram_reads.items()}


def test_result_serialises_and_rejects_bad_arguments() -> None:
    result = simulate(original_alexnet_layers(), (32, 32), "ws", sram_kb=(64, 32, 16), bits=16)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["sram_kb"] == [64, 32, 16] and d["cycles"] == sum(layer["cycles"] for layer in d["layers"])
    with pytest.raises(InvalidInputError, match="dataflow"):
        simulate([GEMM_4], dataflow="rs")
    with pytest.raises(InvalidInputError, match="SRAM"):
        simulate([GEMM_4], sram_kb=(64, 64))
    with pytest.raises(InvalidInputError, match="array"):
        simulate([GEMM_4], array=(0, 32))
