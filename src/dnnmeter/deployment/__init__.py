"""How to run a model fastest on this machine within an accuracy tolerance (``dnnmeter deploy``).

Every runtime configuration (eager float32, channels_last, bfloat16, torch.ao int8,
torch.compile, ONNX Runtime at each graph-optimisation level in float32 and int8, each
thread count; on a GPU also float16, cudnn.benchmark and CUDA graphs) is measured in a
process of its own, compared with eager float32 on the same real images, and judged
against the tolerance; the fastest accepted one whose speed-up is sure is recommended.

>>> from dnnmeter.deployment import deploy
>>> r = deploy("tiny_alexnet", configs=["int8", "ort-all-float32"], budget_min=1)  # doctest: +SKIP
>>> r.recommended, [(c.name, c.status, c.speedup) for c in r.configs]  # doctest: +SKIP

The package: ``configs`` (what exists here, and why not), ``images`` (the compared images),
``worker``/``runner``/``build`` (one process per configuration), ``stats`` (agreement,
the speed-up's interval), ``judge`` (statuses, the recommendation), ``search`` (the store,
the whole search), ``export`` (the recommended artefact).
"""

from __future__ import annotations

from dnnmeter.deployment.configs import Capabilities, Config, plan, probe
from dnnmeter.deployment.judge import DeployError
from dnnmeter.deployment.result import BaselineRecheck, ConfigResult, DeployResult
from dnnmeter.deployment.search import deploy

__all__ = ["BaselineRecheck", "Capabilities", "Config", "ConfigResult", "DeployError", "DeployResult", "deploy", "plan", "probe"]
