"""float16 ops on the simulator against the `npu` reference executor, bit for bit:
convolutions (the geometry cases of the int8 suite, depthwise and grouped, the activations
the float path maps, the residual add, many tasks on a small CBUF, a hand-worked task, an
exact sum that float32 would lose), fully connected, element-wise (add, mul, max, min;
per-channel and scalar operands), pooling and data movement; the float DPU stages by
hand and what they refuse; and the float16 forms that stay on the CPU (int4
weights, sub, average pooling over unequal windows)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from backends.codegen import generate
from backends.registers import RK3588, decode
from backends.registers.values import ALU_MAX, float32_bits
from compiler.pipeline import parse_pipeline, run_pipeline
from dialects.npu.placement import get_tasks
from runtime.kernels.npu_ops import build_kernel
from runtime.simulator import Memory, SimulatorError, dpu_float
from runtime.simulator.dpu import OperandTable
from runtime.simulator.registers import RegisterFile
from tests.helpers.backend import conv
from tests.helpers.npu import import_graph, lower, measured_ranges, onnx_graph, samples
from tests.runtime.sim_harness import (
    BACKEND,
    assert_exact,
    compiled,
    retile,
    simulate,
    small_cbuf,
)
from tests.runtime.test_simulator_conv import POST_ACTIVATIONS, f32, residual_model
from tests.runtime.test_simulator_datamove import run as run_copy
from tests.runtime.test_simulator_datamove import slice_node


def run_f16(cin: int, cout: int, hw: tuple[int, int], k: int = 3, act: list | None = None,
            target=None, inits: dict | None = None, **attrs) -> list:  # fmt: skip
    group = attrs.get("group", 1)
    nodes = [conv("x", "w", "c" if act else "y", "conv", b="b", **attrs), *(act or [])]
    arrays = {"w": f32(cout, cin // group, k, k), "b": f32(cout), **(inits or {})}
    model, feeds = compiled(nodes, [("x", [1, cin, *hw])], ["y"], arrays, target=target,
                            dtype="f16")  # fmt: skip
    results = []
    for feed in feeds:
        results += simulate(model, feed, target=target)
    for r in results:
        assert r.op.quant.element == "f16" and r.got.dtype == np.float16
    return results


@pytest.mark.parametrize(
    ("cin", "cout", "hw", "k", "attrs"),
    [
        (16, 32, (6, 6), 1, {}),
        (8, 16, (9, 9), 3, {"pads": [1, 1, 1, 1]}),
        (8, 16, (10, 11), 3, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
        (4, 8, (9, 7), 3, {"pads": [0, 2, 1, 0], "strides": [1, 2]}),
        (8, 8, (11, 11), 3, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
        (1, 8, (8, 8), 3, {"pads": [1, 1, 1, 1]}),
        (13, 29, (7, 7), 3, {"pads": [1, 1, 1, 1]}),
        (40, 20, (5, 5), 3, {"pads": [1, 1, 1, 1]}),
        (24, 24, (9, 9), 3, {"pads": [1, 1, 1, 1], "group": 24}),
        (32, 32, (8, 8), 3, {"pads": [1, 1, 1, 1], "group": 4}),
    ],
    ids=[
        "1x1",
        "3x3",
        "stride2",
        "asymmetric",
        "dilated",
        "1ch",
        "13to29",
        "40to20",
        "dw",
        "grouped",
    ],
)
def test_geometry(cin, cout, hw, k, attrs):
    assert_exact(run_f16(cin, cout, hw, k, **attrs))


@pytest.mark.parametrize(
    "act",
    [
        [helper.make_node("Relu", ["c"], ["y"], "relu")],
        [helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip")],
        [helper.make_node("Clip", ["c", "nlo", "nhi"], ["y"], "clip")],
    ],
    ids=["relu", "clip", "clip_negative"],
)
def test_activations(act):
    inits = {"lo": np.array(0.05, np.float32), "hi": np.array(0.4, np.float32),
             "nlo": np.array(-0.4, np.float32), "nhi": np.array(-0.05, np.float32)}  # fmt: skip
    results = run_f16(6, 12, (8, 8), 3, act, inits=inits, pads=[1, 1, 1, 1])
    assert results[0].op.activation.data == act[0].op_type.lower()
    assert_exact(results)


@POST_ACTIVATIONS
@pytest.mark.parametrize("z_from_npu", [False, True], ids=["z_cpu", "z_npu"])
def test_residual_add(post, z_from_npu):
    # z from the NPU: conv1's own output, without a standalone relu (a float16 Relu that is
    # not fused stays a float op, which this harness does not run)
    model, feeds = residual_model(post, pre_relu=not z_from_npu, z_from_npu=z_from_npu,
                                  dtype="f16")  # fmt: skip
    (fused,) = [op for op in model.main.body.blocks[0].ops
                if op.name == "npu.conv2d" and op.residual is not None]  # fmt: skip
    assert fused.quant.element == "f16"
    assert_exact(simulate(model, feeds[0]))


def test_row_bands_and_channel_groups_with_a_small_cbuf():
    # 2-byte elements: the bands are half as tall as int8's, the weights twice as large
    results = run_f16(8, 16, (20, 12), 3, target=small_cbuf(banks=4, bank_bytes=1024),
                      pads=[1, 1, 1, 1])  # fmt: skip
    assert len(get_tasks(results[0].op)) > 4
    assert_exact(results)
    results = run_f16(32, 64, (6, 6), 3, target=small_cbuf(banks=4, bank_bytes=8192),
                      pads=[1, 1, 1, 1])  # fmt: skip
    groups = {(c0, c1) for _, _, c0, c1 in get_tasks(results[0].op)}
    assert len(groups) > 1
    assert_exact(results)


def test_depthwise_and_residual_bands_with_a_small_cbuf():
    results = run_f16(48, 48, (10, 10), 3, target=small_cbuf(banks=3, bank_bytes=256),
                      group=48, pads=[1, 1, 1, 1])  # fmt: skip
    assert len(get_tasks(results[0].op)) > 3
    assert_exact(results)
    target = small_cbuf(banks=4, bank_bytes=1024)
    model, feeds = residual_model([helper.make_node("Relu", ["s"], ["y"], "relu3")],
                                  pre_relu=False, z_from_npu=True, dtype="f16")  # fmt: skip
    retile(model, target)
    assert_exact(simulate(model, feeds[0], target=target))


def test_a_float16_task_by_hand():
    # one input channel of 1.0 .. 4.0, a 1x1 kernel of 0.5, bias -1.0, relu:
    # y = max(0.5 x - 1, 0) = [0, 0, 0.5, 1.0]
    nodes = [conv("x", "w", "c", "conv", b="b"), helper.make_node("Relu", ["c"], ["y"], "relu")]
    inits = {"w": np.full((1, 1, 1, 1), 0.5, np.float32), "b": np.array([-1.0], np.float32)}
    model, _ = compiled(nodes, [("x", [1, 1, 2, 2])], ["y"], inits, dtype="f16")
    feed = {"x": np.arange(1.0, 5.0, dtype=np.float16).reshape(1, 1, 2, 2)}
    (result,) = simulate(model, feed)
    assert result.got.ravel().tolist() == [0.0, 0.0, 0.5, 1.0]
    assert result.expected.ravel().tolist() == [0.0, 0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "act",
    [
        [helper.make_node("LeakyRelu", ["c"], ["y"], "leaky", alpha=0.1)],
        [helper.make_node("PRelu", ["c", "slope"], ["y"], "prelu")],
    ],
    ids=["leaky", "prelu"],
)
def test_leaky_and_prelu(act):
    # the slopes through the records' aux (float32 bit patterns), 1.0 for positive values
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]), *act]
    inits = {"w": f32(8, 4, 3, 3), "b": f32(8), "slope": f32(8, 1, 1, scale=0.3)}
    model, feeds = compiled(nodes, [("x", [1, 4, 6, 6])], ["y"], inits, dtype="f16")
    program = generate(model)
    assert program.unsupported == []
    results = simulate(model, feeds[0], program)
    assert (results[0].expected < 0).any()  # the slopes were used
    assert_exact(results)


def test_int4_weights_beside_float16_stay_on_the_cpu():
    # rk3576 computes w4a16; its code generation is not written yet: the CPU, with the reason
    nodes = [conv("x", "w", "y", "conv", b="b", pads=[1, 1, 1, 1])]
    model = import_graph(onnx_graph(nodes, [("x", [1, 8, 6, 6])], ["y"],
                                    {"w": f32(8, 8, 3, 3), "b": f32(8)}), "fuse-activation")  # fmt: skip
    after, _ = lower(model, measured_ranges(model, samples(model, 2, 0)), dtype="f16",
                     weight_dtype="i4")  # fmt: skip
    run_pipeline(after, parse_pipeline(BACKEND.replace("partition-cpu",
                                                       "partition-cpu{target=rk3576}")))  # fmt: skip
    program = generate(after)
    assert not program.tasks
    assert any("i4 weights beside float16" in reason for reason in program.unsupported)


def test_other_float16_ops_stay_on_the_cpu():
    # a float16 average pooling whose windows count different numbers of elements (padding
    # not counted): the conv on the NPU, the pool on the CPU
    nodes = [
        conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["c"], ["y"], "pool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
    ]  # fmt: skip
    model, feeds = compiled(
        nodes, [("x", [1, 8, 6, 6])], ["y"], {"w": f32(8, 8, 3, 3), "b": f32(8)}, dtype="f16"
    )
    program = generate(model)
    assert any("windows of different sizes" in reason for reason in program.unsupported)
    assert_exact(simulate(model, feeds[0], program), expected_ops=1)


def test_sums_are_exact_before_the_float32_accumulator():
    # 1x1 kernel [1, 2**-6, 1] on pixels [4096, 2**-7, -4096]: the products 4096, 2**-13 and
    # -4096 sum to 2**-13 exactly; summed in float32 left to right, 4096 + 2**-13 rounds to
    # 4096 (its ulp is 2**-11) and the result would be 0
    nodes = [conv("x", "w", "y", "conv", b="b")]
    w = np.array([1.0, 2.0**-6, 1.0], np.float32).reshape(1, 3, 1, 1)
    model, _ = compiled(nodes, [("x", [1, 3, 1, 2])], ["y"], {"w": w, "b": np.zeros(1, np.float32)},
                        dtype="f16")  # fmt: skip
    pixel = np.array([4096.0, 2.0**-7, -4096.0], np.float16)
    feed = {"x": np.stack([pixel, 2 * pixel], axis=-1).reshape(1, 3, 1, 2)}
    (result,) = simulate(model, feed)
    assert result.expected.ravel().tolist() == [2.0**-13, 2.0**-12]
    assert result.got.ravel().tolist() == [2.0**-13, 2.0**-12]


def registers(**writes: dict[str, int]) -> RegisterFile:
    regs = RegisterFile()
    for name, fields in writes.items():
        block, register = name.split("_", 1)
        regs.write(block, register, RK3588.register(block, register).encode(**fields))
    return regs


def test_float_dpu_stages_by_hand():
    # BN: max(v, 0.05) then min(., 0.4); the output converter rounds to float16
    regs = registers(DPU_BS_CFG={"BS_BYPASS": 1},
                     DPU_BN_CFG={"BN_ALU_ALGO": ALU_MAX, "BN_RELUX_EN": 1, "BN_MUL_BYPASS": 1,
                                 "BN_RELU_BYPASS": 1},
                     DPU_BN_ALU_CFG={"BN_ALU_OPERAND": float32_bits(0.05)},
                     DPU_BN_RELUX_CMP_VALUE={"BN_RELUX_CMP_DAT": float32_bits(0.4)},
                     DPU_OUT_CVT_SCALE={"OUT_CVT_SCALE": 1, "FP32TOFP16_EN": 1})  # fmt: skip
    v = np.array([-1.0, 0.3, 2.0], np.float32).reshape(3, 1, 1)
    table = OperandTable(regs, Memory(), 3)
    v = dpu_float._stage(dpu_float._stage(v, regs, table, "BS"), regs, table, "BN")
    out = dpu_float._to_float16(v, regs)
    assert out.dtype == np.float16
    assert out.ravel().tolist() == np.array([0.05, 0.3, 0.4], np.float16).tolist()


def test_float_dpu_refuses_what_it_does_not_model():
    table = OperandTable(RegisterFile(), Memory(), 1)
    v = np.zeros((1, 1, 1), np.float32)
    with pytest.raises(SimulatorError, match="float BS multiplier"):
        dpu_float._stage(v, registers(DPU_BS_CFG={"BS_ALU_BYPASS": 1}), table, "BS")
    with pytest.raises(SimulatorError, match="FP32TOFP16_EN"):
        dpu_float._to_float16(v, registers(DPU_OUT_CVT_SCALE={"OUT_CVT_SCALE": 1}))


@pytest.mark.parametrize(("rows", "k", "n"), [(1, 24, 9), (3, 40, 20)])
def test_fully_connected(rows, k, n):
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)]
    model, feeds = compiled(nodes, [("x", [rows, k])], ["y"], {"w": f32(n, k), "b": f32(n)},
                            dtype="f16")  # fmt: skip
    results = simulate(model, feeds[0])
    assert [r.op.name for r in results] == ["npu.fully_connected"]
    assert results[0].got.dtype == np.float16
    assert_exact(results)


def test_fully_connected_with_relu_and_channel_groups_on_a_small_cbuf():
    target = small_cbuf(banks=3, bank_bytes=2048)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], "fc", transB=1),
             helper.make_node("Relu", ["h"], ["y"], "relu")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [2, 64])], ["y"], {"w": f32(100, 64), "b": f32(100)},
                            target=target, dtype="f16")  # fmt: skip
    (result,) = simulate(model, feeds[0], target=target)
    assert result.op.activation.data == "relu"
    assert len(get_tasks(result.op)) > 1
    assert_exact([result])


# ---------------------------------------------------------------------- element-wise

FLOAT_KINDS = ["Add", "Mul", "Max", "Min"]


def two_convs_f16(tail: list, channels: int = 20, target=None) -> tuple:
    """a = conv1(x), b = conv2(x), both float16 on the NPU, then `tail` reading a and b."""
    nodes = [conv("x", "w1", "a", "c1", b="b1"), conv("x", "w2", "b", "c2", b="b2"), *tail]
    inits = {"w1": f32(channels, 4, 1, 1), "b1": f32(channels),
             "w2": f32(channels, 4, 1, 1, scale=1.5), "b2": f32(channels)}  # fmt: skip
    return compiled(nodes, [("x", [1, 4, 5, 6])], ["y"], inits, target=target, dtype="f16")


def eltwise_of(model) -> list:
    return [op for op in model.main.body.blocks[0].ops if op.name == "npu.eltwise"]


@pytest.mark.parametrize("kind", FLOAT_KINDS)
def test_eltwise_same_shape(kind):
    model, feeds = two_convs_f16([helper.make_node(kind, ["a", "b"], ["y"], "ew")])
    (op,) = eltwise_of(model)
    assert op.quant.element == "f16"
    program = generate(model)
    assert program.unsupported == []
    assert_exact(simulate(model, feeds[0], program), expected_ops=3)


@pytest.mark.parametrize("kind", ["Add", "Mul"])
@pytest.mark.parametrize("broadcast_first", [False, True], ids=["rhs", "lhs"])
def test_eltwise_per_channel_operand(kind, broadcast_first):
    operands = ["z", "a"] if broadcast_first else ["a", "z"]
    nodes = [conv("x", "w1", "a", "c1", b="b1"), helper.make_node(kind, operands, ["y"], "ew")]
    model, feeds = compiled(nodes, [("x", [1, 4, 5, 5]), ("z", [1, 24, 1, 1])], ["y"],
                            {"w1": f32(24, 4, 1, 1), "b1": f32(24)}, dtype="f16")  # fmt: skip
    program = generate(model)
    assert program.unsupported == []
    assert_exact(simulate(model, feeds[0], program), expected_ops=2)


@pytest.mark.parametrize("kind", ["Add", "Mul"])
def test_eltwise_constant_scalar(kind):
    # the constant 0.7 as float16 (0.7001953125) in EW_OP_VALUE_0 as a float32 bit pattern
    nodes = [conv("x", "w1", "a", "c1", b="b1"), helper.make_node(kind, ["a", "k"], ["y"], "ew")]
    model, feeds = compiled(nodes, [("x", [1, 4, 5, 5])], ["y"],
                            {"w1": f32(20, 4, 1, 1), "b1": f32(20),
                             "k": np.array(0.7, np.float32)}, dtype="f16")  # fmt: skip
    program = generate(model)
    assert program.unsupported == []
    written = [decode(word).fields["EW_OPERAND_0"] for word in program.words
               if word and decode(word).register == "EW_OP_VALUE_0"]  # fmt: skip
    assert written == [float32_bits(0.7001953125)]
    assert_exact(simulate(model, feeds[0], program))


def test_eltwise_tasks_on_a_small_cbuf():
    target = small_cbuf(banks=2, bank_bytes=256)
    model, feeds = two_convs_f16([helper.make_node("Add", ["a", "b"], ["y"], "ew")],
                                 channels=24, target=target)  # fmt: skip
    (op,) = eltwise_of(model)
    assert len(get_tasks(op)) > 1
    assert_exact(simulate(model, feeds[0], target=target))


def test_float16_sub_stays_on_the_cpu():
    model, _ = two_convs_f16([helper.make_node("Sub", ["a", "b"], ["y"], "ew")])
    program = generate(model)
    assert any("float16 sub" in reason for reason in program.unsupported)


# ---------------------------------------------------------------------- data movement


SLICE, SLICE_INITS = slice_node([1, 2], [5, 7], [2, 3], [2, 1])  # rows 1, 3 / columns 2..6


def concat(axis: int) -> helper.NodeProto:
    return helper.make_node("Concat", ["c0", "c1"], ["y"], name="cat", axis=axis)


@pytest.mark.parametrize(
    ("node", "channels", "inits"),
    [
        (concat(1), [16, 8], {}),
        (concat(2), [8, 8], {}),
        (concat(3), [8, 8], {}),
        (SLICE, [16], SLICE_INITS),
        (
            helper.make_node("Pad", ["c0", "p"], ["y"], name="pd"),
            [16],
            {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)},
        ),
        (
            helper.make_node("Reshape", ["c0", "s"], ["y"], name="rs"),
            [16],
            {"s": np.array([1, 16, 3, 21], np.int64)},
        ),
        (helper.make_node("Transpose", ["c0"], ["y"], name="tr", perm=[0, 1, 3, 2]), [16], {}),
    ],
    ids=[
        "concat_channels",
        "concat_rows",
        "concat_columns",
        "slice",
        "pad",
        "reshape",
        "transpose",
    ],
)
def test_data_movement_copies_float16_bits(node, channels, inits):
    # the PPU copies float16 elements as the int16 bit patterns they are
    model = run_copy(node, channels, hw=(9, 7), extra_inits=inits, dtype="f16")
    (moved,) = [
        op
        for op in model.main.body.blocks[0].ops
        if op.name.startswith("npu.")
        and op.name not in ("npu.conv2d", "npu.quantize", "npu.dequantize")
    ]
    assert moved.quant.element == "f16"


# ---------------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    ("kind", "attrs"),
    [
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
        (
            "AveragePool",
            {
                "kernel_shape": [3, 3],
                "strides": [1, 1],
                "pads": [1, 1, 1, 1],
                "count_include_pad": 1,
            },
        ),
        ("GlobalAveragePool", {}),
        ("GlobalMaxPool", {}),
    ],
    ids=["max2x2", "max3x3_padded", "avg2x2", "avg3x3_padded", "global_avg", "global_max"],
)
def test_pooling(kind, attrs):
    # negative values at the padded border: the padding must lose every max (-inf) and
    # count as 0 in an average that includes it
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]),
             helper.make_node(kind, ["c"], ["y"], "pool", **attrs)]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 8, 7, 9])], ["y"],
                            {"w": f32(16, 8, 3, 3), "b": f32(16) - 1.0}, dtype="f16")  # fmt: skip
    program = generate(model)
    assert program.unsupported == []
    results = simulate(model, feeds[0], program)
    assert [r.op.name for r in results] == ["npu.conv2d", "npu.pool"]
    if kind != "GlobalMaxPool":  # (a whole plane's max is positive here)
        assert (results[1].expected < 0).any()
    assert_exact(results)


# ---------------------------------------------------------------------- transposed conv


@pytest.mark.parametrize(
    ("cin", "cout", "k", "attrs"),
    [
        (8, 16, 2, {"strides": [2, 2]}),
        (8, 8, 3, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
        (16, 8, 4, {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ],
    ids=["2x2s2", "3x3s2_padded", "4x4s2"],
)
def test_transposed_convolution(cin, cout, k, attrs):
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], "deconv", **attrs)
    nodes = [node, helper.make_node("Relu", ["c"], ["y"], "relu")]
    model, feeds = compiled(nodes, [("x", [1, cin, 5, 6])], ["y"],
                            {"w": f32(cin, cout, k, k), "b": f32(cout)}, dtype="f16")  # fmt: skip
    program = generate(model)
    assert program.unsupported == []
    results = simulate(model, feeds[0], program)
    assert [r.op.name for r in results] == ["npu.conv_transpose"]
    assert_exact(results)


# ---------------------------------------------------------------------- resize


def test_nearest_resize_and_its_signed_zero():
    # conv -> Resize x2 (nearest, asymmetric floor): the MAC array's x + 0.0 makes -0.0 +0.0,
    # and the reference does the same
    sizes = np.array([1, 8, 10, 12], np.int64)
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", "", "", "sizes"], ["y"], "up", mode="nearest",
                              coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 4, 5, 6])], ["y"],
                            {"w": f32(8, 4, 3, 3), "b": f32(8), "sizes": sizes},
                            dtype="f16")  # fmt: skip
    program = generate(model)
    assert program.unsupported == []
    assert_exact(simulate(model, feeds[0], program))
    (resize,) = [op for op in model.main.body.blocks[0].ops if op.name == "npu.resize"]
    x = np.where(np.arange(6) % 2 == 0, -0.0, 1.5).astype(np.float16)
    y = build_kernel(resize, model.weights)(np.broadcast_to(x, (1, 8, 5, 6)).copy())
    assert not np.signbit(y).any() and np.isin(y, [0.0, 1.5]).all()
