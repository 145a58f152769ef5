"""The counting pass: run the forward on the meta device and cost every aten op.

A ``TorchDispatchMode`` sees each aten op after torch has decomposed the composite ones
(so fused kernels such as attention cannot hide work) and before the meta kernel computes
its output shape. Global module hooks tell which module is running, so every op is
attributed to the innermost leaf module, or, when it runs directly in a parent's
``forward`` (``x + identity``, ``torch.flatten``), to a row of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dnnmeter.analysis import backward_formulas as _backward_formulas  # noqa: F401  (registers them)
from dnnmeter.analysis import fast_shapes
from dnnmeter.analysis.formulas import COPY_OPS, FORMULAS, FREE_OPS, Cost
from dnnmeter.analysis.kinds import module_kind
from dnnmeter.analysis.meta_pass import ScopedMode
from dnnmeter.analysis.result import LayerCost

_FREE, _FORMULA, _UNKNOWN, _COPY = 0, 1, 2, 3
COPY_KIND = "copy"


def _shape_args(args: Any) -> tuple[Any, ...]:
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(tuple(a.shape))
        elif isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor):
            out.append([tuple(t.shape) for t in a])
        else:
            out.append(a)
    return tuple(out)


def _out_shape(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    if isinstance(out, (list, tuple)):
        return tuple(_out_shape(o) for o in out)
    return ()


def _tensor_shapes(values: Any) -> list[list[int]]:
    if isinstance(values, torch.Tensor):
        return [list(values.shape)]
    if isinstance(values, (list, tuple)):
        return [s for v in values for s in _tensor_shapes(v)]
    if isinstance(values, dict):
        return [s for v in values.values() for s in _tensor_shapes(v)]
    return []


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    if isinstance(values, torch.Tensor):
        yield values
    elif isinstance(values, (list, tuple)):
        for v in values:
            yield from _tensors(v)
    elif isinstance(values, dict):
        for v in values.values():
            yield from _tensors(v)


def _numel(values: Any) -> int:
    return sum(t.numel() for t in _tensors(values))


def _nbytes(values: Any) -> int:
    return sum(t.numel() * t.element_size() for t in _tensors(values))


def _new_tensors(output: Any, inputs: Any, computed: bool) -> list[torch.Tensor]:
    """A layer's outputs that are new activations. An output sharing storage with an
    input, from a layer that computed nothing, is that input passed through or viewed
    (Identity, eval Dropout, DropPath, Flatten, Permute): not new. A layer that computed
    in place (ReLU(inplace=True)) made new values and counts."""
    if computed:
        return list(_tensors(output))
    sources = list(_tensors(inputs))
    # _is_alias_of compares storages, which meta tensors have too (their data_ptr is 0).
    return [t for t in _tensors(output) if not any(torch._C._is_alias_of(t, s) for s in sources)]


_PACK = torch.ops.aten._pack_padded_sequence.default


def _pack_at_full_length(x: torch.Tensor, lengths: torch.Tensor, batch_first: bool) -> Any:
    """torch packs sequences by reading their lengths, which a meta tensor has not: every
    sequence is packed at full length, the most work any lengths allow. (Lengths given as a
    CPU tensor, through analysis.inputs.Inputs, are read and counted exactly.)"""
    warnings.warn("packed sequences are counted at full length: their lengths are not known on the meta "
                  "device", stacklevel=2)
    steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    data = torch.empty((steps * batch, *x.shape[2:]), dtype=x.dtype, device="meta")
    return data, torch.full((steps,), batch, dtype=torch.int64)  # batch_sizes live on the CPU, as torch's


@dataclass(slots=True)
class Row:
    """One leaf module call's cost as it is counted (a LayerCost and its per-kind sums)."""

    layer: LayerCost
    scope: str
    macs_by_kind: dict[str, int] = field(default_factory=dict)
    ew_by_kind: dict[str, int] = field(default_factory=dict)
    computed: bool = False  # ran an op that is not free (costed, or unsupported)


