"""The "copy" rows: free ops that copy memory, seen by the latency predictor, never by counting.

Oracles: closed-form byte counts (a cat moves its inputs and its output once), the rows counting
gave before (copies=False must not change), and the closed-form timing law of test_predict.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from dnnmeter.analysis import analyze
from dnnmeter.analysis.formulas import COPY_OPS, FREE_OPS
from dnnmeter.prediction import calibrate, predict
from dnnmeter.prediction import kernels as kernel_grid
from dnnmeter.prediction.features import group_of, work
from test_predict import BYTES_PER_S, INTERCEPT_S, law_timer  # the same law as the other fits


class _Mixer(nn.Module):
    """cat, roll, a permute made contiguous, a contiguous() that needs no copy, a ChannelShuffle leaf."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([x, self.conv(x)], 1)
        y = torch.roll(y, 1, 2)
        y = y.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        return self.shuffle(y) + x.contiguous().repeat(1, 2, 1, 1)


def _rows(copies: bool) -> list[tuple[str, str, str]]:
    a = analyze(_Mixer(), input_size=(8, 4, 4), copies=copies)
    return [(layer.name, layer.kind, layer.type) for layer in a.layers]


def test_counting_without_copies_is_unchanged() -> None:
    assert _rows(False) == [("conv", "conv", "Conv2d"), ("shuffle", "other", "ChannelShuffle"),
                            ("add", "other", "aten.add")]
    assert _rows(False) == [r for r in _rows(True) if r[1] != "copy"]  # copies only add rows


def test_copies_add_one_row_per_copy_with_its_shapes() -> None:
    assert [r for r in _rows(True) if r[1] == "copy"] == [
        ("cat", "copy", "aten.cat"), ("roll", "copy", "aten.roll"), ("clone", "copy", "aten.clone"),
        ("shuffle:channel_shuffle", "copy", "aten.channel_shuffle"),  # inside the leaf: a row of its own
        ("repeat", "copy", "aten.repeat"),
    ]  # x.contiguous() of a contiguous x copies nothing: no row


def test_totals_are_the_same_with_and_without_copies() -> None:
    off, on = (analyze(_Mixer(), input_size=(8, 4, 4), copies=c) for c in (False, True))
    for total in ("macs", "flops", "elementwise_flops", "activations", "activation_bytes", "params"):
        assert getattr(on, total) == getattr(off, total), total
    assert on.unsupported_ops == off.unsupported_ops
    copies = [layer for layer in on.layers if layer.kind == "copy"]
    assert all(layer.macs == 0 and layer.elementwise_flops == 0 and layer.activations == 0 for layer in copies)


def test_a_cat_moves_its_inputs_and_its_output() -> None:
    class Cat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, x * 2], 1)

    (row,) = [layer for layer in analyze(Cat(), input_size=(8, 4, 4), copies=True).layers if layer.kind == "copy"]
    assert row.input_shapes == [[1, 8, 4, 4], [1, 8, 4, 4]] and row.output_shapes == [[1, 16, 4, 4]]
    assert work(row, 4) == (0.0, 0.0, (2 * 128 + 256) * 4.0)
    assert group_of(row) == "copy"


def test_contiguous_copies_only_a_tensor_that_is_not() -> None:
    class Perm(nn.Module):
        def __init__(self, permute: bool) -> None:
            super().__init__()
            self.permute, self.anchor = permute, nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x.transpose(1, 2) if self.permute else x).contiguous().reshape(x.shape[0], -1)

    kinds = {p: [layer.type for layer in analyze(Perm(p), input_size=(8, 6), copies=True).layers] for p in (0, 1)}
    assert kinds == {0: [], 1: ["aten.clone"]}


def test_copy_ops_stay_free_for_counting_and_train_mode_adds_no_backward_copies() -> None:
    assert COPY_OPS <= FREE_OPS and torch.ops.aten.cat in COPY_OPS and torch.ops.aten.view not in COPY_OPS
    a = analyze(_Mixer(), input_size=(8, 4, 4), copies=True, mode="train")
    assert [layer.name for layer in a.layers if layer.kind == "copy" and "backward" in layer.name] == []


def test_the_grid_has_the_copy_family_and_each_kernel_is_one_copy_row() -> None:
    specs = [s for s in kernel_grid.grid() if s.group == "copy"]
    assert 40 <= len(specs) <= 60
    assert {kernel_grid.COPY_FAMILIES[s.p["op"]] for s in specs} == set(kernel_grid.COPY_FAMILIES)
    for spec in specs:
        k = kernel_grid.build(spec)
        layers = [layer for layer in analyze(k.module, input_size=k.input_size, batch_size=k.batch,
                                             copies=True).layers if layer.executed]
        assert [(group_of(layer), layer.kind) for layer in layers] == [("copy", "copy")], spec.id
        with torch.inference_mode():  # the timed call copies as many elements as the row says
            out = k.timed(torch.randn(k.batch, *k.input_size))
        assert out.numel() == sum(int(torch.Size(s).numel()) for s in layers[0].output_shapes), spec.id


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("calibration")
    return out, calibrate(threads=1, out=out, per_group=6, timer=law_timer)


def test_the_copy_fit_follows_the_law(calibrated) -> None:  # type: ignore[no-untyped-def]
    out, result = calibrated
    copy = json.loads((out / f"{result.key}.json").read_text())["models"]["g:copy"]["coefficients_s"]
    assert copy["intercept"] == pytest.approx(INTERCEPT_S, rel=1e-3)
    assert copy["per_byte"] == pytest.approx(1 / BYTES_PER_S, rel=1e-3)


@pytest.mark.parametrize("name", ["swin_t", "shufflenet_v2_x1_0"])
def test_predict_prices_the_copies_of_swin_and_shufflenet(calibrated, name) -> None:  # type: ignore[no-untyped-def]
    out, _ = calibrated
    (p,) = predict(name, threads=1, calibration_dir=out, per_layer=True)
    copies = [layer for layer in p.layers if layer.kind == "copy"]
    assert copies and all(layer.fit == "g:copy" and layer.latency_s > 0 for layer in copies)
    layers = [layer for layer in analyze(name, copies=True).layers if layer.executed]
    assert p.latency_s == pytest.approx(law_timer(None, layers), rel=0.02)
    assert not any("copies" in note for note in p.notes)


def test_a_calibration_without_a_copy_fit_leaves_copies_out(calibrated, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, result = calibrated
    data = json.loads((out / f"{result.key}.json").read_text())
    del data["models"]["g:copy"], data["models"]["k:copy"]  # as a calibration made before the group
    (tmp_path / f"{result.key}.json").write_text(json.dumps(data))
    (p,) = predict("shufflenet_v2_x1_0", threads=1, calibration_dir=tmp_path, per_layer=True)
    assert not any(layer.kind == "copy" for layer in p.layers)
    layers = [layer for layer in analyze("shufflenet_v2_x1_0").layers if layer.executed]  # counting's rows
    assert p.latency_s == pytest.approx(sum(layer.latency_s for layer in p.layers))
    assert len(p.layers) == len(layers)
    assert any("memory copies" in note and "free" in note for note in p.notes)
