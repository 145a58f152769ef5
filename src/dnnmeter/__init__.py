"""dnnmeter: what a deep neural network costs in practice.

>>> import dnnmeter
>>> a = dnnmeter.analyze("resnet50")          # counted on the meta device, nothing allocated
>>> a.params, a.macs, a.flops
(25557032, 4089184256, 8217631232)
>>> model = dnnmeter.create_model("vgg16", device="cpu")
>>> dnnmeter.hardware("alexnet").totals.cycles             # accesses, reuse, systolic array
2574274
>>> dnnmeter.compare("vgg16", ["depthwise-separable"]).ratio("macs")
0.128...
>>> dnnmeter.train("tiny_alexnet", "digits", epochs=8).val_accuracy  # a minute of training  # doctest: +SKIP
0.9...

Importing dnnmeter changes nothing in torch: no flags, no threads, no hooks. It does not even
import torch: each public name is loaded from its module on first use, so that ``dnnmeter
--help`` answers at once.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from dnnmeter._version import __version__

# The public names and the module each is loaded from on first use.
_API: dict[str, str] = {
    "Analysis": "dnnmeter.analysis",
    "KindTotals": "dnnmeter.analysis",
    "LayerCost": "dnnmeter.analysis",
    "analyze": "dnnmeter.analysis",
    "DeployResult": "dnnmeter.deploy",
    "deploy": "dnnmeter.deploy",
    "DnnmeterError": "dnnmeter.errors",
    "InvalidInputError": "dnnmeter.errors",
    "MissingDependencyError": "dnnmeter.errors",
    "ModelBuildError": "dnnmeter.errors",
    "ModelForwardError": "dnnmeter.errors",
    "UnknownModelError": "dnnmeter.errors",
    "EvalResult": "dnnmeter.evaluate",
    "evaluate": "dnnmeter.evaluate",
    "HardwareResult": "dnnmeter.hardware",
    "BenchResult": "dnnmeter.measure",
    "benchmark": "dnnmeter.measure",
    "ModifyResult": "dnnmeter.modify",
    "compare": "dnnmeter.modify",
    "modify": "dnnmeter.modify",
    "TrainResult": "dnnmeter.train",
    "train": "dnnmeter.train",
    "SEED_MODELS": "dnnmeter.zoo",
    "ModelEntry": "dnnmeter.zoo",
    "Published": "dnnmeter.zoo",
    "create_model": "dnnmeter.zoo",
    "list_models": "dnnmeter.zoo",
    "resolve": "dnnmeter.zoo",
}
# dnnmeter.hardware is a package that can be called: dnnmeter.hardware("alexnet") is
# dnnmeter.hardware.hardware("alexnet"), and dnnmeter.hardware.count_accesses still works.
_SUBPACKAGES = ("hardware",)
# These functions have the names of their own modules; the function wins, as it always has.
_SHADOWED = frozenset({"deploy", "evaluate", "modify", "train"})

__all__ = sorted([*_API, *_SUBPACKAGES, "__version__"])

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from dnnmeter import hardware
    from dnnmeter.analysis import Analysis, KindTotals, LayerCost, analyze
    from dnnmeter.deploy import DeployResult, deploy
    from dnnmeter.errors import (
        DnnmeterError,
        InvalidInputError,
        MissingDependencyError,
        ModelBuildError,
        ModelForwardError,
        UnknownModelError,
    )
    from dnnmeter.evaluate import EvalResult, evaluate
    from dnnmeter.hardware import HardwareResult
    from dnnmeter.measure import BenchResult, benchmark
    from dnnmeter.modify import ModifyResult, compare, modify
    from dnnmeter.train import TrainResult, train
    from dnnmeter.zoo import SEED_MODELS, ModelEntry, Published, create_model, list_models, resolve


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # loaded once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps ``dnnmeter.deploy``, ``.evaluate``, ``.modify`` and ``.train`` the functions: importing the
    module of the same name would otherwise bind the module over the lazily loaded function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the submodule stays reachable through sys.modules and `from ... import`
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
