"""dnnmeter.modify: closed-form costs per op, shapes kept on zoo models, the zoo's
tiny_alexnet family rebuilt by ops, the fx path and the module-surgery fallback."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import fx, nn

from dnnmeter.analysis import analyze
from dnnmeter.errors import InvalidInputError, ModelForwardError
from dnnmeter.measure.timing import TimingSettings
from dnnmeter.transforms import (
    AsymmetricConv2d,
    ModifyWarning,
    NothingToModifyError,
    Residual,
    SeparableConv2d,
    compare,
    modify,
    rewrite,
)
from dnnmeter.report.modify_text import modify_json, modify_tables
from dnnmeter.zoo import create_model


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _single(conv: nn.Conv2d) -> nn.Sequential:
    """A one-conv network; ops leave a network's first conv alone unless it is named."""
    return nn.Sequential(conv)


# --- closed-form costs of each op on one conv ------------------------------------------------


@pytest.mark.parametrize(("between", "extra"), [("none", 0), ("bn-relu", 2 * 64), ("relu", 64)])
def test_separable_params_and_macs(between: str, extra: int) -> None:
    net = _single(nn.Conv2d(64, 128, 3, padding=1, bias=True))
    out = modify(net, ["depthwise-separable"], layers="0", between=between)
    assert isinstance(out[0], SeparableConv2d)
    # depthwise 64*9, pointwise 64*128 + 128 bias; a depthwise bias only when ReLU alone follows
    assert _params(out) == 64 * 9 + 64 * 128 + 128 + extra
    a = analyze(out, input_size=(64, 8, 8))
    assert a.macs == 64 * 9 * 64 + 64 * 128 * 64


def test_xception_flag_overrides_between() -> None:
    net = _single(nn.Conv2d(64, 128, 3, padding=1, bias=False))
    out = modify(net, ["depthwise-separable"], layers="0", xception=True, between="bn-relu")
    assert [type(m) for m in out[0]] == [nn.Conv2d, nn.Conv2d]
    assert _params(out) == 64 * 9 + 64 * 128


@pytest.mark.parametrize(("k", "n"), [(5, 2), (7, 3)])
def test_factorize_params_and_macs(k: int, n: int) -> None:
    net = _single(nn.Conv2d(64, 128, k, padding=k // 2, bias=False))
    out = modify(net, ["factorize"], layers="0", between="none")
    # the chain runs at the narrower width, 64: 3x3 64->64 (n - 1 times), then 3x3 64->128
    assert _params(out) == (n - 1) * 9 * 64 * 64 + 9 * 64 * 128
    assert analyze(out, input_size=(64, 10, 10)).macs == 100 * ((n - 1) * 9 * 64 * 64 + 9 * 64 * 128)
    with_bn = modify(net, ["factorize"], layers="0")  # bn-relu: a BN of 64 between each pair
    assert _params(with_bn) == _params(out) + (n - 1) * 2 * 64


def test_factorize_narrowing_conv_runs_at_the_output_width() -> None:
    net = _single(nn.Conv2d(128, 64, 5, padding=2, bias=False))
    out = modify(net, ["factorize"], layers="0", between="none")
    assert [(c.in_channels, c.out_channels) for c in out[0]] == [(128, 64), (64, 64)]
    assert _params(out) == 9 * 128 * 64 + 9 * 64 * 64  # against 25 * 128 * 64 before


def test_asymmetric_params_and_macs() -> None:
    net = _single(nn.Conv2d(64, 128, 3, padding=1, bias=True))
    out = modify(net, ["asymmetric"], layers="0", between="none")
    assert isinstance(out[0], AsymmetricConv2d)
    assert [c.kernel_size for c in out[0]] == [(1, 3), (3, 1)]
    assert _params(out) == 3 * 64 * 64 + 3 * 64 * 128 + 128  # meeting at the narrower width
    assert analyze(out, input_size=(64, 8, 8)).macs == 64 * (3 * 64 * 64 + 3 * 64 * 128)


def test_batchnorm_adds_one_norm_per_conv_and_keeps_weights() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16))
    r = rewrite(net, ["batchnorm"])
    assert [c.name for c in r.changes] == ["0"]
    assert [(s.name, s.reason) for s in r.skipped] == [("2", "already followed by a norm")]
    assert _params(r.module) == _params(net) + 2 * 8
    assert torch.equal(r.module[0][0].weight, net[0].weight)  # the conv itself is kept


