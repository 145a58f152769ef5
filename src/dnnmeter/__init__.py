"""dnnmeter: what a deep neural network costs in practice.

>>> import dnnmeter
>>> a = dnnmeter.analyze("resnet50")          # counted on the meta device, nothing allocated
>>> a.params, a.macs, a.flops
(25557032, 4089184256, 8217631232)
>>> model = dnnmeter.create_model("vgg16", device="cpu")
>>> dnnmeter.estimate_hardware("alexnet").totals.cycles    # accesses, reuse, systolic array
2574274
>>> dnnmeter.compare("vgg16", ["depthwise-separable"]).ratio("macs")
0.128...
>>> dnnmeter.train("tiny_alexnet", "digits", epochs=8).val_accuracy  # a minute of training  # doctest: +SKIP
0.9...

Importing dnnmeter changes nothing in torch: no flags, no threads, no hooks. It does not even
import torch: each public name is loaded from its module on first use, so that ``dnnmeter
--help`` answers at once.

Functions are verbs and packages nouns: ``dnnmeter.modify`` is the function, its package
``dnnmeter.transforms``; likewise ``train``/``dnnmeter.training``, ``evaluate``/
``dnnmeter.accuracy``. The old paths and ``dnnmeter.hardware(...)`` still work for one release,
with a warning (:mod:`dnnmeter._moved`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from dnnmeter import _moved
from dnnmeter._version import __version__

_moved.install()

# The public names and the module each is loaded from on first use.
_API: dict[str, str] = {
    "Analysis": "dnnmeter.analysis",
    "KindTotals": "dnnmeter.analysis",
    "LayerCost": "dnnmeter.analysis",
    "analyze": "dnnmeter.analysis",
    "DeployResult": "dnnmeter.deployment",
    "deploy": "dnnmeter.deployment",
    "DnnmeterError": "dnnmeter.errors",
    "InvalidInputError": "dnnmeter.errors",
    "MissingDependencyError": "dnnmeter.errors",
    "ModelBuildError": "dnnmeter.errors",
    "ModelForwardError": "dnnmeter.errors",
    "UnknownModelError": "dnnmeter.errors",
    "EvalResult": "dnnmeter.accuracy",
    "evaluate": "dnnmeter.accuracy",
    "HardwareResult": "dnnmeter.hardware",
    "estimate_hardware": "dnnmeter.hardware",
    "BenchResult": "dnnmeter.measure",
    "benchmark": "dnnmeter.measure",
    "ModifyResult": "dnnmeter.transforms",
    "compare": "dnnmeter.transforms",
    "modify": "dnnmeter.transforms",
    "TrainResult": "dnnmeter.training",
    "train": "dnnmeter.training",
    "SEED_MODELS": "dnnmeter.zoo",
    "ModelEntry": "dnnmeter.zoo",
    "Published": "dnnmeter.zoo",
    "create_model": "dnnmeter.zoo",
    "list_models": "dnnmeter.zoo",
    "resolve": "dnnmeter.zoo",
    "Calibration": "dnnmeter.prediction",
    "Prediction": "dnnmeter.prediction",
    "calibrate": "dnnmeter.prediction",
    "predict": "dnnmeter.prediction",
}
# The old module paths of these functions' packages still import for one release
# (dnnmeter.modify.prune); importing one must not bind the module over the function.
_SHADOWED = frozenset({"evaluate", "modify", "train"})

__all__ = sorted([*_API, "__version__"])

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from dnnmeter.accuracy import EvalResult, evaluate
    from dnnmeter.analysis import Analysis, KindTotals, LayerCost, analyze
    from dnnmeter.deployment import DeployResult, deploy
    from dnnmeter.errors import (
        DnnmeterError,
        InvalidInputError,
        MissingDependencyError,
        ModelBuildError,
        ModelForwardError,
        UnknownModelError,
    )
    from dnnmeter.hardware import HardwareResult, estimate_hardware
    from dnnmeter.measure import BenchResult, benchmark
    from dnnmeter.transforms import ModifyResult, compare, modify
    from dnnmeter.prediction import Calibration, Prediction, calibrate, predict
    from dnnmeter.training import TrainResult, train
    from dnnmeter.zoo import SEED_MODELS, ModelEntry, Published, create_model, list_models, resolve


def __getattr__(name: str) -> Any:
    if name == "hardware":  # the package; binding it puts the callable stand-in here
        importlib.import_module(f"{__name__}.hardware")
        return globals()["hardware"]
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # loaded once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps ``dnnmeter.evaluate``, ``.modify`` and ``.train`` the functions when an old path
    of the same name is imported, and binds ``dnnmeter.hardware`` to the stand-in that can
    still be called. Both go with the old names (:mod:`dnnmeter._moved`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the submodule stays reachable through sys.modules and `from ... import`
        if name == "hardware" and type(value) is types.ModuleType:
            value = _moved.CallableHardware(value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
