"""Accuracy: top-1, top-5 and per-class, on one centre crop per image.

Both seed studies rank networks by top-1 and top-5 on a single centre crop, and the
Tiny-ImageNet study looks at the five best and five worst classes; :func:`evaluate` measures
all three on this machine and labels them ``measured`` (published figures are labelled
``published`` elsewhere). A checkpoint written by ``dnnmeter train`` is scored on the images
its training held out.

>>> from dnnmeter.accuracy import evaluate
>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")   # initial weights: evaluate warns that the score means nothing
...     r = evaluate("resnet18", "digits", input_size=64, limit=20)
>>> r.n, [c.class_name for c in r.worst_classes][:1]
(20, [...])
>>> r = evaluate("resnet50", "/data/imagenet/val", weights="default")   # needs ImageNet and the hub cache  # doctest: +SKIP
>>> r = evaluate("tiny_alexnet", "digits", weights="out/model.safetensors")  # needs a trained checkpoint  # doctest: +SKIP
>>> r.held_out, r.held_out_note   # doctest: +SKIP

The package: ``result`` (EvalResult, Tally, per-class rows), ``inputs`` (arguments,
preprocessing, data), ``held_out`` (which images a checkpoint was not trained on), ``model``
(building with weights), ``loop`` (the batches, shards under torchrun, the result).
"""

from __future__ import annotations

from dnnmeter.accuracy.inputs import default_workers, subset_indices
from dnnmeter.accuracy.held_out import HeldOut
from dnnmeter.accuracy.loop import DistributedError, evaluate, held_out_data, prepared_data
from dnnmeter.accuracy.model import build_with_weights
from dnnmeter.accuracy.result import TOP_K, ClassAccuracy, EvalResult, Tally, best_and_worst, per_class_rows
from dnnmeter.zoo.weights import checkpoint_meta, load_weights_file

__all__ = ["TOP_K", "ClassAccuracy", "DistributedError", "EvalResult", "HeldOut", "Tally", "best_and_worst",
           "build_with_weights", "checkpoint_meta", "default_workers", "evaluate", "held_out_data", "load_weights_file", "per_class_rows",
           "prepared_data", "subset_indices"]
