"""The fast shape rules against the reference: torch's own meta kernels.

A rule may decline (return None) but must never disagree with the kernel on shape,
strides or dtype, and counting with the rules and the remembered results must equal
counting with torch's kernels alone.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from dnnmeter.analysis import analyze, fast_shapes

aten = torch.ops.aten


def m(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, device="meta", dtype=dtype)


CASES: list[tuple[Any, tuple[Any, ...]]] = [
    (aten.relu.default, (m(2, 3, 4, 4),)),
    (aten.gelu.default, (m(2, 7, 16),)),
    (aten.hardtanh.default, (m(1, 8, 5, 5), 0.0, 6.0)),
    (aten.clamp.default, (m(3, 4), 0.0, None)),
    (aten._prelu_kernel.default, (m(1, 8, 5, 5), m(8, 1, 1))),
    (aten.add.Tensor, (m(2, 3, 4, 4), m(2, 3, 4, 4))),
    (aten.add.Tensor, (m(2, 3, 4, 4), m(3, 1, 1))),
    (aten.mul.Tensor, (m(1, 3, 1, 1), m(2, 3, 4, 4))),
    (aten.mul.Tensor, (m(2, 3), 0.5)),
    (aten.div.Tensor, (m(5, 1), m(1, 6))),
    (aten.add.Tensor, (m(2, 3), m(2, 3, dtype=torch.float16))),  # must decline: promotion
    (aten._softmax.default, (m(2, 4, 9), -1, False)),
    (aten._safe_softmax.default, (m(2, 4, 9), -1)),
    (aten.native_batch_norm.default, (m(2, 8, 5, 5), m(8), m(8), m(8), m(8), False, 0.1, 1e-5)),
    (aten._native_batch_norm_legit_no_training.default, (m(2, 8, 5, 5), m(8), m(8), m(8), m(8), 0.1, 1e-5)),
    (aten.native_layer_norm.default, (m(2, 10, 16), [16], m(16), m(16), 1e-5)),
    (aten.native_layer_norm.default, (m(2, 4, 6, 6), [4, 6, 6], None, None, 1e-5)),
    (aten.native_layer_norm.default, (m(2, 10, 16, dtype=torch.bfloat16), [16], None, None, 1e-5)),
    (aten.native_batch_norm.default, (m(2, 8, 5, dtype=torch.float16), m(8), m(8), m(8), m(8), False, 0.1, 1e-5)),
    (aten.convolution.default, (m(2, 3, 17, 17), m(8, 3, 3, 3), m(8), [2, 2], [1, 1], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (m(1, 8, 9, 11), m(8, 1, 5, 3), None, [1, 2], [2, 0], [2, 1], False, [0, 0], 8)),
    (aten.convolution.default, (m(1, 4, 5), m(6, 2, 3), None, [1], [1], [1], False, [0], 2)),
    (aten.mm.default, (m(7, 5), m(5, 3))),
    (aten.addmm.default, (m(3), m(7, 5), m(3, 5).t())),
    (aten.bmm.default, (m(4, 7, 5), m(4, 5, 3))),
    (aten.max_pool2d_with_indices.default, (m(1, 3, 112, 112), [3, 3], [2, 2], [1, 1])),
    (aten.max_pool2d_with_indices.default, (m(1, 3, 55, 55), [3, 3], [2, 2], [0, 0], [1, 1], True)),
    (aten.max_pool2d_with_indices.default, (m(1, 3, 14, 14), [2, 2], [], [0, 0], [1, 1], True)),
    (aten.avg_pool2d.default, (m(1, 3, 35, 35), [3, 3], [1, 1], [1, 1])),
    (aten.avg_pool2d.default, (m(1, 3, 8, 8), [2, 2], [2, 2], [0, 0], True)),
    (aten._adaptive_avg_pool2d.default, (m(2, 16, 7, 7), [1, 1])),
    (aten.mean.dim, (m(2, 16, 7, 7), [2, 3], True)),
    (aten.mean.dim, (m(2, 16, 7, 7), [-1, -2])),
    (aten.sum.dim_IntList, (m(2, 16, 7), [1])),
    (aten.cat.default, ([m(1, 3, 4, 4), m(1, 5, 4, 4)], 1)),
    (aten.cat.default, ([m(2, 3), m(2, 4)], -1)),
    (aten.relu_.default, (m(2, 3),)),
    (aten.add_.Tensor, (m(2, 3, 4), m(4))),
]


def test_empty_rule() -> None:
    got = fast_shapes.RULES[aten.empty.memory_format](([0],), {"dtype": torch.uint8, "device": torch.device("meta")})
    assert got.shape == (0,) and got.dtype == torch.uint8 and got.is_meta
    assert fast_shapes.RULES[aten.empty.memory_format](([2],), {"device": torch.device("cpu")}) is None


def _compare(expected: Any, got: Any) -> None:
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor)
        assert (got.shape, got.stride(), got.dtype) == (expected.shape, expected.stride(), expected.dtype)
    else:
        assert len(got) == len(expected)
        for e, g in zip(expected, got):
            _compare(e, g)


@pytest.mark.parametrize(("op", "args"), CASES, ids=[str(op) for op, _ in CASES])
def test_rule_agrees_with_the_meta_kernel(op: Any, args: tuple[Any, ...]) -> None:
    assert op in fast_shapes.RULES
    got = fast_shapes.RULES[op](args, {})
    expected = op(*args)
    if got is None:
        return  # declined: the kernel runs instead
    _compare(expected, got)
    if op._schema.name.endswith("_"):
        assert got is args[0]


def test_rules_decline_dtype_promotion_and_non_contiguous_inputs() -> None:
    assert fast_shapes.RULES[aten.add.Tensor]((m(2, 3), m(2, 3, dtype=torch.float16)), {}) is None
    assert fast_shapes.RULES[aten.relu.default]((m(2, 3).t(),), {}) is None


def test_too_small_inputs_fall_through_to_torch_errors() -> None:
    args = (m(1, 3, 2, 2), m(8, 3, 3, 3), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    assert fast_shapes.RULES[aten.convolution.default](args, {}) is None


def test_broadcast() -> None:
    assert fast_shapes.broadcast((2, 1, 4), (3, 1)) == [2, 3, 4]
    assert fast_shapes.broadcast((2, 3), (4,)) is None


def _count_with_kernels_only(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    with monkeypatch.context() as patch:
        patch.setattr(fast_shapes, "run", lambda func, args, kwargs, fast=True: func(*args, **kwargs))
        return analyze(name).to_dict()


def test_remembered_results_match_the_kernel() -> None:
    x = m(2, 4, 6).transpose(1, 2)  # non-contiguous: no rule applies
    first = fast_shapes.run(aten.gelu.default, (x,), {})
    second = fast_shapes.run(aten.gelu.default, (x,), {})
    expected = aten.gelu.default(x)
    for got in (first, second):
        assert (got.shape, got.stride(), got.dtype) == (expected.shape, expected.stride(), expected.dtype)
    assert first is not second


def test_mutating_and_aliasing_ops_are_never_remembered() -> None:
    assert not fast_shapes._is_pure(aten.add_.Tensor)
    assert not fast_shapes._is_pure(aten.view.default)
    assert fast_shapes._is_pure(aten.roll.default)


SMALL_ZOO = ["resnet18", "mobilenet_v3_small", "swin_t", "efficientnet_b0", "convnext_tiny",
             "googlenet", "squeezenet1_0", "maxvit_t", "enet", "tiny_alexnet_dw_res"]


@pytest.mark.parametrize("name", SMALL_ZOO)
def test_counting_with_rules_equals_counting_with_kernels(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert analyze(name).to_dict() == _count_with_kernels_only(name, monkeypatch)


@pytest.mark.timeout(3600)  # every torchvision model, counted twice
@pytest.mark.slow
def test_the_whole_zoo_counts_the_same_with_kernels_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    for name in torchvision.models.list_models(module=torchvision.models):
        assert analyze(name).to_dict() == _count_with_kernels_only(name, monkeypatch), name
