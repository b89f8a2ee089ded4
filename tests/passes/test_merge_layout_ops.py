"""`merge-layout-ops`: reshaping chains become one Reshape (or nothing), Transpose pairs
compose (or cancel), a Flatten before a Gemm merges with the chain before it; chains whose
intermediate someone else reads stay; the zoo computes the same."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import helper
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.onnx import dense_to_numpy
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
from tests.zoo import MODELS, ZooModel, model_path, real_input

X = [("x", (1, 4, 6, 6))]
node = helper.make_node


def merged(model: IRModel) -> IRModel:
    before = clone(model)
    run_passes(model, "merge-layout-ops")
    assert_same_outputs(before, model)
    return model


def assert_unchanged(model: IRModel) -> None:
    text = str(model.module)
    run_passes(model, "merge-layout-ops")
    assert str(model.module) == text


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def inline_shape(op) -> list[int]:
    attr = op.operands[1].owner.value
    assert isinstance(attr, DenseIntOrFPElementsAttr)  # a new tiny constant, inline
    return dense_to_numpy(attr).tolist()


# ------------------------------------------------------------------ reshaping chains


def test_reshaping_chain_becomes_one_reshape_with_the_names():
    nodes = [
        node("Reshape", ["x", "s"], ["r"], "reshape"),  # [1, 4, 36]
        node("Unsqueeze", ["r", "a0"], ["u"], "unsqueeze"),  # [1, 1, 4, 36]
        node("Squeeze", ["u", "a0"], ["q"], "squeeze"),  # [1, 4, 36]
        node("Flatten", ["q"], ["f"], "flatten", axis=2),  # [4, 36]
        node("Relu", ["f"], ["y"], "relu"),
    ]
    model = merged(model_from_nodes(nodes, X, ["y"], {"s": i64(1, 4, 36), "a0": i64(0)}))
    assert op_types(model) == ["Reshape", "Relu"]
    reshape = ops(model)[0]
    assert inline_shape(reshape) == [4, 36]
    assert reshape.node_name == "flatten" and reshape.output_names == ["f"]
    assert fused_nodes(reshape) == ["reshape", "unsqueeze", "squeeze"]
    assert reshape.operands[0] is model.main.body.blocks[0].args[0]


def test_a_chain_back_to_the_input_shape_vanishes():
    nodes = [
        node("Unsqueeze", ["x", "a"], ["u"], "unsqueeze"),
        node("Squeeze", ["u", "a"], ["q"], "squeeze"),
        node("Relu", ["q"], ["y"], "relu"),
    ]
    model = merged(model_from_nodes(nodes, X, ["y"], {"a": i64(2)}))
    assert op_types(model) == ["Relu"]


def test_a_chain_ending_in_a_graph_output_keeps_its_name():
    nodes = [node("Flatten", ["x"], ["f"], "flatten"), node("Reshape", ["f", "s"], ["y"], "rs")]
    model = merged(model_from_nodes(nodes, X, ["y"], {"s": i64(2, 72)}))
    assert op_types(model) == ["Reshape"]
    assert [s.name for s in model.outputs] == ["y"]
    assert ops(model)[0].output_names == ["y"]


def test_flatten_before_gemm_merges_with_the_chain_and_stays_2d():
    rng = np.random.default_rng(0)
    nodes = [
        node("Reshape", ["x", "s"], ["r"], "reshape"),
        node("Flatten", ["r"], ["f"], "flatten"),
        node("Gemm", ["f", "w"], ["y"], "fc"),
    ]
    inits = {"s": i64(1, 4, 36), "w": rng.standard_normal((144, 10)).astype(np.float32)}
    model = model_from_nodes(nodes, X, ["y"], inits)
    before = clone(model)
    report = run_passes(model, "merge-layout-ops")
    assert_same_outputs(before, model)
    assert op_types(model) == ["Reshape", "Gemm"]
    reshape, gemm = ops(model)
    assert inline_shape(reshape) == [1, 144]
    assert gemm.operands[0].type.get_shape() == (1, 144)
    assert report.notes == [
        "merge-layout-ops: 1 reshaping chains merged before a Gemm (1 layout ops removed)"
    ]


def test_the_shape_computation_of_a_merged_chain_goes_with_it():
    nodes = [
        node("Shape", ["x"], ["s"], "shape", end=1),
        node("Concat", ["s", "minus1"], ["target"], "concat", axis=0),
        node("Reshape", ["x", "target"], ["r"], "reshape"),  # [1, 144]
        node("Unsqueeze", ["r", "a"], ["u"], "unsqueeze"),  # [1, 144, 1]
        node("Relu", ["u"], ["y"], "relu"),
    ]
    model = merged(model_from_nodes(nodes, X, ["y"], {"minus1": i64(-1), "a": i64(2)}))
    assert op_types(model) == ["Reshape", "Relu"]
    assert inline_shape(ops(model)[0]) == [1, 144, 1]
    kinds = [op.name for op in model.main.body.blocks[0].ops]
    assert kinds == ["onnx.Constant", "onnx.Reshape", "onnx.Relu", "func.return"]


# ------------------------------------------------------------------ transposes


def test_transposes_that_cancel_vanish():
    nodes = [
        node("Transpose", ["x"], ["t"], "to_nhwc", perm=[0, 2, 3, 1]),
        node("Transpose", ["t"], ["u"], "to_nchw", perm=[0, 3, 1, 2]),
        node("Relu", ["u"], ["y"], "relu"),
    ]
    model = merged(model_from_nodes(nodes, X, ["y"]))
    assert op_types(model) == ["Relu"]


def test_transposes_compose_into_one_with_the_names():
    nodes = [
        node("Transpose", ["x"], ["t"], "first", perm=[0, 2, 3, 1]),
        node("Transpose", ["t"], ["u"], "second", perm=[0, 1, 3, 2]),
        node("Transpose", ["u"], ["y"], "third"),  # default perm: axes reversed
    ]
    model = merged(model_from_nodes(nodes, [("x", (1, 2, 3, 4))], ["y"]))
    assert op_types(model) == ["Transpose"]
    (transpose,) = ops(model)
    assert transpose.node_name == "third" and transpose.output_names == ["y"]
    assert fused_nodes(transpose) == ["first", "second"]
    assert list(transpose.attr("perm")) == [3, 1, 2, 0]


# ------------------------------------------------------------------ must not fire


@pytest.mark.parametrize("reader", ["another op", "a graph output"])
def test_transpose_pair_with_a_shared_intermediate_stays(reader: str):
    nodes = [
        node("Transpose", ["x"], ["t"], "to_nhwc", perm=[0, 2, 3, 1]),
        node("Transpose", ["t"], ["y"], "to_nchw", perm=[0, 3, 1, 2]),
    ]
    outputs = ["y", "t"]
    if reader == "another op":
        nodes.append(node("Relu", ["t"], ["r"], "relu"))
        outputs = ["y", "r"]
    assert_unchanged(model_from_nodes(nodes, X, outputs))


def test_reshaping_chain_with_a_shared_intermediate_stays():
    nodes = [
        node("Flatten", ["x"], ["f"], "flatten"),
        node("Reshape", ["f", "s"], ["y"], "reshape"),
        node("Relu", ["f"], ["z"], "relu"),
    ]
    assert_unchanged(model_from_nodes(nodes, X, ["y", "z"], {"s": i64(2, 72)}))


@pytest.mark.parametrize(
    "nodes",
    [
        [node("Reshape", ["x", "s"], ["y"])],  # a single op: nothing to merge
        [node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
         node("Reshape", ["t", "s"], ["y"])],  # a transpose reorders: not a reshape chain
        [node("Reshape", ["x", "s"], ["r"]), node("Relu", ["r"], ["q"]),
         node("Reshape", ["q", "s2"], ["y"])],  # an op between
    ],
    ids=["single", "transpose-reshape", "op-between"],
)  # fmt: skip
def test_non_chains_stay(nodes):
    inits = {"s": i64(1, 144), "s2": i64(12, 12)}
    used = {k: v for k, v in inits.items() if any(k in n.input for n in nodes)}
    assert_unchanged(model_from_nodes(nodes, X, ["y"], used))


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("zoo_model", [pytest.param(m, id=m.name) for m in MODELS])
def test_zoo_outputs_unchanged(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    model = import_onnx(model_path(zoo_model))
    before, text = clone(model), str(model.module)
    report = run_passes(model, "merge-layout-ops")
    if str(model.module) != text:  # (an unchanged IR computes the same, no need to run it)
        feeds = {model.inputs[0].name: real_input(zoo_model)}
        want = Interpreter(before).run(feeds).outputs
        got = Interpreter(model).run(feeds).outputs
        assert list(got) == list(want)
        for name, value in want.items():
            assert relative_max_error(got[name], value) <= 1e-4, name
    changed = Counter(op_types(before)) - Counter(op_types(model))
    with capsys.disabled():
        print(f"\n{zoo_model.name}: {len(ops(before))} -> {len(ops(model))} ops, "
              f"removed {dict(changed)}; {report.notes[0]}")  # fmt: skip
