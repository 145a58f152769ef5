"""One forward pass on the meta device under a dispatch mode that knows which module runs.

Shared by the cost counter (analysis/counter.py) and the hardware model's layer recorder
(hardware/layers.py): both see every aten op and attribute it to the running module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution
from torch.nn.parameter import UninitializedTensorMixin
from torch.nn.modules import module as nn_module
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from dnnmeter.analysis.inputs import Inputs, TensorSpec, describe, model_dtype
from dnnmeter.analysis.train_memory import MemoryTracker, TrainingMemory, assemble, optimizer_step
from dnnmeter.errors import ModelBuildError, ModelForwardError

# Errors a model's forward raises for a bad input (too small, wrong channels, ...).
_FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, AssertionError, IndexError, NotImplementedError)


class ScopedMode(TorchDispatchMode):
    """A dispatch mode with global module hooks: subclasses define ``_pre_hook`` and
    ``_post_hook`` (forward pre-hook and always-called forward hook signatures)."""

    _hooks: list[Any]

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps every mode's __torch_dispatch__ in a "disable dynamo" frame, which
        # costs about as much as the rest of the mode per op; nothing here is compiled.
        return False

    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        raise NotImplementedError

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._hooks = [
            nn_module.register_module_forward_pre_hook(self._pre_hook),
            nn_module.register_module_forward_hook(self._post_hook, always_call=True),
        ]
        try:
            return super().__enter__()
        except BaseException:
            self._remove_hooks()
            raise

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in getattr(self, "_hooks", []):
            handle.remove()
        self._hooks = []


@contextlib.contextmanager
def eval_mode(model: nn.Module, modules: list[nn.Module]) -> Iterator[None]:
    """``model`` in eval mode; the modules that were training are put back afterwards."""
    training = [m for m in modules if m.training]
    if training:
        model.eval()
    try:
        yield
    finally:
        for m in training:
            m.training = True


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside nn.DataParallel / DistributedDataParallel wrappers: the wrappers
    only scatter the batch, and torch.func refuses to reparameterise them."""
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def check_materialised(model: nn.Module, label: str) -> None:
    """Lazy modules have no parameter shapes until a real forward: refuse them in one line."""
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if isinstance(t, UninitializedTensorMixin):
            raise ModelBuildError(
                f"{label}: {name} is an uninitialised lazy parameter (nn.Lazy* module); run one forward "
                "on a real input first to materialise it, then count the model"
            )


@contextlib.contextmanager
def train_mode(model: nn.Module, modules: list[nn.Module]) -> Iterator[None]:
    """``model`` in train mode; the modules that were evaluating are put back afterwards."""
    evaluating = [m for m in modules if not m.training]
    model.train()
    try:
        yield
    finally:
        for m in evaluating:
            m.training = False


def _meta_state(model: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    # One name per tensor: named_parameters/named_buffers drop the second name of a tied
    # weight (an embedding shared with the output head, a module used twice), and
    # functional_call ties the other names to it; giving both would be an error. A stand-in
    # needs a gradient where its parameter does (frozen ones get none in mode="train").
    # With ``dtype``, floating tensors take it (the model is counted as if cast).
    def like(v: torch.Tensor) -> torch.Tensor:
        cast = dtype if dtype is not None and v.is_floating_point() else v.dtype
        return torch.empty_like(v, device="meta", dtype=cast)

    state = {k: like(v).requires_grad_(v.requires_grad) for k, v in model.named_parameters()}
    state.update({k: like(v) for k, v in model.named_buffers()})
    return state


def _backward(out: Any, label: str) -> None:
    """Backpropagate a gradient of the outputs' shape through autograd, on the meta device."""
    roots = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.requires_grad]
    if not roots:
        raise ModelForwardError(f"{label}: no output needs a gradient (every parameter frozen, or the output "
                                "is not a tensor), so a training step has nothing to count; use mode='inference'")
    torch.autograd.backward(roots, [torch.empty_like(t) for t in roots])


