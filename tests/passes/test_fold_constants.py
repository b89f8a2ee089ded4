"""`fold-constants`: ops on constants (and Shape/Size) become constants named after their
outputs, chains fold in one sweep; ops on inputs, growth beyond the limit, impure ops,
kernel rejections and values that disagree with the IR stay; the zoo computes the same."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto, helper
from xdsl.ir import SSAValue

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel, parse_module
from dialects.onnx import ConstantOp
from dialects.weights import WeightRefAttr, WeightTable, using_weights
from passes.rewrite import constant_value
from runtime.kernels import KERNELS
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


def folded(model: IRModel, spec: str = "fold-constants") -> IRModel:
    before = clone(model)
    run_passes(model, spec)
    assert_same_outputs(before, model)
    return model


def assert_unchanged(model: IRModel, spec: str = "fold-constants") -> None:
    text = str(model.module)
    run_passes(model, spec)
    assert str(model.module) == text


def constants(model: IRModel) -> list[ConstantOp]:
    return [op for op in model.main.body.blocks[0].ops if isinstance(op, ConstantOp)]


def value_of(model: IRModel, value: SSAValue) -> np.ndarray | None:
    with using_weights(model.weights):
        return constant_value(value)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


# ------------------------------------------------------------------ folding


def test_shape_arithmetic_chain_folds_in_one_sweep():
    """The exporters' `x.view(x.size(0), -1)`: Shape -> Gather -> Unsqueeze -> Concat."""
    nodes = [
        node("Shape", ["x"], ["s"], "shape"),
        node("Gather", ["s", "zero"], ["n"], "gather", axis=0),
        node("Unsqueeze", ["n", "axes"], ["n1"], "unsqueeze"),
        node("Concat", ["n1", "minus1"], ["target"], "concat", axis=0),
        node("Reshape", ["x", "target"], ["y"], "reshape"),
    ]
    inits = {"zero": np.array(0, np.int64), "axes": i64(0), "minus1": i64(-1)}
    model = folded(model_from_nodes(nodes, X, ["y"], inits))
    assert op_types(model) == ["Reshape"]
    (reshape,) = ops(model)
    target = reshape.operands[1]
    np.testing.assert_array_equal(value_of(model, target), [1, -1])
    assert target.owner.output_names == ["target"]
    # the constants the chain read went with it
    assert [c.output_names for c in constants(model)] == [["target"]]


def test_weight_preprocessing_folds_into_a_weight_table_constant():
    rng = np.random.default_rng(0)
    w_hwio = rng.standard_normal((3, 3, 4, 8)).astype(np.float32)
    nodes = [
        node("Transpose", ["w_hwio"], ["w"], "to_oihw", perm=[3, 2, 0, 1]),
        node("Mul", ["w", "two"], ["w2"], "scale"),
        node("Conv", ["x", "w2"], ["y"], "conv", pads=[1, 1, 1, 1]),
    ]
    model = folded(model_from_nodes(nodes, X, ["y"], {"w_hwio": w_hwio, "two": np.float32(2)}))
    assert op_types(model) == ["Conv"]
    (conv,) = ops(model)
    weight = conv.operands[1].owner
    assert isinstance(weight.value, WeightRefAttr) and weight.output_names == ["w2"]
    np.testing.assert_array_equal(value_of(model, weight.output),
                                  2 * w_hwio.transpose(3, 2, 0, 1))  # fmt: skip


def test_every_output_of_a_multi_output_op_becomes_a_named_constant():
    nodes = [
        node("Split", ["c"], ["a", "b"], "split", axis=0, num_outputs=2),
        node("Add", ["x", "a"], ["xa"], "add_a"),
        node("Mul", ["xa", "b"], ["y"], "mul_b"),
    ]
    c = np.arange(2 * 6, dtype=np.float32).reshape(2, 6)
    model = folded(model_from_nodes(nodes, X, ["y"], {"c": c}))
    assert op_types(model) == ["Add", "Mul"]
    add, mul = ops(model)
    assert add.operands[1].owner.output_names == ["a"]
    np.testing.assert_array_equal(value_of(model, mul.operands[1]), c[1:])


def test_size_of_an_input_folds_the_input_stays():
    nodes = [
        node("Size", ["x"], ["n"], "size"),
        node("Cast", ["n"], ["nf"], "cast", to=TensorProto.FLOAT),
        node("Div", ["x", "nf"], ["y"], "div"),
    ]
    model = folded(model_from_nodes(nodes, X, ["y"]))
    assert op_types(model) == ["Div"]
    assert value_of(model, ops(model)[0].operands[1]) == np.float32(144)


def test_a_tile_within_a_raised_limit_folds():
    nodes = [node("Tile", ["c", "reps"], ["t"], "tile"), node("Add", ["x", "t"], ["y"], "add")]
    inits = {"c": np.ones((1, 4, 1, 1), np.float32), "reps": i64(1, 1, 6, 6)}
    model = folded(model_from_nodes(nodes, X, ["y"], inits), "fold-constants{limit=1024}")
    assert op_types(model) == ["Add"]


