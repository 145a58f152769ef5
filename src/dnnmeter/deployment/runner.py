"""Run one configuration in a fresh Python process, as bench does (measure/runner.py).

A worker that dies (a segfault in a runtime, the kernel's out-of-memory killer) or prints no
result is that configuration's ``failed`` status with the exit status and the end of its
stderr; the search goes on. ``in_process`` runs the worker's code here (tests, quick looks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from dnnmeter.deployment.worker import DeploySpec, measure_config
from dnnmeter.measure.heap import child_environment
from dnnmeter.measure.runner import death_reason
from dnnmeter.measure.spec import RESULT_PREFIX

Runner = Callable[[DeploySpec], dict[str, Any]]
# A configuration that hangs (a runtime deadlock) must not stall the search; inductor compiling
# resnet50 on a loaded 2-core machine takes minutes, so the limit is generous.
CONFIG_TIMEOUT_S = 900.0
# Each configuration's process starts with glibc's heap thresholds pinned, as bench's points do
# (measure/heap.py): page faults from the worker's own allocation history are not a configuration's.
HEAP = "steady"


def in_subprocess(spec: DeploySpec, timeout_s: float | None = CONFIG_TIMEOUT_S) -> dict[str, Any]:
    """``spec`` measured by ``python -m dnnmeter.deployment.worker``; never raises for the worker's fault."""
    env = dict(child_environment(HEAP, dict(os.environ)), PYTHONUNBUFFERED="1")
    if spec.wait_s is not None and (timeout_s is None or spec.wait_s < timeout_s):
        timeout_s = spec.wait_s  # what the search's budget leaves
    with tempfile.TemporaryFile(mode="w+") as stderr:
        try:
            done = subprocess.run([sys.executable, "-m", "dnnmeter.deployment.worker"], input=spec.to_json(),
                                  stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"took longer than {timeout_s:.0f} s; stopped", "timed_out_s": timeout_s}
        stderr.seek(0)
        tail = " ".join(stderr.read().strip().splitlines()[-1:])[-300:]
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            found: dict[str, Any] = json.loads(line[len(RESULT_PREFIX):])
            if isinstance(found.get("extra"), dict):
                found["extra"]["heap"] = HEAP
            return found
    return {"status": "failed", "reason": death_reason(done.returncode, tail)}


def in_process(spec: DeploySpec) -> dict[str, Any]:
    """``spec`` measured in this process (no isolation: a crash here is the caller's)."""
    return measure_config(spec)
