"""--input SPEC on bench, hardware and modify: bench runs any forward signature (floats
random, integer ids 0, masks true); hardware and modify need one image batch and say so in
one line otherwise."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from dnnmeter.analysis.inputs import parse_specs
from dnnmeter.cli import main
from dnnmeter.measure import benchmark
from dnnmeter.measure.spec import BenchSpec

TEXT_MODEL = '''
import torch
from torch import nn


class TextModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(1000, 32)
        self.fc = nn.Linear(32, 5)

    def forward(self, ids, mask=None):
        assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == mask.shape
        return self.fc((self.emb(ids) * mask.unsqueeze(-1)).sum(1))
'''


@pytest.fixture
def text_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "specs_text_model.py").write_text(textwrap.dedent(TEXT_MODEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "specs_text_model:TextModel"


def test_real_inputs_follow_the_specs() -> None:
    args, kwargs = parse_specs(["3x5", "ids=1x7:int64", "mask=1x7:bool"]).real(4, "cpu", torch.float16)
    assert args[0].shape == (4, 5) and args[0].dtype == torch.float16
    assert kwargs["ids"].shape == (4, 7) and not kwargs["ids"].any()
    assert kwargs["mask"].dtype == torch.bool and kwargs["mask"].all()


def test_bench_runs_a_keyword_token_model(text_module: str) -> None:
    results = benchmark([text_module], batch_sizes=(1, 3), time_budget_s=0.05, isolate=False,
                        inputs=("ids=1x16:int64", "mask=1x16:bool"))
    assert [(r.status, r.batch_size, r.input_size) for r in results] == [("ok", 1, (16,)), ("ok", 3, (16,))]
    assert BenchSpec.from_json(BenchSpec(model="m", inputs=("ids=1x16:int64",)).to_json()).inputs == ("ids=1x16:int64",)


def test_bench_cli_takes_the_batch_from_the_spec(text_module: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, object] = {}

    def fake(models: object, **kwargs: object) -> list[object]:
        seen.update(kwargs)
        return []

    monkeypatch.setattr("dnnmeter.measure.benchmark", fake)
    main(["bench", text_module, "--input", "ids=4x16:int64", "--input", "mask=4x16:bool"])
    assert seen["batch_sizes"] == (4,) and seen["inputs"] == ("ids=4x16:int64", "mask=4x16:bool")
    assert main(["bench", text_module, "--input", "ids=4x16:int65"]) == 2
    assert "unknown dtype" in capsys.readouterr().err
    assert main(["bench", "resnet18", "--input", "1x3x64x64", "--input-size", "64"]) == 2
    assert "not both" in capsys.readouterr().err


def test_hardware_takes_one_image_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hardware", "tiny_alexnet", "--input", "2x3x64x64", "--format", "json", "--no-per-layer"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["batch_size"] == 2 and data["settings"]["input_size"] == [3, 64, 64]
    assert main(["hardware", "tiny_alexnet", "--input", "ids=1x16:int64"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "one unnamed floating input" in err and "systolic" in err


def test_modify_takes_one_image_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["modify", "tiny_alexnet", "--op", "depthwise-separable", "--input", "2x3x64x64",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch_size"] == 2 and data["input_size"] == [3, 64, 64]
    assert main(["modify", "tiny_alexnet", "--op", "residual", "--input", "2x3x64x64", "--input", "1x3"]) == 2
    assert "one unnamed floating input" in capsys.readouterr().err


def test_study_takes_one_image_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import dnnmeter.studies.models as study
    from dnnmeter.results.settings import study_keys
    from dnnmeter.store import measurement_key

    seen: list[study.StudySettings] = []

    def fake(settings: study.StudySettings, progress: object = None, **how: object) -> object:
        seen.append(settings)
        raise KeyboardInterrupt  # the CLI's resume message: nothing measured

    monkeypatch.setattr(study, "run_study", fake)
    main(["study", "--models", "tiny_alexnet", "--input", "1x3x32x32", "--out", str(tmp_path)])
    assert seen[0].input_size == (3, 32, 32)
    sized, default = study_keys(seen[0], "tiny_alexnet"), study_keys(study.StudySettings(), "tiny_alexnet")
    assert sized["analysis"] != default["analysis"] == measurement_key("analysis", "tiny_alexnet", batch_size=1)
    assert main(["study", "--models", "tiny_alexnet", "--input", "ids=1x16:int64", "--out", str(tmp_path)]) == 2
    assert "one unnamed floating input" in capsys.readouterr().err


def test_bench_baseline_is_taken_after_the_source_library_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving a timm: or hf: name imports its library; the baseline must hold it, or the
    library's memory is reported as the model's."""
    import dnnmeter.zoo as zoo
    from dnnmeter.measure import memory, point

    calls: list[str] = []
    real_resolve, real_rss = zoo.resolve, memory.rss_bytes
    monkeypatch.setattr(zoo, "resolve", lambda name: calls.append("resolve") or real_resolve(name))
    monkeypatch.setattr(memory, "rss_bytes", lambda: calls.append("baseline") or real_rss())
    monkeypatch.setattr(zoo, "create_model", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop")))
    out: list[object] = []
    point.measure_model(BenchSpec(model="tiny_alexnet"), out.append, meter=object(), environment=lambda **_: {})
    assert calls[:2] == ["resolve", "baseline"] and len(out) == 1
