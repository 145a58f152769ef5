"""Shared by the benchmark scripts: each owns one marked section of BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

TITLE = "# Benchmarks"


def write_section(path: Path, begin: str, end: str, text: str) -> None:
    """Replace the text between ``begin`` and ``end`` in ``path``; append it if absent."""
    old = path.read_text() if path.exists() else f"{TITLE}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + text.rstrip("\n") + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def command_line(script: str, argv: list[str]) -> str:
    """How this run was started, for the section's "produced by" line."""
    return "python " + " ".join([f"benchmarks/{script}", *argv])


def publish(text: str, begin: str, end: str, write: bool) -> None:
    """Print a script's section and, unless told not to, put it in BENCHMARKS.md."""
    print(text)
    if write:
        write_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", begin, end, text)


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            return found.group(1).strip()
    return "unknown CPU"
