"""`export_onnx(model) -> onnx.ModelProto`: a float `onnx`-dialect IR (what the graph passes
leave, before lowering) as an ONNX model, to look at in Netron and for hybrid
quantization's `<name>.model` (RKNN's step1 writes its optimized float graph the same way).

Standard ops keep their ONNX type, attributes and the names of their node and tensors;
the ops the graph passes make that ONNX lacks (`FusedConv`, `Swish`, `GLU`, ... of
`dialects/onnx/fused.py`) go to the domain `rknpu`, a fused activation's attributes
flattened (`activation_alpha`). Weights become initializers. The file is for reading, not
for running: onnxruntime does not know the `rknpu` ops.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper
from xdsl.dialects.builtin import TensorType
from xdsl.dialects.func import ReturnOp
from xdsl.ir import SSAValue

from compiler.errors import CompilerError
from compiler.ir_model import IRModel
from dialects.dtypes import numpy_dtype
from dialects.onnx import STANDARD_OPS, ConstantOp, OnnxOp
from dialects.onnx.ops import OPSET

EXTENSION_DOMAIN = "rknpu"
PRODUCER = "rknpu-compiler"


def export_onnx(model: IRModel, graph_name: str = "optimized") -> onnx.ModelProto:
    names = _ValueNames(model)
    nodes, initializers = [], []
    uses_extensions = False
    for op in model.main.body.blocks[0].ops:
        if isinstance(op, ConstantOp):
            initializers.append(_initializer(op, names[op.output], model))
        elif isinstance(op, OnnxOp):
            node, extension = _node(op, names, model)
            nodes.append(node)
            uses_extensions |= extension
        elif not isinstance(op, ReturnOp):
            raise CompilerError(f"{op.name}: only float onnx-dialect IR exports to ONNX")
    graph = helper.make_graph(
        nodes, graph_name, _value_infos(model.main.body.blocks[0].args, names),
        _value_infos(_returned(model), names), initializers,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", OPSET)]
    if uses_extensions:
        opsets.append(helper.make_opsetid(EXTENSION_DOMAIN, 1))
    return helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER)


class _ValueNames:
    """The ONNX name of every value: inputs by their spec, op results by their ONNX
    names, the rest (constants, unnamed results) numbered."""

    def __init__(self, model: IRModel) -> None:
        self._names: dict[SSAValue, str] = {}
        block = model.main.body.blocks[0]
        for arg, spec in zip(block.args, model.inputs, strict=True):
            self._names[arg] = spec.name
        for op in block.ops:
            if isinstance(op, OnnxOp):
                for result, name in zip(op.results, op.output_names, strict=False):
                    self._names[result] = name
        self._fresh = 0

    def __getitem__(self, value: SSAValue) -> str:
        if value not in self._names:
            self._fresh += 1
            self._names[value] = value.name_hint or f"value_{self._fresh}"
        return self._names[value]


def _initializer(op: ConstantOp, name: str, model: IRModel) -> onnx.TensorProto:
    array = op.attribute_values(model.weights)["value"]
    return numpy_helper.from_array(np.asarray(array), name)


def _node(op: OnnxOp, names: _ValueNames, model: IRModel) -> tuple[onnx.NodeProto, bool]:
    inputs = ["" if v is None else names[v] for v in op.onnx_inputs()]
    while inputs and not inputs[-1]:
        inputs.pop()
    outputs = ["" if r is None else names[r] for r in op.onnx_results()]
    extension = STANDARD_OPS.get(op.op_type) is not type(op)
    attributes = dict(_attributes(op.attribute_values(model.weights).items()))
    node = helper.make_node(op.op_type, inputs, outputs, name=op.node_name or None,
                            domain=EXTENSION_DOMAIN if extension else "",
                            **attributes)  # fmt: skip
    return node, extension


def _attributes(items: Iterable[tuple[str, object]]) -> Iterable[tuple[str, object]]:
    for key, value in items:
        if isinstance(value, dict):  # a fused activation's attributes: one each
            for sub, inner in value.items():
                yield f"{key.removesuffix('_attrs')}_{sub}", inner
        elif isinstance(value, np.ndarray):
            yield key, numpy_helper.from_array(value)
        else:
            yield key, value


def _value_infos(values: Iterable[SSAValue], names: _ValueNames) -> list[onnx.ValueInfoProto]:
    infos = []
    for value in values:
        kind = value.type
        if not isinstance(kind, TensorType):
            raise CompilerError(f"{names[value]}: {kind} is not a tensor")
        element = helper.np_dtype_to_tensor_dtype(numpy_dtype(kind.element_type))
        infos.append(helper.make_tensor_value_info(names[value], element, list(kind.get_shape())))
    return infos


def _returned(model: IRModel) -> list[SSAValue]:
    last = model.main.body.blocks[0].last_op
    return list(last.operands) if isinstance(last, ReturnOp) else []
