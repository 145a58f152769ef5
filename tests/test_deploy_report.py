"""study --deploy's results: the typed records (results.json's ``deployment``), the report's
"How to run it" section from fixed data, the verdict row joined with the search's rows, and
(integration) a small study --deploy of the tiny seed model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dnnmeter.report import fits as F
from dnnmeter.report.sections import Page, deployment
from dnnmeter.results.records import DeployConfigRecord, DeployRecheckRecord, DeployRecord, StudyData
from dnnmeter.results.settings import DeploySettings, StudySettings


def _config(name: str, status: str, speedup: float | None, **more: Any) -> DeployConfigRecord:
    kind, _, threads = name.partition("@t")
    figures = {} if speedup is None else {
        "latency_s_median": 0.01 / speedup, "latency_s_p10": 0.009 / speedup, "latency_s_p90": 0.011 / speedup,
        "speedup": speedup, "speedup_low": speedup * 0.9, "speedup_high": speedup * 1.1, "top1_agreement": 0.995,
        "throughput_batch_size": 8, "images_per_s_at_throughput_batch": 400.0 * speedup}
    return DeployConfigRecord(name=name, kind=kind, threads=int(threads), status=status, **{**figures, **more})


def fixture_records() -> list[DeployRecord]:
    configs = [
        _config("eager-float32@t2", "accepted", 1.0, reason="the baseline"),
        _config("int8@t2", "rejected", 3.1, top1_agreement=0.9,
                reason="top-1 disagreement with float32 10.00% above the tolerance 1.00%"),
        _config("ort-all-float32@t2", "accepted", 1.8,
                reason="top-1 disagreement with float32 0.50% within the tolerance 1.00%"),
        _config("cuda-graphs@t2", "accepted", 1.2, images_per_s_at_throughput_batch=None,
                throughput_unavailable_reason="a CUDA graph replays the one batch size it was captured at"),
        _config("compile@t2", "failed", None, reason="RuntimeError: inductor <needs> a compiler"),
        _config("bfloat16@t2", "skipped", None, reason="this CPU has neither AMX-BF16 nor AVX512-BF16"),
    ]
    return [DeployRecord("tiny_alexnet", "cpu", 1, 0.01, "agreement", 256, "256 images of digits with labels",
                         "eager-float32@t2", "ort-all-float32@t2", "the fastest accepted configuration: 1.80x",
                         configs, rechecks=[DeployRecheckRecord(2, drift=1.25), DeployRecheckRecord(
                             1, reason="budget: timing the baseline again needs about 9 s, 3 s were left")]),
            DeployRecord("resnet18", error="no deploy search stored for this model")]


def test_the_deploy_records_round_trip_through_json() -> None:
    data = StudyData(dnnmeter_version="x", created_utc="now", deployment=fixture_records(),
                     settings=StudySettings(models=("tiny_alexnet", "resnet18"),
                                            deploy=DeploySettings(configs=("int8",))))
    text = json.dumps(data.to_dict())
    again = StudyData.from_dict(json.loads(text))
    assert again == data and json.dumps(again.to_dict()) == text
    raw = json.loads(text)
    assert "error" not in raw["deployment"][0] and raw["deployment"][1]["error"]
    assert "samples_s" not in raw["deployment"][0]["configs"][0]  # the raw samples stay in the store
    assert raw["settings"]["deploy"]["configs"] == ["int8"]
    assert "deploy" not in StudySettings().to_dict()  # not asked for: the settings as before


def test_the_section_shows_every_configuration_its_verdict_and_the_recommendation(tmp_path: Path) -> None:
    data = StudyData(dnnmeter_version="x", created_utc="now", deployment=fixture_records())
    page = Page(data, F.compute_fits(data), tmp_path / "figures", tmp_path)
    html = deployment.html(page)
    assert '<h2 id="deployment">How to run it</h2>' in html
    assert "images/s at batch 8" in html and "3.10x [2.79, 3.41]" in html
    assert "rejected" in html and "10.00% above the tolerance" in html
    assert "accepted, recommended" in html and "Recommended: <b>ort-all-float32@t2</b>" in html
    assert "CUDA graph replays" in html  # the missing throughput's reason, in the dash's tooltip
    assert "inductor &lt;needs&gt;" in html  # text from the data is escaped
    assert "no deploy search stored" in html  # a model without a finished search says so
    assert "its median 1.25x the first timing&#x27;s at 2 threads" in html
    assert "Not timed again at 1 thread (budget: timing the baseline again needs about 9 s" in html
    assert (tmp_path / "figures" / "deploy_speedups.png").is_file() and "data:image/png" in html


def test_no_deploy_no_section(tmp_path: Path) -> None:
    data = StudyData(dnnmeter_version="x", created_utc="now")
    assert deployment.html(Page(data, F.compute_fits(data), tmp_path / "figures", tmp_path)) == ""
    failed_only = [DeployRecord("m", configs=[_config("compile@t1", "failed", None, reason="boom")])]
    figure = deployment.speedup_figure(failed_only, tmp_path / "x")
    assert figure.png is None and "no configuration" in str(figure.skipped_reason)


# --- study --deploy: the step, the store, the join ---------------------------------------------


@pytest.fixture
def fake_deploy(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The deploy search with test_deploy's fake worker (no processes, known answers)."""
    import functools

    import dnnmeter.deployment
    from test_deploy import ALL_CPU, FakeRunner

    runner = FakeRunner(speed={"int8": 0.1, "channels_last": 0.5}, flips={"int8": 0.05})
    monkeypatch.setattr(dnnmeter.deployment, "deploy",
                        functools.partial(dnnmeter.deployment.deploy, runner=runner, capabilities=ALL_CPU))
    return runner


