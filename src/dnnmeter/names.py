"""The names of the by-name tables that the CLI offers as choices, importable without torch.

``dnnmeter --help`` must answer without importing torch, and the tables themselves (modify
ops, energy tables, the dtype map...) live beside torch code. Their names live here, once:
each table is built from these names or checked against them (tests/test_registry.py), and
the CLI's ``choices=`` read them. To add an entry to one of these tables, add its name here
and register it where the table lives.
"""

from __future__ import annotations

# dnnmeter.zoo: the sources `dnnmeter models --source` lists (ONNX files and
# `module:callable` names are resolved by shape, never listed).
MODEL_SOURCES: tuple[str, ...] = ("torchvision", "seed", "timm", "hf")

# dnnmeter.transforms.rewrite.OPS, in the order `--op` lists them.
MODIFY_OPS: tuple[str, ...] = ("depthwise-separable", "factorize", "asymmetric", "residual", "batchnorm")

# dnnmeter.transforms.convs: what goes between the two convolutions an op makes.
BETWEEN: tuple[str, ...] = ("bn-relu", "bn", "relu", "none")

# dnnmeter.hardware.systolic: output-, weight- and input-stationary.
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")

# dnnmeter.hardware.energy.ENERGY_TABLES, the built-in tables.
ENERGY_TABLES: tuple[str, ...] = ("eyeriss", "45nm")

# dnnmeter.transforms.prune: how weights are pruned, and over what a threshold is chosen.
PRUNE_METHODS: tuple[str, ...] = ("unstructured", "structured")
PRUNE_SCOPES: tuple[str, ...] = ("global", "layer")

# Floating-point dtypes by name: what a benchmark runs in, and what the roofline's ceilings
# are measured in (float64 too). The torch dtype is torch.<name>: dnnmeter.measure.spec.torch_dtype.
BENCH_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
CEILING_DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")

# dnnmeter.analysis.train_memory.OPTIMIZERS: the optimizers a training step's memory is estimated for.
MEMORY_OPTIMIZERS: tuple[str, ...] = ("sgd", "sgd-momentum", "adam", "adamw")
