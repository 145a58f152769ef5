"""Measured time per product layer, from torch.profiler's events matched to the layers in order.

A forward pass records nested events (``aten::conv2d`` > ``aten::convolution`` >
``aten::_convolution`` > ``aten::mkldnn_convolution``; ``aten::linear`` > ``aten::addmm``).
The outermost event of :data:`CONV_EVENTS` or :data:`GEMM_EVENTS` is one product layer's
wall time. They line up one to one with ``extract_layers``'s records, which come from the
same aten ops in the same order, unless one event holds several products (fused attention,
``aten::_native_multi_head_attention``, an einsum over several matmuls): then the counts or
kinds differ, and no per-layer time is given, only the reason.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from torch.profiler import ProfilerActivity, profile

from dnnmeter.hardware.layers import LayerShape

__all__ = ["CONV_EVENTS", "GEMM_EVENTS", "layer_events", "match_layer_times"]

CONV_EVENTS = frozenset({"aten::convolution"})
GEMM_EVENTS = frozenset({"aten::linear", "aten::matmul", "aten::mm", "aten::addmm", "aten::bmm",
                         "aten::baddbmm", "aten::einsum"})
# Ops that hold several products at once: seen inside a run, per-layer times are ambiguous.
FUSED_EVENTS = frozenset({"aten::scaled_dot_product_attention", "aten::_native_multi_head_attention"})
WATCHED = CONV_EVENTS | GEMM_EVENTS | FUSED_EVENTS


def _kind(event_name: str) -> str:
    return "conv" if event_name in CONV_EVENTS else "gemm" if event_name in GEMM_EVENTS else "fused"


def _layer_kind(layer: LayerShape) -> str:
    return "conv" if layer.kind in ("conv", "depthwise_conv") else "gemm"


def _outermost(events: Sequence[Any]) -> list[Any]:
    """Watched events with no watched ancestor, in order of start."""
    found = []
    for event in events:
        if event.name not in WATCHED:
            continue
        parent = event.cpu_parent
        while parent is not None and parent.name not in WATCHED:
            parent = parent.cpu_parent
        if parent is None:
            found.append(event)
    return sorted(found, key=lambda e: e.time_range.start)


def layer_events(events: Sequence[Any], layers: Sequence[LayerShape], runs: int) -> tuple[list[list[float]] | None, str | None]:
    """Per layer, the seconds of each run (``runs`` forward passes), or None and why."""
    outer = _outermost(events)
    fused = sorted({e.name for e in outer if e.name in FUSED_EVENTS})
    if fused:
        return None, f"fused ops hold several products ({', '.join(fused)}): only the whole model is timed"
    if len(outer) != runs * len(layers):
        return None, (f"the profiler saw {len(outer) // max(runs, 1)} convolution/matmul ops per run for "
                      f"{len(layers)} layers: only the whole model is timed")
    per_layer: list[list[float]] = [[] for _ in layers]
    for i, event in enumerate(outer):
        index = i % len(layers)
        if _kind(event.name) != _layer_kind(layers[index]):
            return None, (f"op {i % len(layers) + 1} of a run is {event.name}, layer {layers[index].name} is "
                          f"{layers[index].kind}: only the whole model is timed")
        per_layer[index].append(event.cpu_time_total * 1e-6)  # the profiler's times are microseconds
    return per_layer, None


def match_layer_times(forward: Callable[[], object], layers: Sequence[LayerShape],
                      runs: int = 3) -> tuple[list[float] | None, str | None]:
    """Run ``forward`` ``runs`` times under the profiler; each layer's median seconds, or None
    and the reason the events could not be matched to the layers."""
    if not layers:
        return None, "no convolution, linear or matmul layer"
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            forward()
    per_layer, reason = layer_events(list(prof.events()), layers, runs)
    if per_layer is None:
        return None, reason
    return [statistics.median(times) for times in per_layer], None
