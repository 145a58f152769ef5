"""``compare``: a model's cost before and after its modification, side by side.

Static figures come from :func:`dnnmeter.analysis.analyze` (meta device, no arithmetic);
latency, when asked for, is timed in this process for both models with the same
:class:`~dnnmeter.measure.timing.TimingSettings` and thread count.

>>> from dnnmeter.transforms import compare
>>> r = compare("tiny_alexnet", ["depthwise-separable"], layers="conv2,conv3,conv4,conv5")
>>> r.ratio("params")
0.179...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import torch
from torch import nn

from dnnmeter.analysis import Analysis, analyze
from dnnmeter.analysis.meta_pass import eval_mode
from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.threads import torch_threads
from dnnmeter.measure.timing import TimingSettings, time_calls
from dnnmeter.transforms.result import Cost, ModifyResult
from dnnmeter.transforms.rewrite import rewrite

NOT_MEASURED = "not measured: pass measure_latency=True (CLI --latency)"
# Shorter than benchmark's 2 s per point: two models are timed, and a ratio is wanted.
COMPARE_TIMING = TimingSettings(time_budget_s=1.0)


def compare(
    model: str | nn.Module,
    ops: Sequence[str] | str,
    layers: str | None = None,
    input_size: object = None,
    batch_size: int = 1,
    measure_latency: bool = False,
    *,
    xception: bool = False,
    projection: bool = False,
    between: str = "bn-relu",
    strict: bool = True,
    threads: int | None = None,
    timing: TimingSettings = COMPARE_TIMING,
) -> ModifyResult:
    """Cost of ``model`` and of ``modify(model, ops, layers, ...)`` at ``batch_size`` x
    ``input_size`` (default: the model's own). ``threads`` (default: dnnmeter's
    :func:`~dnnmeter.measure.default_threads`) is pinned while timing and restored."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"bad batch size {batch_size!r}: give an integer >= 1")
    # A name is built on meta when only counting: no weights are allocated.
    device = "cpu" if measure_latency else "meta"
    done = rewrite(model, ops, layers, xception=xception, projection=projection, between=between,
                   input_size=input_size, strict=strict, device=device)
    original, label = _original(model, device)
    size = done.input_size
    a_before = analyze(original, input_size=size, batch_size=batch_size, name=label)
    a_after = analyze(done.module, input_size=size, batch_size=batch_size, name=label)
    before, after = _cost(a_before), _cost(a_after)
    settings = None
    if measure_latency:
        threads = _time_both(original, done.module, (batch_size, *size), before, after, threads, timing)
        settings = {"timing": asdict(timing), "threads": threads}
    return ModifyResult(model=label, ops=done.ops, layers=layers, input_size=tuple(size),
                        batch_size=batch_size, before=before, after=after, changes=done.changes,
                        skipped=done.skipped, timing_settings=settings)


def _original(model: str | nn.Module, device: str) -> tuple[nn.Module, str]:
    if isinstance(model, nn.Module):
        return model, type(model).__name__
    from dnnmeter.zoo import create_model, resolve

    return create_model(model, device=device), resolve(model).name


def _cost(a: Analysis) -> Cost:
    return Cost(params=a.params, macs=a.macs, flops=a.flops, elementwise_flops=a.elementwise_flops,
                activations=a.activations, weight_bytes=a.weight_bytes, latency_reason=NOT_MEASURED)


def _time_both(original: nn.Module, modified: nn.Module, shape: tuple[int, ...], before: Cost,
               after: Cost, threads: int | None, timing: TimingSettings) -> int:
    """Time both models, original first, with the same settings; returns the thread count."""
    if threads is None:
        from dnnmeter.measure import default_threads

        threads = default_threads()[0]
    with torch_threads(threads):
        for model, cost in ((original, before), (modified, after)):
            _time_one(model, shape, cost, timing)
    return threads


def _time_one(model: nn.Module, shape: tuple[int, ...], cost: Cost, timing: TimingSettings) -> None:
    tensor = next(iter([*model.parameters(), *model.buffers()]), None)
    if tensor is not None and tensor.is_meta:
        cost.latency_reason = "not measured: the model is on the meta device (no weights to run)"
        return
    x = torch.randn(shape, device=tensor.device if tensor is not None else "cpu")
    with eval_mode(model, list(model.modules())), torch.inference_mode():
        result = time_calls(lambda: model(x), timing)
    cost.latency_s, cost.latency_reason = result.median_s, None
    cost.latency_spread, cost.latency_samples_s = result.spread, list(result.samples_s)
