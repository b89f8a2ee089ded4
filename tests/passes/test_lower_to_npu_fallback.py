"""`lower-to-npu` where it must NOT lower: every `Unsupported` branch of the pass. The op
stays a float `onnx` op (the CPU runs it) reading `npu.dequantize` of the quantized value
before it, and the pass reports it on one line naming the node and the reason.

Each graph is `Relu(x) -> r -> <op under test>`: the Relu becomes an `npu.lut`, so the op's
data input is quantized and must come back through `npu.dequantize`. Numerics: the float op
must compute exactly what onnxruntime computes on the dequantized `r` (the lowered model
adds no rounding after it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
import pytest
from onnx import helper
from xdsl.rewriter import InsertPoint, Rewriter

from compiler.interpreter import Interpreter
from dialects.npu import ops as npu
from dialects.onnx import OnnxOp
from dialects.onnx.fused import FusedOp, operand
from dialects.weights import using_weights
from passes.rewrite import make_constant
from tests.helpers.npu import (
    body,
    cpu_notes,
    import_graph,
    lower,
    measured_ranges,
    onnx_graph,
    ort,
    samples,
)

RNG = np.random.default_rng(5)
PREFIX = helper.make_node("Relu", ["x"], ["r"], "relu0")


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@dataclass
class Case:
    node: onnx.NodeProto | list[onnx.NodeProto]
    shape: tuple[int, ...]  # of x (and r)
    reason: str  # in the report line
    inits: dict = field(default_factory=dict)
    op_type: str = ""  # of the op left on the CPU (default: the node's)
    outputs: tuple[str, ...] = ("y",)
    extra_inputs: tuple = ()  # (name, shape) graph inputs besides x
    passes: str = ""  # run before lowering
    plan: dict = field(default_factory=dict)
    drop_ranges: tuple[str, ...] = ()  # tensors the plan has no range for
    numpy_reference: Callable[[np.ndarray], np.ndarray] | None = None  # when ort refuses


def node(op_type: str, inputs: list[str], name: str, outputs=("y",), **attrs):
    return helper.make_node(op_type, inputs, list(outputs), name, **attrs)


CASES = {
    "unsupported-op-type": Case(node("Floor", ["r"], "floor"), (1, 2, 3, 3),
                                "Floor has no NPU lowering"),
    "conv-kernel-33": Case(node("Conv", ["r", "w"], "conv"), (1, 2, 34, 34),
                           "kernel [33, 33] exceeds 31", {"w": f32(1, 2, 33, 33)}),
    "conv-stride-8": Case(node("Conv", ["r", "w", "b"], "conv", strides=[8, 8]), (1, 2, 17, 17),
                          "stride [8, 8] exceeds 7", {"w": f32(2, 2, 3, 3), "b": f32(2)}),
    "conv-dilation-32": Case(node("Conv", ["r", "w"], "conv", dilations=[32, 32]),
                             (1, 2, 34, 34), "dilation [32, 32] exceeds 31",
                             {"w": f32(2, 2, 2, 2)}),
    "conv-feature-map-2100": Case(node("Conv", ["r", "w"], "conv"), (1, 1, 1, 2100),
                                  "feature map [1, 2100] -> [1, 2100] exceeds 2047",
                                  {"w": f32(1, 1, 1, 1)}),
    "conv-1d": Case(node("Conv", ["r", "w"], "conv"), (1, 2, 8),
                    "a 1-D convolution (the NPU runs 2-D)", {"w": f32(2, 2, 3)}),
    "conv-weight-not-constant": Case(node("Conv", ["r", "w"], "conv"), (1, 2, 4, 4),
                                     "the weight is not constant",
                                     extra_inputs=(("w", (2, 2, 3, 3)),)),
    "conv-transpose-output-shape": Case(
        node("ConvTranspose", ["r", "w"], "deconv", strides=[2, 2], output_shape=[7, 7]),
        (1, 2, 3, 3), "ConvTranspose other than 2-D with explicit pads", {"w": f32(2, 2, 3, 3)}),
    "conv-transpose-auto-pad": Case(
        node("ConvTranspose", ["r", "w"], "deconv", strides=[2, 2], auto_pad="SAME_UPPER"),
        (1, 2, 3, 3), "ConvTranspose other than 2-D with explicit pads", {"w": f32(2, 2, 3, 3)}),
    "conv-transpose-stride-8": Case(node("ConvTranspose", ["r", "w"], "deconv", strides=[8, 8]),
                                    (1, 2, 2, 2), "stride [8, 8] exceeds 7",
                                    {"w": f32(2, 2, 3, 3)}),
    "conv-transpose-grouped-per-channel": Case(
        node("ConvTranspose", ["r", "w"], "deconv", group=2), (1, 2, 3, 3),
        "grouped ConvTranspose with per-channel weights", {"w": f32(2, 1, 3, 3)}),
    "gemm-transA": Case(node("Gemm", ["r", "w"], "fc", transA=1), (5, 2), "Gemm with transA",
                        {"w": f32(5, 3)}),
    "gemm-c-matrix": Case(node("Gemm", ["r", "w", "c"], "fc"), (2, 5),
                          "Gemm C is not a per-column vector", {"w": f32(5, 3), "c": f32(2, 3)}),
    "matmul-of-two-activations": Case(node("MatMul", ["r", "b"], "mm"), (2, 4),
                                      "the B operand is not constant",
                                      extra_inputs=(("b", (4, 3)),)),
    "matmul-3d-constant": Case(node("MatMul", ["r", "w"], "mm"), (2, 1, 4),
                               "MatMul with a 3-D constant", {"w": f32(2, 4, 3)}),
    "fused-sigmoid-not-split": Case(
        [node("Conv", ["r", "w"], "conv", outputs=["c"], pads=[1, 1, 1, 1]),
         node("Sigmoid", ["c"], "sig")],
        (1, 2, 4, 4), "activation Sigmoid is not one the DPU applies", {"w": f32(2, 2, 3, 3)},
        op_type="FusedConv", passes="fuse-activation"),
    "lut-in-float16": Case(node("Sigmoid", ["r"], "sig"), (1, 2, 3, 3),
                           "Sigmoid in float16 (tables are integer)",
                           plan={"overrides": {"y": "f16"}}),
    "maxpool-indices-used": Case(
        node("MaxPool", ["r"], "pool", outputs=["y", "idx"], kernel_shape=[2, 2],
             strides=[2, 2]),
        (1, 2, 4, 4), "MaxPool Indices output is used", outputs=("y", "idx")),
    "pool-1d": Case(node("MaxPool", ["r"], "pool", kernel_shape=[2]), (1, 2, 8),
                    "1-D pooling"),
    "pool-ceil-mode": Case(node("AveragePool", ["r"], "pool", kernel_shape=[2, 2],
                                strides=[2, 2], ceil_mode=1),
                           (1, 2, 5, 5), "pooling with ceil_mode or dilations"),
    "pool-dilations": Case(node("MaxPool", ["r"], "pool", kernel_shape=[2, 2],
                                dilations=[2, 2]),
                           (1, 2, 5, 5), "pooling with ceil_mode or dilations"),
    "pool-kernel-17": Case(node("AveragePool", ["r"], "pool", kernel_shape=[17, 17]),
                           (1, 1, 17, 17), "pooling kernel [17, 17] exceeds 16"),
    "pool-stride-17": Case(node("MaxPool", ["r"], "pool", kernel_shape=[2, 2],
                                strides=[17, 17]),
                           (1, 1, 20, 20), "pooling stride [17, 17] exceeds 16"),
    "pool-cropping-same": Case(node("MaxPool", ["r"], "pool", kernel_shape=[1, 1],
                                    strides=[2, 2], auto_pad="SAME_UPPER"),
                               (1, 2, 4, 4), "pooling that crops its input",
                               # onnxruntime rejects negative SAME padding; a 1x1 window at
                               # stride 2 picks every other pixel
                               numpy_reference=lambda r: r[:, :, ::2, ::2]),
    "slice-negative-step": Case(node("Slice", ["r", "s", "e", "a", "st"], "cut"), (1, 2, 3, 4),
                                "Slice with a negative step",
                                {"s": i64(-1), "e": i64(-(2**63)), "a": i64(3), "st": i64(-1)}),
    "pad-reflect": Case(node("Pad", ["r", "p"], "pad", mode="reflect"), (1, 2, 3, 3),
                        "Pad other than constant mode over all axes",
                        {"p": i64(0, 0, 1, 1, 0, 0, 1, 1)}),
    "pad-axes": Case(node("Pad", ["r", "p", "", "a"], "pad"), (1, 2, 3, 3),
                     "Pad other than constant mode over all axes",
                     {"p": i64(1, 1, 1, 1), "a": i64(2, 3)}),
    "pad-negative": Case(node("Pad", ["r", "p"], "pad"), (1, 2, 3, 3),
                         "Pad with negative pads or a non-zero value",
                         {"p": i64(0, 0, -1, 0, 0, 0, 0, 1)}),
    "pad-non-zero-value": Case(node("Pad", ["r", "p", "v"], "pad"), (1, 2, 3, 3),
                               "Pad with negative pads or a non-zero value",
                               {"p": i64(0, 0, 1, 1, 0, 0, 1, 1),
                                "v": np.array(1.5, np.float32)}),
    "resize-cubic": Case(node("Resize", ["r", "", "sc"], "up", mode="cubic"), (1, 2, 3, 3),
                         "Resize mode cubic or resizing other than H, W",
                         {"sc": np.array([1, 1, 2, 2], np.float32)}),
    "resize-channels": Case(node("Resize", ["r", "", "sc"], "up", mode="nearest"),
                            (1, 2, 3, 3), "Resize mode nearest or resizing other than H, W",
                            {"sc": np.array([1, 2, 1, 1], np.float32)}),
    "resize-antialias": Case(node("Resize", ["r", "", "sc"], "up", mode="linear", antialias=1),
                             (1, 2, 4, 4), "Resize with antialias or exclude_outside",
                             {"sc": np.array([1, 1, 0.5, 0.5], np.float32)}),
    "resize-tf-crop-and-resize": Case(
        node("Resize", ["r", "roi", "sc"], "up", mode="linear",
             coordinate_transformation_mode="tf_crop_and_resize"),
        (1, 2, 3, 3), "Resize tf_crop_and_resize",
        {"roi": np.array([0, 0, 0.1, 0.2, 1, 1, 0.9, 0.8], np.float32),
         "sc": np.array([1, 1, 2, 2], np.float32)}),
    "no-range-for-the-output": Case(node("Conv", ["r", "w"], "conv"), (1, 2, 4, 4),
                                    "no quantization range for tensor 'y'",
                                    {"w": f32(2, 2, 3, 3)}, drop_ranges=("y",)),
    "no-range-for-an-input": Case(node("Add", ["r", "z"], "add"), (1, 2, 3, 3),
                                  "no quantization range for input tensor 'z'",
                                  extra_inputs=(("z", (1, 2, 3, 3)),), drop_ranges=("z",)),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_stays_float_behind_dequantize_with_a_report_line(case: Case):
    nodes = case.node if isinstance(case.node, list) else [case.node]
    name = nodes[0].name
    op_type = case.op_type or nodes[0].op_type
    extra = [(n, s) for n, s in case.extra_inputs]
    proto = onnx_graph([PREFIX, *nodes], [("x", case.shape), *extra], case.outputs, case.inits)
    model = import_graph(proto, case.passes)
    feeds = samples(model, 1)
    ranges = {k: v for k, v in measured_ranges(model, feeds).items() if k not in case.drop_ranges}
    after, notes = lower(model, ranges, **case.plan)

    # (a) the IR: the op is still the float onnx op, fed by npu.dequantize of the npu.lut
    (kept,) = [op for op in body(after) if isinstance(op, OnnxOp) and op.node_name == name]
    assert kept.op_type == op_type
    assert not any(isinstance(op, npu.NpuOp) and op.node_name == name for op in body(after))
    dequantize = kept.operands[0].owner
    assert isinstance(dequantize, npu.DequantizeOp) and dequantize.quant.element == "f32"
    lut = dequantize.input.owner
    assert isinstance(lut, npu.LutOp) and lut.node_name == "relu0"
    for value in kept.operands[1:]:  # the rest: constants or float graph inputs
        assert not isinstance(value.owner, npu.NpuOp)
    # ... and reported, with the node's name and the reason
    assert "lower-to-npu: 1 ops on the NPU, 1 stay float (CPU)" in notes
    (line,) = cpu_notes(notes)
    assert line.startswith(f'lower-to-npu: CPU: {op_type} "{name}": '), line
    assert case.reason in line, line

    # (b) numerics: onnxruntime on the dequantized r gives what the lowered model gives
    result = Interpreter(after).run(feeds[0], capture=True)
    r = result.tensors["r"]
    tail = onnx_graph(nodes, [("r", case.shape), *extra], case.outputs, case.inits)
    if case.numpy_reference is not None:
        wanted = [case.numpy_reference(r)]
    else:
        wanted = ort(tail, {"r": r, **{n: feeds[0][n] for n, _ in extra}})
    for out_name, want in zip(case.outputs, wanted, strict=True):
        got = result.outputs[out_name]
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=out_name)


def test_fused_prelu_whose_slope_is_not_per_channel():
    """fuse-activation only fuses a per-channel PRelu slope, so this branch is reached by a
    FusedConv built otherwise: here its slope is swapped for a per-pixel one."""
    slope = RNG.random((2, 4, 4)).astype(np.float32)
    inits = {"w": f32(2, 2, 3, 3), "s": np.full((2, 1, 1), 0.2, np.float32)}
    nodes = [node("Conv", ["r", "w"], "conv", outputs=["c"], pads=[1, 1, 1, 1]),
             node("PRelu", ["c", "s"], "prelu")]  # fmt: skip
    shape = (1, 2, 4, 4)
    model = import_graph(onnx_graph([PREFIX, *nodes], [("x", shape)], ["y"], inits),
                         "fuse-activation")  # fmt: skip
    (fused,) = [op for op in body(model) if isinstance(op, FusedOp)]
    with using_weights(model.weights):
        per_pixel = make_constant(slope, "per_pixel_slope")
    Rewriter.insert_op(per_pixel, InsertPoint.before(fused))
    index = list(fused.operands).index(operand(fused, "slope"))
    fused.operands[index] = per_pixel.results[0]
    model.module.verify()
    feeds = samples(model, 1)
    after, notes = lower(model, measured_ranges(model, feeds))

    (kept,) = [op for op in body(after) if isinstance(op, OnnxOp) and op.node_name == "conv"]
    assert kept.op_type == "FusedConv" and isinstance(kept.operands[0].owner, npu.DequantizeOp)
    (line,) = cpu_notes(notes)
    assert line == 'lower-to-npu: CPU: FusedConv "conv": PRelu slope is not per channel'
    result = Interpreter(after).run(feeds[0], capture=True)
    tail = onnx_graph(nodes, [("r", shape)], ["y"], {**inits, "s": slope})
    (want,) = ort(tail, {"r": result.tensors["r"]})
    np.testing.assert_allclose(result.outputs["y"], want, rtol=1e-5, atol=1e-5)


RESIDUAL_BEYOND_THE_DPU = {
    "clip-before-the-add": (["Clip"], []),
    "leaky-before-the-add": (["LeakyRelu"], []),
    "leaky-after-the-add": ([], ["LeakyRelu"]),
}


@pytest.mark.parametrize(("before", "after"), RESIDUAL_BEYOND_THE_DPU.values(),
                         ids=RESIDUAL_BEYOND_THE_DPU.keys())  # fmt: skip
def test_residual_conv_with_an_activation_the_dpu_cannot_apply_there(before, after):
    """fuse-add takes any activation but PRelu before and after the add; without
    split-lut-activations in between, lower-to-npu must still give valid IR: fall back
    (and say so) or lower to something that computes the same."""
    inits = {"w": f32(2, 2, 3, 3), "lo": np.array(0.0, np.float32), "hi": np.array(1.0, np.float32)}
    nodes, current = [node("Conv", ["r", "w"], "conv", outputs=["c"], pads=[1, 1, 1, 1])], "c"
    for index, kind in enumerate([*before, "Add", *after]):
        inputs = {"Add": [current, "z"], "Clip": [current, "lo", "hi"]}.get(kind, [current])
        out = f"t{index}"
        nodes.append(node(kind, inputs, f"n{index}", outputs=[out]))
        current = out
    nodes[-1].output[0] = "y"
    shape = (1, 2, 4, 4)
    proto = onnx_graph([PREFIX, *nodes], [("x", shape), ("z", shape)], ["y"], inits)
    model = import_graph(proto, "fuse-activation,fuse-add")
    assert [op.op_type for op in body(model) if isinstance(op, OnnxOp)] == ["Relu", "FusedConv"]
    feeds = samples(model, 1)
    lowered, notes = lower(model, measured_ranges(model, feeds))  # raises today
    kept = [op for op in body(lowered) if isinstance(op, OnnxOp) and op.node_name == "conv"]
    if kept:
        assert any('CPU: FusedConv "conv"' in n for n in cpu_notes(notes))
    (want,) = ort(proto, feeds[0])
    got = Interpreter(lowered).run(feeds[0]).outputs["y"]
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
