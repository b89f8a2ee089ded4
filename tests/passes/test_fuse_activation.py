"""`fuse-activation`: decomposed Swish / HardSwish / Gelu recognised as one op; activations
fused into Conv / ConvTranspose / Gemm / MatMul (and into fused ops with a free slot); the
cases it must leave alone; the zoo models keep their outputs and lose every Conv->Relu/Clip
pair."""

from __future__ import annotations

import functools
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from onnx import helper

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel, parse_module
from dialects.onnx import OnnxOp
from dialects.onnx.fused import operand
from dialects.weights import WeightTable
from passes.rewrite import fused_nodes
from tests.compiler.test_zoo_models import relative_max_error
from tests.passes.helpers import (
    assert_same_outputs,
    clone,
    model_from_nodes,
    op_types,
    ops,
    run_passes,
)
from tests.zoo import BY_NAME, MODELS, ZooModel, model_path, real_input

PASS = "fuse-activation"
RNG = np.random.default_rng(0)
X = ("x", (1, 3, 8, 8))  # the conv input; the conv output is [1, 4, 8, 8]
CONV_INITS = {
    "w": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
    "b": RNG.standard_normal(4).astype(np.float32),
}


def f32(value: float) -> np.ndarray:
    return np.array(value, np.float32)


def conv_then(nodes: list, inits: dict[str, np.ndarray] | None = None,
              inputs: list | None = None, outputs: tuple[str, ...] = ("y",)) -> IRModel:  # fmt: skip
    """Conv(x) -> "c", then `nodes`."""
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1])
    return model_from_nodes([conv, *nodes], [X, *(inputs or [])], list(outputs),
                            {**CONV_INITS, **(inits or {})})  # fmt: skip


def fused(model: IRModel, spec: str = PASS) -> IRModel:
    """Run `spec` on a copy; assert it keeps the outputs; return the copy."""
    after = clone(model)
    run_passes(after, spec)
    assert_same_outputs(model, after)
    return after


def assert_unchanged(model: IRModel, spec: str = PASS) -> None:
    text = str(model.module)
    run_passes(model, spec)
    assert str(model.module) == text


def activation(op: OnnxOp, which: str = "activation") -> tuple[str, dict[str, Any]]:
    """(kind, attrs) of a fused op's `which` activation."""
    return op.attr(which), dict(op.attr(f"{which}_attrs"))


def assert_activation(got: tuple[str, dict[str, Any]], kind: str, attrs: dict[str, Any]) -> None:
    assert got[0] == kind
    assert set(got[1]) == set(attrs)
    for name, value in attrs.items():
        assert got[1][name] == (pytest.approx(value) if isinstance(value, float) else value)


# ---------------------------------------------------------------------- fusing into Conv

ACTIVATIONS = [
    pytest.param([helper.make_node("Relu", ["c"], ["y"], "act")], {}, "Relu", {}, id="relu"),
    pytest.param([helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "act")],
                 {"lo": f32(0), "hi": f32(6)}, "Clip", {"min": 0.0, "max": 6.0}, id="relu6"),
    pytest.param([helper.make_node("Clip", ["c", "lo"], ["y"], "act")],
                 {"lo": f32(-1.5)}, "Clip", {"min": -1.5}, id="clip-min-only"),
    pytest.param([helper.make_node("Clip", ["c", "", "hi"], ["y"], "act")],
                 {"hi": f32(2)}, "Clip", {"max": 2.0}, id="clip-max-only"),
    pytest.param([helper.make_node("LeakyRelu", ["c"], ["y"], "act", alpha=0.1)], {},
                 "LeakyRelu", {"alpha": 0.1}, id="leaky"),
    pytest.param([helper.make_node("Sigmoid", ["c"], ["y"], "act")], {}, "Sigmoid", {},
                 id="sigmoid"),
    pytest.param([helper.make_node("Tanh", ["c"], ["y"], "act")], {}, "Tanh", {}, id="tanh"),
    pytest.param([helper.make_node("Elu", ["c"], ["y"], "act", alpha=0.5)], {}, "Elu",
                 {"alpha": 0.5}, id="elu"),
    pytest.param([helper.make_node("HardSigmoid", ["c"], ["y"], "act", alpha=0.25, beta=0.4)],
                 {}, "HardSigmoid", {"alpha": 0.25, "beta": 0.4}, id="hardsigmoid"),
    pytest.param([helper.make_node("HardSwish", ["c"], ["y"], "act")], {}, "HardSwish", {},
                 id="hardswish"),
    pytest.param([helper.make_node("Gelu", ["c"], ["y"], "act")], {}, "Gelu",
                 {"approximate": "none"}, id="gelu"),
]  # fmt: skip


