"""ONNX files: counted from the graph, checked against torchvision's published figures and
against closed-form counts of small hand-built graphs."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from dnnmeter.analysis import analyze
from dnnmeter.analysis.onnx_count import (
    COST_FORMULAS,
    OpShapes,
    analyze_onnx,
    einsum_macs,
    register_cost,
)
from dnnmeter.errors import InvalidInputError, MissingDependencyError, ModelBuildError
from dnnmeter.zoo import create_model, resolve
from dnnmeter.zoo.onnx_source import entry

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FLOAT = TensorProto.FLOAT


@pytest.fixture(scope="module")
def resnet18_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision resnet18 (random init, eval) exported once by the TorchScript exporter."""
    path = tmp_path_factory.mktemp("onnx") / "resnet18.onnx"
    model = torchvision.models.resnet18().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter says so
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False)
    return path


def _tensor(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def _save(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, list[int | str]]],
    output: str,
    initializers: tuple[onnx.TensorProto, ...] = (),
    domains: tuple[str, ...] = (),
) -> str:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, FLOAT, shape) for n, shape in inputs],
        [helper.make_tensor_value_info(output, FLOAT, None)],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return str(path)


# --- agreement with torchvision's published figures --------------------------------------


def test_resnet18_matches_torchvision_metadata(resnet18_onnx: Path) -> None:
    meta = torchvision.models.ResNet18_Weights.DEFAULT.meta
    a = analyze_onnx(str(resnet18_onnx))
    assert a.macs == pytest.approx(meta["_ops"] * 1e9, rel=0.01)
    # BN is folded into the convolutions by the exporter: a few thousand params differ.
    assert a.params == pytest.approx(meta["num_params"], rel=0.01)
    assert a.unsupported_ops == {}
    assert (a.model, a.source, a.input_size, a.batch_size) == ("resnet18", "onnx", (3, 224, 224), 1)
    assert a.counted_by == "dnnmeter (ONNX graph)"
    kinds = a.by_kind
    assert (kinds["conv"].layers, kinds["linear"].layers) == (20, 1)
    assert kinds["linear"].params == 512 * 1000 + 1000


def test_resnet18_rows_sum_to_totals(resnet18_onnx: Path) -> None:
    a = analyze_onnx(str(resnet18_onnx))
    assert sum(r.params for r in a.layers) == a.params == a.trainable_params
    assert sum(r.macs for r in a.layers) == a.macs
    assert sum(r.elementwise_flops for r in a.layers) == a.elementwise_flops > 0
    assert sum(r.activations for r in a.layers) == a.activations > 0
    assert a.weight_bytes == 4 * a.params  # float32
    first = a.layers[0]
    assert (first.kind, first.input_shapes, first.output_shapes) == (
        "conv",
        [[1, 3, 224, 224]],
        [[1, 64, 112, 112]],
    )


def test_resnet18_batch_and_input_size_override_the_file(resnet18_onnx: Path) -> None:
    one = analyze_onnx(str(resnet18_onnx))
    eight = analyze_onnx(str(resnet18_onnx), batch_size=8)
    assert eight.macs == 8 * one.macs and eight.params == one.params
    large = analyze_onnx(str(resnet18_onnx), input_size=(3, 448, 448))
    assert large.input_size == (3, 448, 448)
    # Every feature map doubles in each side; the classifier after the global pool does not.
    fc = 512 * 1000
    assert large.macs - fc == 4 * (one.macs - fc)


def test_resolve_gives_an_onnx_entry(resnet18_onnx: Path) -> None:
    e = resolve(str(resnet18_onnx))
    assert (e.source, e.name, e.input_size, e.family, e.meta_ok) == (
        "onnx",
        str(resnet18_onnx),
        (3, 224, 224),
        "onnx",
        False,
    )
    with pytest.raises(ModelBuildError, match="analysed from their graph"):
        e.build()
    with pytest.raises(ModelBuildError, match="analysed from their graph"):
        create_model(str(resnet18_onnx))


