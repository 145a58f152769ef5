"""Latency on this machine without running the model: calibrate once, then predict any model.

>>> import dnnmeter
>>> dnnmeter.calibrate(threads=1)                     # at most 15 minutes; resumable
>>> [p.latency_s for p in dnnmeter.predict(["resnet18", "mobilenet_v3_small"], batch_sizes=(1, 8))]

See docs/predict.md for the method, its accuracy and its limits.
"""

from __future__ import annotations

from dnnmeter.predict.api import Prediction, predict
from dnnmeter.predict.calibration import Calibration, calibrate
from dnnmeter.predict.records import CalibrationMissingError

__all__ = ["Calibration", "CalibrationMissingError", "Prediction", "calibrate", "predict"]
