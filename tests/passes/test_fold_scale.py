"""`fold-scale`: Mul / Div / Add / Sub by a per-channel or scalar constant after a Conv go
into its weights and bias, names carried, outputs kept; no rewrite for non-constant or
non-per-channel operands, shared conv results, fused activations, or c / conv."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import helper

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.weights import using_weights
from passes.rewrite import constant_value, fused_nodes
from tests.compiler.test_zoo_models import relative_max_error
from tests.passes.helpers import (
    assert_same_outputs,
    clone,
    model_from_nodes,
    op_types,
    ops,
    run_passes,
)
from tests.passes.test_prune import fuse_by_hand
from tests.zoo import MODELS, ZooModel, model_path, real_input

RNG = np.random.default_rng(11)
C = 4


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def conv_then(op_type: str, c: np.ndarray | None, conv_first: bool = True, bias: bool = True,
              outputs: tuple[str, ...] = ("y",)) -> IRModel:  # fmt: skip
    """x -> Conv (3 -> C channels) -> `op_type` with the constant `c` (or the graph input
    `c` when None) on the right (`conv_first`) or the left."""
    conv_inputs = ["x", "w", "b"] if bias else ["x", "w"]
    operands = ["conv_out", "c"] if conv_first else ["c", "conv_out"]
    nodes = [
        helper.make_node("Conv", conv_inputs, ["conv_out"], name="conv", pads=[1] * 4),
        helper.make_node(op_type, operands, ["y"], name="scale"),
    ]
    inits = {"w": rand(C, 3, 3, 3), "b": rand(C)}
    if not bias:
        del inits["b"]
    inputs = [("x", [2, 3, 6, 6])]
    if c is None:
        inputs.append(("c", [1, C, 1, 1]))
    else:
        inits["c"] = c
    return model_from_nodes(nodes, inputs, list(outputs), inits)


def folded(model: IRModel) -> IRModel:
    after = clone(model)
    run_passes(after, "fold-scale")
    assert_same_outputs(model, after, rtol=1e-4, atol=1e-5)
    return after


def assert_unchanged(model: IRModel) -> None:
    text = str(model.module)
    run_passes(model, "fold-scale")
    assert str(model.module) == text


def assert_one_conv(after: IRModel, absorbed: list[str] | None = None) -> None:
    assert op_types(after) == ["Conv"]
    (conv,) = ops(after)
    assert conv.node_name == "conv" and conv.output_names == ["y"]
    assert fused_nodes(conv) == (absorbed or ["scale"])


def conv_weights(model: IRModel) -> np.ndarray:
    with using_weights(model.weights):
        return constant_value(ops(model)[0].onnx_inputs()[1])


def positive(*shape: int) -> np.ndarray:
    return (np.abs(rand(*shape)) + 0.5).astype(np.float32)


# ---------------------------------------------------------------------- folding

PER_CHANNEL_SHAPES = [(1, C, 1, 1), (C, 1, 1), (1, 1, 1, 1), (1,), ()]


@pytest.mark.parametrize("op_type", ["Mul", "Div", "Add", "Sub"])
@pytest.mark.parametrize("shape", PER_CHANNEL_SHAPES, ids=str)
def test_conv_op_constant_folds(op_type: str, shape: tuple[int, ...]):
    assert_one_conv(folded(conv_then(op_type, positive(*shape))))


@pytest.mark.parametrize("op_type", ["Mul", "Add", "Sub"])
def test_constant_on_the_left_folds(op_type: str):
    after = folded(conv_then(op_type, positive(1, C, 1, 1), conv_first=False))
    assert_one_conv(after)


def test_c_minus_conv_negates_weights():
    model = conv_then("Sub", positive(1, C, 1, 1), conv_first=False)
    after = folded(model)
    np.testing.assert_array_equal(conv_weights(after), -conv_weights(model))


def test_div_uses_the_reciprocal():
    c = positive(1, C, 1, 1)
    model = conv_then("Div", c)
    after = folded(model)
    w0, w = conv_weights(model).astype(np.float64), conv_weights(after)
    want = (w0 * (1.0 / c.astype(np.float64).reshape(C, 1, 1, 1))).astype(np.float32)
    np.testing.assert_array_equal(w, want)


def test_add_creates_the_bias():
    after = folded(conv_then("Add", rand(1, C, 1, 1), bias=False))
    assert_one_conv(after)
    assert ops(after)[0].onnx_inputs()[2] is not None


def test_chain_folds_into_one_conv():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c0"], name="conv"),
        helper.make_node("Mul", ["c0", "k"], ["c1"], name="mul"),
        helper.make_node("Add", ["c1", "t"], ["y"], name="add"),
    ]
    inits = {"w": rand(C, 3, 1, 1), "k": rand(C, 1, 1), "t": rand(1, C, 1, 1)}
    after = folded(model_from_nodes(nodes, [("x", [1, 3, 5, 5])], ["y"], inits))
    assert_one_conv(after, ["mul", "add"])


def test_conv_transpose_folds():
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w"], ["ct"], name="conv", group=2),
        helper.make_node("Mul", ["ct", "k"], ["y"], name="scale"),
    ]
    inits = {"w": rand(4, 3, 2, 2), "k": rand(1, 6, 1, 1)}
    after = folded(model_from_nodes(nodes, [("x", [1, 4, 3, 3])], ["y"], inits))
    assert op_types(after) == ["ConvTranspose"]
    assert ops(after)[0].output_names == ["y"]


# ---------------------------------------------------------------------- must not fire


def test_mul_by_a_graph_input_is_left_alone():
    assert_unchanged(conv_then("Mul", None))


@pytest.mark.parametrize(
    "shape",
    [(6,), (1, 1, 1, 6), (1, C, 6, 6), (2, 1, 1, 1), (2, C, 1, 1), (1, 1, C, 1, 1)],
    ids=str,
)
def test_constants_that_are_not_per_channel_are_left_alone(shape: tuple[int, ...]):
    # [6] / [1,1,1,6]: along W; [1,C,6,6]: per pixel; [2,1,1,1] / [2,C,1,1]: along N;
    # [1,1,C,1,1]: grows the rank of the result
    assert_unchanged(conv_then("Mul", rand(*shape)))


def test_conv_with_two_readers_is_left_alone():
    assert_unchanged(conv_then("Mul", rand(1, C, 1, 1), outputs=("y", "conv_out")))


def test_c_divided_by_conv_is_left_alone():
    assert_unchanged(conv_then("Div", positive(1, C, 1, 1), conv_first=False))


def test_division_by_zero_is_left_alone():
    c = positive(1, C, 1, 1)
    c[0, 2] = 0
    assert_unchanged(conv_then("Div", c))


def test_fused_activation_is_left_alone():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c0"], name="conv"),
        helper.make_node("Relu", ["c0"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "k"], ["y"], name="scale"),
    ]
    model = model_from_nodes(nodes, [("x", [1, 3, 5, 5])], ["y"],
                             {"w": rand(C, 3, 1, 1), "k": rand(1, C, 1, 1)})  # fmt: skip
    fuse_by_hand(model, "conv")
    assert op_types(model) == ["FusedConv", "Mul"]
    assert_unchanged(model)


def test_non_constant_weights_are_left_alone():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c0"], name="conv"),
        helper.make_node("Mul", ["c0", "k"], ["y"], name="scale"),
    ]
    model = model_from_nodes(nodes, [("x", [1, 3, 5, 5]), ("w", [C, 3, 1, 1])], ["y"],
                             {"k": rand(1, C, 1, 1)})  # fmt: skip
    assert_unchanged(model)


# ---------------------------------------------------------------------- zoo

ARITHMETIC = ("Mul", "Div", "Add", "Sub")


@pytest.mark.parametrize("zoo_model", [pytest.param(m, id=m.name) for m in MODELS])
def test_zoo_models_keep_their_outputs(zoo_model: ZooModel):
    model = import_onnx(model_path(zoo_model))
    after = clone(model)
    run_passes(after, "fold-scale")
    before_n, after_n = Counter(op_types(model)), Counter(op_types(after))
    folded_ops = {k: before_n[k] - after_n[k] for k in ARITHMETIC if before_n[k] != after_n[k]}
    print(f"{zoo_model.name}: ops {len(ops(model))} -> {len(ops(after))}, folded {folded_ops}")
    if not folded_ops:
        assert str(after.module) == str(model.module)
        return
    feeds = {model.inputs[0].name: real_input(zoo_model)}
    want = Interpreter(model).run(feeds).outputs
    got = Interpreter(after).run(feeds).outputs
    for name, value in want.items():
        assert relative_max_error(got[name], value) <= 1e-4, name
