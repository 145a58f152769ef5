"""Latency on this machine without running the model: calibrate once, then predict any model.

>>> import dnnmeter
>>> dnnmeter.calibrate(threads=1)   # minutes of timing (at most 15); resumable  # doctest: +SKIP
>>> [p.latency_s for p in dnnmeter.predict(["resnet18", "mobilenet_v3_small"], batch_sizes=(1, 8))]  # needs the calibration above  # doctest: +SKIP

See docs/predict.md for the method, its accuracy and its limits.
"""

from __future__ import annotations

from dnnmeter.prediction.api import Prediction, predict
from dnnmeter.prediction.calibration import Calibration, calibrate
from dnnmeter.prediction.records import CalibrationMissingError

__all__ = ["Calibration", "CalibrationMissingError", "Prediction", "calibrate", "predict"]
