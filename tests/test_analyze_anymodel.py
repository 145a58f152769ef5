"""Models users bring that are not in the zoo: tied weights, wrappers, dtypes, upsampling,
ops without arithmetic, lazy modules, distributions. Every model here has real weights
(built on the CPU); the oracle is torch's FlopCounterMode on a meta copy or a figure by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dnnmeter import ModelBuildError, analyze


def torch_macs(model: nn.Module, *args: torch.Tensor, on_cpu: tuple[str, ...] = (), **kwargs: torch.Tensor) -> int:
    """torch's own count (FLOPs = 2 x MACs of products) on a meta copy of ``model``; the
    keyword arguments named in ``on_cpu`` (sequence lengths) stay where they are."""
    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(*[a.to("meta") for a in args], **{k: v if k in on_cpu else v.to("meta") for k, v in kwargs.items()})
    return counter.get_total_flops() // 2


class Tied(nn.Module):
    """A language-model head tied to its embedding (the weight has two names)."""

    def __init__(self, vocab: int = 100, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x.long()))  # also takes the float input an input_size makes


def test_a_module_used_twice_counts_params_once_and_work_twice() -> None:
    shared = nn.Linear(8, 8)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    a = analyze(model, input_size=(8,), batch_size=3)
    assert a.params == 72 and a.complete
    assert a.macs == 2 * 3 * 64 == torch_macs(model, torch.randn(3, 8))
    assert sum(layer.params for layer in a.layers) == 72


def test_an_embedding_tied_to_the_head_is_counted_once() -> None:
    model = Tied()
    a = analyze(model, input_size=(10,))
    assert a.params == 1600 and a.weight_bytes == 1600 * 4
    assert a.macs == 10 * 16 * 100 == torch_macs(model, torch.zeros(1, 10))
    assert a.complete  # the embedding lookup is free, not unsupported


def test_one_module_in_two_parents() -> None:
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Sequential(shared, nn.ReLU()), nn.Sequential(shared))
    a = analyze(model, input_size=(4,))
    assert a.params == 20
    assert a.macs == 32 == torch_macs(model, torch.randn(1, 4))


def test_data_parallel_counts_the_wrapped_module() -> None:
    inner = nn.Sequential(nn.Linear(8, 4), nn.ReLU())
    a = analyze(nn.DataParallel(inner), input_size=(8,), batch_size=2)
    b = analyze(inner, input_size=(8,), batch_size=2)
    assert (a.params, a.macs) == (b.params, b.macs) == (36, 64)
    assert a.layers[0].name == "0"


def test_distributed_data_parallel_counts_the_wrapped_module(tmp_path: Any) -> None:
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        inner = nn.Linear(8, 4)
        a = analyze(nn.parallel.DistributedDataParallel(inner), input_size=(8,))
    finally:
        dist.destroy_process_group()
    assert (a.params, a.macs) == (36, 32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_reduced_and_double_precision_models_count_in_their_dtype(dtype: torch.dtype) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
    reference = analyze(model, input_size=(3, 16, 16))
    a = analyze(model.to(dtype), input_size=(3, 16, 16))
    assert (a.params, a.macs, a.elementwise_flops) == (reference.params, reference.macs, reference.elementwise_flops)
    assert a.macs == torch_macs(model, torch.randn(1, 3, 16, 16, dtype=dtype))
    size = torch.finfo(dtype).bits // 8
    assert a.weight_bytes == (reference.params + 8 * 2) * size + 8  # running stats in dtype, their count int64
    assert a.activation_bytes == a.activations * size
    assert reference.activation_bytes == reference.activations * 4


@pytest.mark.parametrize(("mode", "shape", "per_element"), [
    ("linear", (4, 10), 3), ("bilinear", (3, 8, 8), 7), ("bicubic", (3, 8, 8), 31), ("trilinear", (2, 4, 4, 4), 15)])
def test_interpolation_costs_per_output_element(mode: str, shape: tuple[int, ...], per_element: int) -> None:
    a = analyze(nn.Upsample(scale_factor=2, mode=mode), input_size=shape)
    outputs = shape[0] * 2 ** (len(shape) - 1) * torch.Size(shape[1:]).numel()
    assert a.complete and a.macs == 0
    assert a.elementwise_flops == per_element * outputs


class _NoArithmetic(nn.Module):
    """Padding that copies edges, unpooling, random tensors, a profiler marker."""

    def __init__(self) -> None:
        super().__init__()
        self.reflect, self.replicate = nn.ReflectionPad2d(1), nn.ReplicationPad2d(1)
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.profiler.record_function("marker"):
            x = self.replicate(self.reflect(x))
            y, idx = self.pool(x)
            return self.unpool(y, idx) + torch.randn_like(x) + torch.zeros(x.shape, device=x.device)


def test_ops_without_arithmetic_are_free_not_unsupported() -> None:
    a = analyze(_NoArithmetic(), input_size=(3, 8, 8))
    assert a.unsupported_ops == {}
    pooled, out = 3 * 6 * 6, 3 * 12 * 12
    assert a.elementwise_flops == pooled * 4 + 2 * out  # the pool's comparisons and the two adds


def test_a_lazy_module_is_refused_in_one_line_saying_what_to_do() -> None:
    with pytest.raises(ModelBuildError, match=r"0\.weight is an uninitialised lazy parameter.*run one forward"):
        analyze(nn.Sequential(nn.LazyLinear(4)), input_size=(8,))
    materialised = nn.Sequential(nn.LazyLinear(4))
    materialised(torch.randn(1, 8))
    assert analyze(materialised, input_size=(8,)).macs == 32


class _Gaussian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean(x), 1.0)


def test_a_model_returning_a_distribution_is_counted() -> None:
    before = torch.distributions.Distribution._validate_args
    a = analyze(_Gaussian(), input_size=(8,))
    assert a.macs == 32 and a.params == 36
    assert torch.distributions.Distribution._validate_args == before


@pytest.mark.parametrize(("norm", "per_element"), [
    (nn.LayerNorm(8, elementwise_affine=False), 4), (nn.LayerNorm(8), 5),
    (nn.GroupNorm(2, 4, affine=False), 4), (nn.GroupNorm(2, 4), 5)])
def test_norms_count_the_affine_step_only_with_affine_parameters(norm: nn.Module, per_element: int) -> None:
    shape = (8,) if isinstance(norm, nn.LayerNorm) else (4, 3, 3)
    a = analyze(norm, input_size=shape, batch_size=2)
    assert a.elementwise_flops == per_element * 2 * torch.Size(shape).numel()
