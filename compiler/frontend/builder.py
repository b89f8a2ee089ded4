"""Build the `onnx` dialect IR from a (canonical-opset, shape-inferred) ONNX graph.

One `func.func @main`: its arguments are the model's inputs, its results the outputs, each
with its ONNX name in `onnx.name`. Every node becomes one op of its generated class, keeping
its node name and output tensor names (see `dialects.onnx.base`). Initializers and Constant
nodes become `onnx.Constant`, placed just before their first user: inline when tiny, a
handle into the weight table otherwise (keyed by the ONNX tensor name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    UnrankedTensorType,
    f32,
    i64,
)
from xdsl.ir import Attribute, Block, Region, SSAValue

from compiler.errors import CompilerError
from compiler.frontend.light_model import HeavyTensors
from compiler.frontend.onnx_types import ir_element_type, ir_tensor_type
from compiler.frontend.shapes import TensorInfo, user_inputs
from compiler.ir_model import NAME_ATTR, IRModel
from dialects.dtypes import tensor_type_of
from dialects.onnx import OPSET, STANDARD_OPS, ConstantOp, OnnxOp, attribute_from_value
from dialects.onnx.base import dense_from_numpy
from dialects.weights import WeightTable

# Constants up to this many elements stay inline in the IR (shapes, axes, clip bounds).
INLINE_ELEMENTS = 16

_UNSUPPORTED_ATTRIBUTE_TYPES = {
    AttributeProto.GRAPH: "a subgraph",
    AttributeProto.GRAPHS: "subgraphs",
    AttributeProto.SPARSE_TENSOR: "a sparse tensor",
    AttributeProto.SPARSE_TENSORS: "sparse tensors",
    AttributeProto.TYPE_PROTO: "a type",
    AttributeProto.TYPE_PROTOS: "types",
}


def build_ir(
    model: onnx.ModelProto,
    heavy: HeavyTensors,
    infos: Mapping[str, TensorInfo],
    source: str,
    source_opset: int,
) -> tuple[IRModel, list[str]]:
    """The IR of `model`, and the names of tensors whose shape is still unknown (their
    types in the IR are provisional)."""
    builder = _Builder(model, heavy, infos, source)
    module = builder.build()
    module.attributes["onnx.opset"] = IntegerAttr(OPSET, i64)
    module.attributes["onnx.source_opset"] = IntegerAttr(source_opset, i64)
    if model.producer_name:
        producer = f"{model.producer_name} {model.producer_version}".strip()
        module.attributes["onnx.producer"] = StringAttr(producer)
    return IRModel(module, builder.weights), builder.unknown


class _Builder:
    def __init__(
        self,
        model: onnx.ModelProto,
        heavy: HeavyTensors,
        infos: Mapping[str, TensorInfo],
        source: str,
    ) -> None:
        self.graph = model.graph
        self.heavy = heavy
        self.infos = infos
        self.source = source
        self.weights = WeightTable()
        self.values: dict[str, SSAValue] = {}
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.node_names = _unique_node_names(self.graph)
        self.unknown: list[str] = []
        self.block = Block()

    def build(self) -> ModuleOp:
        inputs = user_inputs(self.graph, self.heavy.tensors)
        arg_types = [self._input_type(i) for i in inputs]
        self.block = Block(arg_types=arg_types)
        for info, arg in zip(inputs, self.block.args, strict=True):
            arg.name_hint = ssa_name(info.name)
            self.values[info.name] = arg
        for index, node in enumerate(self.graph.node):
            self._node(node, self.node_names[index])
        outputs = [self._value(o.name, "graph output") for o in self.graph.output]
        self.block.add_op(func.ReturnOp(*outputs))
        main = func.FuncOp(
            "main",
            (arg_types, [v.type for v in outputs]),
            Region(self.block),
            arg_attrs=_name_attrs(i.name for i in inputs),
            res_attrs=_name_attrs(o.name for o in self.graph.output),
        )
        return ModuleOp([main])

    # ------------------------------------------------------------------ values
    def _input_type(self, info: onnx.ValueInfoProto) -> TensorType:
        elem = info.type.tensor_type.elem_type
        dims = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
        return ir_tensor_type(elem, dims, f"input {info.name!r}")

    def _value(self, name: str, user: str) -> SSAValue:
        value = self.values.get(name)
        if value is None:
            value = self._constant_for(name, user)
        return value

    def _constant_for(self, name: str, user: str) -> SSAValue:
        tensor = self.initializers.get(name) or self.heavy.tensors.get(name)
        if tensor is None:
            raise CompilerError(f"{self.source}: {user} reads {name!r}, which is not defined")
        array = _to_numpy(tensor, name, self.source)
        op = self._constant_op(array, name)
        op.set_names(self.heavy.constant_nodes.get(name), [name])
        return op.output

    def _constant_op(self, array: np.ndarray, name: str) -> ConstantOp:
        if array.size <= INLINE_ELEMENTS:
            value = dense_from_numpy(array)
        else:
            value = self.weights.add(array, name)
        op = ConstantOp(value, tensor_type_of(array))
        self.block.add_op(op)
        op.output.name_hint = ssa_name(name)
        self.values[name] = op.output
        return op

    # ------------------------------------------------------------------ nodes
    def _node(self, node: onnx.NodeProto, node_name: str) -> None:
        label = f"node {node_name!r} ({node.op_type})"
        if node.op_type == "Constant":
            op = self._constant_op(_constant_value(node, label, self.source), node.output[0])
            op.set_names(node_name, [node.output[0]])
            return
        cls = STANDARD_OPS.get(node.op_type)
        if cls is None:
            raise CompilerError(
                f"{self.source}: {label}: unknown op type {node.op_type!r} at opset {OPSET}"
            )
        operands = [self._value(n, label) if n else None for n in node.input]
        result_types = [self._result_type(n) if n else None for n in node.output]
        properties = self._properties(node, cls, label)
        try:
            op = cls.create_onnx(operands, result_types, properties)
        except ValueError as exc:
            raise CompilerError(f"{self.source}: {label}: {exc}") from None
        self.block.add_op(op)
        names = [n for n in node.output if n]
        op.set_names(node_name, names)
        for name, result in zip(names, op.results, strict=True):
            result.name_hint = ssa_name(name)
            self.values[name] = result

    def _result_type(self, name: str) -> Attribute:
        info = self.infos.get(name)
        if info is not None and info.shape is not None and info.elem:
            return ir_tensor_type(info.elem, info.shape, f"tensor {name!r}")
        self.unknown.append(name)
        elem = ir_element_type(info.elem, f"tensor {name!r}") if info and info.elem else f32
        return UnrankedTensorType(elem)

    def _properties(
        self, node: onnx.NodeProto, cls: type[OnnxOp], label: str
    ) -> dict[str, Attribute]:
        specs = cls.SCHEMA.attributes
        properties: dict[str, Attribute] = {}
        for attr in node.attribute:
            if attr.type in _UNSUPPORTED_ATTRIBUTE_TYPES:
                kind = _UNSUPPORTED_ATTRIBUTE_TYPES[attr.type]
                raise CompilerError(
                    f"{self.source}: {label}: attribute {attr.name!r} holds {kind}, which is "
                    "not supported (control flow and sparse tensors are not compiled)"
                )
            spec = specs.get(attr.name)
            if spec is None:
                raise CompilerError(
                    f"{self.source}: {label}: {node.op_type} has no attribute {attr.name!r} "
                    f"at opset {OPSET}"
                )
            properties[attr.name] = self._property(attr, spec.kind, label)
        return properties

    def _property(self, attr: AttributeProto, kind: str, label: str) -> Attribute:
        expected = _KIND_TYPES[kind]
        if attr.type != expected:
            raise CompilerError(
                f"{self.source}: {label}: attribute {attr.name!r} should be "
                f"{AttributeProto.AttributeType.Name(expected)}, not "
                f"{AttributeProto.AttributeType.Name(attr.type)}"
            )
        if kind == "tensor":
            array = _to_numpy(attr.t, f"{label} attribute {attr.name!r}", self.source)
            if array.size > INLINE_ELEMENTS:
                return self.weights.add(array, f"{label}.{attr.name}")
            return dense_from_numpy(array)
        return attribute_from_value(kind, helper.get_attribute_value(attr))


_KIND_TYPES = {
    "int": AttributeProto.INT,
    "float": AttributeProto.FLOAT,
    "string": AttributeProto.STRING,
    "ints": AttributeProto.INTS,
    "floats": AttributeProto.FLOATS,
    "strings": AttributeProto.STRINGS,
    "tensor": AttributeProto.TENSOR,
}


def _constant_value(node: onnx.NodeProto, label: str, source: str) -> np.ndarray:
    """The tensor of a Constant node, whichever of its attributes holds it."""
    if len(node.attribute) != 1:
        raise CompilerError(f"{source}: {label}: a Constant needs exactly one value attribute")
    attr = node.attribute[0]
    if attr.name == "value":
        return _to_numpy(attr.t, label, source)
    scalars = {"value_float": np.float32, "value_int": np.int64}
    lists = {"value_floats": np.float32, "value_ints": np.int64}
    if attr.name in scalars:
        return np.array(helper.get_attribute_value(attr), dtype=scalars[attr.name])
    if attr.name in lists:
        return np.array(helper.get_attribute_value(attr), dtype=lists[attr.name])
    raise CompilerError(
        f"{source}: {label}: Constant attribute {attr.name!r} is not supported "
        "(string and sparse constants have no use on the NPU)"
    )


def _to_numpy(tensor: onnx.TensorProto, what: str, source: str) -> np.ndarray:
    ir_element_type(tensor.data_type, what)  # rejects types the IR cannot hold
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as exc:
        raise CompilerError(f"{source}: {what}: unreadable tensor data ({exc})") from None


def _unique_node_names(graph: onnx.GraphProto) -> list[str]:
    """Node names, with `<OpType>_<index>` for unnamed nodes and a suffix on duplicates."""
    taken = {n.name for n in graph.node if n.name}
    names: list[str] = []
    seen: set[str] = set()
    for index, node in enumerate(graph.node):
        base = node.name or f"{node.op_type}_{index}"
        name, n = base, 0
        while name in seen or (not node.name and name in taken):
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


def _name_attrs(names: object) -> ArrayAttr:
    return ArrayAttr([DictionaryAttr({NAME_ATTR: StringAttr(n)}) for n in names])  # type: ignore[attr-defined]


_SSA_INVALID = re.compile(r"[^A-Za-z0-9_$.-]")


def ssa_name(tensor_name: str) -> str | None:
    """A readable SSA name for an ONNX tensor name (the exact name is in the attributes)."""
    name = _SSA_INVALID.sub("_", tensor_name).strip("_") or None
    if name is not None and name[0].isdigit():
        name = f"t{name}"
    return name
