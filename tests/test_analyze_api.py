"""The analyze API's contract: inputs, defaults, and leaving the user's model as it was."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.modules import module as nn_module

from dnnmeter import InvalidInputError, ModelForwardError, analyze
from dnnmeter.analysis import parse_input_size


@pytest.mark.parametrize(
    ("given", "expected"),
    [(224, (3, 224, 224)), ("64", (3, 64, 64)), ("1,28,28", (1, 28, 28)), ((3, 32, 32), (3, 32, 32)), (None, None)],
)
def test_parse_input_size(given: object, expected: object) -> None:
    assert parse_input_size(given) == expected


@pytest.mark.parametrize("bad", ["abc", "0", "3,-1,4", ""])
def test_bad_input_sizes_say_what_to_give(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="input size"):
        parse_input_size(bad)


def test_bad_batch_size() -> None:
    with pytest.raises(InvalidInputError, match="batch size"):
        analyze("resnet18", batch_size=0)


def test_default_input_sizes_follow_the_model() -> None:
    assert analyze("inception_v3").input_size == (3, 299, 299)
    assert analyze("tiny_alexnet").input_size == (3, 64, 64)
    assert analyze("resnet18").input_size == (3, 224, 224)


def test_batch_scales_work_not_params() -> None:
    one, eight = analyze("resnet18"), analyze("resnet18", batch_size=8)
    assert eight.macs == 8 * one.macs
    assert eight.activations == 8 * one.activations
    assert eight.params == one.params


def test_a_real_model_is_counted_without_being_touched() -> None:
    model = torchvision.models.resnet18()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = analyze(model)
    assert a.params == 11_689_512 and a.macs == analyze("resnet18").macs
    assert model.training and all(m.training for m in model.modules())
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not nn_module._global_forward_hooks and not nn_module._global_forward_pre_hooks


def test_hooks_are_removed_when_the_forward_fails() -> None:
    with pytest.raises(ModelForwardError, match=r"alexnet: forward failed at input \(1, 3, 8, 8\)"):
        analyze("alexnet", input_size=8)
    assert not nn_module._global_forward_hooks and not nn_module._global_forward_pre_hooks


def test_weight_bytes_follow_dtype() -> None:
    model = nn.Linear(10, 10)
    assert analyze(model, input_size=(10,)).weight_bytes == 110 * 4
    assert analyze(model.half(), input_size=(10,)).weight_bytes == 110 * 2


def test_to_dict_has_the_documented_keys_and_integers() -> None:
    d = analyze("resnet18").to_dict()
    for key in ("model", "input_size", "batch_size", "params", "trainable_params", "macs", "flops",
                "activations", "weight_bytes", "layers", "by_kind"):
        assert key in d
    for key in ("params", "macs", "flops", "activations", "weight_bytes"):
        assert type(d[key]) is int
    assert set(d["by_kind"]) == {"conv", "depthwise_conv", "linear", "matmul", "norm", "activation", "pool", "other"}
    layer = d["layers"][0]
    assert set(layer) >= {"name", "kind", "input_shapes", "output_shapes", "params", "macs", "flops", "activations"}


def test_layers_that_pass_their_input_through_make_no_new_activations() -> None:
    """Identity, eval Dropout and Flatten of a flat tensor return (a view of) their input;
    an in-place ReLU computes new values in its input's storage and counts."""
    model = nn.Sequential(nn.Linear(4, 8), nn.Identity(), nn.Dropout(0.5), nn.ReLU(inplace=True),
                          nn.Flatten(), nn.Linear(8, 3))
    a = analyze(model, input_size=(4,), batch_size=2)
    assert [(layer.type, layer.activations) for layer in a.layers] == [
        ("Linear", 2 * 8), ("Identity", 0), ("Dropout", 0), ("ReLU", 2 * 8), ("Flatten", 0), ("Linear", 2 * 3)]
    assert a.activations == 2 * 8 + 2 * 8 + 2 * 3


def test_activations_do_not_depend_on_how_the_network_is_written() -> None:
    """timm's convnext_tiny (Identity shortcuts, DropPath and Dropout modules, permutes in
    forward) and torchvision's (Permute modules, StochasticDepth) are the same network."""
    pytest.importorskip("timm")
    timm_side, torchvision_side = analyze("timm:convnext_tiny"), analyze("convnext_tiny")
    assert (timm_side.params, timm_side.macs) == (torchvision_side.params, torchvision_side.macs)
    assert timm_side.activations == torchvision_side.activations == 29_280_232
