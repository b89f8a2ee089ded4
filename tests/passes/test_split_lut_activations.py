"""`split-lut-activations`: fused ops keep only the activations the DPU applies (Relu, Clip,
LeakyRelu, PRelu; with a residual Z, Relu before and Relu/Clip after); LUT activations
(Sigmoid, Swish, HardSwish, Gelu, ...) become standalone ops reading the tensor they read before
fuse-activation (else `<output>_preact`), and an
activation the DPU cannot apply before a residual undoes the add fusion. The outputs never
change; the DPU-only cases leave the IR as it is."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.ir_model import IRModel
from dialects.onnx.fused import operand
from tests.passes.helpers import assert_same_outputs, clone, model_from_nodes, ops, run_passes
from tests.passes.test_fuse_activation import CONV_INITS, X, activation, conv_then, f32

PASS = "split-lut-activations"
Z = ("z", (1, 4, 8, 8))  # the conv output's shape


def fused_then_split(model: IRModel, fuse: str = "fuse-activation") -> tuple[IRModel, IRModel]:
    """(`model` after `fuse`, a copy of that after the split); the split keeps the outputs."""
    run_passes(model, fuse)
    after = clone(model)
    run_passes(after, PASS)
    assert_same_outputs(model, after)
    return model, after


def residual(nodes: list, inits: dict[str, np.ndarray] | None = None) -> IRModel:
    """Conv(x) -> "c", then `nodes`; z [1, 4, 8, 8] is a graph input."""
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1])
    return model_from_nodes([conv, *nodes], [X, Z], ["y"], {**CONV_INITS, **(inits or {})})


LUT = [
    pytest.param([helper.make_node("Sigmoid", ["c"], ["y"], "act")], "Sigmoid", id="sigmoid"),
    pytest.param([helper.make_node("HardSwish", ["c"], ["y"], "act")], "HardSwish",
                 id="hardswish"),
    pytest.param([helper.make_node("Gelu", ["c"], ["y"], "act")], "Gelu", id="gelu"),
    pytest.param([helper.make_node("Tanh", ["c"], ["y"], "act")], "Tanh", id="tanh"),
    pytest.param([helper.make_node("Sigmoid", ["c"], ["s"], "sig"),
                  helper.make_node("Mul", ["c", "s"], ["y"], "mul")], "Swish", id="swish"),
]  # fmt: skip


@pytest.mark.parametrize(("nodes", "kind"), LUT)
def test_lut_activation_is_split_out(nodes, kind):
    fused, after = fused_then_split(conv_then(nodes))
    assert [(op.op_type, activation(op)[0]) for op in ops(fused)] == [("FusedConv", kind)]
    core, act = ops(after)
    assert core.op_type == "FusedConv" and activation(core) == ("", {})
    assert core.node_name == "conv" and core.output_names == ["c"]  # the name before fusion
    assert act.op_type == kind and act.output_names == ["y"]
    assert act.operands[0] is core.results[0]
    assert act.attribute_values(after.weights).keys() >= set(activation(ops(fused)[0])[1])


def test_swish_keeps_its_alpha():
    fused, after = fused_then_split(conv_then(LUT[-1].values[0]))
    (swish,) = [op for op in ops(after) if op.op_type == "Swish"]
    assert swish.attr("alpha") == activation(ops(fused)[0])[1]["alpha"]


def test_lut_after_residual_keeps_the_add_and_splits_the_post_activation():
    nodes = [
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("Add", ["r", "z"], ["s"], "add"),
        helper.make_node("Sigmoid", ["s"], ["y"], "sig"),
    ]
    fused, after = fused_then_split(residual(nodes), "fuse-activation,fuse-add")
    (before_op,) = ops(fused)
    assert activation(before_op) == ("Relu", {})
    assert activation(before_op, "post_activation") == ("Sigmoid", {})
    core, sig = ops(after)
    assert core.op_type == "FusedConv" and core.output_names == ["y_preact"]
    assert activation(core) == ("Relu", {}) and activation(core, "post_activation") == ("", {})
    assert operand(core, "Z") is after.main.body.blocks[0].args[1]
    assert (sig.op_type, sig.output_names, sig.operands[0]) == ("Sigmoid", ["y"], core.results[0])


def test_swish_before_residual_undoes_the_add_fusion():
    nodes = [
        helper.make_node("Sigmoid", ["c"], ["sg"], "sig"),
        helper.make_node("Mul", ["c", "sg"], ["sw"], "mul"),
        helper.make_node("Add", ["sw", "z"], ["s"], "add"),
        helper.make_node("Relu", ["s"], ["y"], "relu"),
    ]
    fused, after = fused_then_split(residual(nodes), "fuse-activation,fuse-add")
    (before_op,) = ops(fused)
    assert activation(before_op)[0] == "Swish" and operand(before_op, "Z") is not None
    assert activation(before_op, "post_activation") == ("Relu", {})
    assert [op.op_type for op in ops(after)] == ["FusedConv", "Swish", "Add", "Relu"]
    core, swish, add, relu = ops(after)
    assert operand(core, "Z") is None and activation(core) == ("", {})
    assert activation(core, "post_activation") == ("", {})
    assert swish.operands[0] is core.results[0] and add.operands[0] is swish.results[0]
    assert add.operands[1] is after.main.body.blocks[0].args[1]
    assert relu.operands[0] is add.results[0] and relu.output_names == ["y"]


def test_leaky_relu_before_residual_is_split_too():
    """LeakyRelu is a DPU activation without Z, but not before the residual add."""
    nodes = [
        helper.make_node("LeakyRelu", ["c"], ["l"], "leaky", alpha=0.2),
        helper.make_node("Add", ["l", "z"], ["y"], "add"),
    ]
    fused, after = fused_then_split(residual(nodes), "fuse-activation,fuse-add")
    assert [op.op_type for op in ops(fused)] == ["FusedConv"]
    assert [op.op_type for op in ops(after)] == ["FusedConv", "LeakyRelu", "Add"]
    assert ops(after)[1].attr("alpha") == pytest.approx(0.2)


def test_clip_post_activation_after_lut_pre_activation_is_a_clip_op():
    """Clip stages come back as ONNX Clip with constant bounds (min/max inputs)."""
    nodes = [
        helper.make_node("HardSwish", ["c"], ["h"], "hs"),
        helper.make_node("Add", ["h", "z"], ["s"], "add"),
        helper.make_node("Clip", ["s", "lo", "hi"], ["y"], "clip"),
    ]
    model = residual(nodes, {"lo": f32(0), "hi": f32(6)})
    fused, after = fused_then_split(model, "fuse-activation,fuse-add")
    assert activation(ops(fused)[0], "post_activation")[0] == "Clip"
    assert [op.op_type for op in ops(after)] == ["FusedConv", "HardSwish", "Add", "Clip"]


# ---------------------------------------------------------------------- must not fire

DPU = [
    pytest.param([helper.make_node("Relu", ["c"], ["y"], "act")], {}, id="relu"),
    pytest.param([helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "act")],
                 {"lo": f32(0), "hi": f32(6)}, id="relu6"),
    pytest.param([helper.make_node("LeakyRelu", ["c"], ["y"], "act", alpha=0.1)], {},
                 id="leaky"),
    pytest.param([helper.make_node("PRelu", ["c", "slope"], ["y"], "act")],
                 {"slope": np.full((4, 1, 1), 0.3, np.float32)}, id="prelu"),
]  # fmt: skip


def assert_unchanged(model: IRModel) -> None:
    text = str(model.module)
    report = run_passes(model, PASS)
    assert str(model.module) == text
    assert not [n for n in report.notes if n.startswith(PASS)]


@pytest.mark.parametrize(("nodes", "inits"), DPU)
def test_dpu_activation_stays_fused(nodes, inits):
    model = conv_then(nodes, inits)
    run_passes(model, "fuse-activation")
    assert [op.op_type for op in ops(model)] == ["FusedConv"]
    assert activation(ops(model)[0])[0] != ""
    assert_unchanged(model)


@pytest.mark.parametrize(
    "post",
    [
        pytest.param([helper.make_node("Relu", ["s"], ["y"], "post")], id="relu"),
        pytest.param([helper.make_node("Clip", ["s", "lo", "hi"], ["y"], "post")], id="clip"),
    ],
)
def test_relu_residual_relu_or_clip_stays_fused(post):
    nodes = [
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("Add", ["r", "z"], ["s"], "add"),
        *post,
    ]
    model = residual(nodes, {"lo": f32(0), "hi": f32(6)})
    run_passes(model, "fuse-activation,fuse-add")
    assert [op.op_type for op in ops(model)] == ["FusedConv"]
    assert_unchanged(model)


def test_plain_conv_and_a_standalone_sigmoid_stay():
    model = conv_then([helper.make_node("Sigmoid", ["c"], ["y"], "act")])
    assert_unchanged(model)  # not fused: nothing to split


def test_split_reports_a_note():
    model = conv_then([helper.make_node("Sigmoid", ["c"], ["y"], "act")])
    run_passes(model, "fuse-activation")
    report = run_passes(model, PASS)
    assert f"{PASS}: split 1 activations out of fused ops" in report.notes
