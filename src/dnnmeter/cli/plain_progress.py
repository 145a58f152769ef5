"""Progress as plain lines, for a stderr that is not a terminal (a log file, nohup, CI).

rich's bars are drawn for a terminal and disabled elsewhere, which left ``dnnmeter deploy ...
2>log`` silent for ten minutes. :class:`PlainProgress` takes the calls the commands make of
rich's ``Progress`` (``add_task``, ``update``, ``advance``, a context manager) and writes the
latest state as one line, e.g. ``dnnmeter: int8@t1: measured on 64 images (7.2 of 10 min
left) [72 s]`` or, where the total is known, ``dnnmeter: pruned-50: trained [3 of 8, 95 s]``,
throttled so that a short command prints nothing: no line in the first ``GRACE_S`` seconds (a
command that fails at once keeps its one-line error alone on stderr), then at most one line
per ``EVERY_S``, and none at exit (the command's own output says it finished).

A background thread prints a change that a throttled ``update`` held back, and repeats an
unchanged line every ``HEARTBEAT_S`` (a long worker still runs); ``tick()`` is its one step, so
that tests drive it with a fake clock and no thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

GRACE_S = 10.0  # nothing before: short commands, and one-line errors, stay as they are
EVERY_S = 10.0  # at most one line per this
HEARTBEAT_S = 60.0  # an unchanged state is said again after this, so a log shows the command is alive


@dataclass
class _Task:
    description: str
    total: float | None = None
    completed: float = 0.0


class PlainProgress:
    """rich ``Progress``'s interface, as the CLI uses it, writing throttled plain lines."""

    def __init__(self, prefix: str = "dnnmeter", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        self.prefix, self.stream, self.clock, self.background = prefix, stream, clock, background
        self.tasks: list[_Task] = []
        self._latest: int | None = None  # the task updated last: its state is the line
        self._started = clock()
        self._printed_at: float | None = None
        self._printed: tuple[str, float, float | None] | None = None  # the last line's state: a change or a heartbeat?
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- rich's interface -------------------------------------------------------------------

    def __enter__(self) -> PlainProgress:
        self._started = self.clock()
        if self.background:
            self._thread = threading.Thread(target=self._run, name="dnnmeter-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # no line at exit: the command's output or error follows
        if self._thread is not None:
            self._thread.join()

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        with self._lock:
            self.tasks.append(_Task(description, total))
            self._latest = len(self.tasks) - 1
        self.tick()
        return self._latest

    def update(self, task_id: int, *, description: str | None = None, completed: float | None = None,
               total: float | None = None, advance: float | None = None, **_: Any) -> None:
        with self._lock:
            task = self.tasks[task_id]
            task.description = task.description if description is None else description
            task.total = task.total if total is None else total
            task.completed = task.completed if completed is None else completed
            task.completed += advance or 0.0
            self._latest = task_id
        self.tick()

    def advance(self, task_id: int, advance: float = 1.0) -> None:
        self.update(task_id, advance=advance)

    # --- the throttle -------------------------------------------------------------------------

    def tick(self) -> None:
        """Write the latest state if the throttle lets it: after the grace period, at most once per
        EVERY_S, and an unchanged state only once per HEARTBEAT_S."""
        with self._lock:
            if self._latest is None or self._stop.is_set():
                return
            now = self.clock()
            elapsed = now - self._started
            task = self.tasks[self._latest]
            state = (task.description, task.completed, task.total)
            since = None if self._printed_at is None else now - self._printed_at
            due = HEARTBEAT_S if state == self._printed else EVERY_S
            if elapsed < GRACE_S or (since is not None and since < due):
                return
            self._printed_at, self._printed = now, state
            stream = self.stream or sys.stderr  # looked up now: pytest and shells swap sys.stderr
            stream.write(f"{self.prefix}: {task.description} [{_counts(task)}{elapsed:.0f} s]\n")
            stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()


def _counts(task: _Task) -> str:
    if task.total is None:
        return ""
    return f"{task.completed:g} of {task.total:g}, "
