"""Closed-form cases: each cost formula and the counter on small networks counted by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dnnmeter.analysis import analyze
from dnnmeter.analysis.formulas import FORMULAS, attention_macs, bmm_macs, conv_macs, mm_macs, register_formula


def test_conv_macs_closed_form() -> None:
    # 1 x 3 x 8 x 8 -> 8 channels, 3x3, 'same' padding: every output point does 3*3*3 MACs.
    assert conv_macs((1, 3, 8, 8), (8, 3, 3, 3), (1, 8, 8, 8)) == 8 * 64 * 27
    # groups=4: each output channel sees C/groups = 2 input channels.
    assert conv_macs((2, 8, 4, 4), (16, 2, 3, 3), (2, 16, 2, 2)) == 2 * 16 * 4 * 2 * 9
    # transposed: counted over the *input* spatial size, as torch.utils.flop_counter does.
    assert conv_macs((1, 4, 5, 5), (4, 2, 3, 3), (1, 2, 11, 11), transposed=True) == 25 * 4 * 2 * 9


def test_matmul_family_closed_form() -> None:
    assert mm_macs((7, 5), (5, 3)) == 105
    assert bmm_macs((4, 7, 5), (4, 5, 3)) == 420
    # batch 2, 3 heads, 10 queries over 6 keys, head dims 8 (q, k) and 4 (v)
    assert attention_macs((2, 3, 10, 8), (2, 3, 6, 8), (2, 3, 6, 4)) == 2 * 3 * 10 * 6 * (8 + 4)


def test_a_formula_registered_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_formula(torch.ops.aten.mm)(lambda *a, out: None)
    assert torch.ops.aten.mm in FORMULAS


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x)))  # runs in the root forward: a row of its own
        y = self.dw(y) + y
        return self.fc(y.mean((2, 3)))


def test_small_network_counted_by_hand() -> None:
    a = analyze(_Tiny(), input_size=(3, 8, 8), batch_size=2)
    conv = 2 * 8 * 64 * 27
    dw = 2 * 8 * 64 * 9
    fc = 2 * 8 * 5
    assert a.macs == conv + dw + fc
    assert a.params == (8 * 27 + 8) + 16 + 8 * 9 + (40 + 5)
    n = 2 * 8 * 64  # elements of every feature map
    # BN 2 per element, ReLU 1, add 1, mean reads every input element once.
    assert a.elementwise_flops == 2 * n + n + n + n
    assert a.flops == 2 * a.macs + a.elementwise_flops
    kinds = {layer.name: layer.kind for layer in a.layers}
    assert kinds["conv"] == "conv" and kinds["dw"] == "depthwise_conv" and kinds["fc"] == "linear"
    assert kinds["bn"] == "norm" and kinds["relu"] == "activation"
    assert a.by_kind["depthwise_conv"].macs == dw
    assert sum(layer.params for layer in a.layers) == a.params
    # activations: outputs of conv, bn, relu, dw, add, mean, fc
    assert a.activations == 5 * n + 2 * 8 + 2 * 5


def test_attention_counts_every_product() -> None:
    mha = nn.MultiheadAttention(embed_dim=16, num_heads=2, batch_first=True)

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    a = analyze(Wrap(), input_size=(10, 16))  # batch 1, 10 tokens of 16
    projections = 10 * 16 * 16 * 4  # q, k, v and out
    scores = 10 * 10 * 16 * 2  # Q K^T and attention x V over all heads
    assert a.macs == projections + scores
    assert a.params == 4 * 16 * 16 + 4 * 16


def test_unknown_ops_are_reported_not_dropped() -> None:
    class Sorts(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sort(x, dim=1).values

    a = analyze(Sorts(), input_size=(4,))
    assert a.unsupported_ops == {"sort": 1}
    assert a.macs == 0


def test_modules_never_run_keep_their_parameters() -> None:
    a = analyze("inception_v3")
    aux = [layer for layer in a.layers if layer.name.startswith("AuxLogits")]
    assert aux and not any(layer.executed for layer in aux)
    assert sum(layer.params for layer in a.layers) == a.params == 27_161_264


def test_shared_module_counts_params_once_and_work_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    a = analyze(Twice(), input_size=(4,))
    assert a.params == 20
    assert a.macs == 32
    assert [layer.name for layer in a.layers] == ["fc", "fc#2"]
    assert [layer.params for layer in a.layers] == [20, 0]


def test_functional_linear_outside_leaves_is_counted() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(6, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, self.weight)

    a = analyze(Functional(), input_size=(3,), batch_size=5)
    assert a.macs == 5 * 3 * 6
    assert a.layers[0].params == 18 and a.layers[0].kind == "linear"
