"""`lower-to-npu` with a quantization plan: the `npu` ops it makes on small graphs (integer
weights and bias, quantize / dequantize at the boundaries, data movement keeping the input's
parameters, CPU fallbacks reported with their reason, per-layer dtype overrides, per-tensor
and int4 weights), the lowered model's closeness to the float one, and the text round trip."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel, parse_module
from dialects.npu import ops as npu
from dialects.onnx import OnnxOp
from passes.quantization_plan import TensorRange
from tests.helpers.compare import cosine
from tests.helpers.npu import body, const, names, only
from tests.helpers.npu import lower as lower_with
from tests.passes.helpers import model_from_nodes, random_inputs, run_passes

RNG = np.random.default_rng(3)
X = ("x", (1, 3, 8, 8))
W1 = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
B1 = RNG.standard_normal(4).astype(np.float32)
W2 = RNG.standard_normal((6, 4, 3, 3)).astype(np.float32)
B2 = RNG.standard_normal(6).astype(np.float32)
INITS = {"w1": W1, "b1": B1, "w2": W2, "b2": B2, "shape": np.array([1, -1], np.int64)}


def conv(x: str, w: str, b: str, out: str, name: str, **attrs) -> object:
    return helper.make_node("Conv", [x, w, b], [out], name, pads=[1, 1, 1, 1], **attrs)


def conv_relu(tail: list, outputs: tuple[str, ...] = ("y",)) -> IRModel:
    """Conv(x) -> Relu -> "r", then `tail`; fused by fuse-activation."""
    nodes = [conv("x", "w1", "b1", "c", "conv1"), helper.make_node("Relu", ["c"], ["r"], "relu")]
    model = model_from_nodes([*nodes, *tail], [X], list(outputs), INITS)
    run_passes(model, "fuse-activation")
    return model


def calibrated_ranges(model: IRModel, seeds: range = range(4)) -> dict[str, TensorRange]:
    """Min/max of every tensor (inputs included) over random samples."""
    interpreter = Interpreter(model)
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for seed in seeds:
        feeds = random_inputs(model, seed)
        for name, value in {**interpreter.run(feeds, capture=True).tensors, **feeds}.items():
            lo[name] = min(lo.get(name, np.inf), float(value.min()))
            hi[name] = max(hi.get(name, -np.inf), float(value.max()))
    return {name: TensorRange(lo[name], hi[name]) for name in lo}


def lower(model: IRModel, **plan_options) -> tuple[IRModel, list[str]]:
    """A lowered copy of `model` (ranges from random samples) and the pass notes."""
    return lower_with(model, calibrated_ranges(model), **plan_options)


# ---------------------------------------------------------------------- structure


def test_conv_relu_lowering():
    model = model_from_nodes(
        [conv("x", "w1", "b1", "c", "conv1"), helper.make_node("Relu", ["c"], ["y"], "relu")],
        [X], ["y"], INITS,
    )  # fmt: skip
    run_passes(model, "fuse-activation")
    after, notes = lower(model)
    assert names(after) == ["npu.quantize", "npu.conv2d", "npu.dequantize", "func.return"]
    quantize, conv2d, dequantize, ret = body(after)
    assert quantize.input is after.main.body.blocks[0].args[0]
    assert conv2d.input is quantize.output and ret.operands[0] is dequantize.output
    assert conv2d.activation.data == "relu" and conv2d.node_name == "conv1"
    assert conv2d.quant.element == "i8" and quantize.quant.element == "i8"
    assert dequantize.quant.element == "f32"
    weight, bias = const(after, conv2d.weight), const(after, conv2d.bias)
    assert weight.dtype == np.int8 and weight.shape == W1.shape
    assert bias.dtype == np.int32 and bias.shape == (4,)
    assert conv2d.weight_quant.channel_axis == 0  # per output channel by default
    assert "lower-to-npu: 1 ops on the NPU, 0 stay float (CPU)" in notes


TAIL = [
    helper.make_node("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Reshape", ["p", "shape"], ["f"], "flat"),
    helper.make_node("Softmax", ["f"], ["y"], "soft"),
]


def test_data_movement_keeps_the_input_parameters_and_softmax_stays_on_the_cpu():
    after, notes = lower(conv_relu(TAIL))
    assert names(after) == ["npu.quantize", "npu.conv2d", "npu.pool", "npu.reshape",
                            "npu.dequantize", "onnx.Softmax", "func.return"]  # fmt: skip
    _, conv2d, pool, reshape, dequantize, softmax, ret = body(after)
    assert pool.input is conv2d.output and pool.kind.data == "max"
    assert pool.quant == conv2d.quant  # max pooling picks values: no requantize
    assert reshape.input is pool.output and reshape.quant == pool.quant
    assert isinstance(softmax, OnnxOp) and softmax.operands[0] is dequantize.output
    assert dequantize.input is reshape.output and ret.operands[0] is softmax.results[0]
    assert not any(isinstance(op, npu.RequantizeOp) for op in body(after))
    cpu = [n for n in notes if "CPU:" in n]
    assert len(cpu) == 1 and "Softmax" in cpu[0] and '"soft"' in cpu[0]
    assert "lower-to-npu: 3 ops on the NPU, 1 stay float (CPU)" in notes


def test_conv_with_stride_9_stays_float_with_the_reason():
    model = model_from_nodes(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["y"], "big", strides=[9, 9])],
        [("x", (1, 3, 20, 20))], ["y"], INITS,
    )  # fmt: skip
    after, notes = lower(model)
    assert names(after) == ["onnx.Conv", "func.return"]
    (cpu,) = [n for n in notes if "CPU:" in n]
    assert '"big"' in cpu and "stride [9, 9]" in cpu


def two_convs() -> IRModel:
    """Conv+Relu -> "r" -> Conv -> "y"."""
    return conv_relu([conv("r", "w2", "b2", "y", "conv2")])


def test_float16_override_requantizes_at_the_boundary():
    after, _ = lower(two_convs(), overrides={"y": "f16"})
    assert names(after) == ["npu.quantize", "npu.conv2d", "npu.requantize", "npu.conv2d",
                            "npu.dequantize", "func.return"]  # fmt: skip
    _, first, requantize, second, _, _ = body(after)
    assert first.quant.element == "i8"
    assert requantize.input is first.output and second.input is requantize.output
    assert requantize.quant.element == "f16" and second.quant.element == "f16"
    assert "quant = #npu.quant<f16>" in str(after.module)
    assert const(after, second.weight).dtype == np.float16


def test_per_tensor_weights():
    after, _ = lower(two_convs(), per_channel=False)
    for op in body(after):
        if isinstance(op, npu.Conv2dOp):
            assert op.weight_quant.channel_axis is None
            assert np.size(op.weight_quant.params().scale) == 1


def test_int4_weights():
    after, _ = lower(two_convs(), weight_dtype="i4")
    convs = [op for op in body(after) if isinstance(op, npu.Conv2dOp)]
    assert len(convs) == 2
    for op in convs:
        weight = const(after, op.weight)
        assert weight.min() >= -8 and weight.max() <= 7
        assert weight.min() == -7 or weight.max() == 7  # the full symmetric range is used
        assert op.weight_quant.element == "i4"


@pytest.mark.parametrize("name", ["conv2", "y"], ids=["node", "tensor"])
def test_op_target_keeps_an_op_float(name: str):
    """RKNN's op_target={name: 'cpu'}: by node or output tensor name; the rest is lowered."""
    model = conv_relu([conv("r", "w2", "b2", "y", "conv2")])
    after, notes = lower(model, cpu_ops=frozenset({name}))
    assert names(after) == ["npu.quantize", "npu.conv2d", "npu.dequantize", "onnx.Conv",
                            "func.return"]  # fmt: skip
    assert any('CPU: Conv "conv2": sent to the CPU by op_target' in n for n in notes)


