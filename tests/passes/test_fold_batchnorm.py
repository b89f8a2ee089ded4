"""`fold-batchnorm`: BN folded into Conv / ConvTranspose / Gemm / MatMul weights, standalone
BN made a depthwise 1x1 Conv or Mul+Add, names carried, outputs kept; no rewrite for training
mode, non-constant statistics or non-constant weights; every zoo BN gone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import helper
from xdsl.ir import BlockArgument

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

RNG = np.random.default_rng(7)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def bn_params(c: int, prefix: str = "bn_") -> dict[str, np.ndarray]:
    return {
        f"{prefix}s": rand(c),
        f"{prefix}b": rand(c),
        f"{prefix}m": rand(c),
        f"{prefix}v": (np.abs(rand(c)) + 0.1).astype(np.float32),
    }


def bn_node(x: str, y: str | list[str], name: str = "bn", prefix: str = "bn_", **attrs: object):
    names = [x, *(f"{prefix}{p}" for p in "sbmv")]
    outputs = [y] if isinstance(y, str) else y
    return helper.make_node("BatchNormalization", names, outputs, name=name, **attrs)


def folded(model: IRModel) -> IRModel:
    """Run the pass on a copy, check it computes the same, return the copy."""
    after = clone(model)
    run_passes(after, "fold-batchnorm")
    assert_same_outputs(model, after, rtol=1e-4, atol=1e-5)
    return after


def assert_unchanged(model: IRModel) -> None:
    text = str(model.module)
    run_passes(model, "fold-batchnorm")
    assert str(model.module) == text


def weights_of(model: IRModel, op_index: int = 0) -> list[np.ndarray | None]:
    """W and B (or Gemm's B and C) of the `op_index`-th op."""
    with using_weights(model.weights):
        return [constant_value(v) for v in ops(model)[op_index].onnx_inputs()[1:3]]


# ---------------------------------------------------------------------- conv


def conv_bn(bias: bool = True, group: int = 1, c_in: int = 4, c_out: int = 6) -> IRModel:
    conv_inputs = ["x", "w", "cb"] if bias else ["x", "w"]
    nodes = [
        helper.make_node("Conv", conv_inputs, ["c"], name="conv", pads=[1, 1, 1, 1], group=group),
        bn_node("c", "y", epsilon=1e-3),
    ]
    inits = {"w": rand(c_out, c_in // group, 3, 3), **bn_params(c_out)}
    if bias:
        inits["cb"] = rand(c_out)
    return model_from_nodes(nodes, [("x", [2, c_in, 8, 8])], ["y"], inits)


def test_conv_bn_folds_into_weights_and_bias():
    after = folded(conv_bn())
    assert op_types(after) == ["Conv"]
    (conv,) = ops(after)
    assert conv.node_name == "conv"
    assert conv.output_names == ["y"]
    assert fused_nodes(conv) == ["bn"]
    assert conv.attr("pads") == [1, 1, 1, 1]


def test_conv_without_bias_gets_one():
    model = conv_bn(bias=False)
    after = folded(model)
    assert op_types(after) == ["Conv"]
    w, b = weights_of(after)
    assert w is not None and b is not None and b.shape == (6,) and b.dtype == np.float32


def test_folded_values_are_the_formula():
    model = conv_bn()
    after = folded(model)
    w0, b0 = weights_of(model, 0)
    w, b = weights_of(after)
    with using_weights(model.weights):
        bn = ops(model)[1]
        scale, beta, mean, var = (constant_value(v).astype(np.float64) for v in bn.operands[1:])
    s = scale / np.sqrt(var + np.float64(np.float32(1e-3)))
    np.testing.assert_allclose(w, w0 * s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(b, (b0 - mean) * s + beta, rtol=1e-6, atol=1e-6)


def test_grouped_conv_folds():
    after = folded(conv_bn(group=2, c_in=4, c_out=6))
    assert op_types(after) == ["Conv"]
    assert ops(after)[0].attr("group") == 2


def test_bn_chain_folds_twice():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        bn_node("c", "d", name="bn1", prefix="p_"),
        bn_node("d", "y", name="bn2", prefix="q_"),
    ]
    inits = {"w": rand(3, 2, 1, 1), **bn_params(3, "p_"), **bn_params(3, "q_")}
    after = folded(model_from_nodes(nodes, [("x", [1, 2, 5, 5])], ["y"], inits))
    assert op_types(after) == ["Conv"]
    assert fused_nodes(ops(after)[0]) == ["bn1", "bn2"]
    assert ops(after)[0].output_names == ["y"]


# ---------------------------------------------------------------------- conv transpose


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_bn_folds_per_output_channel(group: int):
    c_in, per_group = 4, 3
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w", "cb"], ["c"], name="up", strides=[2, 2],
                         group=group),
        bn_node("c", "y"),
    ]  # fmt: skip
    inits = {"w": rand(c_in, per_group, 2, 2), "cb": rand(per_group * group),
             **bn_params(per_group * group)}  # fmt: skip
    after = folded(model_from_nodes(nodes, [("x", [1, c_in, 4, 4])], ["y"], inits))
    assert op_types(after) == ["ConvTranspose"]
    assert ops(after)[0].node_name == "up" and ops(after)[0].output_names == ["y"]


# ---------------------------------------------------------------------- gemm, matmul


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (5,), (3, 5), (1,)])
def test_gemm_bn_folds_columns_and_bias(trans_b: int, c_shape: tuple[int, ...] | None):
    b_shape = (5, 4) if trans_b else (4, 5)
    inputs = ["a", "gb"] if c_shape is None else ["a", "gb", "gc"]
    nodes = [
        helper.make_node("Gemm", inputs, ["g"], name="fc", alpha=0.5, beta=2.0, transB=trans_b),
        bn_node("g", "y"),
    ]
    inits = {"gb": rand(*b_shape), **bn_params(5)}
    if c_shape is not None:
        inits["gc"] = rand(*c_shape)
    after = folded(model_from_nodes(nodes, [("a", [3, 4])], ["y"], inits))
    assert op_types(after) == ["Gemm"]
    gemm = ops(after)[0]
    assert gemm.attr("beta") == 1.0 and gemm.attr("alpha") == 0.5
    assert gemm.attr("transB") == trans_b
    assert gemm.node_name == "fc" and gemm.output_names == ["y"]


