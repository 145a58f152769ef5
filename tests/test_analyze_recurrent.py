"""Recurrent models count every time step of every layer and direction: checked against
torch's FlopCounterMode on a meta copy and against the closed form T*N*D*G*H*(I+H) per layer."""

from __future__ import annotations

import pytest
import torch
from test_analyze_anymodel import torch_macs
from torch import nn

from dnnmeter import ModelForwardError, analyze
from dnnmeter.analysis import Inputs, TensorSpec

GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}
CELL_FLOPS = {nn.LSTM: 13, nn.GRU: 10, nn.RNN: 2}  # element-wise, per hidden unit (conventions.md)


def closed_form(rnn: nn.RNNBase, steps: int, batch: int) -> int:
    directions = 2 if rnn.bidirectional else 1
    gates, hidden = GATES[type(rnn)], rnn.hidden_size
    total, inputs = 0, rnn.input_size
    for _ in range(rnn.num_layers):
        total += steps * batch * directions * gates * hidden * (inputs + hidden)
        inputs = directions * hidden
    return total


@pytest.mark.parametrize("rnn", [
    nn.LSTM(8, 16), nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True),
    nn.GRU(8, 16, num_layers=3), nn.GRU(8, 12, bidirectional=True),
    nn.RNN(8, 16, nonlinearity="relu", bidirectional=True, num_layers=2), nn.RNN(8, 16)],
    ids=lambda m: repr(m))
def test_every_step_layer_and_direction(rnn: nn.RNNBase) -> None:
    steps, batch = 5, 3
    shape = (batch, steps, 8) if rnn.batch_first else (steps, batch, 8)
    a = analyze(rnn, inputs=shape)
    assert a.complete and a.params == sum(p.numel() for p in rnn.parameters())
    assert a.macs == closed_form(rnn, steps, batch) == torch_macs(rnn, torch.randn(shape))
    directions = 2 if rnn.bidirectional else 1
    assert a.elementwise_flops == CELL_FLOPS[type(rnn)] * rnn.hidden_size * steps * batch * directions * rnn.num_layers


class _Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 16, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]


def test_packed_sequences_with_known_lengths_count_each_real_step() -> None:
    model, lengths = _Packed(), torch.tensor([5, 3, 2])
    a = analyze(model, inputs=Inputs((TensorSpec((3, 5, 8)), lengths)))
    per_step = 2 * 4 * 16 * (8 + 16)  # both directions
    assert a.macs == 10 * per_step == torch_macs(model, torch.randn(3, 5, 8), lengths=lengths, on_cpu=("lengths",))
    assert a.complete


def test_packed_sequences_with_unknown_lengths_count_full_length_and_say_so() -> None:
    model = _Packed()
    with pytest.warns(UserWarning, match="counted at full length"):
        a = analyze(model, inputs=((3, 5, 8), TensorSpec((3,), torch.int64)))
    assert a.macs == 15 * 2 * 4 * 16 * 24 == torch_macs(model, torch.randn(3, 5, 8), lengths=torch.tensor([5, 5, 5]),
                                                   on_cpu=("lengths",))


def test_unsorted_packing_reads_index_values_and_is_refused_in_one_line() -> None:
    class Unsorted(_Packed):
        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            return nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]

    with pytest.raises(ModelForwardError, match="reads a tensor's value") as info:
        analyze(Unsorted(), inputs=Inputs((TensorSpec((3, 5, 8)), torch.tensor([2, 5, 3]))))
    assert "\n" not in str(info.value)


class _CellLoop(nn.Module):
    """A hand-written time loop over an LSTMCell: the cell runs once per step."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = x.new_zeros(x.shape[1], 16)
        for step in x:
            h, c = self.cell(step, (h, c))
        return h


def test_a_cell_in_a_loop_is_counted_every_step() -> None:
    model = _CellLoop()
    a = analyze(model, inputs=(6, 2, 8))
    assert a.macs == 6 * 2 * 4 * 16 * 24 == torch_macs(model, torch.randn(6, 2, 8))
    assert [layer.name for layer in a.layers] == ["cell", *(f"cell#{i}" for i in range(2, 7))]
    assert a.params == sum(p.numel() for p in model.parameters())


def test_an_lstm_with_a_projection() -> None:
    """proj_size: the recurrent products use the projected size, and the projection is a product."""
    rnn = nn.LSTM(8, 16, proj_size=4)
    a = analyze(rnn, inputs=(5, 3, 8))
    per_step = 4 * 16 * (8 + 4) + 16 * 4
    assert a.macs == 5 * 3 * per_step == torch_macs(rnn, torch.randn(5, 3, 8))
