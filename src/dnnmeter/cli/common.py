"""What every command shares: the console, progress bars, argument types, name checks."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dnnmeter.errors import DnnmeterError

T = TypeVar("T")


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    made = Console(stderr=stderr, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
    made.on_broken_pipe = _closed_pipe  # rich would exit 1 itself; the CLI's boundary decides
    return made


def _closed_pipe() -> None:
    raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


def resolve_all(names: Sequence[str]) -> list[str]:
    """Expand ``seed`` and check every name before any counting starts."""
    from dnnmeter.zoo import expand_names, resolve, timm_source

    expanded = expand_names(names)
    if "seed" in names and not timm_source.is_available():
        skipped = [n for n in expanded if n.startswith("timm:")]
        print(f"dnnmeter: timm is not installed; skipping {', '.join(skipped)}", file=sys.stderr)
        expanded = [n for n in expanded if n not in skipped]
    for name in expanded:
        resolve(name)
    return expanded


PLAIN_PROGRESS_ENV = "DNNMETER_PROGRESS"  # "0": no plain progress lines where stderr is not a terminal


def _plain_progress() -> Any:
    """Plain, throttled lines (cli/plain_progress.py) where stderr is not a terminal, unless
    $DNNMETER_PROGRESS is 0 (read at call time); None where rich's bar serves, or nothing should."""
    if sys.stderr.isatty() or os.environ.get(PLAIN_PROGRESS_ENV, "").strip() == "0":
        return None
    from dnnmeter.cli.plain_progress import PlainProgress

    return PlainProgress()


def progress(enabled: bool) -> Any:
    from rich.progress import Progress

    plain = _plain_progress() if enabled else None
    if plain is not None:
        return plain
    return Progress(console=console(stderr=True), transient=True, disable=not (enabled and sys.stderr.isatty()))


def _checked(value: str, parse: Callable[[str], T], ok: Callable[[T], bool], expected: str) -> T:
    """``parse(value)`` if it parses and is ``ok``; else argparse's error "expected {expected}"."""
    try:
        parsed = parse(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None
    if not ok(parsed):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return parsed


def _comma_list(parse: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    return lambda value: tuple(parse(v) for v in value.split(",") if v.strip())


def batch_sizes(value: str) -> tuple[int, ...]:
    return _checked(value, _comma_list(int), lambda sizes: bool(sizes) and min(sizes) >= 1,
                    "a comma list of positive integers")


def positive_int(value: str) -> int:
    return _checked(value, int, lambda number: number >= 1, "a positive integer")


def names(value: str) -> list[str]:
    """A comma list of names (configurations, kinds); at least one."""
    found = [v.strip() for v in value.split(",") if v.strip()]
    if not found:
        raise argparse.ArgumentTypeError(f"expected a comma list of names, got {value!r}")
    return found


def non_negative_int(value: str) -> int:
    return _checked(value, int, lambda number: number >= 0, "an integer, 0 or more")


def positive_seconds(value: str) -> float:
    """A duration: finite and above zero (0, negative, nan and inf are refused)."""
    # nan fails every comparison
    return _checked(value, float, lambda number: 0.0 < number < float("inf"), "a number of seconds above 0")


def fractions(value: str) -> tuple[float, ...]:
    return _checked(value, _comma_list(float), lambda found: bool(found) and all(0.0 <= f < 1.0 for f in found),
                    "a comma list of fractions in [0, 1)")


def _refusal(path: Path, want: str) -> str | None:
    """Why ``path`` cannot be written as a ``want`` ("folder" or "file"), or None if it can."""
    if path.exists() and path.is_dir() != (want == "folder"):
        return f"{path} is a {'folder' if path.is_dir() else 'file'}, not a {want}"
    parent = path if path.exists() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, so {path} cannot be made"
    if not os.access(parent, os.W_OK):
        return f"{parent} is not writable"
    return None


def output_folder(value: str) -> str:
    """A folder to write into (made if missing), checked before any work is done."""
    why = _refusal(Path(value), "folder")
    if why:
        raise argparse.ArgumentTypeError(f"{why}; give a folder you can write (it is made if missing)")
    return value


def output_file(value: str) -> str:
    """A file to write, checked before any work is done."""
    why = _refusal(Path(value), "file")
    if why:
        raise argparse.ArgumentTypeError(f"{why}; give a file name in a folder you can write")
    return value


def check_output_folder(path: Path, what: str) -> None:
    """:func:`output_folder` for a folder the command derives (not an argument)."""
    why = _refusal(path, "folder")
    if why:
        raise DnnmeterError(f"cannot write {what}: {why}; move it away or fix the folder's permissions")


def write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text + "\n")
    except OSError as exc:
        raise DnnmeterError(f"cannot write {path}: {exc.strerror}; choose another --out") from None


def print_outputs(outputs: Any, summary: str, file: Any = None) -> None:
    file = file or sys.stdout
    print(f"dnnmeter: {summary}", file=file)
    for path in (outputs.results_json, outputs.results_csv, outputs.report_html):
        if path is not None:
            print(f"  {path}", file=file)
    for note in outputs.notes:
        print(f"  note: {note}", file=file)


def study_progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    plain = _plain_progress()
    if plain is not None:
        return plain
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console(stderr=True), transient=True, disable=not sys.stderr.isatty())