@pytest.mark.parametrize(("nodes", "inits", "kind", "attrs"), ACTIVATIONS)
def test_conv_activation_becomes_fused_conv(nodes, inits, kind, attrs):
    after = fused(conv_then(nodes, inits))
    assert op_types(after) == ["FusedConv"]
    (op,) = ops(after)
    assert_activation(activation(op), kind, attrs)
    assert activation(op, "post_activation") == ("", {})
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("conv", ["y"], ["act"])
    assert operand(op, "B") is not None and operand(op, "slope") is None


def test_prelu_per_channel_slope_becomes_the_slope_operand():
    slope = RNG.standard_normal((4, 1, 1)).astype(np.float32)
    model = conv_then([helper.make_node("PRelu", ["c", "s"], ["y"], "act")], {"s": slope})
    after = fused(model)
    (op,) = ops(after)
    assert op.op_type == "FusedConv" and activation(op) == ("PRelu", {})
    assert tuple(operand(op, "slope").type.get_shape()) == (4, 1, 1)
    assert fused_nodes(op) == ["act"] and op.output_names == ["y"]


def test_decomposed_swish_after_conv_is_recognised_then_fused():
    nodes = [
        helper.make_node("Sigmoid", ["c"], ["s"], "sig"),
        helper.make_node("Mul", ["c", "s"], ["y"], "mul"),
    ]
    after = fused(conv_then(nodes))
    (op,) = ops(after)
    assert op.op_type == "FusedConv"
    assert_activation(activation(op), "Swish", {"alpha": 1.0})
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("conv", ["y"], ["sig", "mul"])


def test_decomposed_gelu_after_conv_is_recognised_then_fused():
    after = fused(conv_then(pytorch_gelu("c", "y"), GELU_INITS))
    (op,) = ops(after)
    assert op.op_type == "FusedConv" and activation(op) == ("Gelu", {"approximate": "none"})
    assert fused_nodes(op) == ["div", "erf", "add", "mul_x", "mul_half"]
    assert op.output_names == ["y"]


# ---------------------------------------------------------------------- other producers


def test_conv_transpose_relu():
    inits = {"wt": RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)}
    nodes = [
        helper.make_node("ConvTranspose", ["x", "wt"], ["c"], "deconv", strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["y"], "relu"),
    ]
    after = fused(model_from_nodes(nodes, [X], ["y"], inits))
    (op,) = ops(after)
    assert op.op_type == "FusedConvTranspose" and activation(op) == ("Relu", {})
    assert op.attr("strides") == [2, 2] and op.node_name == "deconv"


def gemm_model(act: list, inits: dict[str, np.ndarray] | None = None) -> IRModel:
    gemm_inits = {"gw": RNG.standard_normal((5, 4)).astype(np.float32),
                  "gc": RNG.standard_normal(4).astype(np.float32)}  # fmt: skip
    gemm = helper.make_node("Gemm", ["a", "gw", "gc"], ["c"], "gemm", alpha=0.5)
    return model_from_nodes([gemm, *act], [("a", (2, 5))], ["y"], {**gemm_inits, **(inits or {})})


def test_gemm_leaky_relu():
    after = fused(gemm_model([helper.make_node("LeakyRelu", ["c"], ["y"], "act", alpha=0.2)]))
    (op,) = ops(after)
    assert op.op_type == "FusedGemm" and op.attr("alpha") == 0.5
    assert_activation(activation(op), "LeakyRelu", {"alpha": 0.2})


