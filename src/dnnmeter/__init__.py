"""dnnmeter: what a deep neural network costs in practice.

>>> import dnnmeter
>>> a = dnnmeter.analyze("resnet50")          # counted on the meta device, nothing allocated
>>> a.params, a.macs, a.flops
>>> model = dnnmeter.create_model("vgg16", device="cpu")

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
from dnnmeter.measure import BenchResult, benchmark
from dnnmeter.zoo import SEED_MODELS, ModelEntry, Published, create_model, list_models, resolve

__all__ = [
    "SEED_MODELS",
    "Analysis",
    "BenchResult",
    "DnnmeterError",
    "EvalResult",
    "InvalidInputError",
    "KindTotals",
    "LayerCost",
    "MissingDependencyError",
    "ModelBuildError",
    "ModelEntry",
    "ModelForwardError",
    "Published",
    "UnknownModelError",
    "__version__",
    "analyze",
    "benchmark",
    "create_model",
    "evaluate",
    "list_models",
    "resolve",
]
