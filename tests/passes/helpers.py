"""Building small models for pass tests and checking a pass keeps what they compute.

model = model_from_nodes(nodes, inputs=[("x", [1, 3, 8, 8])], outputs=["y"], inits={...})
before = clone(model)
run_passes(model, "fuse-activation")
assert op_types(model) == ["FusedConv"]
assert_same_outputs(before, model)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from compiler.pipeline import PipelineReport, parse_pipeline, run_pipeline
from dialects.onnx import ConstantOp, OnnxOp

Shape = Sequence[int]


def model_from_nodes(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, Shape]],
    outputs: Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    opset: int = 21,
) -> IRModel:
    """Import a graph of `nodes`; float32 inputs `(name, shape)`, outputs by name (shapes are
    inferred), initializers by name."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10 if opset >= 21 else 8
    return import_onnx(model)


def clone(model: IRModel) -> IRModel:
    """An independent copy (passes change the module and add weights in place)."""
    return model.clone()


def run_passes(model: IRModel, spec: str) -> PipelineReport:
    """Run the pipeline `spec` on `model` in place (verifying after every pass)."""
    return run_pipeline(model, parse_pipeline(spec))


def ops(model: IRModel) -> list[OnnxOp]:
    """The ops of the main function, constants excluded, in order."""
    body = model.main.body.blocks[0]
    return [op for op in body.ops if isinstance(op, OnnxOp) and not isinstance(op, ConstantOp)]


def op_types(model: IRModel) -> list[str]:
    return [op.op_type for op in ops(model)]


def random_inputs(model: IRModel, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in model.inputs}


def assert_same_outputs(
    before: IRModel, after: IRModel, rtol: float = 1e-5, atol: float = 1e-6, samples: int = 3
) -> None:
    """Both models give the same outputs (by ONNX name) on random inputs."""
    first, second = Interpreter(before), Interpreter(after)
    assert [s.name for s in before.outputs] == [s.name for s in after.outputs]
    for seed in range(samples):
        feeds = random_inputs(before, seed)
        want = first.run(feeds).outputs
        got = second.run(feeds).outputs
        for name, value in want.items():
            assert got[name].shape == value.shape and got[name].dtype == value.dtype, name
            np.testing.assert_allclose(got[name], value, rtol=rtol, atol=atol, err_msg=name)
