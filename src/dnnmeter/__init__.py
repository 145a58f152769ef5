"""dnnmeter: what a deep neural network costs in practice.

>>> import dnnmeter
>>> a = dnnmeter.analyze("resnet50")          # counted on the meta device, nothing allocated
>>> a.params, a.macs, a.flops
>>> model = dnnmeter.create_model("vgg16", device="cpu")
>>> dnnmeter.hardware("alexnet").totals["cycles"]          # accesses, reuse, systolic array
>>> dnnmeter.compare("vgg16", ["depthwise-separable"]).ratio("macs")
>>> dnnmeter.train("tiny_alexnet", "digits", epochs=8).val_accuracy

Importing dnnmeter changes nothing in torch: no flags, no threads, no hooks.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dnnmeter.analysis import Analysis, KindTotals, LayerCost, analyze
from dnnmeter.errors import (
    DnnmeterError,
    InvalidInputError,
    MissingDependencyError,
    ModelBuildError,
    ModelForwardError,
    UnknownModelError,
)
from dnnmeter.evaluate import EvalResult, evaluate  # the function shadows the module's name here

# dnnmeter.hardware is a package that can be called: dnnmeter.hardware("alexnet") is
# dnnmeter.hardware.hardware("alexnet"), and dnnmeter.hardware.count_accesses still works.
from dnnmeter import hardware
from dnnmeter.hardware import HardwareResult
from dnnmeter.measure import BenchResult, benchmark
from dnnmeter.modify import ModifyResult, compare, modify
from dnnmeter.predict import Calibration, Prediction, calibrate, predict
from dnnmeter.train import TrainResult, train
from dnnmeter.zoo import SEED_MODELS, ModelEntry, Published, create_model, list_models, resolve

__all__ = [
    "SEED_MODELS",
    "Analysis",
    "BenchResult",
    "Calibration",
    "DnnmeterError",
    "EvalResult",
    "HardwareResult",
    "InvalidInputError",
    "KindTotals",
    "LayerCost",
    "MissingDependencyError",
    "ModelBuildError",
    "ModelEntry",
    "ModelForwardError",
    "ModifyResult",
    "Prediction",
    "Published",
    "TrainResult",
    "UnknownModelError",
    "__version__",
    "analyze",
    "benchmark",
    "calibrate",
    "compare",
    "create_model",
    "evaluate",
    "hardware",
    "list_models",
    "modify",
    "predict",
    "resolve",
    "train",
]
