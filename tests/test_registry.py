"""The one registry mechanism (dnnmeter.registry) and the tables built on it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dnnmeter import names
from dnnmeter.errors import DnnmeterError, InvalidInputError
from dnnmeter.registry import DuplicateNameError, Registry, UnknownNameError, did_you_mean


def _colours() -> Registry[int]:
    reg: Registry[int] = Registry("colour")
    reg.register("red", 1)
    reg.register("green", 2)
    reg.register("greenish", 3)
    return reg


def test_register_is_also_a_decorator() -> None:
    reg: Registry[object] = Registry("op")

    @reg.register("double")
    def double(x: int) -> int:
        return 2 * x

    assert reg.get("double") is double and reg["double"](4) == 8
    assert "double" in reg and "triple" not in reg


def test_a_name_registered_twice_is_an_error_unless_override() -> None:
    reg = _colours()
    with pytest.raises(DuplicateNameError, match="colour 'red' is registered already"):
        reg.register("red", 9)
    assert reg.get("red") == 1
    reg.register("red", 9, override=True)
    assert reg.get("red") == 9 and reg.names() == ["red", "green", "greenish"]


def test_unknown_name_suggests_the_closest_ones_in_one_error_style() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown colour 'gren'; did you mean 'green', 'greenish'\?") as info:
        _colours().get("gren")
    # One line, a DnnmeterError (exit status 2 in the CLI), a KeyError for dict-style callers.
    assert isinstance(info.value, DnnmeterError) and isinstance(info.value, KeyError)
    assert "\n" not in str(info.value)
    with pytest.raises(UnknownNameError, match=r"^unknown colour 'blue'$"):
        _colours().get("blue")
    assert str(_colours().unknown("blue", choose=True)) == "unknown colour 'blue'; choose from red, green, greenish"
    assert did_you_mean("zzz", ["red"]) == ""


def test_list_matches_a_shell_pattern_in_registration_order() -> None:
    assert _colours().list("gre*") == ["green", "greenish"]
    assert _colours().list("*") == ["red", "green", "greenish"]
    assert _colours().list("Red") == []  # case-sensitive, like timm's list_models


def test_a_loader_runs_once_when_a_name_is_first_missed() -> None:
    calls = []
    reg: Registry[int] = Registry("model")

    def populate(r: Registry[int]) -> None:
        calls.append(1)
        r.register("big", 1)

    reg.add_loader(populate)
    assert calls == []
    assert reg.get("big") == 1 and reg.names() == ["big"] and len(reg) == 1
    assert calls == [1]


def test_decorator_for_several_names_registers_all_or_none() -> None:
    from dnnmeter.registry import decorator

    reg = _colours()
    with pytest.raises(DuplicateNameError):
        decorator(reg, "blue", "red")(7)
    assert "blue" not in reg


# --- the tables ---------------------------------------------------------------------------


def test_a_formula_registered_as_none_ignores_the_op_and_override_replaces_one() -> None:
    from dnnmeter.analysis import analyze
    from dnnmeter.analysis.formulas import FORMULAS, register_formula

    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.special.erfcx(x) + 1  # erfcx: a rare op with no formula

    op = torch.ops.aten.special_erfcx
    assert op not in FORMULAS
    before = analyze(Net(), input_size=(3, 4, 4), batch_size=1)
    assert "special_erfcx" in before.unsupported_ops
    try:
        FORMULAS.register(op, None)  # fvcore's set_op_handle(op, None)
        ignored = analyze(Net(), input_size=(3, 4, 4), batch_size=1)
        assert "special_erfcx" not in ignored.unsupported_ops
        assert ignored.elementwise_flops == before.elementwise_flops
        with pytest.raises(DuplicateNameError):
            register_formula(op)(lambda x, *_, out: None)
        from dnnmeter.analysis.formulas import Cost

        register_formula(op, override=True)(lambda x, *_, out: Cost(0, 1000, "other"))
        counted = analyze(Net(), input_size=(3, 4, 4), batch_size=1)
        assert counted.elementwise_flops == before.elementwise_flops + 1000
    finally:
        FORMULAS.unregister(op)


def test_an_onnx_op_registered_as_none_is_ignored() -> None:
    from dnnmeter.analysis.onnx_count import COST_FORMULAS, register_cost

    assert "Conv" in COST_FORMULAS
    with pytest.raises(DuplicateNameError, match="registered twice"):
        register_cost("Conv", kind="conv")(lambda s: (0, 0))
    assert "MyOp" not in COST_FORMULAS


def test_unknown_names_in_the_tables_say_did_you_mean() -> None:
    from dnnmeter.data.detect import LAYOUTS
    from dnnmeter.hardware.energy import get_energy_table
    from dnnmeter.transforms.rewrite import check_ops

    with pytest.raises(InvalidInputError, match=r"unknown op 'residul'; did you mean 'residual'\? choose from"):
        check_ops(["residul"])
    with pytest.raises(InvalidInputError, match=r"unknown energy table 'eyeris'; did you mean 'eyeriss'\?"):
        get_energy_table("eyeris")
    with pytest.raises(UnknownNameError, match="did you mean 'tiny-imagenet'"):
        LAYOUTS.get("tiny-imagenett")


def test_the_cli_names_are_the_tables_names() -> None:
    from dnnmeter.hardware.ceilings import DTYPES as CEILING_DTYPES
    from dnnmeter.hardware.energy import ENERGY_TABLES
    from dnnmeter.hardware.systolic import DATAFLOWS
    from dnnmeter.measure.spec import torch_dtype
    from dnnmeter.transforms.convs import BETWEEN
    from dnnmeter.transforms.rewrite import OPS
    from dnnmeter.zoo.registry import listed_sources

    assert tuple(OPS.names()) == names.MODIFY_OPS
    assert tuple(ENERGY_TABLES.names()) == names.ENERGY_TABLES
    assert tuple(listed_sources()) == names.MODEL_SOURCES
    assert DATAFLOWS == names.DATAFLOWS and BETWEEN == names.BETWEEN
    from dnnmeter.transforms.prune import METHODS, SCOPES

    assert (METHODS, SCOPES) == (names.PRUNE_METHODS, names.PRUNE_SCOPES)
    assert CEILING_DTYPES == names.CEILING_DTYPES
    assert set(names.BENCH_DTYPES) <= set(names.CEILING_DTYPES)
    assert [torch_dtype(n, names.CEILING_DTYPES) for n in names.CEILING_DTYPES] == [
        torch.float32, torch.float64, torch.float16, torch.bfloat16
    ]
    with pytest.raises(InvalidInputError, match="bad dtype 'float64': choose one of float32, float16, bfloat16"):
        torch_dtype("float64")


def test_model_sources_are_asked_in_turn() -> None:
    from dnnmeter.zoo import MODEL_SOURCES, Source
    from dnnmeter.zoo.registry import claiming_source

    assert MODEL_SOURCES.names() == ["timm", "hf", "onnx", "python"]
    assert all(isinstance(s, Source) for s in MODEL_SOURCES.values())
    assert claiming_source("timm:resnet18").name == "timm"
    assert claiming_source("hf:gpt2").name == claiming_source("hf:./a/config.json").name == "hf"
    assert claiming_source("model.onnx").name == "onnx"
    assert claiming_source("package.module:build").name == "python"
    assert claiming_source("resnet18") is None


def test_an_unknown_source_is_one_line_with_close_matches() -> None:
    from dnnmeter.zoo import list_models

    with pytest.raises(InvalidInputError, match=r"unknown source 'tim'; did you mean 'timm'\? choose one of torchvision, seed, timm"):
        list_models(source="tim")
