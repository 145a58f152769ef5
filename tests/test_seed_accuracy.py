"""Published accuracy of the seed networks no library publishes a figure for: each figure has
its source beside it, each network without one says why, and the study and report carry both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnnmeter.studies.models import StudySettings, run_study
from dnnmeter.zoo import SEED_MODELS, resolve
from dnnmeter.zoo.registry import Published
from dnnmeter.zoo.seed_accuracy import (
    NO_PUBLISHED_ACCURACY,
    NOT_FOUND,
    PUBLISHED_ACCURACY,
    no_accuracy_reason,
    published_accuracy,
)

HERE = Path(__file__).parent


def _published(name: str) -> Published | None:
    library = None if name.startswith("timm:") else resolve(name).published
    return library or published_accuracy(name)


def test_every_seed_network_has_a_published_figure_or_says_why_not() -> None:
    with_figure = [n for n in SEED_MODELS if (p := _published(n)) is not None and p.top1 is not None]
    without = [n for n in SEED_MODELS if n not in with_figure]
    # torchvision's 10, and BN-AlexNet, BN-NIN, Inception-v4 and Xception from their sources
    assert len(with_figure) == 14
    assert {"bn_alexnet", "bn_nin", "timm:inception_v4", "timm:legacy_xception"} <= set(with_figure)
    assert sorted(without) == ["enet", "tiny_alexnet", "tiny_alexnet_dw", "tiny_alexnet_dw_res"]
    assert all(no_accuracy_reason(n) for n in without)
    assert no_accuracy_reason("enet").startswith(NOT_FOUND)


@pytest.mark.parametrize(("name", "top1", "top5", "cited"), [
    ("bn_alexnet", 0.5660, None, "Zagoruyko"),
    ("bn_nin", 0.626, None, "ninbn.lua"),
    ("timm:inception_v4", 0.800, 0.950, "arXiv:1602.07261, Table 2"),
    ("timm:legacy_xception", 0.790, 0.945, "Table 1"),
])
def test_each_figure_carries_its_source(name: str, top1: float, top5: float | None, cited: str) -> None:
    p = PUBLISHED_ACCURACY[name]
    assert (p.top1, p.top5) == (top1, top5)
    assert p.source.startswith("published (") and cited in p.source


def test_no_network_has_both_a_figure_and_a_reason() -> None:
    assert not set(PUBLISHED_ACCURACY) & set(NO_PUBLISHED_ACCURACY)


@pytest.fixture
def worker_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", str(HERE))


def _study(out: Path) -> dict:  # type: ignore[type-arg]
    settings = StudySettings(models=("bench_models:tiny",), batch_sizes=(1,), out=str(out), time_budget_s=0.05,
                             threads=1, predict=False)
    outputs = run_study(settings)
    (model,) = json.loads(outputs.results_json.read_text())["models"]
    assert outputs.report_html is not None
    model["html"] = outputs.report_html.read_text()
    return model


@pytest.mark.integration
def test_the_study_stores_a_table_figure_labelled_published(worker_path: None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    figure = Published(top1=0.5, top5=0.75, source="published (a paper, Table 9)")
    monkeypatch.setitem(PUBLISHED_ACCURACY, "bench_models:tiny", figure)
    accuracy = _study(tmp_path)["accuracy"]
    assert accuracy["label"] == "published" and accuracy["top1"] == 0.5 and accuracy["top5"] == 0.75
    assert accuracy["source"] == "published (a paper, Table 9)"


@pytest.mark.integration
def test_a_network_without_a_figure_shows_the_reason_in_the_report(worker_path: None, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NO_PUBLISHED_ACCURACY, "bench_models:tiny", "no published single-crop figure found")
    model = _study(tmp_path)
    assert model["accuracy"] == {"top1": None, "top5": None, "label": None,
                                 "reason": "no published single-crop figure found"}
    assert 'title="no published single-crop figure found"' in model["html"]
