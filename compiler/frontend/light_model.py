"""Set the weights aside while onnx's version converter and shape inference run: both copy
the whole model, which for a 50 MB model costs more than the rest of the import together.
Adapters and shape inference never read large tensors (shape tensors are small), so heavy
tensors become graph inputs of the same type in a light copy of the model."""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from onnx import helper

from compiler.frontend.load import DEFAULT_DOMAINS

# Tensors above this many elements sit out opset conversion and shape inference.
HEAVY_ELEMENTS = 1024


@dataclass
class HeavyTensors:
    tensors: dict[str, onnx.TensorProto] = field(default_factory=dict)
    constant_nodes: dict[str, str] = field(default_factory=dict)  # tensor -> Constant node


def split_heavy(model: onnx.ModelProto) -> tuple[onnx.ModelProto, HeavyTensors]:
    """A light copy of `model` and the heavy tensors it leaves out: large initializers and
    large `Constant` nodes (Paddle exports keep their weights in Constant nodes)."""
    heavy = HeavyTensors()
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.producer_name = model.producer_name
    light.producer_version = model.producer_version
    graph, source = light.graph, model.graph
    graph.name = source.name
    for node in source.node:
        value = _constant_tensor(node)
        if value is not None and _numel(value) > HEAVY_ELEMENTS:
            heavy.tensors[node.output[0]] = value
            heavy.constant_nodes[node.output[0]] = node.name
        else:
            graph.node.append(node)
    for tensor in source.initializer:
        if _numel(tensor) > HEAVY_ELEMENTS:
            heavy.tensors[tensor.name] = tensor
        else:
            graph.initializer.append(tensor)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    listed = {i.name for i in source.input}
    for name, tensor in heavy.tensors.items():
        if name not in listed:
            graph.input.append(helper.make_tensor_value_info(name, tensor.data_type, tensor.dims))
    return light, heavy


def _constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    if node.op_type != "Constant" or node.domain not in DEFAULT_DOMAINS:
        return None
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return attr.t
    return None


def _numel(tensor: onnx.TensorProto) -> int:
    n = 1
    for d in tensor.dims:
        n *= d
    return n
