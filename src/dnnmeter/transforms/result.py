"""What a modification returns: the changes made, the layers left alone, and the costs.

:class:`Change` and :class:`Skip` are recorded per layer and per op; :class:`Cost` holds one
model's static figures (from :func:`dnnmeter.analysis.analyze`) and, when measured, its
latency; :class:`ModifyResult` puts the model before and after side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from dnnmeter._serial import Record

# The figures compared before and after; ratios are after / before.
COST_FIELDS: tuple[str, ...] = (
    "params", "macs", "flops", "elementwise_flops", "activations", "weight_bytes", "latency_s",
)  # fmt: skip


@dataclass(frozen=True)
class Change(Record):
    """One layer rewritten by one op. ``method`` is ``fx`` or ``surgery`` (see docs/modify.md)."""

    name: str
    op: str
    detail: str
    method: str


@dataclass(frozen=True)
class Skip(Record):
    """A layer an op would consider but left unchanged, and why."""

    name: str
    op: str
    reason: str


@dataclass
class Rewrite:
    """The modified model with the record of what was done to it."""

    module: nn.Module
    ops: list[str]
    input_size: tuple[int, ...]  # where residual read shapes: given, else the model's own
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


@dataclass
class Cost(Record):
    """One model's cost at one input and batch size. ``latency_s`` is the median of the
    timed samples, or None with ``latency_reason`` saying why it was not measured."""

    params: int
    macs: int
    flops: int
    elementwise_flops: int
    activations: int
    weight_bytes: int
    latency_s: float | None = None
    latency_reason: str | None = None
    latency_spread: float | None = None
    latency_samples_s: list[float] = field(default_factory=list)


@dataclass
class ModifyResult(Record):
    """The cost of ``model`` before and after ``ops``.

    ``to_dict()`` gives ``{"model", "ops", "before", "after", ...}``; the extra keys are the
    layers pattern, input and batch size, per-field ratios (after / before), the changes,
    the skipped layers and the timing settings when latency was measured.
    """

    model: str
    ops: list[str]
    before: Cost
    after: Cost
    layers: str | None
    input_size: tuple[int, ...]
    batch_size: int
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    timing_settings: dict[str, Any] | None = None

    @property
    def layers_changed(self) -> list[str]:
        return list(dict.fromkeys(c.name for c in self.changes))

    def ratio(self, name: str) -> float | None:
        """``after / before`` for one of :data:`COST_FIELDS`; None when either is unknown or 0."""
        a, b = getattr(self.after, name), getattr(self.before, name)
        return None if a is None or not b else a / b

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ratio": {name: self.ratio(name) for name in COST_FIELDS}}
