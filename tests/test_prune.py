"""Pruning: exact zero counts, channel removal through torch.fx, honest sizes, the sweep."""

from __future__ import annotations

import copy

import pytest
import torch
from test_quantize import INPUT, small_cnn, train_small_cnn
from torch import nn

from dnnmeter.analysis import analyze
from dnnmeter.errors import InvalidInputError
from dnnmeter.transforms.prune import (
    PrunePoint,
    effective_macs,
    hardware_totals,
    nonzero_params,
    prune,
    prune_model,
    pruning_sweep,
    sparse_size,
)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.fixture(scope="module")
def trained():  # type: ignore[no-untyped-def]
    return train_small_cnn()


@pytest.fixture(scope="module")
def sweeps(trained):  # type: ignore[no-untyped-def]
    model, val = trained
    state = copy.deepcopy(model.state_dict())
    run = {
        method: pruning_sweep(model, val, sparsities=(0.5, 0.9), method=method, time_budget_s=0.1)
        for method in ("unstructured", "structured")
    }
    return run, model, state


# --- unstructured ---------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75])
def test_unstructured_global_zeroes_exactly_round_s_n(sparsity: float) -> None:
    torch.manual_seed(1)
    model = small_cnn()
    n = sum(w.numel() for w in _weights(model))
    pruned = prune(model, sparsity)
    zeros = sum(int((w == 0).sum()) for w in _weights(pruned))
    assert zeros == round(sparsity * n)
    assert all(w.abs().min() > 0 for w in _weights(model))  # the original keeps every weight
    assert not any(hasattr(m, "weight_mask") for m in pruned.modules())  # masks folded in


def test_unstructured_per_layer_and_smallest_first() -> None:
    torch.manual_seed(2)
    model = small_cnn()
    pruned = prune(model, 0.5, scope="layer")
    for before, after in zip(_weights(model), _weights(pruned)):
        zeros = after == 0
        assert int(zeros.sum()) == round(0.5 * before.numel())
        assert before[zeros].abs().max() <= before[~zeros].abs().min()  # magnitude order


def test_unstructured_saves_nothing_dense_but_sparse_formats_do() -> None:
    torch.manual_seed(3)
    model = small_cnn()
    dense, sparse = sparse_size(model), sparse_size(prune(model, 0.9))
    assert dense.kind == "measured" and dense.compressed_bytes == dense.dense_bytes
    assert sparse.dense_bytes == dense.dense_bytes  # same shapes, same file
    assert sparse.kind == "estimated" and sparse.compressed_bytes < 0.3 * sparse.dense_bytes
    # by hand, 90% in each layer: (weights, non-zero) = (432, 43), (4608, 461), (2880, 288);
    # dense 4 B each, CSR 8 B per non-zero + 4 B per row pointer, bitmask 4 B per non-zero
    # + 1 bit per weight: the bitmask wins every layer (226, 2420 and 1512 bytes)
    layered = sparse_size(prune(model, 0.9, scope="layer"))
    assert layered.formats == {"dense": 0, "csr": 0, "bitmask": 3}
    assert layered.dense_bytes - layered.compressed_bytes == (1728 - 226) + (18432 - 2420) + (11520 - 1512)