def test_gemm_prelu_slope_per_output_column():
    slope = RNG.standard_normal(4).astype(np.float32)
    after = fused(gemm_model([helper.make_node("PRelu", ["c", "s"], ["y"], "act")], {"s": slope}))
    (op,) = ops(after)
    assert op.op_type == "FusedGemm" and activation(op) == ("PRelu", {})


def test_matmul_tanh():
    inits = {"mw": RNG.standard_normal((5, 4)).astype(np.float32)}
    nodes = [
        helper.make_node("MatMul", ["a", "mw"], ["c"], "mm"),
        helper.make_node("Tanh", ["c"], ["y"], "act"),
    ]
    after = fused(model_from_nodes(nodes, [("a", (2, 3, 5))], ["y"], inits))
    assert op_types(after) == ["FusedMatMul"]
    assert activation(ops(after)[0]) == ("Tanh", {})


# ---------------------------------------------------------------------- fused producers (IR)

FUSED_IR = """builtin.module {{
  func.func @main(%x: tensor<1x2x3x3xf32> {{onnx.name = "x"}}, %z: tensor<1x2x3x3xf32> {{onnx.name = "z"}}) -> (tensor<1x2x3x3xf32> {{onnx.name = "y"}}) {{
    %w = "onnx.Constant"() <{{value = dense<[[[[0.5]], [[-1.0]]], [[[0.25]], [[2.0]]]]> : tensor<2x2x1x1xf32>}}> {{onnx.outputs = ["w"]}} : () -> tensor<2x2x1x1xf32>
    %c = "onnx.FusedConv"(%x, %w{z}) <{{{props}operandSegmentSizes = array<i32: 1, 1, 0, {nz}, 0>}}> {{onnx.node = "conv", onnx.outputs = ["c"], onnx.fused = ["add"]}} : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>{zt}) -> tensor<1x2x3x3xf32>
    {slope}%y = {act} {{onnx.node = "act", onnx.outputs = ["y"]}} : {act_type}
    func.return %y : tensor<1x2x3x3xf32>
  }}
}}"""
T = "tensor<1x2x3x3xf32>"
RELU = ('"onnx.Relu"(%c)', f"({T}) -> {T}")
PRELU = ('"onnx.PRelu"(%c, %s)', f"({T}, tensor<2x1x1xf32>) -> {T}")
SLOPE = (
    '%s = "onnx.Constant"() <{value = dense<[[[0.1]], [[0.2]]]> : tensor<2x1x1xf32>}> '
    '{onnx.outputs = ["s"]} : () -> tensor<2x1x1xf32>\n    '
)


def fused_conv_model(props: str, residual: bool, act: tuple[str, str]) -> IRModel:
    text = FUSED_IR.format(
        z=", %z" if residual else "", nz=int(residual), zt=f", {T}" if residual else "",
        props=props, act=act[0], act_type=act[1], slope=SLOPE if act is PRELU else "",
    )  # fmt: skip
    return IRModel(parse_module(text), WeightTable())


def test_relu_after_residual_becomes_post_activation():
    after = fused(fused_conv_model("", residual=True, act=RELU))
    (op,) = ops(after)
    assert activation(op) == ("", {}) and activation(op, "post_activation") == ("Relu", {})
    assert fused_nodes(op) == ["add", "act"] and op.output_names == ["y"]


def test_relu_after_activated_residual_becomes_post_activation():
    after = fused(fused_conv_model('activation = "Sigmoid", ', residual=True, act=RELU))
    (op,) = ops(after)
    assert activation(op) == ("Sigmoid", {}) and activation(op, "post_activation") == ("Relu", {})


def test_fused_op_with_nothing_fused_takes_the_activation():
    after = fused(fused_conv_model("", residual=False, act=PRELU))
    (op,) = ops(after)
    assert activation(op) == ("PRelu", {}) and operand(op, "slope") is not None


# ---------------------------------------------------------------------- recognition alone

SHAPE = ("x", (1, 4, 6, 6))
SQRT2, HALF_SQRT2 = f32(math.sqrt(2)), f32(math.sqrt(0.5))
GELU_INITS = {"sqrt2": SQRT2, "one": f32(1), "half": f32(0.5), "rsqrt2": HALF_SQRT2}