def test_int4_weights_beside_float16_activations():
    """w4a16: int4 weights per channel, the layer computes in float16 with their reals."""
    model = model_from_nodes([conv("x", "w1", "b1", "y", "conv1")], [X], ["y"], INITS)
    after, _ = lower(model, dtype="f16", weight_dtype="i4")
    op = only(after, npu.Conv2dOp)
    assert op.quant.element == "f16" and op.weight_quant.element == "i4"
    weight = const(after, op.weight)
    scale = np.abs(W1).reshape(4, -1).max(axis=1) / 7  # symmetric int4, per output channel
    np.testing.assert_array_equal(weight, np.clip(np.round(W1 / scale[:, None, None, None]), -8, 7))
    x = random_inputs(model)["x"]
    got = Interpreter(after).run({"x": x}).outputs["y"]
    w_real = (weight * scale[:, None, None, None]).astype(np.float16).astype(np.float32)
    x_f16 = x.astype(np.float16).astype(np.float32)  # the layer's input is float16
    want = Interpreter(model_from_nodes([conv("x", "w", "b1", "y", "conv1")], [X], ["y"],
                                        {**INITS, "w": w_real})).run({"x": x_f16}).outputs["y"]  # fmt: skip
    # float16 output rounding: half an ulp of the largest outputs (~10) is 2**-8
    np.testing.assert_allclose(got, want, rtol=0, atol=2**-7)


