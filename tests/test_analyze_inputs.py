"""Inputs for any forward signature: shapes, TensorSpecs, tuples, dicts, example tensors,
callables, and the CLI's repeatable --input SPEC. Real-weight models; oracles by hand or
torch's FlopCounterMode on a meta copy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from test_analyze_anymodel import Tied, torch_macs
from torch import nn

from dnnmeter import InvalidInputError, analyze
from dnnmeter.analysis import TensorSpec, parse_specs
from dnnmeter.cli import main

TEXT_MODEL = '''
import torch
from torch import nn


class TextModel(nn.Module):
    """Token ids and a boolean mask, by keyword: embedding, masked mean, classifier."""

    def __init__(self, vocab=1000, dim=32, classes=5):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids, mask=None):
        assert ids.dtype == torch.int64 and mask.dtype == torch.bool
        x = self.emb(ids) * mask.unsqueeze(-1)
        return self.fc(x.sum(1))
'''
namespace: dict[str, object] = {}
exec(compile(TEXT_MODEL, "text_model", "exec"), namespace)
TextModel = namespace["TextModel"]


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 4), nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


def _text_macs(batch: int = 2) -> int:
    return batch * 32 * 5  # the classifier; the lookup is free, the masked sum element-wise


@pytest.mark.parametrize("given", [
    {"ids": TensorSpec((2, 16), torch.int64), "mask": TensorSpec((2, 16), torch.bool)},
    {"ids": "2x16:int64", "mask": "2x16:bool"},
    {"ids": torch.zeros(2, 16, dtype=torch.int64), "mask": torch.ones(2, 16, dtype=torch.bool)},
    lambda: {"ids": torch.zeros(2, 16, dtype=torch.int64), "mask": "2x16:bool"},
    ["ids=2x16:int64", "mask=2x16:bool"],
])
def test_keyword_inputs_with_integer_ids_and_a_boolean_mask(given: object) -> None:
    model = TextModel()
    a = analyze(model, inputs=given)
    ids, mask = torch.zeros(2, 16, dtype=torch.int64), torch.ones(2, 16, dtype=torch.bool)
    assert a.macs == _text_macs() == torch_macs(model, ids=ids, mask=mask)
    assert a.complete and a.params == 1000 * 32 + 32 * 5 + 5
    assert (a.batch_size, a.input_size, a.inputs) == (2, (16,), "ids=2x16:int64, mask=2x16:bool")
    assert a.elementwise_flops == 2 * 16 * 32 * 2  # the mask multiply and the sum over the sequence


def test_positional_inputs_and_shapes() -> None:
    model = TwoInputs()
    a = analyze(model, inputs=((3, 8), TensorSpec((3, 6))))
    assert a.macs == 3 * (32 + 24) == torch_macs(model, torch.randn(3, 8), torch.randn(3, 6))
    assert (a.batch_size, a.input_size, a.inputs) == (3, (8,), "3x8, 3x6")
    one = analyze(nn.Linear(8, 4), inputs=(5, 8))  # a bare shape is one input
    assert (one.macs, one.batch_size) == (5 * 32, 5)


def test_example_tensors_give_shape_and_dtype_and_are_never_run() -> None:
    seen: list[torch.device] = []
    model = nn.Linear(8, 4).double()
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].device))
    example = torch.randn(7, 8, dtype=torch.float64)
    before = example.clone()
    a = analyze(model, inputs=example)
    assert seen == [torch.device("meta")] and torch.equal(example, before)
    assert (a.macs, a.batch_size, a.inputs) == (7 * 32, 7, "7x8:float64")
    assert a.activation_bytes == 7 * 4 * 8


def test_a_tied_language_model_takes_token_ids() -> None:
    a = analyze(Tied(), inputs=TensorSpec((4, 10), torch.int64))
    assert (a.params, a.macs) == (1600, 4 * 10 * 16 * 100) and a.complete


def test_input_size_keeps_working_and_cannot_be_mixed_with_inputs() -> None:
    assert analyze(nn.Linear(8, 4), input_size=(8,), batch_size=2).inputs == "2x8"
    with pytest.raises(InvalidInputError, match="either inputs .* or input_size and batch_size"):
        analyze(nn.Linear(8, 4), input_size=(8,), inputs=(1, 8))
    with pytest.raises(InvalidInputError, match="either inputs"):
        analyze(nn.Linear(8, 4), batch_size=2, inputs=(1, 8))


@pytest.mark.parametrize(("bad", "why"), [
    (["1xax3"], "dimensions must be integers"), (["1x3:float8"], "unknown dtype"),
    (["x y=1x3"], "is not an argument name"), (["a=1x3", "1x3"], "positional input after a named"),
    (["a=1x3", "a=1x4"], "given twice"), (["1x-3"], ">= 0")])
def test_bad_specs_are_one_line_showing_the_grammar(bad: list[str], why: str) -> None:
    with pytest.raises(InvalidInputError, match=why) as info:
        parse_specs(bad)
    message = str(info.value)
    assert "\n" not in message and "[NAME=]DIMxDIMx...[:DTYPE]" in message


def test_bad_api_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="neither a shape, a TensorSpec nor a tensor"):
        analyze(nn.Linear(8, 4), inputs=(object(),))
    with pytest.raises(InvalidInputError, match="no tensor among the inputs"):
        analyze(nn.Linear(8, 4), inputs={"flag": True})


@pytest.fixture
def text_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "anymodel_text.py").write_text(textwrap.dedent(TEXT_MODEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "anymodel_text:TextModel"


def test_cli_repeatable_input(text_module: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    status = main(["analyze", text_module, "--input", "ids=2x16:int64", "--input", "mask=2x16:bool",
                   "--format", "json"])
    data = json.loads(capsys.readouterr().out)[0]
    assert status == 0 and data["macs"] == _text_macs() and data["inputs"] == "ids=2x16:int64, mask=2x16:bool"
    assert data["complete"] is True
    status = main(["analyze", "tiny_alexnet", "--input", "2x3x64x64", "--format", "json"])
    data = json.loads(capsys.readouterr().out)[0]
    assert (data["batch_size"], data["input_size"]) == (2, [3, 64, 64])


def test_cli_bad_spec_is_one_line_with_exit_status_2(text_module: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["analyze", text_module, "--input", "ids=2x16:int65"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "unknown dtype" in err and "[NAME=]DIMxDIMx...[:DTYPE]" in err


def test_an_onnx_file_takes_one_unnamed_spec(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="ONNX file takes one input shape"):
        analyze(str(tmp_path / "model.onnx"), inputs={"ids": "1x8:int64"})
