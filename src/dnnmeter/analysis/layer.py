"""One row of an analysis: :class:`LayerCost`, and the one definition of FLOPs.

Apart from result.py so that the views over the rows (folding.py) and the analysis that
offers them can both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from dnnmeter._serial import Record


def flops_of(macs: int, elementwise_flops: int = 0) -> int:
    """The one definition of FLOPs: two per MAC, plus element-wise work."""
    return 2 * macs + elementwise_flops


@dataclass(slots=True)
class LayerCost(Record):
    """One leaf module call, or one op run outside any leaf module (``parent:op``).

    ``params`` are the layer's own parameters; rows with ``executed=False`` hold the
    parameters of modules the forward pass never called (e.g. inception_v3's auxiliary
    head in eval mode), so that the rows' parameters always sum to the model's.
    """

    name: str
    kind: str
    type: str
    input_shapes: list[list[int]] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    elementwise_flops: int = 0
    activations: int = 0
    activation_bytes: int = 0  # each output tensor at its own dtype
    executed: bool = True
    backward_macs: int = 0  # mode="train": the part of macs / elementwise_flops run by autograd
    backward_elementwise_flops: int = 0

    _derived: ClassVar[tuple[str, ...]] = ("flops",)

    @property
    def flops(self) -> int:
        return flops_of(self.macs, self.elementwise_flops)
