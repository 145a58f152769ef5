"""What a static count returns: :class:`Analysis`, with one :class:`LayerCost` per layer
(analysis/layer.py), folded to a depth or ranked by cost on request (analysis/folding.py).

Conventions (docs/conventions.md): a MAC is one multiply-accumulate of a convolution,
linear, matmul or attention product; ``flops = 2 * macs + elementwise_flops``, where the
element-wise work (norms, activations, pooling, additions) is also reported on its own.
Activations are elements (not bytes) of the layers' outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from dnnmeter._serial import Record, to_dict
from dnnmeter.analysis import folding
from dnnmeter.analysis.layer import LayerCost, flops_of
from dnnmeter.analysis.train_memory import TrainingMemory
from dnnmeter.zoo.registry import Published

# The kinds a layer can have, in the order tables list them.
KINDS: tuple[str, ...] = (
    "conv",
    "depthwise_conv",
    "linear",
    "matmul",  # matmul and attention products (bmm, sdpa)
    "norm",
    "activation",
    "pool",
    "other",
)


@dataclass
class KindTotals(Record):
    params: int = 0
    macs: int = 0
    flops: int = 0
    layers: int = 0


@dataclass
class _ModelCount(Record):
    """The fields an analysis and its stored summary begin with: what was counted and its totals."""

    model: str
    input_size: tuple[int, ...]
    batch_size: int
    params: int
    trainable_params: int
    macs: int


@dataclass
class Analysis(_ModelCount):
    """The static cost of one model at one input size and batch size.

    ``macs``/``flops`` are for the whole batch. ``unsupported_ops`` maps ops the counter has
    no formula for to how many times they ran: their cost is not in the totals, which are
    then lower bounds (``complete`` is False).
    """

    elementwise_flops: int
    activations: int
    weight_bytes: int
    layers: list[LayerCost]
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    source: str = ""
    published: Published | None = None
    counted_by: str = "dnnmeter (meta device)"
    activation_bytes: int = 0  # the activations at each tensor's own dtype
    inputs: str = ""  # the forward's inputs as specs, e.g. "ids=1x128:int64, mask=1x128:bool"
    mode: str = "inference"  # or "train": macs and flops are then forward + backward
    backward_macs: int = 0
    backward_elementwise_flops: int = 0
    training_memory: TrainingMemory | None = None  # mode="train" with an optimizer

    _derived: ClassVar[tuple[str, ...]] = ("flops", "complete", "by_kind")

    @property
    def flops(self) -> int:
        return flops_of(self.macs, self.elementwise_flops)

    @property
    def complete(self) -> bool:
        """True when every op was costed; False when ``unsupported_ops`` left some work out."""
        return not self.unsupported_ops

    @property
    def by_kind(self) -> dict[str, KindTotals]:
        totals = {kind: KindTotals() for kind in KINDS}
        for layer in self.layers:
            t = totals[layer.kind]
            t.params += layer.params
            t.macs += layer.macs
            t.flops += layer.flops
            t.layers += 1 if layer.executed else 0
        return totals

    def conv_vs_fc(self) -> dict[str, KindTotals]:
        """The seed study's split: convolutions (incl. depthwise) against fully connected."""
        kinds = self.by_kind
        conv = KindTotals()
        for k in ("conv", "depthwise_conv"):
            conv.params += kinds[k].params
            conv.macs += kinds[k].macs
            conv.flops += kinds[k].flops
            conv.layers += kinds[k].layers
        return {"conv": conv, "fc": kinds["linear"]}

    def to_dict(self, per_layer: bool = True) -> dict[str, Any]:
        d = super().to_dict()
        layers = d.pop("layers")
        d["layers"] = layers if per_layer else []  # last: the long list after the totals
        return d

    def fold(self, depth: int) -> list[folding.FoldedRow]:
        """The rows folded into their parent modules cut to ``depth`` names (1: the model's
        children), each with its share of the params and MACs; they sum to the totals."""
        return folding.fold(self, depth)

    def top_layers(self, k: int) -> list[folding.RankedLayer]:
        """The ``k`` rows with the most MACs, ranked, each with its shares of the totals."""
        return folding.top_layers(self, k)

    def summary(self) -> AnalysisSummary:
        """The totals without the layers, as a study stores them (per-kind sums kept)."""
        return AnalysisSummary.from_dict({**self.to_dict(per_layer=False), "conv_vs_fc": to_dict(self.conv_vs_fc())})


@dataclass
class AnalysisSummary(_ModelCount):
    """An :class:`Analysis` as a study stores it: its totals, per-kind sums and the
    conv-vs-fc split, without the per-layer rows (``layers`` is empty)."""

    flops: int
    elementwise_flops: int
    activations: int
    weight_bytes: int
    source: str = ""
    by_kind: dict[str, KindTotals] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    published: Published | None = None
    counted_by: str = "dnnmeter (meta device)"
    activation_bytes: int = 0
    inputs: str = ""
    mode: str = "inference"
    backward_macs: int = 0
    backward_elementwise_flops: int = 0
    training_memory: TrainingMemory | None = None
    layers: list[LayerCost] = field(default_factory=list)
    conv_vs_fc: dict[str, KindTotals] = field(default_factory=dict)

    _derived: ClassVar[tuple[str, ...]] = ("complete",)

    @property
    def complete(self) -> bool:
        """False when ``unsupported_ops`` left work out of the totals (also for older stores)."""
        return not self.unsupported_ops
