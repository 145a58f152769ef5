"""What kind of layer a module is, for the by-kind and conv-versus-FC summaries."""

from __future__ import annotations

from torch import nn
from torch.nn.modules import activation, batchnorm, conv, instancenorm, normalization, pooling

_NORMS = (batchnorm._NormBase, normalization.LayerNorm, normalization.GroupNorm,
          normalization.LocalResponseNorm, normalization.RMSNorm, instancenorm._InstanceNorm)


def module_kind(module: nn.Module) -> str:
    """The kind a module's class says it is; the ops it runs may refine it (a conv whose
    groups equal its input channels is depthwise)."""
    if isinstance(module, conv._ConvNd):
        if module.groups > 1 and module.groups == module.in_channels:
            return "depthwise_conv"
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.MultiheadAttention):
        return "matmul"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, pooling.__dict__.get("_MaxPoolNd", ())) or type(module).__module__ == pooling.__name__:
        return "pool"
    if type(module).__module__ == activation.__name__:
        return "activation"
    return "other"


def resolve_kind(declared: str, macs_by_kind: dict[str, int], ew_by_kind: dict[str, int]) -> str:
    """A row's kind: where its MACs went, else what its module is, else its element-wise work."""
    if macs_by_kind:
        return max(macs_by_kind, key=macs_by_kind.__getitem__)
    if declared != "other":
        return declared
    if ew_by_kind:
        return max(ew_by_kind, key=ew_by_kind.__getitem__)
    return declared
