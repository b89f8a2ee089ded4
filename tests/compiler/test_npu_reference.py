"""End to end through the public flow: ONNX -> import -> quantize_model -> Interpreter (the
`npu` reference executor), compared with onnxruntime on the original float model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import NpuOp
from tests.helpers.compare import cosine

SHAPE = [1, 3, 8, 8]
RNG = np.random.default_rng(0)


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def _model(nodes, inits, out_shape, opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _conv(name, x, y, cin, cout, k=3, stride=1, pad=1):
    w = RNG.standard_normal((cout, cin, k, k)) * 0.3
    b = RNG.standard_normal(cout) * 0.1
    node = helper.make_node(
        "Conv", [x, f"{name}_w", f"{name}_b"], [y], name=name,
        kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
    )  # fmt: skip
    return node, [_init(f"{name}_w", w), _init(f"{name}_b", b)]


def conv_relu_add() -> onnx.ModelProto:
    c1, i1 = _conv("conv1", "x", "c1", 3, 4)
    c2, i2 = _conv("conv2", "x", "c2", 3, 4, k=1, pad=0)
    nodes = [
        c1,
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        c2,
        helper.make_node("Add", ["r1", "c2"], ["y"], name="add"),
    ]
    return _model(nodes, i1 + i2, [1, 4, 8, 8])


def pools() -> onnx.ModelProto:
    c1, i1 = _conv("conv1", "x", "c1", 3, 4)
    nodes = [
        c1,
        helper.make_node(
            "MaxPool", ["c1"], ["m"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node(
            "AveragePool",
            ["m"],
            ["y"],
            name="avgpool",
            kernel_shape=[3, 3],
            strides=[1, 1],
            pads=[1, 1, 1, 1],
        ),
    ]
    return _model(nodes, i1, [1, 4, 4, 4])


def sigmoid() -> onnx.ModelProto:
    c1, i1 = _conv("conv1", "x", "c1", 3, 4)
    nodes = [c1, helper.make_node("Sigmoid", ["c1"], ["y"], name="sigmoid")]
    return _model(nodes, i1, [1, 4, 8, 8])


def concat() -> onnx.ModelProto:
    c1, i1 = _conv("conv1", "x", "c1", 3, 4)
    c2, i2 = _conv("conv2", "x", "c2", 3, 2, k=1, pad=0)
    nodes = [c1, c2, helper.make_node("Concat", ["c1", "c2"], ["y"], name="concat", axis=1)]
    return _model(nodes, i1 + i2, [1, 6, 8, 8])


def resize_nearest() -> onnx.ModelProto:
    c1, i1 = _conv("conv1", "x", "c1", 3, 4)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        c1,
        helper.make_node("Resize", ["c1", "", "scales"], ["y"], name="resize", mode="nearest"),
    ]
    return _model(nodes, [*i1, scales], [1, 4, 16, 16])


def big_stride() -> onnx.ModelProto:
    c1, i1 = _conv("conv_s9", "x", "y", 3, 4, k=3, stride=9, pad=1)
    return _model([c1], i1, [1, 4, 1, 1])


MODELS = {
    "conv_relu_add": conv_relu_add,
    "pools": pools,
    "sigmoid": sigmoid,
    "concat": concat,
    "resize_nearest": resize_nearest,
}


def _dataset(tmp_path: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(1)
    lines = []
    for i in range(n):
        path = tmp_path / f"s{i}.npy"
        np.save(path, rng.standard_normal(SHAPE).astype(np.float32))
        lines.append(path.name)
    listing = tmp_path / "dataset.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _quantize_and_run(onnx_model, dataset, dtype, x):
    model = import_onnx(onnx_model)
    result = quantize_model(model, dataset, QuantizeOptions(dtype=dtype, progress=False))
    ops = list(result.model.main.body.blocks[0].ops)
    got = Interpreter(result.model).run({"x": x}).outputs["y"]
    return got, ops, result


# a sample from the calibration distribution but not in the calibration set
X = np.random.default_rng(7).standard_normal(SHAPE).astype(np.float32)


def _integer_cases():
    for name in sorted(MODELS):
        for dtype, min_cosine in (("i8", 0.99), ("i16", 0.999)):
            yield pytest.param(name, dtype, min_cosine, id=f"{name}-{dtype}")


@pytest.mark.parametrize("name, dtype, min_cosine", list(_integer_cases()))
def test_integer_matches_onnxruntime(tmp_path, name, dtype, min_cosine):
    onnx_model = MODELS[name]()
    want = _ort(onnx_model, X)
    got, ops, _ = _quantize_and_run(onnx_model, _dataset(tmp_path), dtype, X)
    assert any(isinstance(op, NpuOp) for op in ops), "nothing was lowered to the NPU"
    assert got.shape == want.shape
    assert cosine(got, want) >= min_cosine


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float16_matches_onnxruntime(name):
    onnx_model = MODELS[name]()
    want = _ort(onnx_model, X)
    got, ops, _ = _quantize_and_run(onnx_model, None, "f16", X)
    assert any(isinstance(op, NpuOp) for op in ops)
    assert got.shape == want.shape
    # max error relative to the output's magnitude (element-wise relative error is
    # meaningless for outputs near 0, where float16 weight rounding dominates)
    err = np.abs(got.astype(np.float64) - want).max() / np.abs(want).max()
    assert err <= 1e-2


def test_stride_beyond_npu_limit_stays_on_cpu(tmp_path):
    onnx_model = big_stride()
    want = _ort(onnx_model, X)
    got, ops, result = _quantize_and_run(onnx_model, _dataset(tmp_path), "i8", X)
    cpu_notes = [n for n in result.report.notes if "CPU:" in n]
    assert any("conv_s9" in n and "stride" in n for n in cpu_notes), result.report.notes
    assert not any(isinstance(op, NpuOp) and op.node_name == "conv_s9" for op in ops)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # it stayed float
