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
from torch.nn.modules import module as nn_module
from torch.utils._python_dispatch import TorchDispatchMode

from dnnmeter.errors import ModelForwardError

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


def _forward(model: nn.Module, x: torch.Tensor, on_meta: bool) -> Any:
    if on_meta:
        return model(x)
    # A model with real weights is counted through meta stand-ins for its tensors, so the
    # user's model is neither copied nor moved (functional_call puts the originals back).
    state = {k: torch.empty_like(v, device="meta") for k, v in model.state_dict(keep_vars=True).items()}
    return torch.func.functional_call(model, state, (x,), strict=False)


def run_on_meta(model: nn.Module, named: list[tuple[str, nn.Module]], mode: ScopedMode, label: str,
                size: tuple[int, ...], batch_size: int, on_meta: bool) -> None:
    """Run ``model`` once on a meta batch inside ``mode``, in eval mode and without grad.

    A failing forward becomes a one-line ModelForwardError naming ``label`` and the input.
    """
    x = torch.empty((batch_size, *size), device="meta")
    with eval_mode(model, [m for _, m in named]), torch.no_grad():
        try:
            with mode:
                _forward(model, x, on_meta)
        except _FORWARD_ERRORS as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelForwardError(f"{label}: forward failed at input {tuple(x.shape)}: {first}") from exc