# --- closed-form counts -------------------------------------------------------------------


def test_grouped_conv(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=2, pads=[1, 1, 1, 1])
    path = _save(
        tmp_path, [conv], [("x", [1, 8, 16, 16])], "y", (_tensor("w", 16, 4, 3, 3), _tensor("b", 16))
    )
    a = analyze_onnx(path, input_size=(8, 16, 16))
    assert a.macs == 16 * 16 * 16 * 4 * 3 * 3  # M * H * W * (C / group) * k * k
    assert a.params == 16 * 4 * 3 * 3 + 16
    assert a.weight_bytes == 4 * a.params
    assert [(r.kind, r.output_shapes) for r in a.layers] == [("conv", [[1, 16, 16, 16]])]


def test_depthwise_conv_and_batch(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=8, pads=[1, 1, 1, 1])
    path = _save(tmp_path, [conv], [("x", ["N", 8, "H", "W"])], "y", (_tensor("w", 8, 1, 3, 3),))
    assert resolve(path).input_size == (8, 224, 224)  # dynamic H, W fall back to 224
    a = analyze_onnx(path, input_size=(8, 10, 10), batch_size=3)
    assert a.macs == 3 * 8 * 10 * 10 * 3 * 3
    assert a.layers[0].kind == "depthwise_conv"


def test_conv_transpose(tmp_path: Path) -> None:
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    path = _save(tmp_path, [node], [("x", [1, 4, 5, 5])], "y", (_tensor("w", 4, 6, 2, 2),))
    a = analyze_onnx(path)
    assert a.macs == 4 * 5 * 5 * 6 * 2 * 2  # C_in * input spatial * (M / group) * k * k
    assert a.layers[0].output_shapes == [[1, 6, 10, 10]]


def test_gemm(tmp_path: Path) -> None:
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    path = _save(
        tmp_path, [gemm], [("x", [4, 32])], "y", (_tensor("w", 64, 32), _tensor("b", 64))
    )
    a = analyze_onnx(path, batch_size=4)
    assert a.macs == 4 * 32 * 64
    assert a.params == 64 * 32 + 64
    assert a.layers[0].kind == "linear"


def test_matmul_broadcasts_batch_dims(tmp_path: Path) -> None:
    mm = helper.make_node("MatMul", ["a", "b"], ["y"])
    path = _save(tmp_path, [mm], [("a", [2, 1, 5, 6]), ("b", [3, 6, 7])], "y")
    a = analyze_onnx(path, batch_size=2)
    assert a.macs == 2 * 3 * 5 * 6 * 7
    assert a.params == 0
    assert [(r.kind, r.output_shapes) for r in a.layers] == [("matmul", [[2, 3, 5, 7]])]


def test_matmul_with_a_weight_through_identity_is_linear(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Identity", ["w"], ["w_copy"]),
        helper.make_node("MatMul", ["x", "w_copy"], ["y"]),
    ]
    path = _save(tmp_path, nodes, [("x", [1, 10, 16])], "y", (_tensor("w", 16, 8),))
    a = analyze_onnx(path)
    assert a.macs == 10 * 16 * 8
    assert [(r.type, r.kind, r.params) for r in a.layers] == [("MatMul", "linear", 16 * 8)]


def test_einsum(tmp_path: Path) -> None:
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")
    path = _save(tmp_path, [node], [("a", [2, 3, 4]), ("b", [2, 4, 5])], "y")
    assert analyze_onnx(path, batch_size=2).macs == 2 * 3 * 4 * 5
    broadcast = OpShapes(((7, 2, 3, 4), (2, 4, 5)), (), {"equation": "...ij,...jk->...ik"})
    assert einsum_macs(broadcast) == (7 * 2 * 3 * 4 * 5, 0)