def test_conv_subclasses_are_not_reshaped() -> None:
    class PaddingConv(nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(F.pad(x, (1, 1, 1, 1)))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = PaddingConv(3, 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if x.shape[-1] > 4 else x  # untraceable: the module view sees the conv

    with pytest.warns(ModifyWarning):
        r = rewrite(Net(), ["asymmetric"], layers="conv", strict=False)
    assert r.changes == [] and type(r.module.conv) is PaddingConv
    assert [s.name for s in r.skipped] == ["conv"] and "subclass" in r.skipped[0].reason


# --- output shapes kept, for every input size ------------------------------------------------

CONVS = [
    nn.Conv2d(4, 6, 5, stride=2, padding=1),
    nn.Conv2d(4, 6, 5, stride=2, padding=2),
    nn.Conv2d(4, 6, 7, stride=3, padding=3),
    nn.Conv2d(4, 6, 7, padding=0),
    nn.Conv2d(4, 6, 5, padding="same"),
    nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    nn.Conv2d(4, 6, 4, stride=2, padding=1),
    nn.Conv2d(4, 6, 3, padding="same", dilation=2),
    nn.Conv2d(4, 8, 5, padding=2, groups=2),
]


@pytest.mark.filterwarnings("ignore::dnnmeter.transforms.ModifyWarning")
@pytest.mark.parametrize("op", ["depthwise-separable", "factorize", "asymmetric"])
@pytest.mark.parametrize("conv", CONVS, ids=lambda c: repr(c))
def test_output_shape_kept_for_every_size(op: str, conv: nn.Conv2d) -> None:
    r = rewrite(_single(conv), [op], layers="0", strict=False)
    with torch.no_grad():
        for size in range(9, 20):
            x = torch.randn(1, 4, size, size + 3)
            assert r.module(x).shape == conv(x).shape, (op, size)


@pytest.mark.filterwarnings("ignore::dnnmeter.transforms.ModifyWarning")
def test_factorize_skips_what_it_cannot_keep() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=1), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 5, dilation=2))
    r = rewrite(net, ["factorize"], layers="*", strict=False)
    reasons = {s.name: s.reason for s in r.skipped}
    assert r.changes == [] and set(reasons) == {"0", "1", "2"}
    assert "padding 1 < 2" in reasons["0"] and "odd square kernel >= 5" in reasons["1"] and "dilated" in reasons["2"]


# --- the zoo's Tiny-ImageNet family, rebuilt by ops ------------------------------------------