def pytorch_gelu(x: str, y: str) -> list:
    """PyTorch's export: Div(x, 1.4142135) -> Erf -> Add(1) -> Mul(x, .) -> Mul(., 0.5)."""
    return [
        helper.make_node("Div", [x, "sqrt2"], ["d"], "div"),
        helper.make_node("Erf", ["d"], ["e"], "erf"),
        helper.make_node("Add", ["e", "one"], ["a"], "add"),
        helper.make_node("Mul", [x, "a"], ["m"], "mul_x"),
        helper.make_node("Mul", ["m", "half"], [y], "mul_half"),
    ]


def recognise(nodes: list, inits: dict[str, np.ndarray] | None = None) -> IRModel:
    """The graph of `nodes` on x [1, 4, 6, 6] -> y, after the pass (outputs checked)."""
    return fused(model_from_nodes(nodes, [SHAPE], ["y"], inits))


@pytest.mark.parametrize("order", [["x", "s"], ["s", "x"]])
def test_swish(order):
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], "sig"),
             helper.make_node("Mul", order, ["y"], "mul")]  # fmt: skip
    after = recognise(nodes)
    (op,) = ops(after)
    assert op.op_type == "Swish" and op.attr("alpha") == 1.0
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("sig", ["y"], ["mul"])


@pytest.mark.parametrize("inner", [["x", "k"], ["k", "x"]])
def test_swish_with_alpha(inner):
    nodes = [
        helper.make_node("Mul", inner, ["xk"], "scale"),
        helper.make_node("Sigmoid", ["xk"], ["s"], "sig"),
        helper.make_node("Mul", ["s", "x"], ["y"], "mul"),
    ]
    after = recognise(nodes, {"k": f32(1.702)})
    (op,) = ops(after)
    assert op.op_type == "Swish" and op.attr("alpha") == pytest.approx(1.702)
    assert (op.node_name, fused_nodes(op)) == ("scale", ["sig", "mul"])


def test_hard_swish():
    nodes = [helper.make_node("HardSigmoid", ["x"], ["h"], "hsig", alpha=1 / 6, beta=0.5),
             helper.make_node("Mul", ["h", "x"], ["y"], "mul")]  # fmt: skip
    after = recognise(nodes)
    (op,) = ops(after)
    assert op.op_type == "HardSwish"
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("hsig", ["y"], ["mul"])


def paddle_hard_swish(last: str) -> list:
    """Paddle's export: Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6) or Mul(., 1/6)."""
    scale = (helper.make_node("Div", ["m", "six"], ["y"], "scale") if last == "div"
             else helper.make_node("Mul", ["sixth", "m"], ["y"], "scale"))  # fmt: skip
    return [
        helper.make_node("Add", ["x", "three"], ["a"], "add3"),
        helper.make_node("Clip", ["a", "zero", "six"], ["c"], "relu6"),
        helper.make_node("Mul", ["x", "c"], ["m"], "mul_x"),
        scale,
    ]


HARD_SWISH_INITS = {"three": f32(3), "zero": f32(0), "six": f32(6), "sixth": f32(1 / 6)}


@pytest.mark.parametrize("last", ["div", "mul"])
def test_paddle_hard_swish(last):
    after = recognise(paddle_hard_swish(last), HARD_SWISH_INITS)
    (op,) = ops(after)
    assert op.op_type == "HardSwish"
    assert (op.node_name, op.output_names) == ("add3", ["y"])
    assert fused_nodes(op) == ["relu6", "mul_x", "scale"]


@pytest.mark.parametrize(("name", "value"), [("three", 2.0), ("six", 5.0), ("zero", -1.0)])
def test_paddle_hard_swish_with_other_constants_stays(name, value):
    inits = {**HARD_SWISH_INITS, name: f32(value)}
    assert_unchanged(model_from_nodes(paddle_hard_swish("div"), [SHAPE], ["y"], inits))


