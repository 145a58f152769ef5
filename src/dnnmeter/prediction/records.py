"""Where calibrations live: one folder, two files per machine, device, thread count and dtype.

``<key>.jsonl`` holds every kernel measurement, one line each, appended as soon as it is
made (a calibration killed at any moment keeps all finished kernels, and a rerun skips
them); ``<key>.json`` is the fitted predictor. The key names the device kind, a hash of the
machine's identity (host, CPU or GPU model, cores, torch version: any of them changing
makes the old timings stale), the threads and the dtype.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dnnmeter.errors import DnnmeterError

SCHEMA = "dnnmeter.calibration/1"


class CalibrationMissingError(DnnmeterError):
    """No calibration for this machine, device, thread count and dtype: run ``dnnmeter calibrate``."""


def default_dir() -> Path:
    """``$DNNMETER_CALIBRATION_DIR``, else ~/.cache/dnnmeter/calibration (read at call time)."""
    env = os.environ.get("DNNMETER_CALIBRATION_DIR")
    return Path(env) if env else Path.home() / ".cache" / "dnnmeter" / "calibration"


def machine_identity(environment: dict[str, Any]) -> dict[str, Any]:
    """The part of the environment that decides kernel speed; its hash names the calibration."""
    keys = ("hostname", "cpu_model", "cpu_cores_available", "torch", "device", "gpu_name")
    identity = {k: environment.get(k) for k in keys}
    identity["device"] = str(identity["device"] or "cpu").split(":")[0]  # cuda:0 and cuda: the GPU name tells
    return identity


def calibration_key(identity: dict[str, Any], threads: int | None, dtype: str) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    device = str(identity.get("device") or "cpu").split(":")[0]
    return f"{device}-{digest}-t{threads if threads is not None else 'any'}-{dtype}"


def command_for(device: str, threads: int | None, dtype: str, directory: Path | None = None) -> str:
    """The ``dnnmeter calibrate`` command line that makes the calibration asked for."""
    out = f"--out {directory}" if directory is not None and directory != default_dir() else ""
    parts = ["dnnmeter calibrate", out, f"--device {device}" if device != "cpu" else "",
             f"--threads {threads}" if threads is not None else "", f"--dtype {dtype}" if dtype != "float32" else ""]
    return " ".join(p for p in parts if p)


class Records:
    """The measurements of one calibration key, appended line by line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a run killed mid-write: that kernel is measured again
                self.rows[row["id"]] = row

    def __contains__(self, kernel_id: str) -> bool:
        return kernel_id in self.rows

    def add(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        self.rows[row["id"]] = row


def save_calibration(path: Path, calibration: dict[str, Any]) -> None:
    """Written atomically: a reader never sees half a calibration."""
    from dnnmeter.atomic import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, calibration)


def load_calibration(directory: Path, key: str, command: str) -> dict[str, Any]:
    path = directory / f"{key}.json"
    if not path.exists():
        raise CalibrationMissingError(f"no latency calibration for this machine ({key}) in {directory}; "
                                      f"run `{command}` first (at most 15 minutes)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationMissingError(f"calibration {path} is unreadable ({exc}); rerun `{command}`") from None
    if data.get("schema") != SCHEMA:
        raise CalibrationMissingError(f"calibration {path} has schema {data.get('schema')!r}, not {SCHEMA!r}; "
                                      f"rerun `{command}`")
    from dnnmeter.prediction.features import FEATURES

    if data.get("features") != list(FEATURES):  # fitted by another version: its trees read other columns
        raise CalibrationMissingError(f"calibration {path} was fitted on other features by another dnnmeter; "
                                      f"rerun `{command}` (its measurements are kept: only the fit is redone)")
    data["path"] = str(path)
    return data
