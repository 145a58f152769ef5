"""Quantization: SQNR in closed form, fake quantization, int8 through torch.ao, the sweep.

The model is a small CNN trained for about a second on the real digits (about 97% top-1
at 12 x 12), so accuracy changes are real and the checks on them can fail.
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from torch import nn

from dnnmeter.data.digits import digits_split
from dnnmeter.errors import InvalidInputError
from dnnmeter.transforms.quantize import (
    QuantPoint,
    fake_quantize,
    model_size_bytes,
    packed_size_bytes,
    quantization_sweep,
    quantize_int8,
    sqnr_db,
)

INPUT = 12


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 3 * 3, 10),
    )


@functools.cache  # one training for both test files; no test changes the model (they check)
def train_small_cnn(epochs: int = 3) -> tuple[nn.Module, object]:
    """(trained model in eval mode, validation Dataset): a plain Adam loop on the digits."""
    torch.manual_seed(0)
    train, val = digits_split(seed=0, val_fraction=0.3, input_size=INPUT)
    x = torch.stack([train[i][0] for i in range(len(train))])
    y = torch.tensor(train.targets)
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
            for i in range(0, len(x), 32):
                idx = order[i : i + 32]
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                optimizer.step()
    finally:
        torch.set_num_threads(before)
    return model.eval(), val


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, object]:
    return train_small_cnn()


@pytest.fixture(scope="module")
def sweep(trained):  # type: ignore[no-untyped-def]
    model, val = trained
    state = copy.deepcopy(model.state_dict())
    points = quantization_sweep(model, val, bits=(32, 16, 8, 4), time_budget_s=0.2, int8_paths=("fx", "eager"))
    return points, model, state


# --- SQNR ---------------------------------------------------------------------------------


def test_sqnr_closed_form() -> None:
    reference = torch.tensor([3.0, 4.0])  # signal power 25
    noisy = torch.tensor([3.0, 4.5])  # noise power 0.25 -> 100x -> 20 dB
    assert sqnr_db(reference, noisy) == pytest.approx(20.0)
    assert sqnr_db(reference, reference) == math.inf
    with pytest.raises(InvalidInputError):
        sqnr_db(torch.zeros(2), torch.ones(2))
    with pytest.raises(InvalidInputError):
        sqnr_db(torch.zeros(2), torch.ones(3))


def test_uniform_quantizer_sqnr_matches_the_closed_form() -> None:
    """U(-1, 1) has power 1/3; a symmetric b-bit quantizer has step 1/qmax, qmax = 2^(b-1) - 1,
    and noise step^2 / 12, so SQNR = 10 log10(4 qmax^2) (~6 dB per bit)."""
    weight = torch.rand(1, 20000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    linear = nn.Linear(20000, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(weight)
    for bits in (4, 6, 8):
        qmax = 2 ** (bits - 1) - 1
        measured = sqnr_db(weight, fake_quantize(linear, bits, activations=False).weight.detach())
        assert measured == pytest.approx(10 * math.log10(4 * qmax**2), abs=0.3), bits


# --- fake quantization ----------------------------------------------------------------------


def test_fake_quantize_weights_are_on_the_grid_and_original_untouched(trained) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    before = copy.deepcopy(model.state_dict())
    fake = fake_quantize(model, 4, activations=False)
    weight = fake[0].weight.detach()
    for channel in weight:
        scale = channel.abs().max() / 7  # symmetric 4 bits: levels -7..7
        levels = channel / scale
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert levels.abs().max() <= 7 + 1e-4
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_fake_quantize_sqnr_falls_with_bits(trained) -> None:  # type: ignore[no-untyped-def]
    model, val = trained
    x = torch.stack([val[i][0] for i in range(64)])
    with torch.no_grad():
        reference = model(x)
        sq = {b: sqnr_db(reference, fake_quantize(model, b, [x])(x)) for b in (16, 8, 6, 4)}
        unchanged = fake_quantize(model, 32)(x)
    assert torch.equal(unchanged, reference)
    assert sq[16] > 60  # ~float: 16-bit weights and activations
    assert sq[16] > sq[8] > sq[6] > sq[4]


def test_fake_quantize_bad_input(trained) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    with pytest.raises(InvalidInputError):
        fake_quantize(model, 1)
    with pytest.raises(InvalidInputError):
        fake_quantize(model, 8)  # activations need calibration


def test_packed_size_is_the_float_size_less_the_packed_weights(trained) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    float_size = model_size_bytes(model)
    weights = [model[0], model[4], model[9]]
    n = sum(m.weight.numel() for m in weights)
    scales = sum(m.weight.shape[0] for m in weights) * 4
    assert packed_size_bytes(model, 32) == float_size
    assert packed_size_bytes(model, 8) == float_size - 4 * n + n + scales
    assert packed_size_bytes(model, 4) == math.ceil(float_size - 4 * n + n / 2 + scales)


# --- int8 -----------------------------------------------------------------------------------


def test_int8_conv_net_is_about_a_quarter_and_records_its_path() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 128, 3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)).eval()
    x = torch.randn(2, 3, 16, 16)
    result = quantize_int8(model, x, [x, torch.randn(2, 3, 16, 16)])
    assert result.path in ("pt2e", "fx", "eager")
    if result.path != "pt2e":
        assert result.fallback_reasons and result.fallback_reasons[0].startswith("pt2e:")
    ratio = model_size_bytes(result.module) / model_size_bytes(model)
    assert 0.2 < ratio < 0.35
    with torch.no_grad():
        assert sqnr_db(model(x), result.module(x)) > 20


def test_int8_eager_path_and_its_failure_on_a_residual_add() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 4)).eval()
    x = torch.randn(1, 3, 16, 16)
    result = quantize_int8(model, x, paths=("eager",))
    assert result.path == "eager" and result.fallback_reasons == []
    assert result.to_dict() == {"path": "eager", "backend": "x86", "fallback_reasons": []}

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + x

    fx = quantize_int8(Residual().eval(), x, paths=("eager", "fx"))
    assert fx.path == "fx" and fx.fallback_reasons[0].startswith("eager:")


# --- the sweep ------------------------------------------------------------------------------


def test_sweep_points(sweep) -> None:  # type: ignore[no-untyped-def]
    points, _, _ = sweep
    assert [(p.kind, p.bits) for p in points] == [("float", 32), ("fake", 16), ("fake", 8), ("fake", 4), ("int8", 8)]
    ref, fake16, fake8, fake4, int8 = points
    assert ref.top1 > 0.9 and ref.accuracy_delta == 0.0 and ref.sqnr_db is None
    assert abs(fake16.accuracy_delta) <= 0.01 and abs(int8.accuracy_delta) <= 0.05
    assert fake4.accuracy_delta == pytest.approx(fake4.top1 - ref.top1)
    assert fake16.sqnr_db > fake8.sqnr_db > fake4.sqnr_db
    assert [p.size_kind for p in points] == ["measured", "estimated", "estimated", "estimated", "measured"]
    assert ref.size_bytes > fake16.size_bytes > fake8.size_bytes > fake4.size_bytes
    assert ref.latency_s is not None and int8.latency_s is not None and int8.latency_threads == 1
    assert fake8.latency_s is None and "float" in fake8.latency_reason
    assert int8.int8_path == "fx"
    assert set(ref.to_dict()) >= {"bits", "kind", "size_bytes", "latency_s", "sqnr_db", "top1", "accuracy_delta"}


def test_sweep_leaves_the_model_and_threads_alone(sweep) -> None:  # type: ignore[no-untyped-def]
    _, model, state = sweep
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_table_and_figure(sweep, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from dnnmeter.report.compression_figures import accuracy_vs_bits
    from dnnmeter.report.compression_text import quant_notes, quant_table

    points, _, _ = sweep
    table = quant_table([QuantPoint.from_dict(p.to_dict()) for p in points])  # as stored and read back
    assert table.row_count == len(points)
    console = Console(width=160, record=True)
    console.print(table)
    assert "int8 (fx)" in console.export_text()
    assert any("fake quantization computes in float" in n for n in quant_notes(points))
    png, svg = accuracy_vs_bits(points, tmp_path / "bits")
    assert png.stat().st_size > 1000 and svg.read_text().startswith("<?xml")


def test_size_leaves_out_tensors_a_graph_no_longer_uses() -> None:
    """pt2e leaves the float weights registered beside their int8 copies: not counted."""
    from torch import fx

    graph = fx.symbolic_trace(nn.Sequential(nn.Linear(100, 10)))
    alone = model_size_bytes(graph)
    graph.register_buffer("_unused", torch.zeros(10_000))
    assert model_size_bytes(graph) == alone
    graph.register_buffer("_used", torch.zeros(10_000))
    with graph.graph.inserting_before(next(iter(graph.graph.nodes)).next):
        graph.graph.get_attr("_used")
    assert model_size_bytes(graph) > alone + 40_000


def test_sweep_records_an_int8_failure_instead_of_raising(trained) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.transforms.quantize import QuantizationError

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 3, 3, padding=1), nn.Linear(3 * INPUT * INPUT, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head((self.conv(x) + x).flatten(1))

    _, val = trained
    with pytest.raises(QuantizationError, match="eager"):
        quantize_int8(Residual().eval(), torch.randn(1, 3, INPUT, INPUT), paths=("eager",))
    ref, int8 = quantization_sweep(Residual(), val, bits=(32,), latency=False, eval_limit=40, int8_paths=("eager",))
    assert ref.latency_s is None and ref.latency_reason == "not requested (latency=False)"
    assert int8.size_bytes is None and int8.top1 is None and int8.size_kind == "not measured"
    assert len(int8.fallback_reasons) == 1 and int8.fallback_reasons[0].startswith("eager:")