def test_effective_macs_scale_with_density() -> None:
    torch.manual_seed(4)
    model = small_cnn()
    pruned = prune(model, 0.5, scope="layer")
    macs, effective = effective_macs(pruned, (3, INPUT, INPUT))
    assert macs == analyze(model, (3, INPUT, INPUT)).macs
    conv1 = 16 * 3 * 9 * INPUT * INPUT
    conv2 = 32 * 16 * 9 * (INPUT // 2) ** 2
    linear = 288 * 10
    assert macs == conv1 + conv2 + linear
    assert effective == round(sum(m * round(0.5 * n) / n for m, n in
                                  ((conv1, 16 * 27), (conv2, 32 * 144), (linear, 2880))))


# --- structured -----------------------------------------------------------------------------


def test_structured_removes_channels_and_macs_keeping_the_output() -> None:
    torch.manual_seed(5)
    model = small_cnn().eval()
    result = prune_model(model, 0.5, method="structured")
    small = result.module
    assert result.pruned == {"0": [16, 8], "4": [32, 16]}  # conv -> conv, conv -> flatten -> linear
    assert small[0].out_channels == 8 and small[1].num_features == 8 and small[4].in_channels == 8
    assert small[9].in_features == 16 * 9
    x = torch.randn(2, 3, INPUT, INPUT)
    assert small(x).shape == model(x).shape == (2, 10)
    assert analyze(small, (3, INPUT, INPUT)).macs == 8 * 27 * 144 + 16 * 72 * 36 + 144 * 10
    assert model[0].out_channels == 16  # original untouched


def test_structured_keeps_the_largest_filters_and_their_outputs() -> None:
    """Zeroing the removed channels' filters by hand gives the same function."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3)).eval()
    with torch.no_grad():
        model[0].weight[[1, 4]] *= 0.01  # the two smallest filters
        model[0].bias[[1, 4]] = 0.0
    small = prune(model, 1 / 3, method="structured")
    assert small[0].out_channels == 4
    reference = copy.deepcopy(model)
    with torch.no_grad():
        reference[0].weight[[1, 4]] = 0.0
        x = torch.randn(1, 3, 8, 8)
        assert torch.allclose(small(x), reference(x), atol=1e-5)


def test_structured_skips_residual_channels_with_a_reason() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 8, 1), nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x))) + x

    result = prune_model(Block(), 0.5, method="structured")
    assert result.pruned == {"a": [8, 4]}
    assert "residual add" in result.skipped["b"]


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError):
        prune(small_cnn(), 1.0)
    with pytest.raises(InvalidInputError):
        prune(small_cnn(), 0.5, method="random")
    with pytest.raises(InvalidInputError):
        pruning_sweep(small_cnn(), "digits", fine_tune_epochs=1)


def test_hardware_totals_shrink_after_structured_pruning() -> None:
    model = small_cnn().eval()
    before = hardware_totals(model, (3, INPUT, INPUT))
    after = hardware_totals(prune(model, 0.5, method="structured"), (3, INPUT, INPUT))
    for key in ("macs", "naive_accesses", "lower_bound", "cycles"):
        assert after[key] < before[key], key
    assert before["naive_accesses"] == 4 * before["macs"]


# --- the sweep ------------------------------------------------------------------------------


def test_sweep_fields(sweeps) -> None:  # type: ignore[no-untyped-def]
    run, _, _ = sweeps
    for method, points in run.items():
        assert [p.sparsity for p in points] == [0.0, 0.5, 0.9]
        assert all(isinstance(p, PrunePoint) and p.method == method for p in points)
        ref = points[0]
        assert ref.top1 > 0.9 and ref.accuracy_delta == 0.0
        assert points[2].accuracy_delta == pytest.approx(points[2].top1 - ref.top1)
        assert points[2].top1 < ref.top1  # 90% without fine-tuning costs accuracy
        assert ref.latency_s is not None and ref.latency_threads == 1
        assert ref.nonzero_params <= ref.params and ref.effective_macs <= ref.macs
        assert set(ref.hardware) >= {"naive_accesses", "lower_bound", "cycles"}
        assert "sparsity" in ref.to_dict() and "hardware" in ref.to_dict()


def test_sweep_unstructured_vs_structured(sweeps) -> None:  # type: ignore[no-untyped-def]
    run, _, _ = sweeps
    u0, u5, u9 = run["unstructured"]
    assert u9.params == u0.params and u9.macs == u0.macs and u9.size_bytes == u0.size_bytes
    assert u9.hardware["cycles"] == u0.hardware["cycles"]  # zeros change no shape
    assert u9.nonzero_params < u5.nonzero_params < u0.nonzero_params
    assert u9.effective_macs < u5.effective_macs < u0.effective_macs
    assert u9.compressed_size_kind == "estimated" and u9.compressed_size_bytes < u0.size_bytes / 3
    s0, s5, s9 = run["structured"]
    assert s9.params < s5.params < s0.params and s9.macs < s5.macs < s0.macs
    assert s9.size_bytes < s5.size_bytes < s0.size_bytes and s5.compressed_size_kind == "measured"
    assert s9.hardware["cycles"] < s0.hardware["cycles"]
    assert s5.pruned_layers == 2 and s5.skipped_layers == {}


def test_sweep_leaves_the_model_alone(sweeps) -> None:  # type: ignore[no-untyped-def]
    _, model, state = sweeps
    assert not model.training and nonzero_params(model) == sum(p.numel() for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_fine_tuning_recovers_accuracy(trained) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.data.digits import digits_split

    model, val = trained
    train, _ = digits_split(seed=0, val_fraction=0.3, input_size=INPUT)
    plain, tuned = (
        pruning_sweep(model, val, sparsities=(0.9,), method="unstructured", latency=False,
                      fine_tune_epochs=epochs, train_data=train, lr=0.01)[1]
        for epochs in (0, 1)
    )
    assert tuned.nonzero_params == plain.nonzero_params  # masks kept during training
    assert tuned.top1 > plain.top1


def test_table_and_figure(sweeps, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.report.compression_figures import accuracy_vs_sparsity
    from dnnmeter.report.compression_text import prune_notes, prune_table

    run, _, _ = sweeps
    points = run["unstructured"] + run["structured"]
    assert prune_table(points).row_count == 6
    notes = prune_notes([PrunePoint.from_dict(p.to_dict()) for p in points])  # as stored and read back
    assert notes[0].startswith("* estimated") and any("zero-skipping" in n for n in notes)
    png, svg = accuracy_vs_sparsity(points, tmp_path / "sub" / "sparsity")
    assert png.exists() and svg.exists() and png.parent.name == "sub"


def test_structured_follows_functional_ops_to_a_linear() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 10, 3, padding=1), nn.Linear(10 * 4 * 4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(7)
    model = Functional().eval()
    small = prune_model(model, 0.3, method="structured")
    assert small.pruned == {"conv": [10, 7]} and small.module.fc.in_features == 7 * 16
    kept = torch.topk(model.conv.weight.abs().flatten(1).sum(1), 7).indices.tolist()  # largest L1 norms
    dropped = [i for i in range(10) if i not in kept]
    reference = copy.deepcopy(model)
    with torch.no_grad():  # switch the dropped channels off in the original: the same function
        reference.conv.weight[dropped] = 0.0
        reference.conv.bias[dropped] = -1.0  # ReLU turns them off entirely
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(small.module(x), reference(x), atol=1e-5)


def test_structured_prunes_through_a_depthwise_conv() -> None:
    """conv -> ReLU -> depthwise -> pointwise: the depthwise conv loses the same channels."""
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8, bias=False),
                          nn.Conv2d(8, 4, 1)).eval()
    result = prune_model(model, 0.5, method="structured")
    assert result.pruned == {"0": [8, 4], "2": [8, 4]}
    assert "3" in result.skipped and "2" not in result.skipped  # the output conv; the depthwise was pruned
    small = result.module
    assert (small[2].groups, small[2].in_channels, small[2].out_channels, small[3].in_channels) == (4, 4, 4, 4)
    dropped = [i for i in range(8) if i not in torch.topk(model[0].weight.abs().flatten(1).sum(1), 4).indices]
    reference = copy.deepcopy(model)
    with torch.no_grad():
        reference[0].weight[dropped] = 0.0
        reference[0].bias[dropped] = -1.0  # ReLU -> 0 -> depthwise (no bias) -> 0
        x = torch.randn(1, 3, 10, 10)
        assert torch.allclose(small(x), reference(x), atol=1e-5)
