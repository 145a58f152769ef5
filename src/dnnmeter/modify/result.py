"""What a modification returns: the changes made, the layers left alone, and the costs.

:class:`Change` and :class:`Skip` are recorded per layer and per op; :class:`Cost` holds one
model's static figures (from :func:`dnnmeter.analysis.analyze`) and, when measured, its
latency; :class:`ModifyResult` puts the model before and after side by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

# The figures compared before and after; ratios are after / before.
COST_FIELDS: tuple[str, ...] = (
    "params", "macs", "flops", "elementwise_flops", "activations", "weight_bytes", "latency_s",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One layer rewritten by one op. ``method`` is ``fx`` or ``surgery`` (see docs/modify.md)."""

    name: str
    op: str
    detail: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skip:
    """A layer an op would consider but left unchanged, and why."""

    name: str
    op: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rewrite:
    """The modified model with the record of what was done to it."""

    module: nn.Module
    ops: list[str]
    input_size: tuple[int, ...]  # where residual read shapes: given, else the model's own
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


@dataclass
class Cost:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModifyResult:
    """The cost of ``model`` before and after ``ops``.

    ``to_dict()`` gives ``{"model", "ops", "before", "after", ...}``; the extra keys are the
    layers pattern, input and batch size, per-field ratios (after / before), the changes,
    the skipped layers and the timing settings when latency was measured.
    """

    model: str
    ops: list[str]
    layers: str | None
    input_size: tuple[int, ...]
    batch_size: int
    before: Cost
    after: Cost
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
        return {
            "model": self.model,
            "ops": list(self.ops),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "ratio": {name: self.ratio(name) for name in COST_FIELDS},
            "layers": self.layers,
            "input_size": list(self.input_size),
            "batch_size": self.batch_size,
            "changes": [c.to_dict() for c in self.changes],
            "skipped": [s.to_dict() for s in self.skipped],
            "timing_settings": self.timing_settings,
        }