def test_elementwise_work_is_apart_from_macs(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),
        helper.make_node("Softmax", ["g"], ["y"]),
    ]
    stats = tuple(_tensor(n, 4) for n in "sbmv")
    path = _save(tmp_path, nodes, [("x", [1, 4, 8, 8])], "y", stats)
    a = analyze_onnx(path)
    n = 4 * 8 * 8
    expected = {"norm": 2 * n, "activation": n + 3 * 4, "pool": (n // 4) * 4 + n // 4}
    assert {k: a.by_kind[k].flops for k in expected} == expected
    assert a.macs == 0 and a.params == 4 * 4
    assert a.activations == n + n + n // 4 + 4 + 4


def test_integer_constants_are_not_params_and_views_cost_nothing(tmp_path: Path) -> None:
    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], ["y"]),
    ]
    path = _save(tmp_path, nodes, [("x", [1, 2, 3, 4])], "y", (shape, _tensor("w", 24, 5)))
    a = analyze_onnx(path)
    assert (a.params, a.macs, a.unsupported_ops) == (24 * 5, 24 * 5, {})
    assert [r.type for r in a.layers] == ["Gemm"]


def test_unknown_ops_are_reported_not_dropped(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Hardmax", ["x"], ["h"]),
        helper.make_node("MyOp", ["h"], ["c"], domain="my.domain"),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    path = _save(tmp_path, nodes, [("x", [1, 10])], "y", domains=("my.domain",))
    a = analyze_onnx(path)
    assert a.unsupported_ops == {
        "Hardmax": 1,
        "my.domain:MyOp": 1,
        "Relu (unknown shape)": 1,  # the custom op's output has no inferable shape
    }
    assert [r.type for r in a.layers] == ["Hardmax", "my.domain:MyOp", "Relu"]
    assert a.elementwise_flops == 0


def test_a_formula_registered_twice_is_an_error() -> None:
    assert "Conv" in COST_FORMULAS
    with pytest.raises(ValueError, match="registered twice"):
        register_cost("Conv", kind="conv")(lambda s: (0, 0))


# --- errors -------------------------------------------------------------------------------


def test_a_text_file_is_not_an_onnx_model(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    path.write_text("not a model, just some text\n")
    with pytest.raises(ModelBuildError, match="not an ONNX model"):
        resolve(str(path))
    with pytest.raises(ModelBuildError, match="not an ONNX model"):
        analyze_onnx(str(path))
    path.write_bytes(b"")
    with pytest.raises(ModelBuildError, match="not an ONNX model"):
        entry(str(path))


def test_a_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.onnx")
    with pytest.raises(ModelBuildError, match="no such file") as info:
        resolve(missing)
    assert str(info.value) == f"{missing}: no such file"
    with pytest.raises(ModelBuildError, match="no such file"):
        analyze_onnx(missing)


def test_an_input_size_of_the_wrong_rank(resnet18_onnx: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not fit"):
        analyze_onnx(str(resnet18_onnx), input_size=(224, 224))


def test_onnx_missing_names_the_extra(
    resnet18_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'dnnmeter\[onnx\]'"):
        entry(str(resnet18_onnx))


# --- recurrent layers: every gate, step and direction -------------------------------------


@pytest.mark.parametrize("cell", [torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN])
def test_recurrent_layers_count_what_the_torch_side_counts(cell: type, tmp_path: Path) -> None:
    """Two bidirectional layers, 5 steps: the ONNX nodes cost what dnnmeter counts for the
    nn.Module (per cell: gates * H * (I + H) MACs; 13H, 10H, 2H element-wise FLOPs)."""
    model = cell(16, 32, num_layers=2, batch_first=True, bidirectional=True).eval()
    path = tmp_path / "rnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(3, 5, 16),), str(path), dynamo=False)
    a = analyze_onnx(str(path), batch_size=3)
    torch_side = analyze(model, input_size=(5, 16), batch_size=3)
    assert a.unsupported_ops == {} == torch_side.unsupported_ops
    assert (a.macs, a.elementwise_flops) == (torch_side.macs, torch_side.elementwise_flops)
    gates = {torch.nn.LSTM: 4, torch.nn.GRU: 3, torch.nn.RNN: 1}[cell]
    cells = 3 * 5 * 2  # batch * steps * directions
    assert a.macs == cells * gates * 32 * ((16 + 32) + (64 + 32))  # layer 1 and layer 2


def test_lstm_closed_form_with_peepholes_and_batch_major_layout(tmp_path: Path) -> None:
    hidden, inputs, steps, batch = 8, 6, 7, 2
    node = helper.make_node("LSTM", ["x", "w", "r", "", "", "", "", "p"], ["y"],
                            hidden_size=hidden, layout=1)
    weights = (_tensor("w", 1, 4 * hidden, inputs), _tensor("r", 1, 4 * hidden, hidden),
               _tensor("p", 1, 3 * hidden))
    path = _save(tmp_path, [node], [("x", [batch, steps, inputs])], "y", weights)
    a = analyze_onnx(path, input_size=(steps, inputs), batch_size=batch)
    assert a.macs == steps * batch * 4 * hidden * (inputs + hidden)
    assert a.elementwise_flops == steps * batch * (13 + 6) * hidden
    assert a.params == 4 * hidden * (inputs + hidden) + 3 * hidden


# --- batch and input size of exported files --------------------------------------------------


class _Cnn(torch.nn.Module):
    """Conv, pool, then `view(batch, -1)`: a Reshape whose target comes from the input's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(h.view(h.shape[0], -1))


class _Attention(torch.nn.Module):
    """Tokens -> projection -> multi-head self-attention -> mean -> classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(16, 32)
        self.attn = torch.nn.MultiheadAttention(32, 4, batch_first=True)
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        h, _ = self.attn(h, h, h, need_weights=False)
        return self.head(h.mean(1))


_SAMPLES = {"cnn": (_Cnn, (3, 8, 8)), "attention": (_Attention, (8, 16))}


def _export(kind: str, folder: Path, *, dynamo: bool, dynamic: bool) -> str:
    """Export at batch 2 (torch.export specialises a batch of 1), with or without a dynamic batch."""
    cls, size = _SAMPLES[kind]
    torch.manual_seed(0)
    path = folder / f"{kind}_{'dynamo' if dynamo else 'ts'}_{'dyn' if dynamic else 'fixed'}.onnx"
    kwargs: dict[str, object] = {}
    if dynamic and dynamo:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    elif dynamic:
        kwargs["dynamic_axes"] = {"x": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(cls().eval(), (torch.randn(2, *size),), str(path), input_names=["x"],
                          dynamo=dynamo, verbose=False, **kwargs)
    return str(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool, bool], str]:
    folder = tmp_path_factory.mktemp("exported")
    return {(kind, dynamo, dynamic): _export(kind, folder, dynamo=dynamo, dynamic=dynamic)
            for kind in _SAMPLES for dynamo in (False, True) for dynamic in (False, True)}


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("kind", list(_SAMPLES))
def test_a_dynamic_batch_counts_right_at_any_batch(
    exported: dict[tuple[str, bool, bool], str], kind: str, dynamo: bool
) -> None:
    cls, size = _SAMPLES[kind]
    path = exported[kind, dynamo, True]
    for batch in (1, 2, 5):
        a = analyze_onnx(path, batch_size=batch)
        torch_side = analyze(cls(), input_size=size, batch_size=batch)
        assert a.unsupported_ops == {}
        assert a.macs == torch_side.macs  # bias adds are element-wise in ONNX, so compare MACs
    assert analyze_onnx(path, batch_size=2).macs == 2 * analyze_onnx(path, batch_size=1).macs


def test_attention_under_a_dynamic_batch_keeps_its_macs(exported: dict[tuple[str, bool, bool], str]) -> None:
    """The TorchScript exporter computes the head split with Shape/Div/Mod/Concat, which ONNX
    shape inference does not follow: the Q K^T and attention x V MatMuls lost a dim."""
    dynamic = analyze_onnx(exported["attention", False, True], batch_size=2)
    fixed = analyze_onnx(exported["attention", False, False], batch_size=2)
    assert dynamic.unsupported_ops == {} == fixed.unsupported_ops
    assert dynamic.macs == fixed.macs
    products = [r for r in dynamic.layers if r.type == "MatMul" and r.kind == "matmul"]
    assert [r.macs for r in products] == [2 * 4 * 8 * 8 * 8] * 2  # batch * heads * L * S * E


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("kind", list(_SAMPLES))
def test_a_fixed_shape_export_counts_at_its_shape_and_refuses_another(
    exported: dict[tuple[str, bool, bool], str], kind: str, dynamo: bool
) -> None:
    cls, size = _SAMPLES[kind]
    path = exported[kind, dynamo, False]
    assert analyze_onnx(path, batch_size=2).macs == analyze(cls(), input_size=size, batch_size=2).macs
    with pytest.raises(InvalidInputError, match="hard-codes a shape") as info:
        analyze_onnx(path, batch_size=1)
    message = str(info.value)
    assert "\n" not in message and "dynamic_axes" in message and "dynamic_shapes" in message
    assert f"fixed input shape (2, {', '.join(map(str, size))})" in message
    assert "(--batch-size 2 and no --input-size)" in message


def test_a_reshape_that_contradicts_the_input_is_refused(tmp_path: Path) -> None:
    """A dynamic batch declared, but a constant Reshape target: at batch 3 it would count the
    Gemm after it at batch 1."""
    target = numpy_helper.from_array(np.array([1, 24], dtype=np.int64), "target")
    nodes = [helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w"], ["y"])]
    path = _save(tmp_path, nodes, [("x", ["N", 2, 3, 4])], "y", (target, _tensor("w", 24, 5)))
    assert analyze_onnx(path, batch_size=1).macs == 24 * 5
    with pytest.raises(InvalidInputError, match=r"turns \(3, 2, 3, 4\) into \(1, 24\)"):
        analyze_onnx(path, batch_size=3)


def test_the_cli_refuses_in_one_line_with_status_2(
    exported: dict[tuple[str, bool, bool], str], capsys: pytest.CaptureFixture[str]
) -> None:
    from dnnmeter.cli import main

    status = main(["analyze", exported["attention", False, False], "--batch-size", "4"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "hard-codes a shape" in err and "Traceback" not in err


def test_the_default_batch_is_the_one_the_file_fixes(exported: dict[tuple[str, bool, bool], str]) -> None:
    a = analyze_onnx(exported["attention", False, False])  # exported at batch 2
    assert a.batch_size == 2 and a.macs == analyze(_Attention(), input_size=(8, 16), batch_size=2).macs
    assert analyze_onnx(exported["attention", False, True]).batch_size == 1  # a dynamic batch


def test_shape_arithmetic_onnx_does_not_propagate_is_folded(tmp_path: Path) -> None:
    """Reshape to (N, 6 mod 4, -1), the 2 computed by a Mod that ONNX's data propagation does
    not follow: without folding, the MatMul after it has an unknown dim."""
    ints = {name: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
            for name, v in {"zero": [0], "six": [6], "four": [4], "rest": [-1]}.items()}
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Mod", ["six", "four"], ["two"]),
        helper.make_node("Concat", ["n", "two", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["split"]),
        helper.make_node("MatMul", ["split", "w"], ["y"]),
    ]
    path = _save(tmp_path, nodes, [("x", ["N", 6])], "y", (*ints.values(), _tensor("w", 3, 5)))
    a = analyze_onnx(path, input_size=(6,), batch_size=4)
    assert a.unsupported_ops == {}
    assert a.macs == 4 * 2 * 3 * 5
    assert [r.type for r in a.layers if r.macs] == ["MatMul"]
