"""`fuse-add`: Conv (+ activation) + residual Add (+ activation) -> one FusedConv with Z; the
cases it must leave alone; on the zoo, `fuse-activation,fuse-add` keeps every model's outputs
and leaves no Conv->Relu/Clip pair (a table of op counts is printed)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.ir_model import IRModel
from dialects.onnx.fused import operand
from passes.rewrite import fused_nodes
from tests.passes.helpers import model_from_nodes, op_types, ops
from tests.passes.test_fuse_activation import (
    CONV_INITS,
    X,
    activation,
    assert_unchanged,
    f32,
    fused,
    zoo_check,
)
from tests.zoo import MODELS, ZooModel

PASS = "fuse-add"
RNG = np.random.default_rng(1)
Z = ("z", (1, 4, 8, 8))  # the conv output's shape


def conv(name: str = "conv", x: str = "x", out: str = "c") -> object:
    return helper.make_node("Conv", [x, "w", "b"], [out], name, pads=[1, 1, 1, 1])


def residual_model(nodes: list, inputs: list | None = None, outputs: tuple[str, ...] = ("y",),
                   inits: dict[str, np.ndarray] | None = None) -> IRModel:  # fmt: skip
    """Conv(x) -> "c", then `nodes`; z [1, 4, 8, 8] is a graph input."""
    return model_from_nodes([conv(), *nodes], [X, *(inputs or [Z])], list(outputs),
                            {**CONV_INITS, **(inits or {})})  # fmt: skip


@pytest.mark.parametrize("order", [["c", "z"], ["z", "c"]])
def test_conv_add_becomes_fused_conv_with_residual(order):
    after = fused(residual_model([helper.make_node("Add", order, ["y"], "add")]), PASS)
    (op,) = ops(after)
    assert op.op_type == "FusedConv"
    assert operand(op, "Z") is after.main.body.blocks[0].args[1]
    assert activation(op) == ("", {}) and activation(op, "post_activation") == ("", {})
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("conv", ["y"], ["add"])


POST_ACTIVATIONS = [
    pytest.param(helper.make_node("Relu", ["s"], ["y"], "act"), {}, "Relu", {}, id="relu"),
    pytest.param(helper.make_node("Clip", ["s", "lo", "hi"], ["y"], "act"),
                 {"lo": f32(0), "hi": f32(6)}, "Clip", {"min": 0.0, "max": 6.0}, id="relu6"),
    pytest.param(helper.make_node("LeakyRelu", ["s"], ["y"], "act", alpha=0.25), {},
                 "LeakyRelu", {"alpha": 0.25}, id="leaky"),
    pytest.param(helper.make_node("Sigmoid", ["s"], ["y"], "act"), {}, "Sigmoid", {},
                 id="sigmoid"),
    pytest.param(helper.make_node("HardSwish", ["s"], ["y"], "act"), {}, "HardSwish", {},
                 id="hardswish"),
    pytest.param(helper.make_node("Gelu", ["s"], ["y"], "act"), {}, "Gelu",
                 {"approximate": "none"}, id="gelu"),
]  # fmt: skip


@pytest.mark.parametrize(("act", "inits", "kind", "attrs"), POST_ACTIVATIONS)
def test_activation_after_the_add_becomes_post_activation(act, inits, kind, attrs):
    nodes = [helper.make_node("Add", ["c", "z"], ["s"], "add"), act]
    after = fused(residual_model(nodes, inits=inits), PASS)
    (op,) = ops(after)
    assert op.op_type == "FusedConv" and activation(op, "post_activation") == (kind, attrs)
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("conv", ["y"], ["add", "act"])


def test_conv_activation_add_activation():
    """RKNN's Conv+Activation+Add, with fuse-activation first (the pipeline's order)."""
    nodes = [
        helper.make_node("Relu", ["c"], ["r"], "relu1"),
        helper.make_node("Add", ["z", "r"], ["s"], "add"),
        helper.make_node("Relu", ["s"], ["y"], "relu2"),
    ]
    after = fused(residual_model(nodes), "fuse-activation,fuse-add")
    (op,) = ops(after)
    assert activation(op) == ("Relu", {}) and activation(op, "post_activation") == ("Relu", {})
    assert fused_nodes(op) == ["relu1", "add", "relu2"] and op.output_names == ["y"]


def test_prelu_after_the_add_stays_separate():
    nodes = [helper.make_node("Add", ["c", "z"], ["s"], "add"),
             helper.make_node("PRelu", ["s", "slope"], ["y"], "act")]  # fmt: skip
    slope = RNG.standard_normal((4, 1, 1)).astype(np.float32)
    after = fused(residual_model(nodes, inits={"slope": slope}), PASS)
    assert op_types(after) == ["FusedConv", "PRelu"]
    assert ops(after)[0].output_names == ["s"]


def test_both_operands_convs_the_first_takes_the_second():
    nodes = [conv("conv2", "x", "c2"), helper.make_node("Add", ["c", "c2"], ["y"], "add")]
    after = fused(residual_model(nodes, inputs=[]), PASS)
    assert op_types(after) == ["Conv", "FusedConv"]
    second, first = ops(after)
    assert first.node_name == "conv" and operand(first, "Z") is second.results[0]


def test_residual_defined_after_the_conv():
    """The new op goes where the Add was, after the residual's producer."""
    nodes = [helper.make_node("Sigmoid", ["x2"], ["z"], "late"),
             helper.make_node("Add", ["c", "z"], ["y"], "add")]  # fmt: skip
    after = fused(residual_model(nodes, inputs=[("x2", (1, 4, 8, 8))]), PASS)
    assert op_types(after) == ["Sigmoid", "FusedConv"]


