"""The CLI's promise (issue 11, docs/errors.md): every command, each class of bad input ->
exit status 2, exactly one stderr line saying what is wrong and what to do, no traceback,
and no file that existed before changed.

To add a class, add rows to ROWS: (id, argv template, setup, expected text). The argv
template may use {model} (the module:callable the setup wrote, or a zoo name), {tmp} (the
test's folder, also the current folder) and {out} (a study folder holding a results.json
that must survive). Setups write files and may patch; they return the model name.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

import dnnmeter.cli.common
from dnnmeter.cli import main
from dnnmeter.errors import DnnmeterError

Setup = Callable[[Path, pytest.MonkeyPatch], str]

# Every command, with the arguments that make it run (fast) on {model}.
COMMANDS: dict[str, list[str]] = {
    "models": ["models"],
    "analyze": ["analyze", "{model}"],
    "bench": ["bench", "{model}", "--time-budget", "0.1"],
    "eval": ["eval", "{model}", "--data", "digits", "--limit", "8"],
    "modify": ["modify", "{model}", "--op", "residual"],
    "train": ["train", "{model}", "--epochs", "1"],
    "quantize": ["quantize", "{model}", "--limit", "8"],
    "prune": ["prune", "{model}", "--limit", "8"],
    "hardware": ["hardware", "{model}"],
    "study": ["study", "--models", "{model}", "--out", "{out}"],
    "study-modifications": ["study", "modifications", "--models", "{model}", "--out", "{out}"],
    "report": ["report", "{out}"],
    "predict": ["predict", "{model}", "--calibration", "{tmp}"],
    "deploy": ["deploy", "{model}", "--threads", "1", "--out", "{out}"],
    "calibrate": ["calibrate", "--out", "{out}"],
    "store-info": ["store", "info", "{tmp}/missing.sqlite"],
    "store-merge": ["store", "merge", "{tmp}/missing.sqlite", "--into", "{tmp}/into.sqlite"],
}
TAKE_A_MODEL = [name for name, argv in COMMANDS.items() if "{model}" in argv]


def _module(name: str, text: str) -> Setup:
    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
        (tmp / f"{name}.py").write_text(text)
        monkeypatch.syspath_prepend(str(tmp))
        monkeypatch.delitem(sys.modules, name, raising=False)
        return f"{name}:build"

    return setup


def _zoo(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return "tiny_alexnet"


def _file(name: str, content: bytes) -> Setup:
    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
        (tmp / name).write_bytes(content)
        return "tiny_alexnet"

    return setup


def _unwritable(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # chmod does not stop root (CI runs as root), so the system's answer is what is faked.
    monkeypatch.setattr(dnnmeter.cli.common.os, "access", lambda *args, **kwargs: False)
    return "tiny_alexnet"


def _empty_store(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp / "out" / "results.sqlite").write_bytes(b"")
    return "tiny_alexnet"


def _no_psycopg(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as where the fleet extra is not installed
    return "tiny_alexnet"


def _newer_store(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    import sqlite3

    db = sqlite3.connect(tmp / "out" / "results.sqlite")
    with db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    db.close()
    return "tiny_alexnet"


NOTHING_LISTENING = "postgresql+psycopg://me:s3cret@127.0.0.1:1/fleet"  # port 1: refused at once


SYNTAX = _module("dnm_syntax", "def build(:\n    pass\n")
IMPORT_FAILS = _module("dnm_import_fails", "import math\nRATIO = 1 / 0\n")
BUILDER_FAILS = _module("dnm_builder_fails", "def build(num_classes=1000):\n    raise ValueError('no layers yet')\n")
TOPOLOGY = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


class Row(NamedTuple):
    id: str
    argv: list[str]
    setup: Setup
    expected: str


ROWS: list[Row] = [
    # the user's own code
    *(Row(f"syntax-error-{c}", COMMANDS[c], SYNTAX, "dnm_syntax.py:1: SyntaxError") for c in TAKE_A_MODEL),
    *(Row(f"import-fails-{c}", COMMANDS[c], IMPORT_FAILS, "dnm_import_fails.py:2: ZeroDivisionError")
      for c in ("analyze", "hardware", "train")),
    *(Row(f"builder-fails-{c}", COMMANDS[c], BUILDER_FAILS, "dnm_builder_fails.py:2")
      # bench builds in its worker: a failed point, not an error; predict first says it needs a calibration
      for c in TAKE_A_MODEL if c not in ("bench", "predict")),
    Row("calibrate-negative-budget", [*COMMANDS["calibrate"], "--budget-min", "-1"], _zoo, "bad budget of -1 minutes"),
    Row("calibrate-nan-budget", [*COMMANDS["calibrate"], "--budget-min", "nan"], _zoo, "bad budget of nan minutes"),
    Row("module-not-found", ["analyze", "dnm_nowhere:build"], _zoo, "add that folder to PYTHONPATH"),
    # outputs
    Row("figures-is-a-file", ["hardware", "{model}", "--figures", "{tmp}/taken"], _file("taken", b"x"),
        "is a file, not a folder"),
    Row("figures-under-a-file", ["hardware", "{model}", "--figures", "{tmp}/taken/figs"], _file("taken", b"x"),
        "is a file, so"),
    Row("figures-unwritable", ["hardware", "{model}", "--figures", "{tmp}/figs"], _unwritable, "is not writable"),
    Row("scalesim-is-a-file", ["hardware", "{model}", "--export-scalesim", "{tmp}/taken"], _file("taken", b"x"),
        "is a file, not a folder"),
    Row("scalesim-unwritable", ["hardware", "{model}", "--export-scalesim", "{tmp}/sim"], _unwritable,
        "is not writable"),
    Row("modify-out-is-a-folder", ["modify", "{model}", "--op", "residual", "--out", "{out}"], _zoo,
        "is a folder, not a file"),
    Row("report-is-a-file", ["report", "{tmp}/taken"], _file("taken", b"x"), "is a file"),
    Row("report-unwritable", ["report", "{out}"], _unwritable, "is not writable"),
    Row("report-figures-is-a-file", ["report", "{out}"], _file("out/figures", b"x"), "figures is a file"),
    Row("report-no-store", ["report", "{out}"], _zoo, "no study store"),
    # the study over a Ray cluster (dnnmeter.fleet): nothing listens on port 9, the discard port
    Row("study-ray-unreachable", [*COMMANDS["study"], "--engine", "ray", "--address", "127.0.0.1:9"], _zoo,
        "cannot reach a Ray cluster at 127.0.0.1:9"),
    Row("study-ray-bad-address", [*COMMANDS["study"], "--engine", "ray", "--address", "nohost"], _zoo,
        "bad --address 'nohost'"),
    Row("study-per-machine-local", [*COMMANDS["study"], "--per-machine"], _zoo,
        "--address and --per-machine need --engine ray"),
    Row("study-modifications-ray", [*COMMANDS["study-modifications"], "--engine", "ray"], _zoo,
        "belong to the models study"),
    Row("report-zero-byte-store", ["report", "{out}"], _empty_store, "is empty (0 bytes)"),
    # the results store (--store URL, docs/store.md): said before anything is measured, password masked
    *(Row(f"store-not-listening-{c}", [*COMMANDS[c], "--store", NOTHING_LISTENING], _zoo,
          "me:***@127.0.0.1:1/fleet: connection failed")
      for c in ("study", "study-modifications", "deploy", "calibrate")),
    Row("store-not-listening-report", ["report", "{out}", "--store", NOTHING_LISTENING], _zoo, "is PostgreSQL running"),
    Row("store-other-database", [*COMMANDS["study"], "--store", "mysql://me:s3cret@db/fleet"], _zoo,
        "a store is SQLite or PostgreSQL, not mysql"),
    Row("store-in-memory", [*COMMANDS["study"], "--store", "sqlite://"], _zoo, "keeps nothing"),
    Row("store-no-driver", [*COMMANDS["study"], "--store", "postgresql://me:s3cret@db/fleet"], _no_psycopg,
        "pip install dnnmeter[fleet]"),
    Row("store-newer-schema", ["report", "{out}"], _newer_store, "written by a newer dnnmeter (schema 99); upgrade"),
    Row("store-info-missing", COMMANDS["store-info"], _zoo, "no study store at"),
    Row("store-info-two", ["store", "info", "{tmp}/a.sqlite", "{tmp}/b.sqlite"], _zoo, "takes one store"),
    Row("store-merge-missing-source", COMMANDS["store-merge"], _zoo, "missing.sqlite"),
    Row("store-merge-no-into", ["store", "merge", "{tmp}/a.sqlite"], _zoo, "needs --into URL"),
    # values
    *(Row(f"time-budget-{v}-{c}", [*COMMANDS[c], "--time-budget", v], _zoo, "expected a number of seconds above 0")
      for c in ("bench", "study") for v in ("0", "-1", "nan", "inf")),
    Row("study-deploy-unknown-config", [*COMMANDS["study"], "--deploy", "--deploy-configs", "int4"], _zoo,
        "unknown --deploy-configs int4"),
    Row("study-deploy-model-outside", [*COMMANDS["study"], "--deploy-models", "resnet18"], _zoo,
        "not among the study's models"),
    Row("study-deploy-option-alone", [*COMMANDS["study"], "--deploy-tolerance", "2%"], _zoo, "add --deploy"),
    Row("study-modifications-deploy", [*COMMANDS["study-modifications"], "--deploy"], _zoo,
        "belong to the models study"),
    Row("deploy-negative-throughput-batch", [*COMMANDS["deploy"], "--throughput-batch", "-1"], _zoo,
        "expected an integer, 0 or more"),
    Row("topology-binary", ["hardware", "--topology", "{tmp}/t.csv"], _file("t.csv", bytes(range(256))),
        "not a text CSV"),
    Row("topology-header-only", ["hardware", "--topology", "{tmp}/t.csv"], _file("t.csv", TOPOLOGY.encode()),
        "a header and no layers"),
    Row("topology-stride-0", ["hardware", "--topology", "{tmp}/t.csv"],
        _file("t.csv", (TOPOLOGY + "Conv1, 227, 227, 11, 11, 3, 96, 0,\n").encode()), "t.csv:2: Strides is 0"),
    Row("topology-negative-size", ["hardware", "--topology", "{tmp}/t.csv"],
        _file("t.csv", (TOPOLOGY + "Conv1, 9, 9, 3, 3, 3, 96, 1,\nConv2, 9, -9, 3, 3, 3, 8, 1,\n").encode()),
        "t.csv:3: IFMAP Width is -9"),
    Row("topology-gemm-zero", ["hardware", "--topology", "{tmp}/t.csv"],
        _file("t.csv", b"Layer, M, N, K,\nfc, 4, 0, 8,\n"), "t.csv:2: N is 0"),
    # flags
    *(Row(f"unknown-flag-{c}", [*COMMANDS[c], "--no-such-flag"], _zoo, "unrecognized argument --no-such-flag")
      for c in COMMANDS),
    Row("analyze-depth-and-top-json", [*COMMANDS["analyze"], "--depth", "1", "--top", "2", "--format", "json"], _zoo,
        "--depth and --top with --format json"),
    Row("analyze-per-layer-and-depth-csv", [*COMMANDS["analyze"], "--per-layer", "--depth", "1", "--format", "csv"],
        _zoo, "--per-layer and --depth with --format csv"),
    Row("flag-suggestion", ["analyze", "{model}", "--batch", "2"], _zoo,
        "did you mean --batch-size? (see dnnmeter analyze --help)"),
    Row("command-suggestion", ["analyse", "{model}"], _zoo, "did you mean 'analyze'?"),
    Row("models-no-match", ["models", "zzz_no_such*"], _zoo, "timm:zzz_no_such*"),
]


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's errors
        return int(exc.code or 0)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text('{"kept": true}\n')  # a study's earlier output
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main adds the current folder, as `python -m` does
    # a row that fails only after its workers ran (deploy: 20-100 s) would print plain progress
    # lines before its error (stderr is not a terminal here); the error line is what is tested
    monkeypatch.setenv("DNNMETER_PROGRESS", "0")
    return tmp_path


def _argv(row_argv: list[str], model: str, tmp: Path) -> list[str]:
    return [a.format(model=model, tmp=tmp, out=tmp / "out") for a in row_argv]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_one_line_status_2_and_harms_no_file(
    row: Row, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(row.argv, row.setup(workdir, monkeypatch), workdir)
    before = _snapshot(workdir)
    status = _status(argv)
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    assert row.expected in err, err
    assert "; " in err or "(see " in err, f"says what is wrong but not what to do: {err}"
    assert out == ""
    assert {p: _snapshot(workdir).get(p) for p in before} == before, "a file that existed was changed"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_debug_after_the_command_shows_the_traceback(command: str, workdir: Path) -> None:
    argv = _argv(COMMANDS[command], "no_such_model_xyz", workdir)
    if command == "models":
        argv = ["models", "no_such_model_xyz*"]
    if command == "report":
        argv = ["report", str(workdir / "missing")]
    if command == "calibrate":  # takes no model: a bad budget instead (else it would calibrate)
        argv = [*argv, "--budget-min", "-1"]
    with pytest.raises(DnnmeterError):
        main([*argv, "--debug"])


def test_a_module_in_the_current_folder_is_found_without_pythonpath(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "dnm_here.py").write_text("from torch import nn\ndef build(num_classes=4):\n"
                                         "    return nn.Sequential(nn.Flatten(), nn.Linear(12, num_classes))\n"
                                         "build.input_size = (3, 2, 2)\n")
    # As the installed `dnnmeter` script runs: its own folder first on the path, not the current one.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(workdir))])
    monkeypatch.delitem(sys.modules, "dnm_here", raising=False)
    status = main(["analyze", "dnm_here:build", "--format", "csv"])
    out, err = capsys.readouterr()
    assert status == 0 and "dnm_here:build" in out, err
    assert sys.path[-1] == str(workdir)  # appended: never hides an installed package


def test_more_threads_than_cores_warns_and_goes_on(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["modify", "tiny_alexnet", "--op", "residual", "--threads", "4096", "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0 and out.startswith("{")
    assert err.startswith("dnnmeter: warning: --threads 4096 is more than the") and err.count("\n") == 1


@pytest.mark.parametrize(("raised", "status", "expected"), [
    (RuntimeError("boom\nsecond line"), 1, "internal error: RuntimeError: boom second line; this is a bug"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (PermissionError(13, "Permission denied", "/some/where.json"), 2, "/some/where.json: Permission denied"),
])  # fmt: skip
def test_what_no_check_foresaw(raised: BaseException, status: int, expected: str, workdir: Path,
                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def command(args: object) -> int:
        raise raised

    monkeypatch.setattr("dnnmeter.cli.measure._cmd_models", command)
    assert main(["models"]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    if status != 130:  # Ctrl-C is 130 with or without --debug
        with pytest.raises(type(raised)):
            main(["models", "--debug"])


@pytest.mark.parametrize("argv", [["models", "--format", "json"], ["models"]])  # print, and rich's console
def test_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    # `dnnmeter models | head -1`: the reader is gone before dnnmeter writes.
    proc = subprocess.Popen([sys.executable, "-m", "dnnmeter", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err  # 128 + SIGPIPE, as `yes | head -1` gives
