"""Every value's shape in an ONNX graph once its data input has a given shape.

ONNX shape inference alone loses shapes that exporters compute at run time: the TorchScript
exporter builds nn.MultiheadAttention's head split from ``Shape -> Gather -> Div -> Mod ->
Concat``, which ONNX's data propagation does not follow, so the attention products were
left with an unknown dim and their MACs out of the totals (swin_t lost 95% of its MACs even
at its exported shape). Here, in one pass over the nodes in order, the small values such
chains compute (shapes, sizes, indices) are evaluated with ONNX's reference implementation
while ONNX infers every other node's types, and they replace those nodes as constants in a
copy of the graph, which ONNX's shape inference then reads whole.

A graph exported at a fixed input shape hard-codes that shape in its constants (a
``Reshape`` to ``[1, 197, 12, 64]``): asked for another shape, it would count the layers
after that reshape at the exported one. :func:`refuse_baked_resize` refuses such a request
in one line, and :func:`refuse_inconsistent_reshapes` catches a graph whose inferred
shapes do not fit together whatever its declared input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from dnnmeter.analysis.onnx_formulas import DEFAULT_DOMAINS, Shape
from dnnmeter.errors import InvalidInputError, ModelBuildError
from dnnmeter.zoo.onnx_source import declared_dims, onnx_module

# Elements: smaller float initializers keep their values (Resize scales decide shapes), and
# no larger value is folded (larger ones are data, not shape arithmetic).
_KEEP_VALUES_UP_TO = _FOLD_UP_TO = 1024
# Ops whose input at this index sets the output's shape: a constant there is a shape baked in.
_SHAPE_INPUTS = {"Reshape": 1, "Expand": 1, "ConstantOfShape": 0, "Resize": 3, "Upsample": 1}
_NEVER_FOLD = frozenset("RandomNormal RandomNormalLike RandomUniform RandomUniformLike Multinomial Bernoulli".split())


def infer_shapes(path: str, model: Any, input_name: str, dims: list[int]) -> dict[str, Shape]:
    """Every value's shape once ``input_name`` has ``dims``; ``model`` loses its stale shapes
    and large weights' values (only ever called on a model loaded by the caller)."""
    onnx = onnx_module()
    graph = model.graph
    for value in graph.input:
        if value.name == input_name:
            shape = value.type.tensor_type.shape
            del shape.dim[:]
            for d in dims:
                shape.dim.add().dim_value = d
    del graph.value_info[:]
    _drop_weight_values(graph)
    for value in graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")
    work = onnx.ModelProto()
    work.CopyFrom(model)  # folded nodes stay out of the graph that is counted
    _fold(work)
    return _infer(path, work)


def _infer(path: str, model: Any) -> dict[str, Shape]:
    onnx = onnx_module()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise ModelBuildError(f"{path}: ONNX shape inference failed ({exc})") from exc
    g = inferred.graph
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in g.initializer}
    for value in [*g.input, *g.value_info, *g.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(declared_dims(value))
    return shapes


def _drop_weight_values(graph: Any) -> None:
    """Drop large float initializers' values: shape inference needs only their dims, and
    copying the weights into it is most of its time. Small ones stay (Resize scales decide
    shapes)."""
    onnx = onnx_module()
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    for tensor in graph.initializer:
        if tensor.data_type in floats and math.prod(tensor.dims) > _KEEP_VALUES_UP_TO:
            for data in ("raw_data", "float_data", "double_data", "int32_data"):
                tensor.ClearField(data)


# --- folding shape arithmetic -----------------------------------------------------------------


class _Walk:
    """One pass over the nodes in their (topological) order, knowing each value's type, and
    the values of the small ones that follow from constants and known shapes."""

    def __init__(self, model: Any) -> None:
        onnx = onnx_module()
        graph = model.graph
        self.opsets = {o.domain: o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS}
        self.opset_imports = list(model.opset_import)
        self.types: dict[str, Any] = {v.name: v.type for v in graph.input}
        for t in graph.initializer:
            self.types[t.name] = onnx.helper.make_tensor_type_proto(t.data_type, list(t.dims))
        self.values: dict[str, Any] = {
            t.name: onnx.numpy_helper.to_array(t)
            for t in graph.initializer
            if math.prod(t.dims) <= _FOLD_UP_TO and t.data_location != onnx.TensorProto.EXTERNAL
        }

    def shape(self, name: str) -> Shape | None:
        t = self.types.get(name)
        if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            return None
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim)

    def fold(self, node: Any) -> dict[str, Any] | None:
        """The node's output values if they follow from known ones, remembered; else None."""
        outputs = _evaluate(node, self.values, self.shape, self.opsets)
        if outputs is None:
            self._infer_types(node)
            return None
        onnx = onnx_module()
        for name, v in outputs.items():
            self.values[name] = v
            dtype = onnx.helper.np_dtype_to_tensor_dtype(v.dtype)
            self.types[name] = onnx.helper.make_tensor_type_proto(dtype, list(v.shape))
        return outputs

    def _infer_types(self, node: Any) -> None:
        """ONNX's inference of this one node, with the values known so far as its data."""
        onnx = onnx_module()
        names = [n for n in node.input if n]
        if any(n not in self.types for n in names) or any(a.HasField("g") or a.graphs for a in node.attribute):
            return
        try:
            schema = onnx.defs.get_schema(node.op_type, self.opsets.get(node.domain, 0) or 10**6, node.domain)
            data = {n: onnx.numpy_helper.from_array(self.values[n], n) for n in names if n in self.values}
            self.types.update(onnx.shape_inference.infer_node_outputs(
                schema, node, {n: self.types[n] for n in names}, data, opset_imports=self.opset_imports))
        except (onnx.defs.SchemaError, onnx.shape_inference.InferenceError, RuntimeError, ValueError):
            return  # no schema (another domain) or no inference: its outputs stay unknown


