"""mode="train": forward + backward counted through autograd on the meta device, checked
against torch's FlopCounterMode running forward and backward on a meta copy, and by hand."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.modules import module as nn_module
from torch.utils.flop_counter import FlopCounterMode

from dnnmeter import InvalidInputError, ModelForwardError, analyze
from dnnmeter.cli import main


def torch_train_macs(model: nn.Module, x: torch.Tensor) -> int:
    meta = copy.deepcopy(model).to("meta").train()
    with FlopCounterMode(display=False) as counter:
        out = meta(x.to("meta"))
        out = out[0] if isinstance(out, tuple) else out
        out.backward(torch.empty_like(out))
    return counter.get_total_flops() // 2


def test_an_mlp_by_hand() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    a = analyze(model, inputs=(2, 8), mode="train")
    forward = 2 * (8 * 16 + 16 * 4)
    # the last layer: input and weight gradients; the first: the weight gradient only (the data needs none)
    backward = 2 * 16 * 4 * 2 + 2 * 8 * 16
    assert (a.macs, a.backward_macs) == (forward + backward, backward) == (896, 512)
    assert a.macs == torch_train_macs(model, torch.randn(2, 8))
    assert [(layer.name, layer.backward_macs) for layer in a.layers] == [("0", 256), ("1", 0), ("2", 256)]
    relu = a.layers[1]
    assert (relu.elementwise_flops, relu.backward_elementwise_flops) == (64, 32)  # ReLU, then keep-or-zero
    assert a.mode == "train" and a.complete


@pytest.mark.parametrize("build", [
    lambda: torchvision.models.resnet18(),
    lambda: nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True),
], ids=["resnet18", "transformer_layer"])
def test_agrees_with_torch_forward_and_backward(build: object) -> None:
    model = build()  # type: ignore[operator]
    shape = (1, 3, 224, 224) if isinstance(model, torchvision.models.ResNet) else (2, 10, 32)
    a = analyze(model, inputs=shape, mode="train")
    assert a.complete
    assert a.macs == torch_train_macs(model, torch.randn(shape))
    assert a.macs - a.backward_macs == analyze(model, inputs=shape).macs  # the same forward


def test_a_recurrent_model() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.out = nn.LSTM(8, 16, num_layers=2, bidirectional=True), nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.rnn(x)[0])

    model = Tagger()
    a = analyze(model, inputs=(5, 3, 8), mode="train")
    assert a.complete and a.macs == torch_train_macs(model, torch.randn(5, 3, 8))


def test_frozen_parameters_get_no_weight_gradient() -> None:
    model = torchvision.models.resnet18()
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    a = analyze(model, mode="train")
    assert a.backward_macs == 512 * 1000  # the head's weight gradient, nothing below it
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("fc"))


def test_depthwise_weight_gradients_are_counted_once() -> None:
    """torch's FlopCounterMode counts a grouped convolution's weight gradient ``groups``
    times; each weight-input product happens once, as in the forward."""
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 16, 1))
    a = analyze(model, inputs=(1, 8, 6, 6), mode="train")
    depthwise, pointwise = 8 * 9 * 36, 8 * 16 * 36
    assert a.macs - a.backward_macs == depthwise + pointwise
    assert a.backward_macs == depthwise + 2 * pointwise  # depthwise: weight only; pointwise: both
    assert torch_train_macs(model, torch.randn(1, 8, 6, 6)) == a.macs + 7 * depthwise


def test_the_users_model_is_left_as_it_was() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = analyze(model, inputs=(4, 8), mode="train")
    bn = a.layers[1]  # batch statistics and affine (5), num_batches_tracked += 1; backward 9
    assert (bn.elementwise_flops - bn.backward_elementwise_flops, bn.backward_elementwise_flops) == (5 * 16 + 1, 9 * 16)
    assert a.layers[2].elementwise_flops == 2 * 16 + 16  # the mask scaled, times the input; the gradient times the mask
    assert not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not nn_module._global_forward_hooks and not nn_module._global_forward_pre_hooks


def test_refusals() -> None:
    with pytest.raises(InvalidInputError, match="bad mode 'training'"):
        analyze(nn.Linear(2, 2), input_size=(2,), mode="training")
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ModelForwardError, match="no output needs a gradient"):
        analyze(frozen, input_size=(2,), mode="train")


def test_cli_mode_train(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "tiny_alexnet", "--mode", "train", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["mode"] == "train" and data["backward_macs"] > 0
    assert data["macs"] - data["backward_macs"] == analyze("tiny_alexnet").macs
