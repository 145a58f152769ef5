"""Start-up: `dnnmeter --help`, `CMD --help` and argument errors import no torch (issue 12).

No timing is asserted (DESIGN.md); torch's absence is what makes them answer at once.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dnnmeter.cli import build_parser, choices

HEAVY = ("torch", "torchvision", "numpy", "matplotlib", "sklearn")


def _commands() -> list[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(sub.choices)


def _imported(argv: list[str]) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "dnnmeter", *argv],
                          capture_output=True, text=True, timeout=120)
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done.returncode, {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["--version"],
    *([command, "--help"] for command in _commands()),
    ["analyze", "resnet18", "--batch-size", "0"],  # an argument error
    ["bench", "resnet18", "--time-budget", "nan"],
    ["analyze", "resnet18", "--batchsize", "2"],  # an unknown flag and its suggestion
    ["analyse", "resnet18"],  # an unknown command
])  # fmt: skip
def test_help_and_argument_errors_import_no_torch(argv: list[str]) -> None:
    status, top_level = _imported(argv)
    assert status in (0, 2)
    assert not top_level & set(HEAVY), f"{' '.join(argv)} imported {sorted(top_level & set(HEAVY))}"


def test_import_dnnmeter_is_lazy_and_keeps_its_names() -> None:
    code = ("import sys, dnnmeter; assert 'torch' not in sys.modules; "
            "import dnnmeter.accuracy, dnnmeter.training, dnnmeter.transforms; "
            "assert all(callable(f) and not isinstance(f, type(sys)) "
            "for f in (dnnmeter.evaluate, dnnmeter.train, dnnmeter.modify)); "
            "assert dnnmeter.hardware.count_accesses and callable(dnnmeter.hardware); "
            "from dnnmeter import analyze, UnknownModelError, SEED_MODELS; "
            "assert set(dnnmeter.__all__) <= set(dir(dnnmeter)); "
            "[getattr(dnnmeter, n) for n in dnnmeter.__all__]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_cli_choices_equal_the_library_tables() -> None:
    import importlib

    from dnnmeter.hardware.systolic import DATAFLOWS
    from dnnmeter.measure import DTYPES
    from dnnmeter.transforms import BETWEEN, OPS
    from dnnmeter.zoo.registry import SOURCES

    study, train = (importlib.import_module(f"dnnmeter.{m}") for m in ("studies.models", "training"))  # not the functions
    assert choices.OPS == tuple(OPS) and choices.BETWEEN == BETWEEN
    assert choices.AUGMENTATIONS == train.AUGMENTATIONS and choices.STRATEGIES == train.STRATEGIES
    assert (choices.TRAIN_BATCH_SIZE, choices.TRAIN_LR) == (train.DEFAULT_BATCH_SIZE, train.DEFAULT_LR)
    assert choices.STUDY_BATCH_SIZES == study.DEFAULT_BATCH_SIZES
    assert choices.STUDY_TIME_BUDGET_S == study.DEFAULT_TIME_BUDGET_S
    from dnnmeter.measure.heap import DEFAULT_HEAP, HEAP_MODES

    assert choices.HEAP_MODES == HEAP_MODES and choices.HEAP_MODES[0] == DEFAULT_HEAP
    assert (choices.SOURCES, choices.DTYPES, choices.DATAFLOWS) == (SOURCES, DTYPES, DATAFLOWS)
