"""Plain progress lines where stderr is not a terminal: the throttle, on a fake clock."""

from __future__ import annotations

import io

import pytest

from dnnmeter.cli import common
from dnnmeter.cli.plain_progress import EVERY_S, GRACE_S, HEARTBEAT_S, PlainProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _progress() -> tuple[PlainProgress, Clock, io.StringIO]:
    clock, out = Clock(), io.StringIO()
    return PlainProgress("deploy", stream=out, clock=clock, background=False), clock, out


def test_nothing_in_the_grace_period_then_at_most_one_line_per_interval_with_the_latest_state() -> None:
    progress, clock, out = _progress()
    with progress:
        task = progress.add_task("deploying resnet50", total=None)
        clock.now += GRACE_S - 0.5
        progress.update(task, description="eager-float32@t1: measured", completed=1, total=26)
        assert out.getvalue() == ""  # a short command prints nothing
        clock.now += 1.0
        progress.update(task, description="int8@t1: measured (7.2 of 10 min left)", completed=3)
        assert out.getvalue() == "deploy: int8@t1: measured (7.2 of 10 min left) [3 of 26, 10 s]\n"
        clock.now += EVERY_S / 2
        progress.update(task, description="compile@t1: failed", completed=4)
        progress.tick()
        assert out.getvalue().count("\n") == 1  # held back by the throttle
        clock.now += EVERY_S / 2
        progress.tick()  # the background thread's step: the held-back change, now
        assert out.getvalue().splitlines()[-1] == "deploy: compile@t1: failed [4 of 26, 20 s]"
        clock.now += EVERY_S
        progress.tick()
        assert out.getvalue().count("\n") == 2  # unchanged: not repeated before the heartbeat
        clock.now += HEARTBEAT_S
        progress.tick()
        assert out.getvalue().splitlines()[-1] == "deploy: compile@t1: failed [4 of 26, 90 s]"
        lines = out.getvalue()
    clock.now += 3 * HEARTBEAT_S
    progress.tick()
    assert out.getvalue() == lines  # no line at exit, nor after it


def test_advance_counts_and_a_task_without_a_total_shows_the_time_only() -> None:
    progress, clock, out = _progress()
    with progress:
        task = progress.add_task("counting", total=3)
        progress.advance(task)
        progress.advance(task)
        clock.now += GRACE_S
        progress.tick()
        other = progress.add_task("timing the model before and after", total=None)
        clock.now += EVERY_S
        progress.update(other)
    assert out.getvalue().splitlines() == ["deploy: counting [2 of 3, 10 s]",
                                           "deploy: timing the model before and after [20 s]"]


def test_the_commands_get_plain_lines_off_a_terminal_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.delenv(common.PLAIN_PROGRESS_ENV, raising=False)
    assert isinstance(common.progress(True), PlainProgress) and isinstance(common.study_progress(), PlainProgress)
    assert not isinstance(common.progress(False), PlainProgress)  # a command that shows no progress here
    monkeypatch.setenv(common.PLAIN_PROGRESS_ENV, "0")
    assert not isinstance(common.progress(True), PlainProgress)
    assert not isinstance(common.study_progress(), PlainProgress)
