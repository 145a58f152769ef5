"""Run each model's measurement in a subprocess of its own and collect the points.

A worker that dies (a segfault, the kernel's out-of-memory killer) ends only its own sweep:
the point it was on is recorded as an error with the exit status and the end of its stderr,
and the rest of its batch sizes as skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable

from dnnmeter.measure import heap
from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.spec import RESULT_PREFIX, BenchSpec

OnResult = Callable[[BenchResult], None]


def _from_line(line: str) -> BenchResult:
    return BenchResult.from_dict(json.loads(line[len(RESULT_PREFIX):]))


def death_reason(returncode: int, stderr_tail: str) -> str:
    """Why a worker process ended without its result: the signal or exit status and its last stderr line."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        why = " (killed: out of memory?)" if name == "SIGKILL" else ""
        text = f"worker died with {name}{why}"
    else:
        text = f"worker exited with status {returncode}"
    return f"{text}: {stderr_tail}" if stderr_tail else text


def worker_environment(spec: BenchSpec) -> dict[str, str]:
    """The worker's environment: this one, with the heap variables of ``spec.heap`` (glibc reads
    them as the worker starts) and unbuffered output, so that each point lands as it is made."""
    return {**heap.child_environment(spec.heap, dict(os.environ)), "PYTHONUNBUFFERED": "1"}


def run_isolated(spec: BenchSpec, on_result: OnResult) -> list[BenchResult]:
    """Measure ``spec`` in a fresh Python process; ``on_result`` sees each point as it lands."""
    results: list[BenchResult] = []
    env = worker_environment(spec)
    with tempfile.TemporaryFile(mode="w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dnnmeter.measure.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        )
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(spec.to_json())
            proc.stdin.close()
            for line in proc.stdout:
                if line.startswith(RESULT_PREFIX):
                    results.append(_from_line(line))
                    on_result(results[-1])
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr.seek(0)
        tail = " ".join(stderr.read().strip().splitlines()[-1:])[-300:]
    _fill_missing(spec, results, returncode, tail, on_result)
    return results


def _fill_missing(spec: BenchSpec, results: list[BenchResult], returncode: int, tail: str,
                  on_result: OnResult) -> None:
    done = {r.batch_size for r in results}
    missing = [b for b in spec.batch_sizes if b not in done]
    for i, batch in enumerate(missing):
        point = BenchResult(model=spec.model, device=spec.device, batch_size=batch,
                            input_size=tuple(spec.input_size or ()), dtype=spec.dtype, threads=spec.threads,
                            settings={"heap": spec.heap})
        if i == 0:
            point.status, point.error = "error", death_reason(returncode, tail)
        else:
            point.status, point.error = "skipped", f"skipped after the worker died at batch size {missing[0]}"
        results.append(point)
        on_result(point)