def test_the_deploy_step_writes_one_verdict_beside_the_searchs_rows_and_resumes(tmp_path: Path,
                                                                               fake_deploy: Any) -> None:
    from dnnmeter.results.collect import collect_deployment
    from dnnmeter.store import Store
    from dnnmeter.studies import deploy_step

    settings = deploy_step.prepare(StudySettings(models=("tiny_alexnet",), batch_sizes=(2, 1), threads=1, eval_limit=50,
                                                 deploy=DeploySettings(configs=("int8", "channels_last"))))
    steps: list[tuple[str, bool]] = []
    with Store(tmp_path / "results.sqlite") as store:
        notes = deploy_step.run_deploy(store, settings, tmp_path, lambda what, done: steps.append((what, done)))
        assert any("initial (random) weights" in n for n in notes)  # the search's warning, kept as a note
        kinds = [r.kind for r in store.rows()]
        # three configurations and the baseline's second timing; nothing written twice
        assert kinds.count("deploy") == 4 and kinds.count("deploy-verdict") == 1
        (record,) = collect_deployment(store, settings)
        assert deploy_step.run_deploy(store, settings, tmp_path, lambda what, done: steps.append((what, done))) == []
    assert [done for _, done in steps] == [True, False]  # measured, then stored
    assert fake_deploy.calls == ["eager-float32", "channels_last", "int8", "eager-float32"]
    assert record.batch_size == 1 and record.images == 50 and record.recommended == "channels_last@t1"
    (recheck,) = record.rechecks  # the second timing's verdict kept in the verdict row
    assert recheck.threads == 1 and recheck.drift is not None and recheck.reason is None
    int8 = record.config("int8@t1")
    assert int8 is not None and int8.status == "rejected" and int8.latency_s_median is not None  # joined figures
    assert record.config("channels_last@t1").speedup == pytest.approx(2.0, rel=0.05)  # type: ignore[union-attr]
    assert (tmp_path / "deploy" / "outputs").is_dir()  # the logits beside the study, not in its top folder


def test_a_model_without_a_verdict_says_so_in_the_results(tmp_path: Path) -> None:
    from dnnmeter.results.collect import collect_deployment
    from dnnmeter.store import Store

    settings = StudySettings(models=("tiny_alexnet", "resnet18"), deploy=DeploySettings(models=("resnet18",)))
    with Store(tmp_path / "results.sqlite") as store:
        (record,) = collect_deployment(store, settings)
    assert record.model == "resnet18" and record.error and "run the study again" in record.error


@pytest.mark.parametrize(("deploy", "message"), [
    (DeploySettings(models=("resnet18",)), "not among the study's models"),
    (DeploySettings(configs=("int4",)), "unknown --deploy-configs int4"),
    (DeploySettings(tolerance="lots"), "bad tolerance"),
])
def test_bad_deploy_settings_are_refused_before_anything_runs(deploy: DeploySettings, message: str) -> None:
    from dnnmeter.errors import InvalidInputError
    from dnnmeter.studies import deploy_step

    with pytest.raises(InvalidInputError, match=message):
        deploy_step.prepare(StudySettings(models=("tiny_alexnet",), deploy=deploy))


def test_deploy_options_without_deploy_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from dnnmeter.cli import main

    assert main(["study", "--models", "tiny_alexnet", "--deploy-configs", "int8", "--out", str(tmp_path)]) == 2
    assert "add --deploy" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_study_deploy_on_the_tiny_seed_model_reports_and_resumes(tmp_path: Path) -> None:
    from dnnmeter.studies.models import run_study

    settings = StudySettings(models=("tiny_alexnet",), batch_sizes=(1,), out=str(tmp_path), time_budget_s=0.05,
                             threads=1, eval_limit=40, predict=False,
                             deploy=DeploySettings(configs=("channels_last", "int8"), budget_min=2.0))
    first = run_study(settings)
    study = json.loads(first.results_json.read_text())
    (record,) = study["deployment"]
    names = [c["name"] for c in record["configs"]]
    assert names == ["eager-float32@t1", "channels_last@t1", "int8@t1"], record
    assert {c["status"] for c in record["configs"]} <= {"accepted", "rejected"}, record["configs"]
    cl = record["configs"][1]
    assert cl["top1_agreement"] == 1.0 and cl["throughput_batch_size"] == 8 and cl["images_per_s_at_throughput_batch"]
    assert study["settings"]["deploy"]["configs"] == ["channels_last", "int8"]
    html = first.report_html.read_text()  # type: ignore[union-attr]
    assert "How to run it" in html and f"Recommended: <b>{record['recommended']}</b>" in html
    again = run_study(settings)
    assert again.measured == 0  # every bench point and the deploy verdict were stored
    assert json.loads(again.results_json.read_text())["deployment"] == study["deployment"]