def test_a_chain_of_residual_blocks():
    nodes = [
        helper.make_node("Add", ["c", "z"], ["s1"], "add1"),
        helper.make_node("Relu", ["s1"], ["r1"], "relu1"),
        conv("conv2", "r1", "c2"),
        helper.make_node("Add", ["c2", "r1"], ["s2"], "add2"),
        helper.make_node("Relu", ["s2"], ["y"], "relu2"),
    ]
    inits = {"w": RNG.standard_normal((4, 4, 3, 3)).astype(np.float32)}
    model = model_from_nodes([conv("conv1", "z", "c"), *nodes], [Z], ["y"],
                             {**CONV_INITS, **inits})  # fmt: skip
    after = fused(model, PASS)
    assert op_types(after) == ["FusedConv", "FusedConv"]
    assert [fused_nodes(op) for op in ops(after)] == [["add1", "relu1"], ["add2", "relu2"]]


# ---------------------------------------------------------------------- must not fire


def test_not_when_the_conv_result_has_another_reader():
    nodes = [helper.make_node("Add", ["c", "z"], ["y"], "add"),
             helper.make_node("Relu", ["c"], ["y2"], "relu")]  # fmt: skip
    assert_unchanged(residual_model(nodes, outputs=("y", "y2")), PASS)


def test_not_when_the_conv_result_is_a_graph_output():
    model = residual_model([helper.make_node("Add", ["c", "z"], ["y"], "add")],
                           outputs=("y", "c"))  # fmt: skip
    assert_unchanged(model, PASS)


@pytest.mark.parametrize("shape", [(1, 4, 1, 1), (4, 1, 1), (8,)], ids=str)
def test_not_when_the_other_operand_broadcasts(shape):
    model = residual_model([helper.make_node("Add", ["c", "z"], ["y"], "add")],
                           inputs=[("z", shape)])  # fmt: skip
    assert_unchanged(model, PASS)


def test_not_when_the_conv_already_has_a_residual():
    nodes = [helper.make_node("Add", ["c", "z"], ["s"], "add1"),
             helper.make_node("Add", ["s", "z2"], ["y"], "add2")]  # fmt: skip
    model = residual_model(nodes, inputs=[Z, ("z2", (1, 4, 8, 8))])
    after = fused(model, PASS)
    assert op_types(after) == ["FusedConv", "Add"]  # the first Add only
    assert_unchanged(after, PASS)


def test_not_after_a_conv_transpose():
    inits = {"wt": RNG.standard_normal((3, 4, 3, 3)).astype(np.float32)}
    nodes = [helper.make_node("ConvTranspose", ["x", "wt"], ["c"], "deconv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "z"], ["y"], "add")]  # fmt: skip
    assert_unchanged(model_from_nodes(nodes, [X, Z], ["y"], inits), PASS)


# ---------------------------------------------------------------------- the zoo

PARAMS = [pytest.param(m, id=m.name) for m in MODELS]
SPEC = "fuse-activation,fuse-add"


def activations_after_batchnorm(model: IRModel) -> int:
    """Relu/Clip reading a BatchNormalization: left for fold-batchnorm to expose."""
    return sum(
        1 for op in ops(model)
        if op.op_type in ("Relu", "Clip")
        and getattr(op.operands[0].owner, "op_type", "") == "BatchNormalization"
    )  # fmt: skip


@pytest.mark.parametrize("zoo_model", PARAMS)
def test_zoo(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    before, after, model = zoo_check(zoo_model, SPEC)
    with_z = sum(1 for op in ops(model) if op.op_type == "FusedConv" and operand(op, "Z"))
    changed = {t: after[t] - before[t] for t in sorted(set(before) | set(after))
               if after[t] != before[t]}  # fmt: skip
    with capsys.disabled():
        print(f"\n| {zoo_model.name} | {sum(before.values())} | {sum(after.values())} | "
              f"{after['FusedConv'] + after['FusedGemm']} | {with_z} | "
              f"{activations_after_batchnorm(model)} | {changed} |")  # fmt: skip
