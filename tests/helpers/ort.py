"""onnxruntime as the independent float reference: run one ONNX node on numpy inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 21
IR_VERSION = 10


def node_model(
    op_type: str,
    inputs: Sequence[np.ndarray | None],
    attributes: dict[str, Any] | None = None,
    n_outputs: int = 1,
    opset: int = OPSET,
    constant_inputs: Sequence[int] = (),
) -> onnx.ModelProto:
    """A one-node model; input i is a graph input, or an initializer if i is in
    `constant_inputs` (some ops need constant inputs, e.g. Reshape's shape for shape
    inference); `None` inputs become empty names (absent optional inputs)."""
    names, graph_inputs, inits = [], [], []
    for i, arr in enumerate(inputs):
        if arr is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in constant_inputs:
            inits.append(numpy_helper.from_array(np.asarray(arr), name))
        else:
            elem = helper.np_dtype_to_tensor_dtype(np.asarray(arr).dtype)
            graph_inputs.append(helper.make_tensor_value_info(name, elem, np.shape(arr)))
    outs = [f"out{j}" for j in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, name=f"{op_type}_node", **(attributes or {}))
    graph = helper.make_graph(
        [node],
        "g",
        graph_inputs,
        [helper.make_empty_tensor_value_info(o) for o in outs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = IR_VERSION
    return model


def run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def run_node(
    op_type: str,
    inputs: Sequence[np.ndarray | None],
    attributes: dict[str, Any] | None = None,
    n_outputs: int = 1,
    opset: int = OPSET,
    constant_inputs: Sequence[int] = (),
) -> list[np.ndarray]:
    """onnxruntime's outputs for one node of `op_type` applied to `inputs`."""
    model = node_model(op_type, inputs, attributes, n_outputs, opset, constant_inputs)
    feeds = {
        f"in{i}": np.asarray(a)
        for i, a in enumerate(inputs)
        if a is not None and i not in constant_inputs
    }
    return run_model(model, feeds)