def test_matmul_bn_becomes_gemm():
    nodes = [helper.make_node("MatMul", ["a", "mb"], ["m"], name="mm"), bn_node("m", "y")]
    inits = {"mb": rand(4, 6), **bn_params(6)}
    after = folded(model_from_nodes(nodes, [("a", [3, 4])], ["y"], inits))
    assert op_types(after) == ["Gemm"]
    gemm = ops(after)[0]
    assert gemm.node_name == "mm" and gemm.output_names == ["y"]
    assert fused_nodes(gemm) == ["bn"]


def test_batched_matmul_bn_is_standalone():
    # [2, 3, 4] @ [4, 6] is not a Gemm; its BN (channels on axis 1 = 3) is standalone
    nodes = [helper.make_node("MatMul", ["a", "mb"], ["m"], name="mm"), bn_node("m", "y")]
    inits = {"mb": rand(4, 6), **bn_params(3)}
    after = folded(model_from_nodes(nodes, [("a", [2, 3, 4])], ["y"], inits))
    assert op_types(after) == ["MatMul", "Conv"]


# ---------------------------------------------------------------------- standalone


@pytest.mark.parametrize("shape", [[2, 3, 7], [1, 3, 4, 5], [1, 3, 2, 3, 4]])
def test_standalone_bn_becomes_depthwise_conv(shape: list[int]):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), bn_node("r", "y")]
    after = folded(model_from_nodes(nodes, [("x", shape)], ["y"], bn_params(3)))
    assert op_types(after) == ["Relu", "Conv"]
    conv = ops(after)[1]
    assert conv.attr("group") == 3
    assert conv.node_name == "bn" and conv.output_names == ["y"]
    w, b = weights_of(after, 1)
    assert w.shape == (3, *[1] * (len(shape) - 1)) and b.shape == (3,)


def test_standalone_rank2_bn_becomes_mul_add():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), bn_node("r", "y")]
    after = folded(model_from_nodes(nodes, [("x", [4, 3])], ["y"], bn_params(3)))
    assert op_types(after) == ["Relu", "Mul", "Add"]
    mul, add = ops(after)[1:]
    assert add.node_name == "bn" and add.output_names == ["y"]
    assert mul.node_name == "bn_scale"
    assert mul.onnx_inputs()[1].type.get_shape() == (3,)


def test_standalone_bn_on_graph_input():
    after = folded(model_from_nodes([bn_node("x", "y")], [("x", [1, 3, 4, 4])], ["y"],
                                    bn_params(3)))  # fmt: skip
    assert op_types(after) == ["Conv"]