def test_lut_activation_after_split_becomes_npu_lut():
    model = conv_relu([conv("r", "w2", "b2", "c2", "conv2"),
                       helper.make_node("Sigmoid", ["c2"], ["y"], "sig")])  # fmt: skip
    run_passes(model, "fuse-activation,split-lut-activations")
    after, _ = lower(model)
    assert names(after) == ["npu.quantize", "npu.conv2d", "npu.conv2d", "npu.lut",
                            "npu.dequantize", "func.return"]  # fmt: skip
    lut = only(after, npu.LutOp)
    assert lut.function.data == "Sigmoid" and const(after, lut.operands[1]).size == 256


# ---------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("dtype", "least"), [("i8", 0.99), ("i16", 0.9999)])
def test_lowered_model_is_close_to_the_float_one(dtype, least):
    model = conv_relu([conv("r", "w2", "b2", "c2", "conv2"),
                       helper.make_node("Sigmoid", ["c2"], ["s"], "sig"),
                       helper.make_node("MaxPool", ["s"], ["y"], "pool", kernel_shape=[2, 2],
                                        strides=[2, 2])])  # fmt: skip
    run_passes(model, "fuse-activation,split-lut-activations")
    after, _ = lower(model, dtype=dtype)
    assert not any(isinstance(op, OnnxOp) for op in body(after))  # all on the NPU
    assert any(isinstance(op, npu.Conv2dOp) and op.quant.element == dtype for op in body(after))
    float_run, npu_run = Interpreter(model), Interpreter(after)
    for seed in range(2):  # samples the ranges were measured on
        feeds = random_inputs(model, seed)
        want, got = float_run.run(feeds).outputs["y"], npu_run.run(feeds).outputs["y"]
        assert got.dtype == np.float32 and got.shape == want.shape
        assert cosine(got, want) >= least


# ---------------------------------------------------------------------- text


def test_lowered_ir_prints_and_parses_back():
    after, _ = lower(conv_relu(TAIL), overrides={"r": "i16"})
    text = str(after.module)
    assert "npu.conv2d" in text and "npu.requantize" in text
    parsed = parse_module(text)
    assert str(parsed) == text
    again = IRModel(parsed, after.weights)
    feeds = random_inputs(after)
    np.testing.assert_array_equal(
        Interpreter(again).run(feeds).outputs["y"], Interpreter(after).run(feeds).outputs["y"]
    )
