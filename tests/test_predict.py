"""The latency predictor: calibration with an injected timer, the fit, prediction, the CLI.

Kernels are "timed" by a closed-form law of their analysed work, so every test is fast
and its oracle exact: the fit must recover the law, and the whole-model overhead term
the per-layer cost the law's networks were given.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dnnmeter.cli import main
from dnnmeter.errors import InvalidInputError
from dnnmeter.prediction import CalibrationMissingError, calibrate, predict
from dnnmeter.prediction import kernels as kernel_grid
from dnnmeter.prediction.features import group_of, work
from dnnmeter.prediction.fit import fit_group

INTERCEPT_S, MACS_PER_S, EW_PER_S, BYTES_PER_S = 2e-6, 2e10, 4e9, 5e9
NET_PER_LAYER_S = 3e-6


def _law_s(layer) -> float:  # type: ignore[no-untyped-def]
    macs, ew, moved = work(layer, 4)
    return INTERCEPT_S + macs / MACS_PER_S + ew / EW_PER_S + moved / BYTES_PER_S


def law_timer(kernel, layers) -> float:  # type: ignore[no-untyped-def]
    if len(layers) == 1:
        return _law_s(layers[0])
    return sum(_law_s(layer) for layer in layers) + NET_PER_LAYER_S * len(layers)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("calibration")
    result = calibrate(threads=1, out=out, per_group=6, timer=law_timer)
    return out, result


def test_calibration_json_loads_with_identity_fit_and_units(calibrated) -> None:  # type: ignore[no-untyped-def]
    out, result = calibrated
    data = json.loads((out / f"{result.key}.json").read_text())
    assert data["schema"] == "dnnmeter.calibration/1"
    assert data["threads"] == 1 and data["dtype"] == "float32" and data["device"] == "cpu"
    assert data["machine"]["cpu_model"] == data["environment"]["cpu_model"]
    assert data["created_utc"].endswith("+00:00")
    assert set(data["models"]["g:conv"]["coefficients_s"]) == {"intercept", "per_mac", "per_elementwise_flop", "per_byte"}
    assert result.complete and result.kernels_measured == result.kernels_in_grid
    assert {"g:" + g for g in kernel_grid.GROUPS} <= set(data["models"])  # every kernel group was fitted


def test_fit_recovers_the_closed_form_law(calibrated) -> None:  # type: ignore[no-untyped-def]
    out, result = calibrated
    data = json.loads((out / f"{result.key}.json").read_text())
    conv = data["models"]["g:conv"]["coefficients_s"]
    assert conv["intercept"] == pytest.approx(INTERCEPT_S, rel=1e-3)
    assert conv["per_mac"] == pytest.approx(1 / MACS_PER_S, rel=1e-3)
    assert conv["per_byte"] == pytest.approx(1 / BYTES_PER_S, rel=1e-3)
    assert data["overhead"]["scale"] == 1.0  # kernels are summed as timed: no scale on the compute
    assert data["overhead"]["per_layer_s"] == pytest.approx(NET_PER_LAYER_S, rel=1e-3)


def test_prediction_of_an_unseen_model_follows_the_law(calibrated) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.analysis import analyze

    out, _ = calibrated
    (p,) = predict("resnet18", batch_sizes=(2,), threads=1, calibration_dir=out, per_layer=True)
    layers = [layer for layer in analyze("resnet18", batch_size=2, copies=True).layers if layer.executed]
    assert p.latency_s == pytest.approx(law_timer(None, layers), rel=0.02)
    assert p.latency_s_low <= p.latency_s <= p.latency_s_high
    assert p.latency_s_per_image == pytest.approx(p.latency_s / 2)
    assert p.images_per_s == pytest.approx(2 / p.latency_s)
    assert sum(layer.latency_s for layer in p.layers) == pytest.approx(p.latency_s)
    assert p.source == "predicted" and p.calibration["key"]


def test_predict_json_fields_with_units(calibrated, capsys) -> None:  # type: ignore[no-untyped-def]
    out, _ = calibrated
    assert main(["predict", "resnet18", "--threads", "1", "--calibration", str(out), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    for name in ("latency_s", "latency_s_low", "latency_s_high", "latency_s_per_image", "images_per_s",
                 "macs", "published_top1", "calibration", "source"):
        assert name in row
    assert row["source"] == "predicted" and row["batch_size"] == 1


def test_max_latency_filters_and_ranks_by_published_accuracy(calibrated) -> None:  # type: ignore[no-untyped-def]
    out, _ = calibrated
    every = predict(["resnet18", "resnet50", "mobilenet_v3_small", "alexnet"], threads=1, calibration_dir=out)
    budget = sorted(p.latency_s for p in every)[2] * 1.0001  # the three fastest fit
    kept = predict(["resnet18", "resnet50", "mobilenet_v3_small", "alexnet"], threads=1, calibration_dir=out,
                   max_latency_s=budget)
    assert len(kept) == 3 and all(p.latency_s <= budget for p in kept)
    top1 = [p.published_top1 for p in kept]
    assert top1 == sorted(top1, reverse=True)


def test_wildcards_and_sources_expand(calibrated) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.prediction.api import expand_models

    assert expand_models("mobilenet_v3*") == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert len(expand_models("torchvision")) > 50
    with pytest.raises(Exception, match="no model matches"):
        expand_models("nothing_like_this*")


def test_missing_calibration_is_one_line_naming_the_command(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CalibrationMissingError, match="run `dnnmeter calibrate --out"):
        predict("resnet18", threads=3, calibration_dir=tmp_path)
    # One thread: more threads than cores would add the CLI's warning line.
    assert main(["predict", "resnet18", "--threads", "1", "--calibration", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dnnmeter calibrate --out" in err and "--threads 1" in err


def test_resume_skips_measured_kernels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def counting(kernel, layers) -> float:  # type: ignore[no-untyped-def]
        seen.append(layers[0].name)
        return law_timer(kernel, layers)

    first = calibrate(threads=1, out=tmp_path, per_group=3, timer=counting)
    n_first = len(seen)
    second = calibrate(threads=1, out=tmp_path, per_group=3, timer=counting)
    assert n_first == first.kernels_in_grid and second.measured_now == 0 and len(seen) == n_first
    bigger = calibrate(threads=1, out=tmp_path, per_group=4, timer=counting)
    assert bigger.measured_now == len(seen) - n_first == bigger.kernels_in_grid - first.kernels_in_grid


def test_a_kernel_killed_mid_write_is_measured_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = calibrate(threads=1, out=tmp_path, per_group=3, timer=law_timer)
    log = tmp_path / f"{result.key}.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # torn last line
    again = calibrate(threads=1, out=tmp_path, per_group=3, timer=law_timer)
    assert again.measured_now == 1 and again.complete


def test_budget_stops_measuring_and_keeps_every_group_covered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    order = kernel_grid.grid(per_group=10)
    first_groups = {spec.group for spec in order[: len(kernel_grid.GROUPS)]}
    assert first_groups == set(kernel_grid.GROUPS)  # any prefix covers every group


def test_exported_trees_predict_as_scikit_learn() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    from dnnmeter.prediction import fit as fitting

    rng = np.random.default_rng(0)
    feats = rng.uniform(0, 10, size=(60, 4))
    target = np.sin(feats[:, 0]) + feats[:, 1] * 0.1
    trees = fitting._fit_trees(feats, target, seed=0)
    reference = GradientBoostingRegressor(n_estimators=120, max_depth=3, learning_rate=0.1, subsample=0.8,
                                          min_samples_leaf=3, random_state=0, loss=fitting.TREE_LOSS).fit(feats, target)
    assert np.allclose(trees.predict(feats), reference.predict(feats))
    assert json.loads(json.dumps(trees.to_dict())) == trees.to_dict()  # plain JSON, no pickle
    assert np.allclose(fitting.Trees(**json.loads(json.dumps(trees.to_dict()))).predict(feats), reference.predict(feats))


def test_fit_group_interval_brackets_noisy_data() -> None:
    rng = np.random.default_rng(1)
    macs = rng.uniform(1e5, 1e9, 200)
    work_rows = np.column_stack([macs, np.zeros(200), macs / 10])
    latency = (1e-5 + macs / 1e10) * np.exp(rng.normal(0, 0.05, 200))
    feats = np.log1p(work_rows)
    model = fit_group(work_rows, feats, latency)
    assert model.log_error_q05 < 0 < model.log_error_q95
    assert 0.8 <= model.diagnostics["cv_within_10pct"] <= 1.0
    assert math.exp(model.log_error_q95) < 1.3


def test_the_pool_grid_calibrates_the_zoos_windows() -> None:
    # 3x3 windows at strides 1 and 2 (the stem, GoogLeNet's branches), ceil_mode, global pooling:
    # a grid that picked the window from the channels' parity timed almost only 2x2 windows.
    specs = [s.p for s in kernel_grid.grid() if s.group in ("maxpool", "adaptiveavgpool")]
    windows = {(p["k"], p["s"], p["ceil"]) for p in specs if "k" in p}
    assert {(3, 2, 0), (3, 2, 1), (3, 1, 1), (2, 2, 0)} <= windows
    assert sum(p["o"] == 1 for p in specs if "o" in p) >= 10


def test_the_layernorm_grid_reaches_swins_first_stage() -> None:
    # Swin and ConvNeXt normalise (b, 56, 56, c) maps: 3136 positions, laid out in 4-d.
    norms = [kernel_grid.build(s) for s in kernel_grid.grid() if s.group == "layernorm"]
    sizes = {k.input_size[:-1] for k in norms}
    assert (56, 56) in sizes and (3136,) in sizes and (197,) in sizes


def test_patch_embeddings_have_their_own_group_and_grid() -> None:
    from dnnmeter.analysis import analyze

    def groups(name: str) -> list[str]:
        return [group_of(layer) for layer in analyze(name, batch_size=1).layers if layer.executed]

    assert groups("vit_b_32")[0] == groups("convnext_tiny")[0] == "patchify"  # 32x32 and 4x4 patches
    assert "patchify" not in groups("resnet18") + groups("alexnet")  # 7x7/2 and 11x11/4 padded stems
    specs = [s.p for s in kernel_grid.grid() if s.group == "patchify"]
    assert {4, 16, 32} <= {p["k"] for p in specs} and all(p["k"] == p["s"] and p["pad"] == 0 for p in specs)
    k = kernel_grid.build(next(s for s in kernel_grid.grid() if s.group == "patchify"))
    rows = [r for r in analyze(k.module, input_size=k.input_size, batch_size=k.batch).layers if r.executed]
    assert [group_of(r) for r in rows] == ["patchify"]  # the grid's kernels land in the group they calibrate


def test_a_gpu_calibration_times_each_shape_and_a_larger_batch_twin() -> None:
    from dnnmeter.analysis import analyze
    from dnnmeter.prediction.calibration import _networks_and_kernels

    specs = kernel_grid.grid(4)
    twinned = kernel_grid.gpu_twins(specs)
    assert [s for s in twinned if s in specs] == specs  # every shape kept, in order
    twins = [s for s in twinned if s not in specs]
    assert len(twins) > len(specs) // 2
    for twin in twins:
        shape = twinned[twinned.index(twin) - 1]  # the twin follows its shape
        key = "b" if "b" in shape.p else "bh"
        factor = twin.p[key] // shape.p[key]
        assert twin.group == shape.group and {**twin.p, key: shape.p[key]} == shape.p
        assert factor in (4, 8, 16, 32, 64) and twin.p[key] == shape.p[key] * factor
        assert kernel_grid._size_ok(twin.p, twin.group, *kernel_grid.GPU_TWIN_LIMITS)
    conv = next(s for s in twins if s.group == "conv")
    k = kernel_grid.build(conv)  # the builder takes the twin's batch: analysed at that batch, on meta
    layer = next(r for r in analyze(k.module, input_size=k.input_size, batch_size=k.batch).layers if r.executed)
    assert layer.input_shapes[0][0] == conv.p["b"]
    cpu, cuda = ([i for i, _ in _networks_and_kernels(4, d)] for d in ("cpu", "cuda"))
    assert set(cpu) < set(cuda) and len(cuda) - len(cpu) == len(twins)


def test_convs_with_weights_over_the_mmap_threshold_pay_their_page_faults() -> None:
    from dnnmeter.analysis import LayerCost
    from dnnmeter.prediction.features import mapped_pages
    from dnnmeter.prediction.predictor import fault_free_s

    big = LayerCost("c", "conv", "Conv2d", [[1, 1024, 7, 7]], [[1, 1024, 7, 7]], params=1024 * 1024 * 9)
    assert mapped_pages(big, 4) == 1024 * 1024 * 9 * 4 // 4096  # wide_resnet50_2's layer4 3x3s
    assert mapped_pages(big, 2) == 0  # in half precision, 18 MiB: under the threshold
    assert mapped_pages(LayerCost("l", "linear", "Linear", params=10**8), 4) == 0  # no reorder for linear
    # a kernel that faulted is fitted without its faults, never below half its time
    record = {"latency_s": 0.035, "faults_per_call": 9216.0}
    assert fault_free_s(record, big, 4, 1.5e-6) == pytest.approx(0.035 - 9216 * 1.5e-6)
    assert fault_free_s(record, big, 4, 1e-5) == pytest.approx(0.035 / 2)
    assert fault_free_s({"latency_s": 0.017}, big, 4, 1.5e-6) == 0.017  # one that did not: as timed


def test_large_linear_weights_are_timed_cold_through_copies() -> None:
    from torch import nn

    from dnnmeter.prediction.calibration import cache_bytes, cold_copies

    small, mlp = nn.Linear(64, 64), nn.Linear(768, 3072)  # 16 KiB, 9 MiB
    assert cold_copies(small) == [small]
    copies = cold_copies(mlp)
    assert copies[0] is mlp and len(copies) * 768 * 3072 * 4 >= max(2 * cache_bytes(), 64 * 2**20)
    assert all(c.weight.data_ptr() != mlp.weight.data_ptr() for c in copies[1:])  # weights of their own


def test_a_calibration_pins_the_heap_by_default_and_says_so(calibrated) -> None:  # type: ignore[no-untyped-def]
    import sys

    from dnnmeter.measure.heap import steady_heap

    out, result = calibrated
    data = json.loads((out / f"{result.key}.json").read_text())
    assert data["heap"]["mode"] == "steady"  # as bench's points, by default
    assert data["heap"]["pinned"] is (sys.platform == "linux")  # glibc here; nothing pinned elsewhere
    assert data["heap"]["records"] == {"steady": result.kernels_measured}
    with steady_heap() as state:  # and it can be entered again: a second calibration in one process
        assert state["pinned"] is data["heap"]["pinned"]
    (p,) = predict("alexnet", threads=1, calibration_dir=out)
    assert p.calibration["heap"] == "steady"  # predict names it


def test_a_glibc_calibration_and_a_resumed_one_say_which_heap_timed_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    glibc = calibrate(threads=1, out=tmp_path, per_group=1, timer=law_timer, heap="glibc")
    data = json.loads((tmp_path / f"{glibc.key}.json").read_text())
    assert data["heap"] == {"mode": "glibc", "pinned": False, "records": {"glibc": glibc.kernels_measured}}
    # the same key (a calibration made before the choice stays found): the rerun measures nothing new,
    # and its fit says its records were all timed with the other heap
    steady = calibrate(threads=1, out=tmp_path, per_group=1, timer=law_timer)
    data = json.loads((tmp_path / f"{steady.key}.json").read_text())
    assert steady.key == glibc.key and steady.measured_now == 0
    assert data["heap"]["mode"] == "steady" and data["heap"]["records"] == {"glibc": glibc.kernels_measured}
    with pytest.raises(InvalidInputError, match="bad heap 'jemalloc'"):
        calibrate(threads=1, out=tmp_path, per_group=1, timer=law_timer, heap="jemalloc")


def test_a_calibration_saved_before_the_heap_mode_reads_as_what_it_did() -> None:
    from dnnmeter.measure.heap import calibration_heap

    assert calibration_heap({}) == "glibc"  # before the heap was recorded at all: bench's then
    assert calibration_heap({"heap": {"pinned": False}}) == "glibc"
    assert calibration_heap({"heap": {"pinned": True, "mmap_threshold_bytes": 1}}) == "steady"
    assert calibration_heap({"heap": {"mode": "glibc", "pinned": False}}) == "glibc"


class FlatPredictor:
    """A stand-in for :class:`Predictor` in the overhead fit: every layer predicted at 1 ms."""

    itemsize = 4

    def layers_s(self, layers):  # type: ignore[no-untyped-def]
        return (np.full(len(layers), 1e-3),)

    def priced(self, layers):  # type: ignore[no-untyped-def]
        return [layer for layer in layers if layer.executed]


def test_one_slow_network_does_not_set_the_per_layer_cost() -> None:
    from dnnmeter.analysis import LayerCost
    from dnnmeter.prediction.predictor import fit_overhead

    row = LayerCost(name="x", kind="conv", type="Conv2d").to_dict()
    nets = [{"id": f"n{i}", "rows": [row] * 10, "latency_s": 10e-3 + 10 * extra}
            for i, extra in enumerate((5e-6, 6e-6, 4e-6, 1e-3))]  # the last one: page faults, a busy core
    fitted = fit_overhead(FlatPredictor(), nets)  # type: ignore[arg-type]
    # least absolute deviation: a median of the four (any value between the middle two), not the mean
    assert fitted["scale"] == 1.0 and 5e-6 - 1e-12 <= fitted["per_layer_s"] <= 6e-6 + 1e-12


def test_the_per_layer_cost_comes_from_the_batch_1_networks() -> None:
    from dnnmeter.analysis import LayerCost
    from dnnmeter.prediction.predictor import fit_overhead

    row = LayerCost(name="x", kind="conv", type="Conv2d").to_dict()
    excess = {"network:a:b1": 10e-6, "network:b:b1": 20e-6, "network:c:b1": 12e-6,
              "network:a:b8": -80e-6, "network:b:b8": -60e-6, "network:c:b8": 1e-6}  # batch 8: the fit's error
    nets = [{"id": i, "rows": [row] * 10, "latency_s": 10e-3 + 10 * e} for i, e in excess.items()]
    fitted = fit_overhead(FlatPredictor(), nets)  # type: ignore[arg-type]
    assert fitted["per_layer_s"] == pytest.approx(12e-6) and fitted["fitted_on"] == "batch 1"
    # every network's residual still bounds the interval, batch 8's too
    assert fitted["log_residual_min"] == pytest.approx(math.log(9.2e-3 / 10.12e-3))  # a:b8
    only_b8 = fit_overhead(FlatPredictor(), [n for n in nets if n["id"].endswith("b8")])  # type: ignore[arg-type]
    assert only_b8["per_layer_s"] == 0.0 and only_b8["fitted_on"] == "every batch"  # median -60 us, clipped


def test_the_overhead_fit_recovers_a_cost_per_call_and_per_byte() -> None:
    from dnnmeter.analysis import LayerCost
    from dnnmeter.prediction.predictor import Predictor, bytes_moved, fit_overhead

    def row(c: int, hw: int) -> LayerCost:
        return LayerCost(name="x", kind="conv", type="Conv2d", input_shapes=[[1, c, hw, hw]],
                         output_shapes=[[1, c, hw, hw]], params=c * c * 9)

    per_call, per_byte = 2e-6, 1.5e-11
    nets = []
    for i, (n, c, hw) in enumerate(((10, 16, 56), (40, 64, 14), (25, 128, 28), (60, 8, 7))):
        layers = [row(c, hw)] * n
        moved = bytes_moved(layers, 4).sum()
        nets.append({"id": f"network:n{i}:b1", "rows": [layer.to_dict() for layer in layers],
                     "latency_s": n * 1e-3 + per_call * n + per_byte * moved})
    fitted = fit_overhead(FlatPredictor(), nets)  # type: ignore[arg-type]
    assert fitted["per_layer_s"] == pytest.approx(per_call, rel=1e-6)
    assert fitted["per_byte_s"] == pytest.approx(per_byte, rel=1e-6)
    assert all(net["predicted_s"] == pytest.approx(net["measured_s"]) for net in fitted["networks"])
    # a calibration saved before the cost per byte loads with none
    assert Predictor({"itemsize": 4, "models": {}, "overhead": {"per_layer_s": 1e-6}}).per_byte_s == 0.0


def test_every_kernel_is_analysed_into_its_own_group() -> None:
    from dnnmeter.analysis import analyze

    for spec in kernel_grid.grid(per_group=1):
        k = kernel_grid.build(spec)
        layers = [layer for layer in analyze(k.module, input_size=k.input_size, batch_size=k.batch,
                                             copies=True).layers if layer.executed]
        assert [group_of(layer) for layer in layers] == [spec.group], spec.id


def test_real_timing_on_a_tiny_grid_gives_positive_latencies(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.prediction import calibration as calibrate_module

    quick = {"time_budget_s": 0.005, "warmup_s": 0.0, "min_block_s": 0.0005, "min_samples": 3, "max_samples": 3}
    monkeypatch.setattr(calibrate_module, "KERNEL_TIMING", quick)
    monkeypatch.setattr(calibrate_module, "_networks", lambda: [])
    result = calibrate(threads=1, out=tmp_path, per_group=1)
    rows = [json.loads(line) for line in (tmp_path / f"{result.key}.jsonl").read_text().splitlines()]
    assert rows and all(row["latency_s"] > 0 for row in rows)
    data = json.loads((tmp_path / f"{result.key}.json").read_text())
    assert data["overhead"]["scale"] == 1.0 and "no calibration network" in data["overhead"]["note"]


def test_calibrate_cli_resumes_and_reports(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.prediction import calibration as calibrate_module

    monkeypatch.setattr(calibrate_module, "KernelTimer", lambda *a: law_timer)
    args = ["calibrate", "--threads", "1", "--per-group", "2", "--budget-min", "5", "--out", str(tmp_path)]
    assert main(args) == 0
    assert "complete" in capsys.readouterr().out
    assert main(args) == 0
    assert "(0 now" in capsys.readouterr().out


def test_bad_budget_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="bad budget"):
        calibrate(threads=1, out=tmp_path, budget_s=0)


def test_cli_budget_filter_csv_and_out_files(calibrated, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out, _ = calibrated
    every = predict(["resnet18", "alexnet", "mobilenet_v3_small"], threads=1, calibration_dir=out)
    budget_ms = sorted(p.latency_s for p in every)[1] * 1e3 * 1.0001
    args = ["predict", "resnet18", "alexnet", "mobilenet_v3_small", "--threads", "1", "--calibration", str(out),
            "--max-latency-ms", str(budget_ms), "--format", "csv", "--out", str(tmp_path / "p")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model,batch_size,latency_s,") and len(lines) == 3
    assert json.loads((tmp_path / "p" / "predictions.json").read_text())[0]["source"] == "predicted"
    assert (tmp_path / "p" / "predictions.csv").read_text().splitlines() == lines


def test_a_calibration_without_an_overhead_says_so_in_every_format(calibrated, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out, result = calibrated
    data = json.loads((out / f"{result.key}.json").read_text())
    data["overhead"] = {"scale": 1.0, "per_layer_s": 0.0, "per_byte_s": 0.0, "note": "the overhead fit failed"}
    (tmp_path / f"{result.key}.json").write_text(json.dumps(data))
    (p,) = predict("resnet18", threads=1, calibration_dir=tmp_path)
    assert any("no whole-network overhead" in note and "fit failed" in note for note in p.notes)
    base = ["predict", "resnet18", "--threads", "1", "--calibration", str(tmp_path)]
    assert main([*base, "--format", "json"]) == 0
    assert any("no whole-network overhead" in n for n in json.loads(capsys.readouterr().out)[0]["notes"])
    assert main([*base, "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.endswith(",notes") and "no whole-network overhead" in row
    assert main(base) == 0
    assert "note: resnet18 batch 1: no whole-network overhead" in capsys.readouterr().err
    (calibrated_p,) = predict("resnet18", threads=1, calibration_dir=out)  # a fitted overhead: no such note
    assert not any("overhead" in note for note in calibrated_p.notes)


def test_the_named_command_matches_the_calibration_asked_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dnnmeter.prediction.records import calibration_key, command_for, machine_identity

    assert command_for("cpu", 1, "float32") == "dnnmeter calibrate --threads 1"
    assert command_for("cuda:1", None, "bfloat16", tmp_path) == (
        f"dnnmeter calibrate --out {tmp_path} --device cuda:1 --dtype bfloat16")
    gpu = machine_identity({"device": "cuda:0", "gpu_name": "H100", "hostname": "h"})
    assert gpu["device"] == "cuda" and calibration_key(gpu, None, "float16").startswith("cuda-")
    assert calibration_key(gpu, None, "float16").endswith("-tany-float16")
    assert calibration_key(gpu, None, "float16") != calibration_key({**gpu, "gpu_name": "A100"}, None, "float16")


def test_one_cpu_thread_is_timed_by_its_cpu_time(calibrated) -> None:  # type: ignore[no-untyped-def]
    import time

    from dnnmeter.prediction.calibration import kernel_clock

    assert kernel_clock("cpu", 1) is time.thread_time  # other processes' slices do not count
    assert kernel_clock("cpu", 2) is time.perf_counter and kernel_clock("cuda", 1) is time.perf_counter
    out, result = calibrated
    assert json.loads((out / f"{result.key}.json").read_text())["clock"] == "thread_time"


def test_a_calibration_fitted_on_other_features_is_refused_in_one_line(calibrated, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, result = calibrated
    data = json.loads((out / f"{result.key}.json").read_text())
    data["features"] = data["features"][:-1]
    (tmp_path / f"{result.key}.json").write_text(json.dumps(data))
    with pytest.raises(CalibrationMissingError, match="fitted on other features.*only the fit is redone"):
        predict("resnet18", threads=1, calibration_dir=tmp_path)
