"""`strip-qdq`: QuantizeLinear/DequantizeLinear pairs and integer weights leave the graph,
their parameters go to the recorder; what is not a QDQ pattern stays; dynamic quantization
is refused with the node named."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import CompilerError
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from passes.strip_qdq import recording_qdq
from tests.passes.helpers import model_from_nodes, op_types, run_passes

W_INT = np.array([[[[1, -2], [3, -127]]], [[[64, 0], [-5, 7]]]], np.int8)  # [2, 1, 2, 2]
W_SCALE = np.array([0.01, 0.002], np.float32)
B_INT = np.array([100, -40], np.int32)
S_X, S_C = float(np.float32(0.02)), float(np.float32(0.05))  # the model stores float32


def qdq_conv_model(activation_zp: np.ndarray):
    """input -> Q/DQ -> Conv(DQ(int8 weights, per channel), DQ(int32 bias)) -> Q/DQ -> y."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="dq_w", axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_s"], ["b"], name="dq_b", axis=0),
        helper.make_node("Conv", ["xd", "w", "b"], ["c"], name="conv"),
        helper.make_node("QuantizeLinear", ["c", "cs", "cz"], ["cq"], name="q_c"),
        helper.make_node("DequantizeLinear", ["cq", "cs", "cz"], ["y"], name="dq_c"),
    ]
    inits = {
        "xs": np.array(0.02, np.float32), "xz": activation_zp,
        "w_q": W_INT, "w_s": W_SCALE, "w_z": np.zeros(2, np.int8),
        "b_q": B_INT, "b_s": (0.02 * W_SCALE).astype(np.float32),
        "cs": np.array(0.05, np.float32), "cz": activation_zp,
    }  # fmt: skip
    return model_from_nodes(nodes, [("x", [1, 1, 4, 4])], ["y"], inits)


def test_pairs_and_weights_leave_with_their_parameters():
    model = qdq_conv_model(np.array(-3, np.int8))
    with recording_qdq() as found:
        report = run_passes(model, "strip-qdq,canonicalize")
    assert op_types(model) == ["Conv"]
    assert "strip-qdq: removed 2 quantize/dequantize pairs, 2 integer weights" in report.notes
    x_params, c_params = found.activations["x"], found.activations["c"]
    assert (x_params.dtype, float(x_params.scale), int(x_params.zero_point)) == ("i8", S_X, -3)
    assert (c_params.dtype, float(c_params.scale), int(c_params.zero_point)) == ("i8", S_C, -3)
    w_params = found.weights["w"]
    assert w_params.dtype == "i8" and w_params.axis == 0
    np.testing.assert_array_equal(w_params.scale, W_SCALE.astype(np.float64))
    np.testing.assert_array_equal(w_params.zero_point, [0, 0])
    assert "b" not in found.weights  # the int32 bias is requantized at s_in * s_w


def test_stripped_graph_computes_with_the_dequantized_weights():
    model = qdq_conv_model(np.array(0, np.int8))
    run_passes(model, "strip-qdq")
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4)).astype(np.float32)
    got = Interpreter(model).run({"x": x}).outputs["y"]
    w = W_INT.astype(np.float32) * W_SCALE.reshape(2, 1, 1, 1)
    b = B_INT * (0.02 * W_SCALE).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(x[0, 0], (2, 2))  # [3, 3, 2, 2]
    want = np.einsum("hwij,oij->ohw", windows, w[:, 0]) + b.reshape(2, 1, 1)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)


def test_unsigned_activations_become_signed_with_the_same_reals():
    model = qdq_conv_model(np.array(130, np.uint8))
    with recording_qdq() as found:
        run_passes(model, "strip-qdq")
    params = found.activations["x"]
    assert (params.dtype, float(params.scale), int(params.zero_point)) == ("i8", S_X, 2)
    # uint8 q=0 and int8 q=-128 are the same real: (0 - 130) * s == (-128 - 2) * s


def test_asymmetric_weights_are_not_kept_as_integers():
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="dq_w"),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ]
    inits = {"w_q": np.array([[10, 200], [0, 255]], np.uint8),
             "w_s": np.array(0.1, np.float32), "w_z": np.array(128, np.uint8)}  # fmt: skip
    model = model_from_nodes(nodes, [("x", [1, 2])], ["y"], inits)
    with recording_qdq() as found:
        report = run_passes(model, "strip-qdq")
    assert found.weights == {} and op_types(model) == ["MatMul"]
    assert any("not symmetric" in n and "dq_w" in n for n in report.notes)
    got = Interpreter(model).run({"x": np.array([[1.0, 2.0]], np.float32)}).outputs["y"]
    np.testing.assert_allclose(got, [[(10 - 128) * 0.1 + 2 * (-128) * 0.1,
                                      (200 - 128) * 0.1 + 2 * (127) * 0.1]], rtol=1e-5)  # fmt: skip


def test_does_not_fire_on_a_float_model():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    model = model_from_nodes(nodes, [("x", [1, 4])], ["y"])
    with recording_qdq() as found:
        report = run_passes(model, "strip-qdq")
    assert op_types(model) == ["Relu"] and not found and report.notes == []


def test_keeps_a_lone_quantize_and_a_dequantize_of_a_graph_input():
    """Q without DQ (an int8 output) and DQ of a non-constant int8 input are real ops."""
    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["xi", "s"], ["xf"], name="dq_input"),
            helper.make_node("Relu", ["xf"], ["r"], name="relu"),
            helper.make_node("QuantizeLinear", ["r", "s", "z"], ["y"], name="q_out"),
        ],
        "g",
        [helper.make_tensor_value_info("xi", TensorProto.INT8, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4])],
        initializer=[
            numpy_helper.from_array(np.array(0.5, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.int8), "z"),
        ],
    )
    model = import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    with recording_qdq() as found:
        run_passes(model, "strip-qdq")
    assert op_types(model) == ["DequantizeLinear", "Relu", "QuantizeLinear"] and not found


@pytest.mark.parametrize("op_type", ["ConvInteger", "MatMulInteger"])
def test_dynamic_quantization_is_refused_naming_the_node(op_type: str):
    x_shape, w = ([1, 1, 3, 3], np.ones((1, 1, 2, 2), np.uint8)) if op_type == "ConvInteger" \
        else ([1, 3], np.ones((3, 2), np.uint8))  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node(op_type, ["x", "w"], ["y"], name="dyn_node")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, x_shape)],
        [helper.make_empty_tensor_value_info("y")],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model = import_onnx(onnx.shape_inference.infer_shapes(proto))
    with pytest.raises(CompilerError, match=r"dyn_node.*dynamic quantization.*QDQ"):
        run_passes(model, "strip-qdq")