GELU_FORMS = {
    "pytorch": pytorch_gelu("x", "y"),
    "mul-by-rsqrt2": [
        helper.make_node("Mul", ["rsqrt2", "x"], ["d"], "div"),
        helper.make_node("Erf", ["d"], ["e"], "erf"),
        helper.make_node("Add", ["one", "e"], ["a"], "add"),
        helper.make_node("Mul", ["a", "x"], ["m"], "mul_x"),
        helper.make_node("Mul", ["half", "m"], ["y"], "mul_half"),
    ],
    "half-first": [
        helper.make_node("Div", ["x", "sqrt2"], ["d"], "div"),
        helper.make_node("Erf", ["d"], ["e"], "erf"),
        helper.make_node("Add", ["e", "one"], ["a"], "add"),
        helper.make_node("Mul", ["x", "half"], ["m"], "mul_x"),
        helper.make_node("Mul", ["m", "a"], ["y"], "mul_half"),
    ],
    "half-times-erf": [
        helper.make_node("Div", ["x", "sqrt2"], ["d"], "div"),
        helper.make_node("Erf", ["d"], ["e"], "erf"),
        helper.make_node("Add", ["e", "one"], ["a"], "add"),
        helper.make_node("Mul", ["a", "half"], ["m"], "mul_x"),
        helper.make_node("Mul", ["x", "m"], ["y"], "mul_half"),
    ],
}


@pytest.mark.parametrize("form", sorted(GELU_FORMS))
def test_gelu(form):
    after = recognise(GELU_FORMS[form], GELU_INITS)
    (op,) = ops(after)
    assert op.op_type == "Gelu" and op.attr("approximate") == "none"
    assert (op.node_name, op.output_names) == ("div", ["y"])
    assert fused_nodes(op) == ["erf", "add", "mul_x", "mul_half"]


# ---------------------------------------------------------------------- must not fire


def test_not_when_the_conv_output_has_two_readers():
    nodes = [helper.make_node("Relu", ["c"], ["y"], "relu"),
             helper.make_node("Sigmoid", ["c"], ["y2"], "sig")]  # fmt: skip
    model = conv_then(nodes, outputs=("y", "y2"))
    assert_unchanged(model)
    assert op_types(model) == ["Conv", "Relu", "Sigmoid"]


def test_not_when_the_conv_output_is_also_a_graph_output():
    assert_unchanged(conv_then([helper.make_node("Relu", ["c"], ["y"], "relu")],
                               outputs=("y", "c")))  # fmt: skip


def test_not_clip_with_a_non_constant_bound():
    nodes = [helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip")]
    assert_unchanged(conv_then(nodes, {"hi": f32(6)}, inputs=[("lo", ())]))


@pytest.mark.parametrize(
    "slope",
    [np.full((1, 1, 8), 0.1, np.float32), np.full((4, 8, 8), 0.1, np.float32)],
    ids=["along-width", "per-element"],
)
def test_not_prelu_with_a_slope_that_is_not_per_channel(slope):
    assert_unchanged(conv_then([helper.make_node("PRelu", ["c", "s"], ["y"], "act")],
                               {"s": slope}))  # fmt: skip


def test_not_prelu_with_a_non_constant_slope():
    nodes = [helper.make_node("PRelu", ["c", "s"], ["y"], "act")]
    assert_unchanged(conv_then(nodes, inputs=[("s", (4, 1, 1))]))


def test_not_gemm_prelu_per_row():
    slope = RNG.standard_normal((2, 1)).astype(np.float32)
    assert_unchanged(gemm_model([helper.make_node("PRelu", ["c", "s"], ["y"], "act")],
                                {"s": slope}))  # fmt: skip


def test_not_gelu_tanh():
    model = conv_then([helper.make_node("Gelu", ["c"], ["y"], "act", approximate="tanh")])
    assert_unchanged(model)
    assert op_types(model) == ["Conv", "Gelu"]


def test_not_a_sigmoid_of_another_tensor():
    nodes = [helper.make_node("Sigmoid", ["x2"], ["s"], "sig"),
             helper.make_node("Mul", ["x", "s"], ["y"], "mul")]  # fmt: skip
    assert_unchanged(model_from_nodes(nodes, [SHAPE, ("x2", (1, 4, 6, 6))], ["y"]))


def test_not_swish_whose_sigmoid_has_another_reader():
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"], "sig"),
             helper.make_node("Mul", ["x", "s"], ["y"], "mul")]  # fmt: skip
    assert_unchanged(model_from_nodes(nodes, [SHAPE], ["y", "s"]))