INPUT_HELP = ("a forward argument as [NAME=]DIMxDIM...[:DTYPE], batch first (--input 1x3x224x224); "
              "replaces --input-size and --batch-size")


def add_input_argument(parser: argparse.ArgumentParser, help_text: str = INPUT_HELP) -> None:
    parser.add_argument("--input", dest="inputs", action="append", metavar="SPEC", help=help_text)


def add_format_and_run(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
                       formats: tuple[str, ...] = ("table", "json")) -> None:
    """A command's last argument, ``--format`` (table first, the default), and ``run``, the
    function that carries the command out."""
    parser.add_argument("--format", choices=formats, default="table")
    parser.set_defaults(func=run)


STORE_HELP = ("the results store: a path or an SQLAlchemy URL, e.g. postgresql+psycopg://USER:PASSWORD@HOST/DB "
              "(docs/store.md)")


def add_heap_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--heap {steady,glibc}``: the C heap ``what`` is timed with (dnnmeter.measure.heap)."""
    from dnnmeter.cli.choices import HEAP_MODES

    parser.add_argument("--heap", choices=HEAP_MODES, default=HEAP_MODES[0],
                        help=f"the C heap {what}: steady (default) pins glibc's thresholds, so that no figure pays "
                        "page faults by the process's allocation history; glibc leaves the heap as glibc sets it")


def add_store_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--store URL``: where the rows go (or come from), instead of the output folder's SQLite file."""
    parser.add_argument("--store", metavar="URL", help=f"{STORE_HELP}; default: {default}")


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--threads`` and ``--dtype``, as calibrate and predict take them (the
    prediction must be made for the machine and dtype the calibration timed)."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads (default: half the available cores)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")


def image_input(args: argparse.Namespace, command: str, why: str) -> tuple[Any, Any]:
    """``--input``, where ``command`` needs one image batch (``why`` says what needs it), as
    (input size, batch size); else ``--input-size`` and ``--batch-size`` as given."""
    texts = getattr(args, "inputs", None)
    if not texts:
        return args.input_size, getattr(args, "batch_size", None)
    from dnnmeter.analysis import parse_specs
    from dnnmeter.analysis.inputs import TensorSpec

    specs = parse_specs(texts)
    first = specs.args[0] if len(specs.args) == 1 and not specs.kwargs else None
    if not isinstance(first, TensorSpec) or len(first.shape) < 2 or (first.dtype is not None
                                                                     and not first.dtype.is_floating_point):
        raise DnnmeterError(f"dnnmeter {command}: --input takes one unnamed floating input here, batch first "
                            f"(--input 1x3x224x224): {why}; other forward signatures work with analyze")
    if getattr(args, "input_size", None):
        raise DnnmeterError(f"dnnmeter {command}: give --input or --input-size, not both")
    return first.shape[1:], first.shape[0]
