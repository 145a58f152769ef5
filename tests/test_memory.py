"""Counting on the meta device allocates no weights: the largest model stays small."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
from dnnmeter import analyze
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = analyze("vit_h_14")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert a.params == 633_470_440, a.params
print((peak - base) * 1024)
"""


@pytest.mark.integration
@pytest.mark.timeout(600)  # the subprocess itself may take 300 s
def test_vit_h_14_counts_in_well_under_a_gigabyte() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    grown_bytes = int(done.stdout.strip().splitlines()[-1])
    # Its float32 weights alone would be 2.5 GB.
    assert grown_bytes < 1_000_000_000