def test_not_swish_with_a_non_scalar_alpha():
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["xk"], "scale"),
        helper.make_node("Sigmoid", ["xk"], ["s"], "sig"),
        helper.make_node("Mul", ["s", "x"], ["y"], "mul"),
    ]
    k = np.full((1, 4, 1, 1), 1.702, np.float32)
    assert_unchanged(model_from_nodes(nodes, [SHAPE], ["y"], {"k": k}))


def test_not_x_times_hard_sigmoid_with_other_constants():
    nodes = [helper.make_node("HardSigmoid", ["x"], ["h"], "hsig"),  # alpha 0.2
             helper.make_node("Mul", ["h", "x"], ["y"], "mul")]  # fmt: skip
    assert_unchanged(model_from_nodes(nodes, [SHAPE], ["y"]))


def test_not_gelu_with_a_wrong_constant():
    inits = {**GELU_INITS, "sqrt2": f32(2.0)}
    assert_unchanged(model_from_nodes(pytorch_gelu("x", "y"), [SHAPE], ["y"], inits))


def test_not_gelu_whose_erf_has_another_reader():
    assert_unchanged(model_from_nodes(pytorch_gelu("x", "y"), [SHAPE], ["y", "e"], GELU_INITS))


def test_not_an_activation_after_an_activated_fused_conv():
    assert_unchanged(fused_conv_model('activation = "Relu", ', residual=False, act=RELU))


def test_not_after_a_post_activation():
    props = 'post_activation = "Relu", '
    assert_unchanged(fused_conv_model(props, residual=True, act=RELU))


def test_not_prelu_after_the_residual_add():
    assert_unchanged(fused_conv_model("", residual=True, act=PRELU))


# ---------------------------------------------------------------------- the zoo

PARAMS = [pytest.param(m, id=m.name) for m in MODELS]


def unfused_conv_activations(model: IRModel) -> list[str]:
    """Conv-like ops whose only reader is a Relu or Clip (a fusion left undone)."""
    found = []
    for op in ops(model):
        readers = [use.operation for use in op.results[0].uses]
        if (op.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(readers) == 1
                and getattr(readers[0], "op_type", "") in ("Relu", "Clip")):  # fmt: skip
            found.append(op.describe())
    return found


@functools.cache
def imported(name: str) -> IRModel:
    """The zoo model as imported (tests work on a `clone`; shared by the fusion tests)."""
    return import_onnx(model_path(BY_NAME[name]))


@functools.cache
def reference_outputs(name: str) -> dict[str, np.ndarray]:
    """The imported model's outputs on its real input (shared by the fusion tests)."""
    model = imported(name)
    return Interpreter(model).run({model.inputs[0].name: real_input(BY_NAME[name])}).outputs


def zoo_check(zoo_model: ZooModel, spec: str) -> tuple[Counter[str], Counter[str], IRModel]:
    """Run `spec` on the model: outputs within 1e-4 (relative max error) on its real input,
    no Conv->Relu/Clip left. Returns the op counts before and after, and the model."""
    model = clone(imported(zoo_model.name))
    before = Counter(op_types(model))
    text = str(model.module)
    run_passes(model, spec)
    if str(model.module) != text:  # (unchanged IR computes the same: skip the interpreter)
        want = reference_outputs(zoo_model.name)
        got = Interpreter(model).run({model.inputs[0].name: real_input(zoo_model)}).outputs
        for name, value in want.items():
            assert relative_max_error(got[name], value) <= 1e-4, name
    assert not unfused_conv_activations(model)
    return before, Counter(op_types(model)), model


@pytest.mark.parametrize("zoo_model", PARAMS)
def test_zoo(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    before, after, _ = zoo_check(zoo_model, PASS)
    fused_ops = sum(n for t, n in after.items() if t.startswith("Fused"))
    with capsys.disabled():
        print(f"\n{PASS} | {zoo_model.name} | {sum(before.values())} -> "
              f"{sum(after.values())} ops | {fused_ops} fused")  # fmt: skip
