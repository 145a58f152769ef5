"""Training memory at a batch size, dtype and optimizer, from one step run on the meta device.

Nothing here is a rule of thumb: the step is run (forward, backward, optimizer step) on
meta stand-ins, and

* the activations saved for backward are the tensors autograd packs
  (``torch.autograd.graph.saved_tensors_hooks``), each storage once, parameters excluded;
* gradients and optimizer state are the tensors the step leaves on the stand-ins
  (``.grad`` and the real ``torch.optim`` optimizer's state);
* the peak is the most bytes alive at once, following every tensor storage the step
  allocates until autograd or the optimizer frees it, on top of the weights, buffers and
  inputs already resident.

It is the memory of tensors, what CUDA's ``max_memory_allocated`` reports; a process needs
more (its runtime, and on the CPU whatever the C allocator keeps after a free: see
docs/conventions.md and BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from dnnmeter._serial import Record
from dnnmeter.errors import InvalidInputError
from dnnmeter.names import MEMORY_OPTIMIZERS

# name -> how to build it over the stand-ins' trainable parameters (lr is irrelevant to memory)
OPTIMIZERS: dict[str, Callable[[list[torch.Tensor]], torch.optim.Optimizer]] = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3),
}
assert tuple(OPTIMIZERS) == MEMORY_OPTIMIZERS  # the CLI's choices (dnnmeter.names)


def check_optimizer(name: str) -> str:
    key = name.lower()
    if key not in OPTIMIZERS:
        raise InvalidInputError(f"unknown optimizer {name!r}: give one of {', '.join(OPTIMIZERS)}")
    return key


@dataclass
class LayerMemory(Record):
    """One layer's share: its own parameters' weights, gradients and optimizer state, and the
    activations autograd saved while it ran."""

    name: str
    weight_bytes: int = 0
    gradient_bytes: int = 0
    optimizer_state_bytes: int = 0
    saved_activation_bytes: int = 0


@dataclass
class TrainingMemory(Record):
    """The memory of one training step (``analyze(..., mode="train", optimizer=...)``).

    ``peak_bytes`` is the most tensor memory alive at once, during ``peak_phase``
    ("forward", "backward" or "optimizer step"); it includes ``resident_bytes`` (weights,
    buffers and inputs, alive throughout) and ``optimizer_state_bytes`` only once the step
    has made that state (the first step: afterwards it stays, see ``steady_peak_bytes``).
    """

    optimizer: str
    dtype: str
    batch_size: int
    weight_bytes: int  # parameters
    buffer_bytes: int
    input_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int
    saved_activation_bytes: int
    peak_bytes: int
    peak_phase: str
    steady_peak_bytes: int = 0  # a later step's peak: the optimizer state alive from its start
    layers: list[LayerMemory] = field(default_factory=list)

    _derived: ClassVar[tuple[str, ...]] = ("resident_bytes",)

    @property
    def resident_bytes(self) -> int:
        return self.weight_bytes + self.buffer_bytes + self.input_bytes


def _nbytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


class MemoryTracker(TorchDispatchMode):
    """Follows every storage an op allocates until it is freed: live and peak bytes, and the
    activations autograd saves, per layer (``where`` names the running layer)."""

    def __init__(self, where: Callable[[], str], excluded: list[torch.Tensor]) -> None:
        super().__init__()
        self.where = where
        self.live = 0
        self.peak = 0
        self.phase = "forward"
        self.peak_phase = "forward"
        self.phase_peaks: dict[str, int] = {}
        self._seen: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._saved: WeakIdKeyDictionary = WeakIdKeyDictionary()
        for t in excluded:  # weights, buffers and inputs: resident, counted apart
            self._saved[t.untyped_storage()] = True
            self._seen[t.untyped_storage()] = True
        self.saved_by_layer: dict[str, int] = {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False

    def _free(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "meta":
                storage = t.untyped_storage()
                if storage not in self._seen:
                    n = storage.nbytes()
                    self._seen[storage] = n
                    self.live += n
                    weakref.finalize(storage, self._free, n)
        if self.live > self.peak:
            self.peak, self.peak_phase = self.live, self.phase
        if self.live > self.phase_peaks.get(self.phase, 0):
            self.phase_peaks[self.phase] = self.live
        return out

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        if t.device.type == "meta":
            storage = t.untyped_storage()
            if storage not in self._saved:
                self._saved[storage] = True
                name = self.where()
                self.saved_by_layer[name] = self.saved_by_layer.get(name, 0) + storage.nbytes()
        return t

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Record what autograd saves for backward while the forward runs."""
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t):
            yield


def optimizer_step(name: str, params: list[torch.Tensor]) -> dict[int, int]:
    """Run one step of optimizer ``name`` over stand-ins that hold gradients; the bytes of
    state it made for each parameter (by id)."""
    trained = [p for p in params if p.grad is not None]
    if not trained:
        return {}
    optimizer = OPTIMIZERS[name](trained)
    optimizer.step()
    return {id(p): sum(_nbytes(s) for s in optimizer.state[p].values()
                       if isinstance(s, torch.Tensor) and s.device.type == "meta") for p in trained}


def total_bytes(tensors: Any) -> int:
    seen: dict[int, int] = {}
    for t in tree_leaves(tensors):
        if isinstance(t, torch.Tensor) and t.device.type == "meta":
            seen.setdefault(t.untyped_storage()._cdata, _nbytes(t))
    return sum(seen.values())



def assemble(tracker: MemoryTracker, params: dict[str, torch.Tensor], buffers: list[torch.Tensor], inputs: Any,
             state_bytes: dict[int, int], optimizer: str, dtype: torch.dtype, batch_size: int) -> TrainingMemory:
    """The step's figures, per layer (a parameter belongs to the module that registers it
    first, as in the analysis's rows; saved activations to the layer that ran)."""
    layers: dict[str, LayerMemory] = {}
    for key, t in params.items():
        module = key.rpartition(".")[0]
        layer = layers.setdefault(module, LayerMemory(module))
        layer.weight_bytes += _nbytes(t)
        layer.gradient_bytes += _nbytes(t.grad) if t.grad is not None else 0
        layer.optimizer_state_bytes += state_bytes.get(id(t), 0)
    for name, n in tracker.saved_by_layer.items():
        layers.setdefault(name, LayerMemory(name)).saved_activation_bytes += n
    rows = list(layers.values())
    weights, buffer_bytes, input_bytes = sum(r.weight_bytes for r in rows), total_bytes(buffers), total_bytes(inputs)
    state = sum(r.optimizer_state_bytes for r in rows)
    resident = weights + buffer_bytes + input_bytes
    # later steps: the state is alive through the forward and backward too (the optimizer's
    # own phase already held it in the first step)
    before_step = max((n for phase, n in tracker.phase_peaks.items() if phase != "optimizer step"), default=0)
    steady = resident + max(before_step + state, tracker.phase_peaks.get("optimizer step", 0))
    return TrainingMemory(
        optimizer=optimizer, dtype=str(dtype).removeprefix("torch."), batch_size=batch_size,
        weight_bytes=weights, buffer_bytes=buffer_bytes, input_bytes=input_bytes,
        gradient_bytes=sum(r.gradient_bytes for r in rows),
        optimizer_state_bytes=state,
        saved_activation_bytes=sum(r.saved_activation_bytes for r in rows),
        peak_bytes=resident + tracker.peak, peak_phase=tracker.peak_phase, steady_peak_bytes=steady, layers=rows,
    )
