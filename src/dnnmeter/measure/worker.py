"""Measure one model over its batch sizes; run as ``python -m dnnmeter.measure.worker``.

The parent (runner.py) starts one worker per model, so a crash or an out-of-memory ends
that model's sweep, not the whole benchmark. The worker reads a JSON spec on stdin and
writes one ``DNNMETER-RESULT {json}`` line per point as soon as it is measured. This module
is only the process's shell: the spec is in spec.py, the measuring in point.py.
"""

from __future__ import annotations

import json
import sys

from dnnmeter.measure.point import measure_model
from dnnmeter.measure.result import BenchResult
from dnnmeter.measure.spec import RESULT_PREFIX, BenchSpec


def emit_to_stdout(result: BenchResult) -> None:
    sys.stdout.write(RESULT_PREFIX + json.dumps(result.to_dict()) + "\n")
    sys.stdout.flush()


def main() -> int:
    spec = BenchSpec.from_json(sys.stdin.read())
    measure_model(spec, emit_to_stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
