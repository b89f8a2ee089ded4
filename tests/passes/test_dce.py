"""`dce`: dead ops go, graph outputs and their producers stay; numerics unchanged."""

from __future__ import annotations

import numpy as np

from compiler.interpreter import interpret
from compiler.ir_model import IRModel, parse_module
from compiler.pipeline import parse_pipeline, run_pipeline
from dialects.weights import WeightTable

IR = """builtin.module {
  func.func @main(%x: tensor<4xf32> {onnx.name = "x"}) -> (tensor<4xf32> {onnx.name = "y"}) {
    %dead = "onnx.Neg"(%x) {onnx.node = "dead_neg", onnx.outputs = ["dead"]} : (tensor<4xf32>) -> tensor<4xf32>
    %dead2 = "onnx.Exp"(%dead) {onnx.node = "dead_exp", onnx.outputs = ["dead2"]} : (tensor<4xf32>) -> tensor<4xf32>
    %c = "onnx.Constant"() <{value = dense<2.000000e+00> : tensor<f32>}> {onnx.outputs = ["c"]} : () -> tensor<f32>
    %y = "onnx.Mul"(%x, %c) {onnx.node = "mul", onnx.outputs = ["y"]} : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
    func.return %y : tensor<4xf32>
  }
}"""


def model() -> IRModel:
    return IRModel(parse_module(IR), WeightTable())


def node_names(m: IRModel) -> list[str]:
    return [
        op.attributes["onnx.node"].data
        for op in m.main.body.blocks[0].ops
        if "onnx.node" in op.attributes
    ]


def test_dead_chain_is_erased_live_ops_stay():
    m = model()
    run_pipeline(m, parse_pipeline("dce"))
    assert node_names(m) == ["mul"]
    ops = [op.name for op in m.main.body.blocks[0].ops]
    assert ops == ["onnx.Constant", "onnx.Mul", "func.return"]


def test_numerics_unchanged():
    x = np.array([1, -2, 3, 0.5], np.float32)
    before = interpret(model(), {"x": x}).outputs["y"]
    m = model()
    run_pipeline(m, parse_pipeline("dce"))
    np.testing.assert_array_equal(interpret(m, {"x": x}).outputs["y"], before)


def test_nothing_to_do_leaves_ir_unchanged():
    m = model()
    run_pipeline(m, parse_pipeline("dce"))
    text = str(m.module)
    run_pipeline(m, parse_pipeline("dce"))
    assert str(m.module) == text
