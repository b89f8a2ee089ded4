"""`fuse-subgraphs`: the decomposed LayerNormalization, Split+Sigmoid+Mul (GLU) and
MatMul+Add (Gemm) become one op each, with the pattern's names; the near misses stay; the zoo
models keep their outputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import helper

from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
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
from tests.passes.test_fuse_activation import (
    assert_unchanged,
    f32,
    imported,
    reference_outputs,
)
from tests.zoo import MODELS, ZooModel, real_input

PASS = "fuse-subgraphs"
RNG = np.random.default_rng(2)


def fused(model: IRModel, rtol: float = 1e-5, atol: float = 1e-6) -> IRModel:
    after = clone(model)
    run_passes(after, PASS)
    assert_same_outputs(model, after, rtol=rtol, atol=atol)
    return after


def ints(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


# ---------------------------------------------------------------------- LayerNormalization

LN_X = ("x", (2, 5, 8))


def layer_norm_nodes(affine: bool = True, eps_first: bool = False,
                     gamma_first: bool = False) -> list:  # fmt: skip
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (-> Mul(gamma) -> Add(beta)) -> "y"."""
    eps_add = ["eps", "var"] if eps_first else ["var", "eps"]
    norm_out = "n" if affine else "y"
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], "rm1"),
        helper.make_node("Sub", ["x", "mean"], ["d"], "sub"),
        helper.make_node("Pow", ["d", "two"], ["p"], "pow"),
        helper.make_node("ReduceMean", ["p", "axes"], ["var"], "rm2"),
        helper.make_node("Add", eps_add, ["ve"], "add_eps"),
        helper.make_node("Sqrt", ["ve"], ["sd"], "sqrt"),
        helper.make_node("Div", ["d", "sd"], [norm_out], "div"),
    ]
    if affine:
        nodes += [
            helper.make_node("Mul", ["gamma", "n"] if gamma_first else ["n", "gamma"], ["g"],
                             "mul_gamma"),
            helper.make_node("Add", ["g", "beta"], ["y"], "add_beta"),
        ]  # fmt: skip
    return nodes


def ln_inits(axes: tuple[int, ...] = (-1,), param_shape: tuple[int, ...] = (8,),
             eps: float = 1e-5) -> dict[str, np.ndarray]:  # fmt: skip
    return {
        "axes": ints(*axes), "two": f32(2), "eps": f32(eps),
        "gamma": RNG.standard_normal(param_shape).astype(np.float32),
        "beta": RNG.standard_normal(param_shape).astype(np.float32),
    }  # fmt: skip


def ln_model(nodes: list, inits: dict[str, np.ndarray], outputs: tuple[str, ...] = ("y",),
             inputs: list | None = None) -> IRModel:  # fmt: skip
    used = {name for node in nodes for name in node.input}
    inits = {k: v for k, v in inits.items() if k in used}
    return model_from_nodes(nodes, [LN_X, *(inputs or [])], list(outputs), inits)


def test_layer_norm_with_gamma_and_beta():
    inits = ln_inits(eps=1e-6)
    after = fused(ln_model(layer_norm_nodes(), inits), rtol=1e-4, atol=1e-5)
    (op,) = ops(after)
    assert op.op_type == "LayerNormalization"
    assert op.attr("axis") == 2 and op.attr("epsilon") == pytest.approx(1e-6)
    assert (op.node_name, op.output_names) == ("rm1", ["y"])
    assert fused_nodes(op) == ["sub", "pow", "rm2", "add_eps", "sqrt", "div", "mul_gamma",
                               "add_beta"]  # fmt: skip
    assert len(op.results) == 1


def test_layer_norm_without_affine_part_gets_ones_and_zeros():
    after = fused(ln_model(layer_norm_nodes(affine=False), ln_inits()), rtol=1e-4, atol=1e-5)
    assert op_types(after) == ["LayerNormalization"]
    scale, bias = (v.owner for v in ops(after)[0].operands[1:])
    assert scale.results[0].type.get_shape() == bias.results[0].type.get_shape()
    assert ops(after)[0].output_names == ["y"]


def test_layer_norm_operands_in_the_other_order():
    nodes = layer_norm_nodes(eps_first=True, gamma_first=True)
    after = fused(ln_model(nodes, ln_inits()), rtol=1e-4, atol=1e-5)
    assert op_types(after) == ["LayerNormalization"]