def test_tiny_alexnet_to_dw_matches_the_zoo_model() -> None:
    """conv2-5 made separable with nothing between the halves is tiny_alexnet_dw: same
    parameter count, same state-dict keys, same outputs with the same weights."""
    torch.manual_seed(0)
    out = modify("tiny_alexnet", ["depthwise-separable"], layers="conv2,conv3,conv4,conv5", xception=True)
    zoo = create_model("tiny_alexnet_dw", device="cpu")
    assert _params(out) == _params(zoo) == 73_800
    out.load_state_dict(zoo.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(out(x), zoo(x))


def test_default_separable_leaves_the_stem_and_adds_bn_relu() -> None:
    r = rewrite("tiny_alexnet", ["depthwise-separable"], device="meta")
    assert [c.name for c in r.changes] == ["conv2.conv", "conv3.conv", "conv4.conv", "conv5.conv"]
    assert [s.name for s in r.skipped] == ["conv1.conv"]
    assert _params(r.module) == 73_800 + 2 * (32 + 64 + 128 + 128)  # a BN on each depthwise output


def test_residual_on_tiny_alexnet_dw_matches_the_zoo_model() -> None:
    """Identity shortcuts land exactly where shapes match: conv4 and conv5."""
    torch.manual_seed(0)
    r = rewrite("tiny_alexnet_dw", ["residual"])
    assert [(c.name, c.method) for c in r.changes] == [("conv4.conv.0", "fx"), ("conv5.conv.0", "fx")]
    assert {s.name for s in r.skipped} == {"conv1.conv", "conv2.conv.0", "conv3.conv.0"}
    assert isinstance(r.module, fx.GraphModule)
    zoo = create_model("tiny_alexnet_dw_res", device="cpu")
    r.module.load_state_dict(zoo.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(r.module(x), zoo(x))


def test_residual_projection_where_shapes_differ() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
    plain = rewrite(net, ["residual"], input_size=(3, 16, 16))
    assert [c.name for c in plain.changes] == ["2"] and {s.name for s in plain.skipped} == {"0", "4"}
    proj = rewrite(net, ["residual"], input_size=(3, 16, 16), projection=True)
    assert [c.name for c in proj.changes] == ["0", "2", "4"]
    # 1x1 projections 3->8 and 8->16 (stride 2), each with a batch norm
    assert _params(proj.module) == _params(net) + (3 * 8 + 2 * 8) + (8 * 16 + 2 * 16)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert proj.module(x).shape == net(x).shape == (1, 16, 8, 8)


def test_residual_skips_blocks_already_joined_by_an_add() -> None:
    r = rewrite("resnet18", ["residual"], device="meta", input_size=64)
    changed = {c.name for c in r.changes}
    assert "layer1.0.conv1" in changed and "layer1.0.conv2" not in changed
    assert any(s.name == "layer1.0.conv2" and "addition" in s.reason for s in r.skipped)
    assert len(r.module.graph.find_nodes(op="call_function", target=__import__("operator").add)) == 8 + len(changed)


# --- every op keeps the zoo models' output shapes --------------------------------------------

ZOO = [("tiny_alexnet", 64), ("resnet18", 64), ("vgg11", 64), ("mobilenet_v2", 64), ("googlenet", 64)]


@pytest.mark.parametrize(("name", "size"), ZOO)
def test_zoo_models_keep_output_shape(name: str, size: int) -> None:
    x = torch.empty(1, 3, size, size, device="meta")
    with torch.no_grad():
        expected = create_model(name)(x).shape
        for ops in (["depthwise-separable"], ["factorize"], ["asymmetric"], ["batchnorm"], ["residual"]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ModifyWarning)
                model = modify(name, ops, device="meta", input_size=size, projection=True, strict=False)
            assert model(x).shape == expected, (name, ops)


# --- the user's model is never changed --------------------------------------------------------


def test_original_model_unchanged() -> None:
    model = create_model("tiny_alexnet", device="cpu").train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    text = str(model)
    out = modify(model, ["depthwise-separable", "asymmetric", "residual"], layers="conv2,conv3,conv4,conv5")
    assert str(model) == text and model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert set(model.state_dict()) == set(state)
    assert out is not model and all(m.training for m in out.modules())  # new layers follow the mode


# --- fx path and module-surgery fallback -----------------------------------------------------


class Untraceable(nn.Module):
    """Shape-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 32:
            x = F.avg_pool2d(x, 2)
        return self.head(self.features(x).mean((2, 3)))


def test_surgery_fallback_when_fx_cannot_trace() -> None:
    net = Untraceable()
    with pytest.raises(fx.proxy.TraceError):
        fx.symbolic_trace(net)
    r = rewrite(net, ["depthwise-separable", "batchnorm", "residual"], input_size=(3, 16, 16))
    by_op = {(c.op, c.name): c.method for c in r.changes}
    assert by_op[("depthwise-separable", "features.3")] == "surgery"
    # only the 5x5's pointwise half lacks a norm: the 3x3's is followed by features.4
    assert [c.name for c in r.changes if c.op == "batchnorm"] == ["features.6.3"]
    assert by_op[("residual", "features.3")] == "surgery"  # 16x16x16 -> 16x16x16: the only match
    assert [c.name for c in r.changes if c.op == "residual"] == ["features.3"]
    block = r.module.features[3]
    assert isinstance(block, Residual) and isinstance(block.body[0], SeparableConv2d)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert r.module(x).shape == net(x).shape == (2, 10)
        block.eval()
        h = torch.randn(1, 16, 8, 8)
        torch.testing.assert_close(block(h), block.body(h) + h)


# --- errors and layer patterns ---------------------------------------------------------------


def test_unknown_op_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="did you mean 'residual'.*depthwise-separable, factorize"):
        modify(nn.Sequential(nn.Conv2d(3, 3, 3)), ["residul"])


def test_layers_pattern_selects_children_and_typos_fail() -> None:
    r = rewrite("tiny_alexnet", ["asymmetric"], layers="conv4", device="meta")
    assert [c.name for c in r.changes] == ["conv4.conv"]
    r = rewrite("tiny_alexnet", ["asymmetric"], layers="conv[12].*", device="meta")
    assert [c.name for c in r.changes] == ["conv1.conv", "conv2.conv"]  # named: the stem too
    with pytest.raises(InvalidInputError, match="matches no module"):
        modify("tiny_alexnet", ["asymmetric"], layers="conv9", device="meta")


def test_residual_at_too_small_an_input_is_a_forward_error() -> None:
    with pytest.raises(ModelForwardError, match="shape propagation failed"):
        modify("tiny_alexnet", ["residual"], input_size=8, device="meta")


def test_op_that_changes_nothing_raises_or_warns() -> None:
    with pytest.raises(NothingToModifyError, match="factorize changed no layer of tiny_alexnet"):
        modify("tiny_alexnet", ["factorize"], device="meta")
    with pytest.warns(ModifyWarning, match="odd square kernel"):
        modify("tiny_alexnet", ["factorize"], layers="conv2", device="meta", strict=False)


# --- compare and its rendering ---------------------------------------------------------------


def test_compare_counts_and_json() -> None:
    r = compare("tiny_alexnet", ["depthwise-separable"], layers="conv2,conv3,conv4,conv5", xception=True)
    d = r.to_dict()
    assert list(d)[:4] == ["model", "ops", "before", "after"]
    # docs/seed-models.md: tiny_alexnet 414,696 params, 38,953,984 MACs; tiny_alexnet_dw 73,800, 5,471,488
    assert (d["before"]["params"], d["before"]["macs"]) == (414_696, 38_953_984)
    assert (d["after"]["params"], d["after"]["macs"]) == (73_800, 5_471_488)
    assert d["after"]["latency_s"] is None and "not measured" in d["after"]["latency_reason"]
    assert r.ratio("params") == pytest.approx(73_800 / 414_696)
    assert r.layers_changed == ["conv2.conv", "conv3.conv", "conv4.conv", "conv5.conv"]
    assert '"after"' in modify_json(r)


def test_compare_measures_latency_for_both() -> None:
    quick = TimingSettings(time_budget_s=0.05, warmup_s=0.01, min_block_s=0.001, min_samples=3)
    r = compare("tiny_alexnet", ["residual"], input_size=32, measure_latency=True, threads=1, timing=quick)
    for cost in (r.before, r.after):
        assert cost.latency_s is not None and cost.latency_s > 0 and cost.latency_reason is None
    assert r.timing_settings is not None and r.timing_settings["threads"] == 1
    console = Console(width=160, record=True)
    for table in modify_tables(r):
        console.print(table)
    text = console.export_text()
    assert "latency (ms, median)" in text and "identity shortcut" in text and "tiny_alexnet: residual" in text
