"""The ``dnnmeter`` command: parse arguments, call the API, render. No logic of its own.

Each area's commands sit with their arguments: cli/measure.py (models, analyze, bench,
eval), cli/changes.py (modify, train, quantize, prune), cli/hardware.py and cli/studies.py
(study, study modifications, report), cli/store.py (store info, store merge); cli/common.py holds what they share. Nothing here
imports torch until a command runs, so ``--help`` and argument errors answer at once.

:func:`main` is the one error boundary (docs/errors.md): a
:class:`~dnnmeter.errors.DnnmeterError` or a file the system refuses becomes one line on
stderr and exit status 2; a closed output pipe ends quietly (141, as a process killed by
SIGPIPE); Ctrl-C is 130; anything else is a bug: one line and status 1. ``--debug``, before
or after the command, shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from dnnmeter import __version__
from dnnmeter.cli import changes, deploy, hardware, measure, predict, store, studies
from dnnmeter.errors import DnnmeterError

EXIT_USAGE = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`'s yes

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: `--batch` is not silently `--batch-size`, and a new flag never
        # makes an old abbreviation ambiguous. An unknown flag is answered with the closest one.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, not the whole usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_with_suggestion(message)} (see {self.prog} --help)\n")


def _with_suggestion(message: str) -> str:
    found = _INVALID_CHOICE.search(message)
    if not found:
        return message
    offered = [c.strip(" '") for c in found.group(2).split(",")]
    close = difflib.get_close_matches(found.group(1), offered, n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dnnmeter", description="What a deep neural network costs in practice.")
    parser.add_argument("--version", action="version", version=f"dnnmeter {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for area in (measure, changes, hardware, studies, predict, deploy, store):
        area.add_commands(sub)
    for command in sub.choices.values():  # also accepted after the command; SUPPRESS keeps the top-level value
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices[command]
    return found


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is reported by its command, with the closest flag it has."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if not unknown:
        return args
    command = _command_parser(parser, args.command)
    flags = [f for f in unknown if f.startswith("-")]
    if not flags:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    flag = flags[0].split("=", 1)[0]
    known = [s for action in command._actions for s in action.option_strings if s.startswith("--")]
    close = difflib.get_close_matches(flag, known, n=1, cutoff=0.5)
    command.error(f"unrecognized argument {flag}" + (f"; did you mean {close[0]}?" if close else ""))


def _search_current_folder() -> None:
    """Find `module:callable` models in the current folder, as `python -m` does. Appended, not
    prepended, so that a file in the folder never hides an installed package."""
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.append(here)


def _warn_about_threads(args: argparse.Namespace) -> None:
    threads = getattr(args, "threads", None)
    if not threads or threads == 1:
        return
    from dnnmeter.measure.threads import available_cores

    cores = available_cores()
    if threads > cores:
        print(f"dnnmeter: warning: --threads {threads} is more than the {cores} cores this process may use; "
              "the threads will share cores and timings will be slower and noisier", file=sys.stderr)


def _one_line(exc: BaseException | Warning | str) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _os_error(exc: OSError) -> str:
    path = exc.filename if exc.filename2 is None else exc.filename2
    return f"{path}: {exc.strerror or exc}; check the path (a folder, writable) or choose another"


def _closed_pipe() -> int:
    """The reader went away (`dnnmeter models | head -1`): stop quietly, as Unix tools do."""
    try:  # what is still buffered must not fail again at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_CLOSED_PIPE


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """The library's warnings (initial weights, float16 on a CPU, a split not held out...) as
    one ``dnnmeter: warning:`` line each, instead of Python's file:line form with the
    source line under it; put back afterwards."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        print(f"dnnmeter: warning: {_one_line(message)}", file=sys.stderr)  # type: ignore[arg-type]

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def _run(args: argparse.Namespace) -> int:
    with _warnings_as_lines():
        status = int(args.func(args))
    sys.stdout.flush()  # a closed pipe shows here, inside the boundary
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    _search_current_folder()
    try:
        _warn_about_threads(args)
        return _run(args)
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("dnnmeter: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        return _report(exc)


def _report(exc: Exception) -> int:
    if isinstance(exc, DnnmeterError):
        print(f"dnnmeter: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, OSError) and exc.filename is not None:  # a path the system refused
        print(f"dnnmeter: error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"dnnmeter: internal error: {type(exc).__name__}: {_one_line(exc)}; this is a bug in dnnmeter: "
          "rerun with --debug for the traceback and report it", file=sys.stderr)
    return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