def _forward(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             state: dict[str, torch.Tensor] | None) -> Any:
    if state is None:
        return model(*args, **kwargs)
    # A model with real weights is counted through meta stand-ins for its tensors, so the
    # user's model is neither copied nor moved (functional_call puts the originals back).
    return torch.func.functional_call(model, state, args, kwargs, strict=False)


@contextlib.contextmanager
def _no_distribution_checks() -> Iterator[None]:
    """torch.distributions validates its arguments by reading their values, which meta
    tensors have not; a model returning a distribution is counted without the check."""
    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(before)


def _first_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if any(m in first for m in ("cannot be called on meta tensors", "on a meta tensor", "out of meta tensor")):
        return (f"{first} (the forward reads a tensor's value, e.g. .item() or an if on a tensor, which a "
                "count on the meta device cannot; make that branch depend on shapes only)")
    return first


def run_on_meta(model: nn.Module, named: list[tuple[str, nn.Module]], mode: ScopedMode, label: str,
                size: tuple[int, ...], batch_size: int, on_meta: bool, inputs: Inputs | None = None,
                train: bool = False, dtype: torch.dtype | None = None,
                optimizer: str | None = None) -> TrainingMemory | None:
    """Run ``model`` once on meta inputs inside ``mode``, in eval mode and without grad;
    with ``train``, in train mode and then backward through autograd (``mode`` needs
    ``start_tracking``, ``begin_backward`` and ``where``, as CostCounter has); with
    ``optimizer`` as well, then one optimizer step, following the memory of it all.

    The inputs are ``inputs``, else one tensor of ``(batch_size, *size)``; a spec without a
    dtype takes ``dtype``, else the model's. A failing forward becomes a one-line
    ModelForwardError naming ``label`` and the input.
    """
    check_materialised(model, label)
    inputs = inputs or Inputs((TensorSpec((batch_size, *size)),))
    tensors = [t for _, m in named for t in [*m._parameters.values(), *m._buffers.values()] if t is not None]
    dtype = dtype or model_dtype(tensors)
    args, kwargs = inputs.meta(dtype)
    # in training, a meta-built model gets stand-ins too: its own .grad stays as it was
    stand_ins = None if on_meta and not train and dtype == model_dtype(tensors) else _meta_state(model, dtype)
    tracker = None
    if optimizer is not None:
        resident = [*(stand_ins or {}).values(), *tree_leaves((args, kwargs))]
        tracker = MemoryTracker(mode.where_name, [t for t in resident if isinstance(t, torch.Tensor)])  # type: ignore[attr-defined]
    modules = [m for _, m in named]
    state = train_mode(model, modules) if train else eval_mode(model, modules)
    with state, torch.enable_grad() if train else torch.no_grad(), _no_distribution_checks():
        try:
            with tracker or contextlib.nullcontext(), mode:
                if train:
                    mode.start_tracking()  # type: ignore[attr-defined]
                with tracker.saving() if tracker else contextlib.nullcontext():
                    out = _forward(model, args, kwargs, stand_ins)
                if train:
                    mode.begin_backward()  # type: ignore[attr-defined]
                    if tracker:
                        tracker.phase = "backward"
                    _backward(out, label)
            if tracker:
                del out  # the outputs and their graph are freed before the step, as a training loop does
                with tracker:
                    tracker.phase = "optimizer step"
                    state_bytes = optimizer_step(optimizer, list((stand_ins or {}).values()))  # type: ignore[arg-type]
                names = {k for k, _ in model.named_parameters()}
                params = {k: t for k, t in (stand_ins or {}).items() if k in names}
                buffers = [t for k, t in (stand_ins or {}).items() if k not in names]
                return assemble(tracker, params, buffers, (args, kwargs), state_bytes, optimizer,  # type: ignore[arg-type]
                                dtype, batch_size)
        except _FORWARD_ERRORS as exc:
            raise ModelForwardError(f"{label}: forward failed at input {describe(inputs)}: {_first_line(exc)}") from exc
    return None
