"""`canonicalize`: no-op ops and neutral arithmetic go (graph outputs keep their names),
duplicates merge (names carried), dead ops go; what looks alike but computes something
else stays; the zoo computes the same after it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto, helper
from xdsl.dialects.func import ReturnOp

from compiler.frontend import import_onnx
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
from tests.zoo import MODELS, ZooModel, model_path, real_input

X = [("x", (1, 4, 6, 6))]
node = helper.make_node


def canonicalized(model: IRModel) -> IRModel:
    """Run the pass on `model`; check the outputs against a copy taken before."""
    before = clone(model)
    run_passes(model, "canonicalize")
    assert_same_outputs(before, model)
    return model


def returned(model: IRModel) -> list:
    (ret,) = [op for op in model.main.body.blocks[0].ops if isinstance(op, ReturnOp)]
    return list(ret.arguments)


def assert_unchanged(model: IRModel) -> None:
    text = str(model.module)
    run_passes(model, "canonicalize")
    assert str(model.module) == text


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


# ------------------------------------------------------------------ no-op ops


def test_identity_feeding_a_graph_output_keeps_the_output_name():
    model = model_from_nodes(
        [node("Relu", ["x"], ["r"], "relu"), node("Identity", ["r"], ["y"], "id")], X, ["y"]
    )
    canonicalized(model)
    assert op_types(model) == ["Relu"]
    assert [s.name for s in model.outputs] == ["y"]
    (relu,) = ops(model)
    assert returned(model) == [relu.results[0]]


def test_identity_of_a_graph_input_returns_the_input():
    model = model_from_nodes([node("Identity", ["x"], ["y"], "id")], X, ["y"])
    canonicalized(model)
    assert op_types(model) == []
    assert [s.name for s in model.outputs] == ["y"]
    assert returned(model) == [model.main.body.blocks[0].args[0]]


def test_outputs_keep_names_and_order_when_two_collapse_into_one_value():
    nodes = [
        node("Relu", ["x"], ["r"], "relu"),
        node("Identity", ["r"], ["b"], "id_b"),
        node("Identity", ["r"], ["a"], "id_a"),
    ]
    model = canonicalized(model_from_nodes(nodes, X, ["b", "a", "r"]))
    assert op_types(model) == ["Relu"]
    assert [s.name for s in model.outputs] == ["b", "a", "r"]


def test_inference_dropout_goes():
    nodes = [
        node("Dropout", ["x", "ratio"], ["d1"], "drop1"),  # no training_mode
        node("Dropout", ["d1", "ratio", "train"], ["d2"], "drop2"),  # constant false
        node("Relu", ["d2"], ["y"], "relu"),
    ]
    inits = {"ratio": np.float32(0.3), "train": np.array(False)}
    model = canonicalized(model_from_nodes(nodes, X, ["y"], inits))
    assert op_types(model) == ["Relu"]


@pytest.mark.parametrize(
    "case",
    ["mask read", "training"],
)
def test_dropout_that_matters_stays(case: str):
    if case == "mask read":
        nodes = [node("Dropout", ["x"], ["y", "mask"], "drop")]
        outputs, inits = ["y", "mask"], {}
    else:  # training with ratio 0 is the identity too, but the rule is inference only
        nodes = [node("Dropout", ["x", "ratio", "train"], ["y"], "drop")]
        outputs, inits = ["y"], {"ratio": np.float32(0.0), "train": np.array(True)}
    assert_unchanged(model_from_nodes(nodes, X, outputs, inits))


NO_OPS = {
    "Reshape": ([node("Reshape", ["x", "s"], ["n"])], {"s": i64(1, 4, 6, 6)}),
    "Transpose": ([node("Transpose", ["x"], ["n"], perm=[0, 1, 2, 3])], {}),
    "Cast": ([node("Cast", ["x"], ["n"], to=TensorProto.FLOAT)], {}),
    "Pad": ([node("Pad", ["x", "p"], ["n"], mode="reflect")], {"p": i64(*[0] * 8)}),
    "Slice": (
        [node("Slice", ["x", "st", "en", "ax", "sp"], ["n"])],
        {"st": i64(0, 0), "en": i64(99, 6), "ax": i64(1, 3), "sp": i64(1, 1)},
    ),
    "Unsqueeze": ([node("Unsqueeze", ["x", "a"], ["n"])], {"a": np.zeros(0, np.int64)}),
    "Expand": ([node("Expand", ["x", "s"], ["n"])], {"s": i64(1, 1, 6)}),
    "Concat": ([node("Concat", ["x"], ["n"], axis=1)], {}),
    "Split": ([node("Split", ["x"], ["n"], axis=1, num_outputs=1)], {}),
}


@pytest.mark.parametrize("op_type", sorted(NO_OPS))
def test_no_op_goes(op_type: str):
    nodes, inits = NO_OPS[op_type]
    nodes = [*nodes, node("Relu", ["n"], ["y"], "relu")]
    model = canonicalized(model_from_nodes(nodes, X, ["y"], inits))
    assert op_types(model) == ["Relu"]


@pytest.mark.parametrize("op_type", ["Flatten", "Squeeze"])
def test_flatten_or_squeeze_of_a_2d_tensor_goes(op_type: str):
    nodes = [node(op_type, ["x"], ["n"]), node("Relu", ["n"], ["y"])]
    model = canonicalized(model_from_nodes(nodes, [("x", (2, 5))], ["y"]))
    assert op_types(model) == ["Relu"]


LOOK_ALIKES = {
    "Reshape": ([node("Reshape", ["x", "s"], ["y"])], {"s": i64(1, 4, 36)}),
    "Transpose": ([node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])], {}),
    "Cast": ([node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)], {}),
    "Pad": ([node("Pad", ["x", "p"], ["y"])], {"p": i64(0, 0, 1, -1, 0, 0, -1, 1)}),
    "Slice reversing": (
        [node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
        {"st": i64(5), "en": i64(-(2**63)), "ax": i64(3), "sp": i64(-1)},
    ),
    "Concat": ([node("Concat", ["x", "x"], ["y"], axis=1)], {}),
    "Expand up": ([node("Expand", ["x", "s"], ["y"])], {"s": i64(2, 1, 1, 1)}),
}


@pytest.mark.parametrize("case", sorted(LOOK_ALIKES))
def test_ops_that_change_the_tensor_stay(case: str):
    nodes, inits = LOOK_ALIKES[case]
    assert_unchanged(model_from_nodes(nodes, X, ["y"], inits))


# ------------------------------------------------------------------ neutral arithmetic

ONE, ZERO = np.ones((4, 1, 1), np.float32), np.zeros((1,), np.float32)


@pytest.mark.parametrize(
    ("op_type", "inputs", "constant"),
    [
        ("Mul", ["x", "c"], ONE),
        ("Mul", ["c", "x"], ONE),
        ("Div", ["x", "c"], ONE),
        ("Add", ["x", "c"], ZERO),
        ("Add", ["c", "x"], ZERO),
        ("Sub", ["x", "c"], ZERO),
    ],
)
def test_neutral_arithmetic_goes(op_type: str, inputs: list[str], constant: np.ndarray):
    nodes = [node(op_type, inputs, ["n"], "arith"), node("Relu", ["n"], ["y"], "relu")]
    model = canonicalized(model_from_nodes(nodes, X, ["y"], {"c": constant}))
    assert op_types(model) == ["Relu"]


@pytest.mark.parametrize(
    ("op_type", "inputs", "constant"),
    [
        ("Mul", ["x", "c"], np.ones((3, 1, 1, 1), np.float32)),  # broadcasts x up
        ("Add", ["x", "c"], np.zeros((2, 4, 6, 6), np.float32)),  # (in the weight table)
        ("Mul", ["x", "c"], np.full((1,), 2, np.float32)),
        ("Div", ["c", "x"], ONE),  # 1/x
        ("Sub", ["c", "x"], ZERO),  # -x
        ("Mul", ["x", "c"], np.array([1, 1, 1, 0.5], np.float32).reshape(4, 1, 1)),
    ],
)
def test_arithmetic_that_computes_stays(op_type: str, inputs: list[str], constant: np.ndarray):
    nodes = [node(op_type, inputs, ["y"], "arith")]
    assert_unchanged(model_from_nodes(nodes, X, ["y"], {"c": constant}))


def test_mul_by_a_tensor_input_stays():
    nodes = [node("Mul", ["x", "z"], ["y"], "mul")]
    assert_unchanged(model_from_nodes(nodes, [*X, ("z", (1, 4, 6, 6))], ["y"]))


# ------------------------------------------------------------------ CSE and dead code


def test_duplicates_merge_and_keep_both_node_names():
    nodes = [
        node("Relu", ["x"], ["a"], "relu_a"),
        node("Relu", ["x"], ["b"], "relu_b"),
        node("Add", ["a", "b"], ["y"], "add"),
    ]
    model = canonicalized(model_from_nodes(nodes, X, ["y"]))
    assert op_types(model) == ["Relu", "Add"]
    relu, add = ops(model)
    assert relu.node_name == "relu_a" and fused_nodes(relu) == ["relu_b"]
    assert relu.output_names == ["a"]
    assert add.operands[0] is add.operands[1]


def test_duplicate_chains_on_equal_weights_merge_whole():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    nodes = [
        node("Conv", ["x", "w1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        node("Conv", ["x", "w2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], ["r1"], "relu1"),
        node("Relu", ["c2"], ["r2"], "relu2"),
        node("Sub", ["r1", "r2"], ["y"], "sub"),
    ]
    model = canonicalized(model_from_nodes(nodes, X, ["y"], {"w1": w, "w2": w.copy()}))
    assert op_types(model) == ["Conv", "Relu", "Sub"]
    conv, relu, _ = ops(model)
    assert fused_nodes(conv) == ["conv2"] and fused_nodes(relu) == ["relu2"]
    constants = [op for op in model.main.body.blocks[0].ops if op.name == "onnx.Constant"]
    assert len(constants) == 1


def test_merged_duplicates_feeding_two_outputs_keep_both_names():
    nodes = [node("Relu", ["x"], ["y1"], "r1"), node("Relu", ["x"], ["y2"], "r2")]
    model = canonicalized(model_from_nodes(nodes, X, ["y1", "y2"]))
    assert op_types(model) == ["Relu"]
    assert [s.name for s in model.outputs] == ["y1", "y2"]


W1 = np.full((4, 6, 6), 2, np.float32)
W2 = W1.copy()
W2[0, 0, 0] = 2.5  # one element differs (same shape, same sample of bytes at the ends)

LOOK_ALIKE_PAIRS = {
    "LeakyRelu alpha": ([node("LeakyRelu", ["x"], ["a"], alpha=0.1),
                         node("LeakyRelu", ["x"], ["b"], alpha=0.2)], {}),
    "Transpose perm": ([node("Transpose", ["x"], ["a"], perm=[0, 1, 3, 2]),
                        node("Transpose", ["x"], ["b"], perm=[0, 2, 3, 1])], {}),
    "inline constants": ([node("Mul", ["x", "c1"], ["a"]), node("Mul", ["x", "c2"], ["b"])],
                         {"c1": np.float32(2), "c2": np.float32(3)}),
    "weights": ([node("Mul", ["x", "w1"], ["a"]), node("Mul", ["x", "w2"], ["b"])],
                {"w1": W1, "w2": W2}),
    "signed zeros": ([node("Mul", ["x", "z1"], ["a"]), node("Mul", ["x", "z2"], ["b"])],
                     {"z1": np.float32(0.0), "z2": np.float32(-0.0)}),  # x*0 and x*-0 differ
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(LOOK_ALIKE_PAIRS))
def test_different_attributes_or_constants_do_not_merge(case: str):
    nodes, inits = LOOK_ALIKE_PAIRS[case]
    assert_unchanged(model_from_nodes(nodes, X, ["a", "b"], inits))


def test_equal_inline_constants_merge():
    nodes = [
        node("Mul", ["x", "c1"], ["a"], "mul_a"),
        node("Mul", ["x", "c2"], ["b"], "mul_b"),
        node("Add", ["a", "b"], ["y"], "add"),
    ]
    inits = {"c1": np.float32(2), "c2": np.float32(2)}
    model = canonicalized(model_from_nodes(nodes, X, ["y"], inits))
    assert op_types(model) == ["Mul", "Add"]


def test_dead_ops_go_graph_outputs_stay():
    nodes = [
        node("Exp", ["x"], ["dead"], "exp"),
        node("Neg", ["dead"], ["dead2"], "neg"),
        node("Relu", ["x"], ["y"], "relu"),
    ]
    model = canonicalized(model_from_nodes(nodes, X, ["y"]))
    assert op_types(model) == ["Relu"]


def test_reports_what_it_removed():
    nodes = [
        node("Identity", ["x"], ["i"], "id"),
        node("Relu", ["i"], ["a"], "relu_a"),
        node("Relu", ["i"], ["b"], "relu_b"),
        node("Add", ["a", "b"], ["y"], "add"),
    ]
    report = run_passes(model_from_nodes(nodes, X, ["y"]), "canonicalize")
    (text,) = report.notes
    assert text.startswith("canonicalize: removed 1 no-op ops (Identity 1); merged 1 duplicate")


def test_nothing_to_do_leaves_the_ir_unchanged():
    nodes = [node("Relu", ["x"], ["r"], "relu"), node("Sigmoid", ["r"], ["y"], "sig")]
    assert_unchanged(model_from_nodes(nodes, X, ["y"]))


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("zoo_model", [pytest.param(m, id=m.name) for m in MODELS])
def test_zoo_outputs_unchanged(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    model = import_onnx(model_path(zoo_model))
    before, text = clone(model), str(model.module)
    report = run_passes(model, "canonicalize")
    changed = Counter(op_types(before)) - Counter(op_types(model))
    if str(model.module) != text:  # (an unchanged IR computes the same, no need to run it)
        feeds = {model.inputs[0].name: real_input(zoo_model)}
        want = Interpreter(before).run(feeds).outputs
        got = Interpreter(model).run(feeds).outputs
        assert list(got) == list(want)
        for name, value in want.items():
            assert relative_max_error(got[name], value) <= 1e-4, name
    with capsys.disabled():
        print(f"\n{zoo_model.name}: {len(ops(before))} -> {len(ops(model))} ops, "
              f"removed {dict(changed)}; {report.notes[0]}")  # fmt: skip