def test_conv_with_two_readers_keeps_its_weights():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        bn_node("c", "y"),
        helper.make_node("Relu", ["c"], ["z"], name="relu"),
    ]
    model = model_from_nodes(nodes, [("x", [1, 2, 4, 4])], ["y", "z"],
                             {"w": rand(3, 2, 1, 1), **bn_params(3)})  # fmt: skip
    after = folded(model)
    assert op_types(after) == ["Conv", "Conv", "Relu"]
    original, depthwise = ops(after)[:2]
    assert original.node_name == "conv" and original.attr("group") == 1
    assert depthwise.node_name == "bn" and depthwise.attr("group") == 3
    np.testing.assert_array_equal(weights_of(after, 0)[0], weights_of(model, 0)[0])


def test_conv_with_fused_activation_is_not_folded_into():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        bn_node("r", "y"),
    ]
    model = model_from_nodes(nodes, [("x", [1, 2, 4, 4])], ["y"],
                             {"w": rand(3, 2, 1, 1), **bn_params(3)})  # fmt: skip
    fuse_by_hand(model, "conv")
    after = folded(model)
    assert op_types(after) == ["FusedConv", "Conv"]
    assert ops(after)[1].node_name == "bn" and ops(after)[1].attr("group") == 3


def test_conv_bn_as_graph_output_of_conv_too():
    # the conv result is itself a graph output: it cannot change, so the BN stands alone
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), bn_node("c", "y")]
    model = model_from_nodes(nodes, [("x", [1, 2, 4, 4])], ["c", "y"],
                             {"w": rand(3, 2, 1, 1), **bn_params(3)})  # fmt: skip
    after = folded(model)
    assert op_types(after) == ["Conv", "Conv"]
    assert ops(after)[0].output_names == ["c"]


# ---------------------------------------------------------------------- must not fire


def test_statistics_as_graph_inputs_are_left_alone():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), bn_node("c", "y")]
    params = bn_params(3)
    model = model_from_nodes(
        nodes,
        [("x", [1, 2, 4, 4]), ("bn_m", [3]), ("bn_v", [3])],
        ["y"],
        {"w": rand(3, 2, 1, 1), "bn_s": params["bn_s"], "bn_b": params["bn_b"]},
    )
    assert_unchanged(model)


def test_scale_as_graph_input_is_left_alone():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), bn_node("r", "y")]
    params = bn_params(3)
    del params["bn_s"]
    assert_unchanged(model_from_nodes(nodes, [("x", [1, 3, 4, 4]), ("bn_s", [3])], ["y"], params))


def test_training_mode_is_left_alone():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        bn_node("c", ["y", "running_mean", "running_var"], training_mode=1),
    ]
    model = model_from_nodes(nodes, [("x", [1, 2, 4, 4])], ["y"],
                             {"w": rand(3, 2, 1, 1), **bn_params(3)})  # fmt: skip
    assert_unchanged(model)


def test_non_constant_conv_weights_are_not_folded():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), bn_node("c", "y")]
    # BN parameters constant: the BN stands alone, the conv keeps its input weights
    after = folded(model_from_nodes(nodes, [("x", [1, 2, 4, 4]), ("w", [3, 2, 1, 1])], ["y"],
                                    bn_params(3)))  # fmt: skip
    assert op_types(after) == ["Conv", "Conv"]
    assert ops(after)[0].node_name == "conv"
    assert isinstance(ops(after)[0].onnx_inputs()[1], BlockArgument)
    # BN parameters not constant either: nothing to do at all
    params = bn_params(3)
    del params["bn_v"]
    model = model_from_nodes(nodes, [("x", [1, 2, 4, 4]), ("w", [3, 2, 1, 1]), ("bn_v", [3])],
                             ["y"], params)  # fmt: skip
    assert_unchanged(model)


def test_nothing_to_do_twice():
    after = folded(conv_bn())
    assert_unchanged(after)


# ---------------------------------------------------------------------- zoo


def bn_count(model: IRModel) -> int:
    return Counter(op_types(model))["BatchNormalization"]


@pytest.mark.parametrize("zoo_model", [pytest.param(m, id=m.name) for m in MODELS])
def test_zoo_models_lose_every_batchnorm(zoo_model: ZooModel):
    model = import_onnx(model_path(zoo_model))
    before_ops, before_bn = len(ops(model)), bn_count(model)
    after = clone(model)
    run_passes(after, "fold-batchnorm")
    assert bn_count(after) == 0
    print(f"{zoo_model.name}: BN {before_bn} -> 0, ops {before_ops} -> {len(ops(after))}")
    if not before_bn:
        assert str(after.module) == str(model.module)
        return
    feeds = {model.inputs[0].name: real_input(zoo_model)}
    want = Interpreter(model).run(feeds).outputs
    got = Interpreter(after).run(feeds).outputs
    for name, value in want.items():
        assert got[name].shape == value.shape and got[name].dtype == value.dtype, name
        assert relative_max_error(got[name], value) <= 1e-4, name
