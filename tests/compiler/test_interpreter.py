"""The reference interpreter's own behaviour: captured tensors, input checks, errors that
name the node. (Numerics: the kernel tests, the node tests and the zoo tests.)"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import CompilerError
from compiler.examples import TINY_CNN, TINY_CNN_INPUT
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter, interpret
from tests.helpers.ort import run_model


def test_outputs_match_onnxruntime():
    sample = np.load(TINY_CNN_INPUT)
    got = interpret(import_onnx(TINY_CNN), {"input": sample}).outputs
    want = run_model(onnx.load(TINY_CNN), {"input": sample})
    np.testing.assert_allclose(got["probs"], want[0], rtol=1e-5, atol=1e-6)


def test_capture_every_intermediate_by_onnx_name():
    model = onnx.load(TINY_CNN)
    names = [o for n in model.graph.node for o in n.output]
    model.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names[:-1])
    sample = np.load(TINY_CNN_INPUT)
    outputs = run_model(model, {"input": sample})  # graph outputs: probs, then the others
    want = dict(zip([*names[:-1], "probs"], [*outputs[1:], outputs[0]], strict=True))
    result = Interpreter(import_onnx(TINY_CNN)).run({"input": sample}, capture=True)
    assert set(result.tensors) == set(names)
    for name in names:
        np.testing.assert_allclose(result.tensors[name], want[name], rtol=1e-5, atol=1e-5)


def test_capture_a_subset():
    result = Interpreter(import_onnx(TINY_CNN)).run(
        {"input": np.load(TINY_CNN_INPUT)}, capture={"stem_relu", "gap"}
    )
    assert set(result.tensors) == {"stem_relu", "gap"}
    assert result.tensors["gap"].shape == (1, 16, 1, 1)


def test_interpreter_is_reusable_across_samples():
    interpreter = Interpreter(import_onnx(TINY_CNN))
    a = np.load(TINY_CNN_INPUT)
    first = interpreter.run({"input": a}).outputs["probs"]
    interpreter.run({"input": a * 0.5})
    np.testing.assert_array_equal(interpreter.run({"input": a}).outputs["probs"], first)


def test_float64_input_is_cast_integer_complex_is_not():
    interpreter = Interpreter(import_onnx(TINY_CNN))
    sample = np.load(TINY_CNN_INPUT)
    out64 = interpreter.run({"input": sample.astype(np.float64)}).outputs["probs"]
    assert out64.dtype == np.float32
    with pytest.raises(CompilerError, match="dtype complex128"):
        interpreter.run({"input": sample.astype(np.complex128)})


def test_input_errors():
    interpreter = Interpreter(import_onnx(TINY_CNN))
    with pytest.raises(CompilerError, match="missing input 'input'"):
        interpreter.run({})
    with pytest.raises(CompilerError, match="has shape 3x32x32, the model expects 1x3x32x32"):
        interpreter.run({"input": np.zeros((3, 32, 32), np.float32)})


def test_kernel_rejection_names_the_node():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    inits = [
        numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
        numpy_helper.from_array(np.array(True), "training"),
    ]
    node = helper.make_node("Dropout", ["x", "ratio", "training"], ["y"], "random_drop")
    graph = helper.make_graph([node], "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    interpreter = Interpreter(import_onnx(model))
    with pytest.raises(CompilerError, match=r'Dropout "random_drop": .*training_mode'):
        interpreter.run({"x": np.zeros(4, np.float32)})


def test_constants_are_read_only_for_kernels():
    interpreter = Interpreter(import_onnx(TINY_CNN))
    constant = next(iter(interpreter._constants.values()))
    with pytest.raises(ValueError, match="read-only"):
        constant[...] = 0
