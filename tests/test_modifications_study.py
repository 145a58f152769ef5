"""The modifications study: variants, the store, resuming, the report's sections.

One short run (1 epoch, the tiny family on digits, no multi-process comparison) is shared by
the tests; the multi-process path of train() has its own tests (tests/test_train_distributed.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnnmeter.errors import InvalidInputError
from dnnmeter.studies.modifications import ModificationsSettings, Variant, run_modifications
from dnnmeter.studies.models import report


def test_variants_apply_ops_cumulatively_and_add_the_averaged_run() -> None:
    settings = ModificationsSettings(models=("vgg11",), ops=("depthwise-separable", "residual"), averaged_nproc=2)
    assert settings.variants() == [
        Variant("vgg11", "vgg11"),
        Variant("vgg11 + depthwise-separable", "vgg11", ("depthwise-separable",)),
        Variant("vgg11 + depthwise-separable + residual", "vgg11", ("depthwise-separable", "residual")),
        Variant("vgg11, 2 processes averaged", "vgg11", (), nproc=2, strategy="average"),
    ]
    family = [v.model for v in ModificationsSettings(averaged_nproc=0).variants()]
    assert family == ["tiny_alexnet", "tiny_alexnet_dw", "tiny_alexnet_dw_res"]
    with pytest.raises(InvalidInputError, match="--op needs --models"):
        ModificationsSettings(ops=("residual",)).variants()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModificationsSettings]:
    out = tmp_path_factory.mktemp("modifications")
    settings = ModificationsSettings(epochs=1, averaged_nproc=0, out=str(out), threads=1, prune_fine_tune_epochs=0)
    first = run_modifications(settings)
    assert (first.trained, first.sweeps, first.skipped_as_done) == (3, 3, 0)
    return out, settings


@pytest.mark.timeout(600)  # the first to run also trains the shared study (100 s on a loaded 2-core machine)
def test_each_variant_is_stored_with_its_cost_and_curves(study: tuple[Path, ModificationsSettings]) -> None:
    out, settings = study
    again = run_modifications(settings)  # resumes: everything is in the store
    assert (again.trained, again.sweeps, again.skipped_as_done) == (0, 0, 3)
    plain, dw, res = again.variants
    assert [v.variant for v in again.variants] == ["plain", "depthwise", "depthwise + residual"]
    # The depthwise-separable network has fewer parameters and MACs, as in the seed (about 18%).
    assert dw.params is not None and plain.params is not None and dw.macs is not None and plain.macs is not None
    assert dw.params < 0.2 * plain.params and dw.macs < 0.2 * plain.macs
    assert res.params == dw.params  # identity shortcuts add no parameter
    for v in again.variants:
        assert len(v.history) == 1 and v.val_accuracy is not None and 0.0 <= v.val_accuracy <= 1.0
        assert v.time_per_epoch_s and v.time_per_epoch_s > 0 and Path(v.checkpoint or "").is_file()
        assert len(v.best_classes) == 5 and len(v.worst_classes) == 5


@pytest.mark.timeout(600)  # the first to run also trains the shared study (100 s on a loaded 2-core machine)
def test_the_trained_first_variant_is_quantized_and_pruned(study: tuple[Path, ModificationsSettings]) -> None:
    out, _ = study
    results = json.loads((report(out).results_json).read_text())
    comp = results["modifications"]["compression"]
    assert comp["variant"] == "plain"
    assert [p["bits"] for p in comp["quantization"] if p["kind"] != "int8"] == [32, 16, 8, 6, 4]
    int8 = next(p for p in comp["quantization"] if p["kind"] == "int8")
    assert int8["size_bytes"] < 0.3 * comp["quantization"][0]["size_bytes"]  # about a quarter of float32
    methods = {(p["method"], p["sparsity"]) for p in comp["pruning"]}
    assert ("unstructured", 0.5) in methods and ("structured", 0.5) in methods
    structured = {p["sparsity"]: p for p in comp["pruning"] if p["method"] == "structured"}
    assert structured[0.5]["macs"] < structured[0.0]["macs"]
    assert structured[0.5]["hardware"]["cycles"] < structured[0.0]["hardware"]["cycles"]


@pytest.mark.timeout(600)  # the first to run also trains the shared study (100 s on a loaded 2-core machine)
def test_the_report_has_the_sections_and_figures(study: tuple[Path, ModificationsSettings]) -> None:
    out, _ = study
    html = report(out).report_html.read_text()
    for anchor in ('id="modifications"', 'id="compression"', 'id="modifications_curves"',
                   'id="accuracy_vs_bits"', 'id="accuracy_vs_sparsity"'):
        assert anchor in html, anchor
    assert "Not drawn" not in html


def test_a_variant_starts_from_the_seed_and_leaves_the_callers_random_state() -> None:
    import torch

    from dnnmeter.studies.modifications import _module

    settings = ModificationsSettings(seed=3)
    before = torch.random.get_rng_state()
    first, size = _module(Variant("depthwise", "tiny_alexnet", ("depthwise-separable",)), settings)
    again, _ = _module(Variant("depthwise", "tiny_alexnet", ("depthwise-separable",)), settings)
    assert torch.equal(torch.random.get_rng_state(), before) and size == 32
    a, b = first.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other, _ = _module(Variant("depthwise", "tiny_alexnet", ("depthwise-separable",)), ModificationsSettings(seed=4))
    assert not torch.equal(other.state_dict()["conv1.conv.weight"], a["conv1.conv.weight"])