@pytest.mark.parametrize(
    ("axes", "param_shape", "axis"),
    [((1, 2), (5, 8), 1), ((-2, -1), (1, 8), 1), ((2,), (1, 1, 8), 2), ((-1,), (1,), 2)],
    ids=["two-axes", "negative-axes-row-gamma", "leading-ones-gamma", "scalar-gamma"],
)
def test_layer_norm_axes_and_parameter_shapes(axes, param_shape, axis):
    after = fused(ln_model(layer_norm_nodes(), ln_inits(axes, param_shape)), rtol=1e-4,
                  atol=1e-5)  # fmt: skip
    (op,) = ops(after)
    assert op.op_type == "LayerNormalization" and op.attr("axis") == axis


def test_layer_norm_keeps_a_gamma_that_does_not_fit_outside():
    """gamma [5, 1] varies along an axis the normalization does not cover: the Mul stays
    (and so does the Add after it)."""
    after = fused(ln_model(layer_norm_nodes(), ln_inits(param_shape=(5, 1))), rtol=1e-4,
                  atol=1e-5)  # fmt: skip
    assert op_types(after) == ["LayerNormalization", "Mul", "Add"]
    assert ops(after)[0].output_names == ["n"]


def test_not_layer_norm_over_leading_axes():
    assert_unchanged(ln_model(layer_norm_nodes(), ln_inits((1,), (5, 1))), PASS)


def test_not_layer_norm_with_different_axes():
    nodes = layer_norm_nodes(affine=False)
    nodes[3] = helper.make_node("ReduceMean", ["p", "axes2"], ["var"], "rm2")
    inits = {**ln_inits(), "axes2": ints(1, 2)}
    assert_unchanged(ln_model(nodes, inits), PASS)


def test_not_layer_norm_with_exponent_3():
    inits = {**ln_inits(), "two": f32(3)}
    assert_unchanged(ln_model(layer_norm_nodes(), inits), PASS)


def test_not_layer_norm_with_a_non_constant_eps():
    inits = ln_inits()
    del inits["eps"]
    assert_unchanged(ln_model(layer_norm_nodes(), inits, inputs=[("eps", ())]), PASS)


def test_not_layer_norm_when_an_intermediate_has_another_reader():
    assert_unchanged(ln_model(layer_norm_nodes(), ln_inits(), outputs=("y", "d")), PASS)
    assert_unchanged(ln_model(layer_norm_nodes(), ln_inits(), outputs=("y", "var")), PASS)


def test_not_layer_norm_of_two_tensors():
    nodes = layer_norm_nodes()
    nodes[1] = helper.make_node("Sub", ["x2", "mean"], ["d"], "sub")
    assert_unchanged(ln_model(nodes, ln_inits(), inputs=[("x2", (2, 5, 8))]), PASS)


# ---------------------------------------------------------------------- GLU

GLU_X = ("x", (2, 8, 3))


def glu_nodes(split: list[str] | None = None, mul: tuple[str, str] = ("a", "s"),
              sigmoid_of: str = "b", outputs: tuple[str, ...] = ("a", "b")) -> list:  # fmt: skip
    kwargs = {} if split else {"num_outputs": len(outputs)}
    return [
        helper.make_node("Split", ["x", *(split or [])], list(outputs), "split", axis=1,
                         **kwargs),
        helper.make_node("Sigmoid", [sigmoid_of], ["s"], "sig"),
        helper.make_node("Mul", list(mul), ["y"], "mul"),
    ]  # fmt: skip


@pytest.mark.parametrize("mul", [("a", "s"), ("s", "a")])
def test_glu(mul):
    after = fused(model_from_nodes(glu_nodes(mul=mul), [GLU_X], ["y"]))
    (op,) = ops(after)
    assert op.op_type == "GLU" and op.attr("axis") == 1
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("split", ["y"], ["sig", "mul"])


def test_glu_with_split_sizes():
    model = model_from_nodes(glu_nodes(split=["sizes"]), [GLU_X], ["y"], {"sizes": ints(4, 4)})
    assert op_types(fused(model)) == ["GLU"]


