"""The names and defaults the CLI's arguments offer, in a module that imports nothing.

The tables they come from (``dnnmeter.modify.OPS``, ``dnnmeter.train``'s settings, ...) live
in modules that import torch, and ``dnnmeter --help`` must answer without torch. The library's
tables stay the truth: tests/test_startup.py checks that each name here equals its source.
"""

from __future__ import annotations

OPS = ("depthwise-separable", "factorize", "asymmetric", "residual", "batchnorm")  # dnnmeter.modify.OPS
BETWEEN = ("bn-relu", "bn", "relu", "none")  # dnnmeter.modify.BETWEEN
AUGMENTATIONS = ("mask", "rotate", "flip", "noise")  # dnnmeter.train.AUGMENTATIONS
STRATEGIES = ("ddp", "average")  # dnnmeter.train.STRATEGIES
TRAIN_BATCH_SIZE = 64  # dnnmeter.train.DEFAULT_BATCH_SIZE
TRAIN_LR = 0.05  # dnnmeter.train.DEFAULT_LR
STUDY_BATCH_SIZES = (1, 2, 4)  # dnnmeter.study.DEFAULT_BATCH_SIZES
STUDY_TIME_BUDGET_S = 0.5  # dnnmeter.study.DEFAULT_TIME_BUDGET_S
SOURCES = ("torchvision", "seed", "timm")  # dnnmeter.zoo.registry.SOURCES
DTYPES = ("float32", "float16", "bfloat16")  # dnnmeter.measure.DTYPES
DATAFLOWS = ("os", "ws", "is")  # dnnmeter.hardware.systolic.DATAFLOWS