class CostCounter(ScopedMode):
    """Counts the cost of the ops run inside it, attributed to the model's layers."""

    def __init__(self, named_modules: list[tuple[str, nn.Module]], fast_shapes: bool = True,
                 copies: bool = False) -> None:
        super().__init__()
        self.fast_shapes = fast_shapes
        # copies=True: each call of a copying free op (formulas.COPY_OPS) gets a row of kind
        # "copy", for the latency predictor; off, counting is exactly what it always was.
        self.copies = copies
        self.names = {id(m): name for name, m in named_modules}
        self.leaves = {id(m) for _, m in named_modules if not m._modules}
        self.rows: list[Row] = []
        self.unsupported: dict[str, int] = {}
        self._stack: list[tuple[str, Row | None]] = []
        self.calls: dict[str, int] = {}  # module name -> calls so far (a module may run twice)
        self._handlers: dict[Any, tuple[int, Any]] = {}
        # Training (mode="train"): which row made each autograd node, so that the backward
        # ops a node runs are charged to the layer whose forward made it.
        self.track_nodes = False
        self._pending: list[tuple[Any, tuple[str, Row | None]]] = []
        self._in_backward = False
        self._backward_at: tuple[str, Row | None] | None = None

    # -- module tracking -------------------------------------------------------------------
    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        if name is None:  # a module built inside forward: attribute to the caller
            self._stack.append((self._stack[-1][0] if self._stack else "", None))
            return
        count = self.calls.get(name, 0) + 1
        self.calls[name] = count
        row = None
        if id(module) in self.leaves:
            label = name if count == 1 else f"{name}#{count}"
            row = Row(
                LayerCost(name=label, kind=module_kind(module), type=type(module).__name__,
                          input_shapes=_tensor_shapes(args)),
                scope=name,
            )
            self.rows.append(row)
        self._stack.append((name, row))

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if not self._stack:
            return
        _, row = self._stack.pop()
        if row is not None:
            row.layer.output_shapes = _tensor_shapes(output)
            new = _new_tensors(output, args, row.computed)
            row.layer.activations = _numel(new)
            row.layer.activation_bytes = _nbytes(new)

    # -- op counting -----------------------------------------------------------------------
    def _handler(self, func: Any) -> tuple[int, Any]:
        packet = func.overloadpacket
        formula = FORMULAS.lookup(packet)
        if formula is not None:
            handler = (_FORMULA, formula)
        elif packet in COPY_OPS and self.copies and packet not in FORMULAS:  # not ignored by the user
            handler = (_COPY, None)
        elif packet in FREE_OPS or packet in FORMULAS:  # registered as None: ignored
            handler = (_FREE, None)
        else:
            handler = (_UNKNOWN, None)
        self._handlers[func] = handler
        return handler

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is _PACK and args[1].is_meta:
            out = _pack_at_full_length(*args)
        else:
            out = fast_shapes.run(func, args, kwargs, self.fast_shapes)
        handler = self._handlers.get(func) or self._handler(func)
        if self.track_nodes:
            self._tag_nodes()
        if handler[0] == _COPY and not self._in_backward:
            self._copy_row(func, args, out)
        if handler[0] in (_FREE, _COPY):
            if self.track_nodes:
                self._pending.append((out, self._where()))
            return out
        if handler[0] == _FORMULA:
            cost = handler[1](*_shape_args(args), out=_out_shape(out))
        else:
            name = str(func.overloadpacket.__name__)
            self.unsupported[name] = self.unsupported.get(name, 0) + 1
            cost = Cost(0, 0, "other")
        row = self._charge(func, args, out, cost)
        if self.track_nodes:
            self._pending.append((out, (row.scope, row)))
        return out

    # -- training: attribute backward ops to the forward's rows ------------------------------
    def _where(self) -> tuple[str, Row | None]:
        if self._in_backward:
            return self._backward_at or ("", None)
        return self._stack[-1] if self._stack else ("", None)

    def where_name(self) -> str:
        """The running layer's row name (for the memory tracker's saved activations)."""
        scope, row = self._where()
        return row.layer.name if row is not None else (scope or "(model)")

    def _tag_nodes(self) -> None:
        """Outputs of earlier ops have their autograd nodes by now: hook each node so
        that the ops it runs in the backward are charged to the row that made it."""
        for out, where in self._pending:
            for t in _tensors(out):
                node = t.grad_fn
                if node is not None and node not in self._nodes:
                    self._nodes[node] = where
                    node.register_prehook(self._enter_node(where))
                    node.register_hook(self._leave_node)
        self._pending.clear()

    def _enter_node(self, where: tuple[str, Row | None]) -> Any:
        def hook(grad_outputs: Any) -> None:
            self._backward_at = where

        return hook

    def _leave_node(self, grad_inputs: Any, grad_outputs: Any) -> None:
        self._backward_at = None

    def begin_backward(self) -> None:
        self._tag_nodes()
        self._in_backward = True

    def start_tracking(self) -> None:
        self.track_nodes = True
        self._nodes: dict[Any, tuple[str, Row | None]] = {}

    def _op_row(self, scope: str, func: Any, args: Any, out: Any, kind: str, made: Any) -> Row:
        """A row of its own for one aten op call (``made``: its outputs that are new activations)."""
        op = func.overloadpacket.__name__
        label = f"{scope}:{op}" if scope else op
        label += " (backward)" if self._in_backward else ""
        row = Row(
            LayerCost(name=label, kind=kind, type=f"aten.{op}",
                      input_shapes=_tensor_shapes(args), output_shapes=_tensor_shapes(out),
                      activations=_numel(made), activation_bytes=_nbytes(made)),
            scope=scope,
        )
        self.rows.append(row)
        return row

    def _copy_row(self, func: Any, args: Any, out: Any) -> None:
        """A copy always gets a row of its own, even inside a leaf module (a ChannelShuffle, a
        block's cat): the leaf's row keeps its kind, cost and activations as counting gives them,
        and the copy is predicted by its own fit. It counts no activations, so an analysis with
        copies=True has the same totals as without: it only has more rows."""
        self._op_row(self._where()[0], func, args, out, COPY_KIND, ())

    def _charge(self, func: Any, args: Any, out: Any, cost: Cost) -> Row:
        scope, row = self._where()
        if row is None:  # an op run directly in a parent's forward: a row of its own
            made = () if self._in_backward else out  # gradients are not activations
            row = self._op_row(scope, func, args, out, cost.kind, made)
        row.computed = True
        layer = row.layer
        layer.macs += cost.macs
        layer.elementwise_flops += cost.elementwise_flops
        if self._in_backward:
            layer.backward_macs += cost.macs
            layer.backward_elementwise_flops += cost.elementwise_flops
        if cost.macs:
            row.macs_by_kind[cost.kind] = row.macs_by_kind.get(cost.kind, 0) + cost.macs
        elif cost.elementwise_flops:
            row.ew_by_kind[cost.kind] = row.ew_by_kind.get(cost.kind, 0) + cost.elementwise_flops
        return row
