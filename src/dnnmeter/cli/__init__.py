"""The ``dnnmeter`` command: parse arguments, call the API, render. No logic of its own.

Each area's commands sit with their arguments: cli/measure.py (models, analyze, bench,
eval), cli/changes.py (modify, train, quantize, prune), cli/hardware.py and cli/studies.py
(study, study modifications, report); cli/common.py holds what they share. Any
:class:`~dnnmeter.errors.DnnmeterError` becomes one line on stderr and exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from dnnmeter import __version__
from dnnmeter.cli import changes, hardware, measure, predict, studies
from dnnmeter.errors import DnnmeterError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the whole usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dnnmeter", description="What a deep neural network costs in practice.")
    parser.add_argument("--version", action="version", version=f"dnnmeter {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for area in (measure, changes, hardware, studies, predict):
        area.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DnnmeterError as exc:
        if args.debug:
            raise
        print(f"dnnmeter: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dnnmeter: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
