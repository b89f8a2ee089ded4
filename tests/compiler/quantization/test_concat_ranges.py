"""Concat parameters in the quantization flow: inputs read by the Concat alone take its
output range (no requantize); an input read elsewhere keeps its own; a graph-output Concat
of inputs with ranges far apart (boxes in pixels beside scores in [0, 1]) computes in
float16, so the small input keeps its precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import ops as npu
from tests.helpers.datasets import write_dataset

RNG = np.random.default_rng(7)
SCALES = {"big": 300.0, "small": 0.5}


def two_branches(tmp_path: Path, concat_is_output: bool, shared_reader: bool = False) -> Path:
    """x -> Mul(big) -> a, x -> Mul(small) -> b, Concat(a, b) [-> Relu] -> y (and b -> z)."""
    nodes = [
        helper.make_node("Mul", ["x", "big"], ["a"], "mul_big"),
        helper.make_node("Mul", ["x", "small"], ["b"], "mul_small"),
        helper.make_node("Concat", ["a", "b"], ["c" if not concat_is_output else "y"], "cat",
                         axis=1),
    ]  # fmt: skip
    outputs = ["y"]
    if not concat_is_output:
        nodes.append(helper.make_node("Relu", ["c"], ["y"], "relu"))
    if shared_reader:
        nodes.append(helper.make_node("Neg", ["b"], ["z"], "neg"))
        outputs.append("z")
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(np.float32(v), k) for k, v in SCALES.items()],
    )  # fmt: skip
    path = tmp_path / "model.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path, (RNG.random((1, 2, 4, 4), dtype=np.float32) for _ in range(4)))


def quantized(path: Path, tmp_path: Path):
    model = import_onnx(str(path))
    result = quantize_model(model, dataset(tmp_path), QuantizeOptions(progress=False))
    return model, result.report.notes


def concat_op(model) -> npu.ConcatOp:
    (op,) = [op for op in model.main.body.blocks[0].ops if isinstance(op, npu.ConcatOp)]
    return op


def test_single_use_inputs_share_the_output_range(tmp_path: Path):
    model, _ = quantized(two_branches(tmp_path, concat_is_output=False), tmp_path)
    op = concat_op(model)
    assert all(npu.quant_of(v) == op.quant for v in op.operands)
    ops = [o.name for o in model.main.body.blocks[0].ops]
    assert "npu.requantize" not in ops


def test_an_input_read_elsewhere_keeps_its_range(tmp_path: Path):
    model, _ = quantized(two_branches(tmp_path, False, shared_reader=True), tmp_path)
    op = concat_op(model)
    quants = [npu.quant_of(v) for v in op.operands]
    # "b" is read by Neg too: it keeps its own range, the concat rescales it
    assert quants[0] == op.quant and quants[1] != op.quant


def test_graph_output_concat_of_far_apart_ranges_computes_in_float16(tmp_path: Path):
    path = two_branches(tmp_path, concat_is_output=True)
    model, notes = quantized(path, tmp_path)
    op = concat_op(model)
    assert op.quant.element == "f16"
    assert any('Concat "cat"' in n and "float16" in n for n in notes)
    x = RNG.random((1, 2, 4, 4), dtype=np.float32)
    got = Interpreter(model).run({"x": x}).outputs["y"]
    small = got[:, 2:]  # x * 0.5: int8 at its own scale (~0.5/255), then float16
    np.testing.assert_allclose(small, x * 0.5, atol=1.0 / 255)
    # one int8 scale for both (300/255) would have left the small half 0 or 1.18
    assert len(np.unique(np.round(small, 3))) > 8