def _fold(model: Any) -> int:
    """Replace every node whose outputs follow from constants and known shapes by Constant
    nodes; return how many were replaced."""
    onnx = onnx_module()
    graph = model.graph
    walk = _Walk(model)
    nodes: list[Any] = []
    folded = 0
    for node in graph.node:
        outputs = walk.fold(node)
        if outputs is None or node.op_type == "Constant":
            nodes.append(_copy(node))
            continue
        nodes.extend(onnx.helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(v, name))
                     for name, v in outputs.items())
        folded += 1
    if folded:
        del graph.node[:]
        graph.node.extend(nodes)
    return folded


def _copy(node: Any) -> Any:
    copy = onnx_module().NodeProto()
    copy.CopyFrom(node)
    return copy


def _evaluate(node: Any, values: Mapping[str, Any], shape_of: Callable[[str], Shape | None],
              opsets: Mapping[str, int]) -> dict[str, Any] | None:
    """The node's output values when they follow from known values and shapes, else None."""
    if node.domain not in DEFAULT_DOMAINS or node.op_type in _NEVER_FOLD:
        return None
    if any(a.HasField("g") or a.graphs for a in node.attribute):
        return None
    if node.op_type in ("Shape", "Size"):
        return _shape_value(node, shape_of(node.input[0]))
    if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
        value = onnx_module().numpy_helper.to_array(node.attribute[0].t)
        return {node.output[0]: value} if value.size <= _FOLD_UP_TO else None
    feeds = {name: values[name] for name in node.input if name in values}
    if (not node.input and node.op_type != "Constant") or len(feeds) < sum(1 for n in node.input if n):
        return None
    try:
        results = _reference(node, opsets).run(None, feeds)
    except Exception:  # noqa: BLE001 -- the reference kernels raise anything; not folded then
        return None
    if not all(isinstance(r, np.ndarray) and r.dtype.kind in "biuf" and r.size <= _FOLD_UP_TO for r in results):
        return None  # not small numbers: data, not shape arithmetic
    return {name: result for name, result in zip(node.output, results) if name}


def _reference(node: Any, opsets: Mapping[str, int]) -> Any:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(node, opsets=dict(opsets))


def _shape_value(node: Any, shape: Shape | None) -> dict[str, Any] | None:
    if shape is None or any(d is None for d in shape):
        return None
    if node.op_type == "Size":
        return {node.output[0]: np.array(math.prod(shape), dtype=np.int64)}  # type: ignore[arg-type]
    attrs = {a.name: a.i for a in node.attribute}
    rank = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    return {node.output[0]: np.array(shape[slice(start, end)], dtype=np.int64)}


# --- shapes baked into the graph ---------------------------------------------------------------


def refuse_baked_resize(path: str, model: Any, value: Any, dims: list[int]) -> None:
    """Refuse ``dims`` that change a fixed dim of the input when the graph sets shapes from
    constants (a fixed-shape export): the count after those nodes would be at the old shape."""
    declared = declared_dims(value)
    if len(declared) != len(dims) or all(d is None or d == n for d, n in zip(declared, dims)):
        return
    baked = next(_baked_shape_nodes(model.graph), None)
    if baked is None:
        return  # no constant shapes: every shape follows the input's (a CNN with Flatten)
    batch = f"--batch-size {declared[0]} and " if declared[0] is not None else ""
    raise InvalidInputError(
        f"{path} was exported with the fixed input shape {_text(declared)} and its {baked} node "
        f"hard-codes a shape, so it cannot be counted at {tuple(dims)}: analyse it at that shape "
        f"({batch}no --input-size), or re-export it with dynamic axes "
        f"(torch.onnx.export(..., dynamic_axes=...), or dynamic_shapes=... with dynamo=True)"
    )


def _text(dims: list[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _baked_shape_nodes(graph: Any) -> Iterator[str]:
    """Names of the nodes whose output shape is set by a value computed from constants only."""
    constant = {t.name for t in graph.initializer}
    for node in graph.node:
        inputs = [n for n in node.input if n]
        if node.op_type == "Constant" or (
            inputs and node.op_type not in ("Shape", "Size") and all(n in constant for n in inputs)
        ):
            constant.update(node.output)
        at = _SHAPE_INPUTS.get(node.op_type)
        if at is not None and at < len(node.input) and node.input[at] in constant:
            yield f"{node.op_type} {node.name!r}" if node.name else node.op_type


def refuse_inconsistent_reshapes(path: str, graph: Any, shapes: Mapping[str, Shape], dims: list[int]) -> None:
    """Refuse a count whose inferred shapes contradict themselves: a Reshape that changes its
    input's number of elements means a shape in the graph does not follow the input."""
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        before, after = shapes.get(node.input[0]), shapes.get(node.output[0])
        if _known(before) and _known(after) and math.prod(before) != math.prod(after):  # type: ignore[arg-type]
            raise InvalidInputError(
                f"{path}: at input {tuple(dims)} the Reshape {node.name!r} turns {before} into {after}, "
                f"so the graph hard-codes a shape; analyse it at the shape it was exported at, or "
                f"re-export it with dynamic axes (dynamic_axes=..., or dynamic_shapes=... with dynamo=True)"
            )


def _known(shape: Shape | None) -> bool:
    return shape is not None and all(d is not None for d in shape)
