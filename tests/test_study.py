"""The study: outputs, resuming after an interruption (Ctrl-C or kill -9), bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnnmeter.cli import main
from dnnmeter.studies.models import StudySettings, report, run_study

HERE = Path(__file__).parent
MODELS = ("bench_models:tiny", "bench_models:oom_at_4")


@pytest.fixture
def worker_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", str(HERE))


def _settings(out: Path, **kw: object) -> StudySettings:
    return StudySettings(models=MODELS, batch_sizes=(1, 4), out=str(out), time_budget_s=0.05, threads=1,
                         predict=False, **kw)  # type: ignore[arg-type]


def _count(out: Path) -> int:
    return sqlite3.connect(out / "results.sqlite").execute("SELECT count(*) FROM measurements").fetchone()[0]


def _count_so_far(out: Path) -> int:
    """Rows while a study writes: 0 until the store's file and tables exist (the file comes
    first, the tables in the transaction that follows)."""
    try:
        return _count(out) if (out / "results.sqlite").exists() else 0
    except sqlite3.OperationalError:  # no such table yet, or the schema's transaction holds the lock
        return 0


@pytest.mark.integration
def test_study_writes_outputs_and_resumes(worker_path: None, tmp_path: Path) -> None:
    first = run_study(_settings(tmp_path))
    # per model: the analysis, the hardware model (with the roofline) and two bench points
    assert first.measured == 8 and first.skipped_as_done == 0
    study = json.loads(first.results_json.read_text())
    assert [m["model"] for m in study["models"]] == list(MODELS)
    oom = {b["batch_size"]: b["status"] for b in study["models"][1]["bench"]}
    assert oom == {1: "ok", 4: "oom"}
    assert study["models"][0]["analysis"]["params"] == 4 * 27 + 4
    tiny = study["models"][0]
    assert tiny["hardware"]["totals"]["macs"] == tiny["analysis"]["macs"] == 4 * 27 * 16 * 16
    roof = tiny["roofline"]["totals"]
    assert roof["measured_latency_s"] == tiny["bench"][0]["latency_s_median"]
    assert roof["fraction_of_roofline"] == pytest.approx(roof["attainable_time_s"] / roof["measured_latency_s"])
    assert first.results_csv.read_text().count("\n") == 1 + 4
    rows = _count(tmp_path)
    again = run_study(_settings(tmp_path))
    assert again.measured == 0 and again.skipped_as_done == 8 and _count(tmp_path) == rows
    rerendered = report(tmp_path)
    assert json.loads(rerendered.results_json.read_text())["models"] == study["models"]


@pytest.mark.integration
def test_published_accuracy_is_stored_and_labelled(tmp_path: Path) -> None:
    out = run_study(StudySettings(models=("resnet18",), batch_sizes=(1,), out=str(tmp_path), time_budget_s=0.05, threads=1,
                                    predict=False))
    (model,) = json.loads(out.results_json.read_text())["models"]
    assert model["accuracy"]["label"] == "published" and model["accuracy"]["top1"] == pytest.approx(0.69758)


@pytest.mark.integration
@pytest.mark.timeout(600)  # up to 120 s to the kill, then a rerun of up to 300 s
def test_kill_9_loses_nothing_and_the_rerun_finishes(worker_path: None, tmp_path: Path) -> None:
    models = ",".join(["bench_models:tiny"] * 1 + ["tiny_alexnet", "tiny_alexnet_dw", "tiny_alexnet_dw_res"])
    argv = [sys.executable, "-m", "dnnmeter", "study", "--models", models, "--batch-sizes", "1,2",
            "--out", str(tmp_path), "--time-budget", "0.05", "--threads", "1", "--no-predict"]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if _count_so_far(tmp_path) >= 3:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the study and its worker, mid-run
    proc.wait()
    before = {r[0]: r[1] for r in sqlite3.connect(tmp_path / "results.sqlite").execute("SELECT key, data FROM measurements")}
    assert len(before) >= 3
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = {r[0]: r[1] for r in sqlite3.connect(tmp_path / "results.sqlite").execute("SELECT key, data FROM measurements")}
    assert all(after[k] == v for k, v in before.items())  # nothing rewritten
    # every model: analysis, hardware model, roofline and two points (no published accuracy);
    # the machine's ceilings once
    assert len(after) == 4 * 5 + 1
    measured, stored = map(int, re.search(r"(\d+) measured, (\d+) already", done.stdout).groups())  # type: ignore[union-attr]
    assert measured >= 1 and stored >= 1 and measured + stored == 4 * 4  # steps: analysis, hardware, 2 points


def test_bad_input_fails_before_measuring(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["study", "--models", "resnet18,resnt34", "--out", str(out)]) == 2
    assert "unknown model 'resnt34'" in capsys.readouterr().err and not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["study", "--models", "resnet18", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to output folder" in err and err.count("\n") == 1


def test_an_incompatible_store_fails_before_measuring(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "results.sqlite")
    with db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    db.close()
    assert main(["study", "--models", "resnet18", "--out", str(tmp_path)]) == 2
    assert "incompatible dnnmeter" in capsys.readouterr().err


def test_report_without_a_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no study store" in capsys.readouterr().err


@pytest.mark.integration
def test_runs_with_other_settings_share_the_store_and_are_compared(worker_path: None, tmp_path: Path) -> None:
    run_study(StudySettings(models=("bench_models:tiny",), batch_sizes=(1,), out=str(tmp_path), time_budget_s=0.05, threads=1,
                                    predict=False))
    out = run_study(StudySettings(models=("bench_models:tiny",), batch_sizes=(1,), out=str(tmp_path), time_budget_s=0.1, threads=1,
                                 predict=False))
    assert out.measured == 1 and out.skipped_as_done == 2  # analysis and hardware are shared, the point is new
    runs = json.loads(out.results_json.read_text())["runs"]
    assert sorted(r["time_budget_s"] for r in runs) == [0.05, 0.1]
    assert all(r["latency_s_per_image"]["bench_models:tiny"]["1"] > 0 for r in runs)
    assert "Runs in this store" in out.report_html.read_text()


@pytest.mark.integration
def test_measured_accuracy_replaces_the_published_figure(tmp_path: Path) -> None:
    settings = StudySettings(models=("tiny_alexnet_dw",), batch_sizes=(1,), out=str(tmp_path),
                             time_budget_s=0.05, threads=1, data="digits", eval_limit=20, predict=False)
    out = run_study(settings)
    (model,) = json.loads(out.results_json.read_text())["models"]
    measured = model["accuracy"]
    assert measured["label"] == "measured" and measured["n"] == 20 and 0.0 <= measured["top1"] <= 1.0
    assert run_study(settings).measured == 0


def test_accuracy_that_cannot_be_measured_falls_back_to_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnmeter.results.settings import study_keys
    from dnnmeter.studies.models import _prepare
    from dnnmeter.studies.units import Step, Unit, run_unit

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # no cached weights: never downloaded
    settings = _prepare(StudySettings(models=("resnet18",), out=str(tmp_path), data="digits", weights="default"))
    unit = Unit("evaluation", "resnet18", {"evaluation": study_keys(settings, "resnet18")["measured_accuracy"]})
    steps: list[Step] = []
    run_unit(unit, settings, steps.append)
    assert [s.rows for s in steps] == [()]  # nothing to store
    notes = [s.note for s in steps if s.note]
    assert len(notes) == 1 and "accuracy not measured" in notes[0] and "published figure" in notes[0]