def test_not_glu_with_unequal_halves():
    model = model_from_nodes(glu_nodes(split=["sizes"]), [GLU_X], ["y"], {"sizes": ints(1, 7)})
    assert_unchanged(model, PASS)


def test_not_glu_with_three_parts():
    nodes = glu_nodes(outputs=("a", "b", "c"))
    assert_unchanged(model_from_nodes(nodes, [("x", (2, 9, 3))], ["y", "c"]), PASS)


def test_not_glu_with_the_halves_swapped():
    nodes = glu_nodes(mul=("b", "s"), sigmoid_of="a")
    assert_unchanged(model_from_nodes(nodes, [GLU_X], ["y"]), PASS)


def test_not_glu_when_a_half_has_another_reader():
    assert_unchanged(model_from_nodes(glu_nodes(), [GLU_X], ["y", "a"]), PASS)


# ---------------------------------------------------------------------- Gemm


def gemm_model(a_shape: tuple[int, ...] = (3, 5), bias_shape: tuple[int, ...] = (4,),
               bias_first: bool = False, constant_b: bool = True, constant_bias: bool = True,
               outputs: tuple[str, ...] = ("y",)) -> IRModel:  # fmt: skip
    add_inputs = ["bias", "mm"] if bias_first else ["mm", "bias"]
    nodes = [helper.make_node("MatMul", ["a", "w"], ["mm"], "mm"),
             helper.make_node("Add", add_inputs, ["y"], "add")]  # fmt: skip
    inits = {"w": RNG.standard_normal((5, 4)).astype(np.float32),
             "bias": RNG.standard_normal(bias_shape).astype(np.float32)}  # fmt: skip
    inputs = [("a", a_shape)]
    for name, constant in (("w", constant_b), ("bias", constant_bias)):
        if not constant:
            inputs.append((name, inits.pop(name).shape))
    return model_from_nodes(nodes, inputs, list(outputs), inits)


@pytest.mark.parametrize("bias_shape", [(4,), (1, 4), (3, 4)], ids=str)
@pytest.mark.parametrize("bias_first", [False, True])
def test_matmul_add_becomes_gemm(bias_shape, bias_first):
    after = fused(gemm_model(bias_shape=bias_shape, bias_first=bias_first))
    (op,) = ops(after)
    assert op.op_type == "Gemm" and len(op.operands) == 3
    assert (op.node_name, op.output_names, fused_nodes(op)) == ("mm", ["y"], ["add"])
    assert op.attr("alpha") == 1.0 and op.attr("beta") == 1.0 and op.attr("transB") == 0


def test_not_gemm_from_a_3d_matmul():
    assert_unchanged(gemm_model(a_shape=(2, 3, 5)), PASS)


def test_not_gemm_with_non_constant_weights():
    assert_unchanged(gemm_model(constant_b=False), PASS)


def test_not_gemm_with_a_non_constant_bias():
    assert_unchanged(gemm_model(constant_bias=False), PASS)


def test_not_gemm_when_the_bias_grows_the_result():
    assert_unchanged(gemm_model(bias_shape=(2, 3, 4)), PASS)


def test_not_gemm_when_the_product_has_another_reader():
    assert_unchanged(gemm_model(outputs=("y", "mm")), PASS)


# ---------------------------------------------------------------------- the zoo

PARAMS = [pytest.param(m, id=m.name) for m in MODELS]


@pytest.mark.parametrize("zoo_model", PARAMS)
def test_zoo(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    model = clone(imported(zoo_model.name))
    before = Counter(op_types(model))
    text = str(model.module)
    run_passes(model, PASS)
    after = Counter(op_types(model))
    if str(model.module) != text:  # (unchanged IR computes the same: skip the interpreter)
        want = reference_outputs(zoo_model.name)
        got = Interpreter(model).run({model.inputs[0].name: real_input(zoo_model)}).outputs
        for name, value in want.items():
            assert relative_max_error(got[name], value) <= 1e-4, name
    new = {t: after[t] - before[t] for t in ("LayerNormalization", "GLU", "Gemm")}
    with capsys.disabled():
        print(f"\n{PASS} | {zoo_model.name} | {sum(before.values())} -> "
              f"{sum(after.values())} ops | {new}")  # fmt: skip
