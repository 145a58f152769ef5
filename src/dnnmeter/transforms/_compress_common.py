"""Helpers shared by quantization and pruning: data, sizes, timing, accuracy.

Both sweeps do the same things around their own modification: open the evaluation data,
take a few batches of it (calibration, output comparison), measure a module's serialized
size and its latency with the same thread count, and score it with
:func:`dnnmeter.accuracy.evaluate`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from dnnmeter.errors import InvalidInputError
from dnnmeter.measure.threads import torch_threads

DEFAULT_INPUT_SIZE = 64  # the tiny family's own size (docs/conventions.md)


def open_dataset(data: str | Dataset, input_size: int | None) -> Dataset:  # type: ignore[type-arg]
    """A Dataset as is; a folder or ``"digits"`` opened as dnnmeter.evaluate opens it."""
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, str):
        raise InvalidInputError(f"data {data!r}: give a folder, 'digits' or a torch Dataset")
    from dnnmeter.data import eval_transform, open_data

    size = input_size or DEFAULT_INPUT_SIZE
    return open_data(data, eval_transform(size), size)  # type: ignore[return-value]


def batches(dataset: Dataset, n_batches: int, batch_size: int = 32) -> list[torch.Tensor]:  # type: ignore[type-arg]
    """The first ``n_batches`` image batches, spread evenly over the data set (a class-sorted
    folder would otherwise give one class only)."""
    n = min(len(dataset), n_batches * batch_size)  # type: ignore[arg-type]
    total = len(dataset)  # type: ignore[arg-type]
    indices = [i * total // n for i in range(n)] if n else []
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False)
    return [images for images, _ in loader]


def input_size_of(example: torch.Tensor) -> tuple[int, ...]:
    """(C, H, W) of one batch, as dnnmeter.analysis expects it."""
    return tuple(int(d) for d in example.shape[1:])


def used_state_dict(module: nn.Module) -> dict[str, Any]:
    """The state dict, without tensors a traced graph no longer uses.

    torchao's pt2e conversion adds int8 copies of the weights (``_frozen_param*``) but
    leaves the float originals registered; counting both would make int8 look larger than
    float. For a graph module only what its ``get_attr`` and ``call_module`` nodes reach is
    kept; a ``torch.compile`` wrapper is looked through.
    """
    inner = getattr(module, "_orig_mod", module)
    state = inner.state_dict()
    if not isinstance(inner, torch.fx.GraphModule):
        return state
    used = {str(n.target) for n in inner.graph.nodes if n.op in ("get_attr", "call_module")}
    for key in [k for k in state if k not in used and not any(k.startswith(u + ".") for u in used)]:
        del state[key]  # in place, so the state dict keeps its version metadata as torch.save sees it
    return state


def serialized_bytes(module: nn.Module) -> int:
    """Bytes of ``torch.save`` of the (used) state dict: what storing the model costs, measured.

    Quantized modules keep packed int8 weights in their state dict, so this is honest for
    them too (the int8 weights and their scales, not a float copy)."""
    buffer = io.BytesIO()
    torch.save(used_state_dict(module), buffer)
    return len(buffer.getvalue())


@dataclass(frozen=True)
class Latency:
    """A median latency in seconds, or None with the reason it was not measured."""

    latency_s: float | None
    reason: str | None = None
    threads: int | None = None


def measure_latency(module: nn.Module, example: torch.Tensor, n_threads: int | None,
                    budget_s: float = 1.0) -> Latency:
    """Median seconds per forward of ``example`` with dnnmeter's timing loop, in process."""
    from dnnmeter.measure.timing import TimingSettings, time_calls

    settings = TimingSettings(time_budget_s=budget_s, warmup_s=min(0.2, budget_s / 4), min_samples=5)
    with torch_threads(n_threads), torch.inference_mode():
        timing = time_calls(lambda: module(example), settings)
        used = torch.get_num_threads()
    return Latency(timing.median_s, None, used)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for the block; its mode is restored after."""
    was_training = module.training
    try:
        module.eval()
        yield module
    finally:
        module.train(was_training)


def outputs(module: nn.Module, inputs: list[torch.Tensor]) -> torch.Tensor:
    """The module's outputs on ``inputs``, concatenated (float, CPU)."""
    with eval_mode(module), torch.inference_mode():
        return torch.cat([_as_tensor(module(x)).float() for x in inputs])


def _as_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, (tuple, list)):
        output = output[0]
    return getattr(output, "logits", output)  # type: ignore[no-any-return]


def top1(module: nn.Module, dataset: Dataset, limit: int | None, batch_size: int = 64) -> float | None:  # type: ignore[type-arg]
    """Top-1 accuracy by dnnmeter.evaluate (the caller's module is restored by it)."""
    from dnnmeter.accuracy import evaluate

    return evaluate(module, dataset, limit=limit, batch_size=batch_size).top1


def check_fraction(value: float, name: str) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise InvalidInputError(f"{name} {value!r} must be a fraction in [0, 1), e.g. 0.5")
    return float(value)
