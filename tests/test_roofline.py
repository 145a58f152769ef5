"""The roofline: closed-form placement of layers, measured ceilings, profiler matching."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
import torch
from torch import nn

from dnnmeter.errors import InvalidInputError
from dnnmeter.hardware import conv_layer, extract_layers, linear_layer
from dnnmeter.hardware.ceilings import Ceilings, measure_ceilings
from dnnmeter.hardware.profile_match import layer_events
from dnnmeter.hardware.roofline import roofline, roofline_layer

FAKE = Ceilings(device="cpu", peak_flops_per_s=100e9, bandwidth_bytes_per_s=10e9, label="published")  # ridge 10


def test_memory_bound_layer_in_closed_form() -> None:
    layer = linear_layer("fc", 1000, 1000)  # 1e6 MACs; moves 1e6 weights + 1000 inputs + 1000 outputs
    r = roofline_layer(layer, FAKE, dtype_bytes=4)
    assert (r.flops, r.min_bytes) == (2_000_000, 4 * 1_002_000)
    assert r.arithmetic_intensity_flops_per_byte == pytest.approx(2e6 / 4.008e6)
    assert r.attainable_flops_per_s == pytest.approx(2e6 / 4.008e6 * 10e9)
    assert r.attainable_time_s == pytest.approx(4.008e6 / 10e9)  # bytes over bandwidth
    assert r.bound == "memory" and r.measured_time_s is None and r.fraction_of_roofline is None


def test_compute_bound_layer_and_measured_fraction() -> None:
    layer = conv_layer("c", 64, 56, 56, 64, 3, pad=1)  # 115.6M MACs on 200k inputs, 37k weights
    attainable = roofline_layer(layer, FAKE).attainable_time_s
    r = roofline_layer(layer, FAKE, measured_time_s=2 * attainable)
    assert r.bound == "compute" and r.attainable_flops_per_s == 100e9
    assert r.attainable_time_s == pytest.approx(2 * layer.macs / 100e9)
    assert r.fraction_of_roofline == pytest.approx(0.5)
    assert r.measured_flops_per_s == pytest.approx(50e9)


def test_bound_at_the_ridge() -> None:
    layer = linear_layer("fc", 64, 64, rows=64)
    intensity = roofline_layer(layer, FAKE).arithmetic_intensity_flops_per_byte
    at_ridge = Ceilings(device="cpu", peak_flops_per_s=intensity, bandwidth_bytes_per_s=1.0)
    assert at_ridge.ridge_flops_per_byte == intensity
    assert roofline_layer(layer, at_ridge).bound == "compute"  # the ridge itself counts as compute-bound
    above = replace(at_ridge, peak_flops_per_s=intensity * (1 + 1e-9))
    assert roofline_layer(layer, above).bound == "memory"


def test_no_ceilings_is_an_error() -> None:
    none = Ceilings(device="cuda", peak_flops_per_s=None, bandwidth_bytes_per_s=None, unavailable_reason="no CUDA")
    assert none.ridge_flops_per_byte is None
    with pytest.raises(InvalidInputError, match="no CUDA"):
        roofline_layer(linear_layer("fc", 8, 8), none)


def test_ceilings_with_a_tiny_budget() -> None:
    threads = torch.get_num_threads()
    c = measure_ceilings("cpu", threads=1, budget_s=0.01, use_cache=False)
    assert torch.get_num_threads() == threads  # restored
    assert c.peak_flops_per_s and c.peak_flops_per_s > 0 and c.bandwidth_bytes_per_s and c.bandwidth_bytes_per_s > 0
    assert c.threads == 1 and c.label == "measured" and c.unavailable_reason is None
    assert "torch.mm" in c.flops_method and "copy_" in c.bandwidth_method
    assert c.matmul_size and c.matmul_size >= 256 and c.copy_bytes and c.copy_bytes >= 64 * 2**20
    assert len(c.matmul_samples_s) >= 3 and len(c.copy_samples_s) >= 3
    assert measure_ceilings("cpu", threads=1, budget_s=0.01) is measure_ceilings("cpu", threads=1, budget_s=0.005)
    assert Ceilings.from_dict(c.to_dict()) == c


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer without CUDA")
def test_cuda_ceilings_without_cuda() -> None:
    c = measure_ceilings("cuda")
    assert c.peak_flops_per_s is None and "CUDA" in (c.unavailable_reason or "")


@pytest.mark.parametrize("kwargs", [{"device": "tpu"}, {"dtype": "int8"}, {"threads": 0}, {"budget_s": 0}])
def test_bad_ceiling_arguments(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        measure_ceilings(**kwargs)


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(self.conv1(x))).flatten(1))


def test_roofline_measures_a_small_model() -> None:
    model = Small().train()
    threads = torch.get_num_threads()
    r = roofline(model, FAKE, input_size=(3, 16, 16), threads=1, profiled_runs=2, time_budget_s=0.2)
    assert model.training and torch.get_num_threads() == threads  # mode and threads restored
    expected = extract_layers(model, (3, 16, 16))
    assert [(l.name, l.kind, l.macs) for l in r.layers] == [(l.name, l.kind, l.macs) for l in expected]
    assert r.layer_times_unavailable_reason is None, r.layer_times_unavailable_reason
    assert all(l.measured_time_s and l.measured_time_s > 0 and l.fraction_of_roofline for l in r.layers)
    assert r.measured_latency_s and r.measured_latency_s > 0 and r.latency_samples_s
    assert r.fraction_of_roofline == pytest.approx(r.attainable_time_s / r.measured_latency_s)
    d = r.to_dict()
    assert d["totals"]["flops"] == 2 * sum(l.macs for l in expected) and d["threads"] == 1
    assert d["totals"]["bound_counts"]["compute"] + d["totals"]["bound_counts"]["memory"] == 3


def test_roofline_without_measuring() -> None:
    r = roofline("alexnet", FAKE, measure=False)
    assert len(r.layers) == 8 and r.measured_latency_s is None and r.fraction_of_roofline is None
    assert "measure=False" in (r.latency_unavailable_reason or "")
    assert [l.bound for l in r.layers] == ["compute"] * 5 + ["memory"] * 3  # FC layers: 0.5 FLOP/byte


def test_roofline_of_a_meta_model_says_why() -> None:
    with torch.device("meta"):
        model = Small()
    r = roofline(model, FAKE, input_size=(3, 16, 16))
    assert r.measured_latency_s is None and "meta" in (r.latency_unavailable_reason or "")


# --- profiler events matched to layers (fake events, no profiler) -------------------------------


@dataclass
class _Range:
    start: float


@dataclass
class _Event:
    name: str
    start: float
    cpu_time_total: float = 1000.0  # microseconds
    cpu_parent: Any = None

    @property
    def time_range(self) -> _Range:
        return _Range(self.start)


def _run(offset: float, names: list[str]) -> list[_Event]:
    events = []
    for i, name in enumerate(names):
        outer = _Event(name, offset + i, 1000.0 * (i + 1))
        inner = _Event("aten::addmm" if name == "aten::linear" else "aten::_convolution", offset + i + 0.1,
                       cpu_parent=outer)  # nested: must not count twice
        events += [outer, inner]
    return events


def test_outermost_events_are_matched_in_order() -> None:
    layers = [conv_layer("c", 3, 8, 8, 4, 3), linear_layer("fc", 10, 10)]
    names = ["aten::convolution", "aten::linear"]
    times, reason = layer_events(_run(0, names) + _run(100, names), layers, runs=2)
    assert reason is None and times == [[1e-3, 1e-3], [2e-3, 2e-3]]


def test_mismatched_events_give_a_reason() -> None:
    layers = [conv_layer("c", 3, 8, 8, 4, 3), linear_layer("fc", 10, 10)]
    times, reason = layer_events(_run(0, ["aten::convolution"]), layers, runs=1)
    assert times is None and "1 convolution/matmul ops per run for 2 layers" in (reason or "")
    times, reason = layer_events(_run(0, ["aten::linear", "aten::convolution"]), layers, runs=1)
    assert times is None and "aten::linear" in (reason or "")
    fused = [_Event("aten::scaled_dot_product_attention", 0)]
    assert "fused" in (layer_events(fused, layers, runs=1)[1] or "")
