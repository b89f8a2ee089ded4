"""Fused-op kernels against onnxruntime running the unfused ONNX ops they stand for, and
Swish/GLU against their definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.kernels.fused import (
    fused_conv,
    fused_conv_transpose,
    fused_gemm,
    fused_matmul,
    glu,
    swish,
)
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_model

RNG = np.random.default_rng(11)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _activation_nodes(kind: str, attrs: dict[str, Any], src: str, dst: str, tag: str):
    """ONNX nodes computing activation `kind` from `src` into `dst`, and their initializers."""
    if kind == "Clip":
        inits = [numpy_helper.from_array(np.float32(attrs[k]), f"{tag}_{k}")
                 for k in ("min", "max")]  # fmt: skip
        return [helper.make_node("Clip", [src, f"{tag}_min", f"{tag}_max"], [dst])], inits
    if kind == "PRelu":
        return [helper.make_node("PRelu", [src, f"{tag}_slope"], [dst])], []
    if kind == "Swish":
        return [helper.make_node("Sigmoid", [src], [f"{tag}_sig"]),
                helper.make_node("Mul", [src, f"{tag}_sig"], [dst])], []  # fmt: skip
    return [helper.make_node(kind, [src], [dst], **attrs)], []


def _reference(base_nodes, inputs, act, post, z=None, slope=None):
    """Run base op -> act -> (+ z) -> post in onnxruntime; `base_nodes` write `base_out`."""
    nodes, inits = list(base_nodes), []
    current = "base_out"
    for tag, (kind, attrs) in (("act", act), ("post", post)):
        if tag == "post" and z is not None:
            nodes.append(helper.make_node("Add", [current, "z"], ["with_z"]))
            current = "with_z"
        if kind:
            more, more_inits = _activation_nodes(kind, attrs, current, f"{tag}_out", tag)
            nodes += more
            inits += more_inits
            current = f"{tag}_out"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    feeds = dict(inputs)
    if z is not None:
        feeds["z"] = z
    if slope is not None:
        inits.append(numpy_helper.from_array(slope, "act_slope"))
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items()],
        [helper.make_empty_tensor_value_info("y")], initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return run_model(model, feeds)[0]


ACTIVATIONS = [
    ("", {}),
    ("Relu", {}),
    ("Clip", {"min": 0.0, "max": 6.0}),
    ("LeakyRelu", {"alpha": 0.1}),
    ("Sigmoid", {}),
    ("Tanh", {}),
    ("Elu", {"alpha": 0.7}),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}),
    ("HardSwish", {}),
    ("Swish", {}),
    ("Gelu", {}),
]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a[0] or "none")
@pytest.mark.parametrize("post", [("", {}), ("Relu", {})], ids=["no-post", "post-relu"])
@pytest.mark.parametrize("residual", [False, True])
def test_fused_conv(act: tuple[str, dict], post: tuple[str, dict], residual: bool) -> None:
    x, w, b = _f32(1, 3, 7, 7), _f32(4, 3, 3, 3), _f32(4)
    z = _f32(1, 4, 4, 4) if residual else None
    conv_attrs = {"pads": [1, 1, 1, 1], "strides": [2, 2]}
    base = [helper.make_node("Conv", ["x", "w", "b"], ["base_out"], **conv_attrs)]
    want = _reference(base, {"x": x, "w": w, "b": b}, act, post, z)
    got = fused_conv(x, w, b, z, activation=act[0], activation_attrs=act[1],
                     post_activation=post[0], post_activation_attrs=post[1],
                     **conv_attrs)  # fmt: skip
    assert_matches(got, want, rtol=1e-5, atol=1e-5)


def test_fused_conv_prelu_slope() -> None:
    x, w = _f32(1, 2, 5, 5), _f32(3, 2, 3, 3)
    slope = np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1)
    base = [helper.make_node("Conv", ["x", "w"], ["base_out"])]
    want = _reference(base, {"x": x, "w": w}, ("PRelu", {}), ("", {}), slope=slope)
    assert_matches(fused_conv(x, w, None, None, slope, activation="PRelu"), want,
                   rtol=1e-5, atol=1e-5)  # fmt: skip


def test_fused_conv_transpose_gemm_matmul() -> None:
    x, w = _f32(1, 4, 3, 3), _f32(4, 2, 3, 3)
    base = [helper.make_node("ConvTranspose", ["x", "w"], ["base_out"], strides=[2, 2])]
    want = _reference(base, {"x": x, "w": w}, ("Relu", {}), ("", {}))
    assert_matches(fused_conv_transpose(x, w, strides=[2, 2], activation="Relu"), want,
                   rtol=1e-5, atol=1e-5)  # fmt: skip

    a, b, c = _f32(2, 5), _f32(3, 5), _f32(3)
    base = [helper.make_node("Gemm", ["a", "b", "c"], ["base_out"], transB=1, alpha=0.5)]
    want = _reference(base, {"a": a, "b": b, "c": c}, ("Sigmoid", {}), ("", {}))
    got = fused_gemm(a, b, c, transB=1, alpha=0.5, activation="Sigmoid")
    assert_matches(got, want, rtol=1e-5, atol=1e-6)

    a, b = _f32(2, 3, 5), _f32(5, 4)
    base = [helper.make_node("MatMul", ["a", "b"], ["base_out"])]
    want = _reference(base, {"a": a, "b": b}, ("Tanh", {}), ("", {}))
    assert_matches(fused_matmul(a, b, activation="Tanh"), want, rtol=1e-5, atol=1e-6)


def test_fused_is_bit_exact_with_its_parts() -> None:
    """The fused kernel calls the same kernels in the same order: identical bits."""
    from runtime.kernels.activation import leaky_relu, relu
    from runtime.kernels.conv import conv

    x, w, b, z = _f32(1, 3, 6, 6), _f32(5, 3, 3, 3), _f32(5), _f32(1, 5, 4, 4)
    parts = relu(leaky_relu(conv(x, w, b), alpha=0.2) + z)
    fused = fused_conv(x, w, b, z, activation="LeakyRelu", activation_attrs={"alpha": 0.2},
                       post_activation="Relu")  # fmt: skip
    np.testing.assert_array_equal(fused, parts)


def test_swish_hand_worked() -> None:
    # swish(0) = 0; swish(2) = 2 * sigmoid(2) = 2 / (1 + e^-2) = 1.7615942
    x = np.array([0.0, 2.0], np.float32)
    np.testing.assert_allclose(swish(x), [0.0, 1.7615942], rtol=1e-6)
    # alpha = 2: 2 * sigmoid(4) = 2 / (1 + e^-4) = 1.9640276
    np.testing.assert_allclose(swish(x, alpha=2.0), [0.0, 1.9640276], rtol=1e-6)


def test_glu_hand_worked() -> None:
    # halves [1, 2] and [0, 0] along the last axis: [1, 2] * sigmoid(0) = [0.5, 1.0]
    x = np.array([[1.0, 2.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(glu(x), [[0.5, 1.0]])
    # along axis 0 with a zero second half: x * sigmoid(0) = x / 2
    np.testing.assert_allclose(glu(np.concatenate([x, np.zeros_like(x)]), axis=0), x * 0.5)
