"""The names and defaults the CLI's arguments offer, in a module that imports no torch.

Table names come from :mod:`dnnmeter.names`; the defaults and the training tables come from
modules that import torch (``dnnmeter.training``'s settings, ``dnnmeter.studies.models``),
and ``dnnmeter --help`` must answer without torch. The library's tables stay the truth:
tests/test_startup.py checks that each name here equals its source.
"""

from __future__ import annotations

# The names of the by-name tables: one home, dnnmeter.names (torch-free too).
from dnnmeter.names import BENCH_DTYPES as DTYPES
from dnnmeter.names import CEILING_DTYPES as FLOAT_DTYPES
from dnnmeter.names import MEMORY_OPTIMIZERS as OPTIMIZER_NAMES
from dnnmeter.names import BETWEEN, DATAFLOWS, ENERGY_TABLES, PRUNE_METHODS, PRUNE_SCOPES
from dnnmeter.names import MODEL_SOURCES as SOURCES
from dnnmeter.names import MODIFY_OPS as OPS

AUGMENTATIONS = ("mask", "rotate", "flip", "noise")  # dnnmeter.training.AUGMENTATIONS
STRATEGIES = ("ddp", "average")  # dnnmeter.training.STRATEGIES
TRAIN_BATCH_SIZE = 64  # dnnmeter.training.DEFAULT_BATCH_SIZE
TRAIN_LR = 0.05  # dnnmeter.training.DEFAULT_LR
STUDY_BATCH_SIZES = (1, 2, 4)  # dnnmeter.studies.models.DEFAULT_BATCH_SIZES
STUDY_TIME_BUDGET_S = 0.5  # dnnmeter.studies.models.DEFAULT_TIME_BUDGET_S
DEPLOY_IMAGES = 1000  # dnnmeter.deployment.search.DEFAULT_IMAGES
DEPLOY_SCREEN_IMAGES = 64  # dnnmeter.deployment.budget.SCREEN_IMAGES
HEAP_MODES = ("steady", "glibc")  # dnnmeter.measure.heap.HEAP_MODES, the default first

__all__ = ["AUGMENTATIONS", "BETWEEN", "DATAFLOWS", "DEPLOY_IMAGES", "DEPLOY_SCREEN_IMAGES", "DTYPES", "ENERGY_TABLES", "FLOAT_DTYPES", "HEAP_MODES", "OPS", "OPTIMIZER_NAMES", "PRUNE_METHODS",
           "PRUNE_SCOPES", "SOURCES", "STRATEGIES", "STUDY_BATCH_SIZES", "STUDY_TIME_BUDGET_S",
           "TRAIN_BATCH_SIZE", "TRAIN_LR"]