def test_reports_what_it_folded():
    nodes = [node("Shape", ["x"], ["s"], "shape"), node("Cast", ["s"], ["y"], to=1)]
    report = run_passes(model_from_nodes(nodes, X, ["y"]), "fold-constants")
    assert report.notes == ["fold-constants: folded 2 ops (Cast 1, Shape 1)"]


# ------------------------------------------------------------------ not folded


def test_an_op_on_a_graph_input_stays():
    nodes = [node("Mul", ["x", "c"], ["y"], "mul")]
    assert_unchanged(model_from_nodes(nodes, X, ["y"], {"c": np.float32(3)}))


@pytest.mark.parametrize("op_type", ["Tile", "Expand"])
def test_growth_beyond_the_limit_stays(op_type: str):
    """A 16-byte constant blown up to 1.6 MB (the default limit is 64 KiB)."""
    tile = op_type == "Tile"
    nodes = [node(op_type, ["c", "s"], ["t"], op_type.lower()),
             node("ReduceSum", ["t"], ["sum"], keepdims=0),
             node("Add", ["x", "sum"], ["y"])]  # fmt: skip
    inits = {"c": np.ones((1, 4) if tile else (4,), np.float32),
             "s": i64(100, 1000) if tile else i64(100, 1000, 4)}  # fmt: skip
    model = model_from_nodes(nodes, [("x", (1,))], ["y"], inits)
    report = run_passes(clone(model), "fold-constants")
    assert report.notes == ["fold-constants: nothing folded; left 1 over the size limit"]
    assert_unchanged(model)


def test_impure_ops_stay(monkeypatch: pytest.MonkeyPatch):
    # even with a kernel, a random op must run at run time, every time
    monkeypatch.setitem(KERNELS, "RandomNormal", lambda **kw: np.zeros(kw["shape"], np.float32))
    nodes = [node("RandomNormal", [], ["r"], "rand", shape=[1, 4, 6, 6]),
             node("Add", ["x", "r"], ["y"], "add")]  # fmt: skip
    assert_unchanged(model_from_nodes(nodes, X, ["y"]))


def test_an_op_the_kernel_rejects_stays():
    """Training-mode Dropout with a nonzero ratio is random: the kernel raises KernelError."""
    nodes = [node("Dropout", ["c", "ratio", "train"], ["d"], "drop"),
             node("Add", ["x", "d"], ["y"], "add")]  # fmt: skip
    inits = {"c": np.ones(4, np.float32).reshape(4, 1, 1), "ratio": np.float32(0.5),
             "train": np.array(True)}  # fmt: skip
    model = model_from_nodes(nodes, X, ["y"], inits)
    report = run_passes(clone(model), "fold-constants")
    assert report.notes == ["fold-constants: nothing folded; left 1 rejected by their kernel"]
    assert_unchanged(model)


def test_a_value_that_disagrees_with_the_ir_type_stays():
    """The kernel makes [2, 3]; the IR (wrongly, but verifiably) says [3, 2]."""
    text = """builtin.module {
  func.func @main(%x: tensor<3x2xf32> {onnx.name = "x"}) -> (tensor<3x2xf32> {onnx.name = "y"}) {
    %c = "onnx.Constant"() <{value = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : tensor<6xf32>}> {onnx.outputs = ["c"]} : () -> tensor<6xf32>
    %s = "onnx.Constant"() <{value = dense<[2, 3]> : tensor<2xi64>}> {onnx.outputs = ["s"]} : () -> tensor<2xi64>
    %r = "onnx.Reshape"(%c, %s) {onnx.node = "reshape", onnx.outputs = ["r"]} : (tensor<6xf32>, tensor<2xi64>) -> tensor<3x2xf32>
    %y = "onnx.Add"(%x, %r) {onnx.node = "add", onnx.outputs = ["y"]} : (tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<3x2xf32>
    func.return %y : tensor<3x2xf32>
  }
}"""
    report = run_passes(IRModel(parse_module(text), WeightTable()), "fold-constants")
    assert report.notes == [
        "fold-constants: nothing folded; left 1 whose value disagrees with the IR type"
    ]
    assert_unchanged(IRModel(parse_module(text), WeightTable()))


def test_dead_ops_are_not_folded():
    nodes = [node("Neg", ["c"], ["dead"], "neg"), node("Relu", ["x"], ["y"], "relu")]
    assert_unchanged(model_from_nodes(nodes, X, ["y"], {"c": np.float32(1)}))


# ------------------------------------------------------------------ the zoo


@pytest.mark.parametrize("zoo_model", [pytest.param(m, id=m.name) for m in MODELS])
def test_zoo_outputs_unchanged(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    model = import_onnx(model_path(zoo_model))
    before, text = clone(model), str(model.module)
    report = run_passes(model, "fold-constants")
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
              f"folded {dict(changed)}; {report.notes[0]}")  # fmt: skip
