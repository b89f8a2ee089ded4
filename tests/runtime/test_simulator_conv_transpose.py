"""`npu.conv_transpose` on the CNA's deconvolution (backends/codegen/conv_transpose.py, the
register reading in mac_task.py [ours]): golden register fields derived here by hand, and
bit-exactness of the simulator against the `npu` reference executor on small ONNX
ConvTransposes (stride 2, kernels 2 / 3 / 4, paddings, output paddings, dilation, fused
activations, depthwise, int16, many tasks on a small CBUF)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from backends.codegen import WEIGHTS, generate
from backends.codegen.conv_transpose import flipped_weights
from backends.registers import RK3588
from dialects.npu import placement as pl
from dialects.npu.placement import get_tasks
from runtime.kernels.conv import conv, conv_transpose
from runtime.simulator.cube import Cube
from runtime.simulator.mac import ConvShape, deconv_upsampling, padded_input
from runtime.simulator.memory import SimulatorError
from runtime.simulator.registers import RegisterFile
from tests.backends.codegen_fixture import ops_named, records, registers, relocated, weights_of
from tests.runtime.sim_harness import assert_exact, compiled, simulate, small_cbuf

RNG = np.random.default_rng(11)


def f32(*shape: int, scale: float = 0.2) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def deconv_model(cin: int, cout: int, hw: tuple[int, int], k: int, act: list | None = None,
                 target=None, group: int = 1, **attrs):  # fmt: skip
    """ConvTranspose (+ activation nodes `act` reading "c", writing "y") on [1, cin, *hw]."""
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["c" if act else "y"], "deconv",
                            group=group, **attrs)  # fmt: skip
    inits = {"w": f32(cin, cout // group, k, k), "b": f32(cout), "slope": f32(cout, 1, 1)}
    plan = {"per_channel": False} if group > 1 else {}
    return compiled([node, *(act or [])], [("x", [1, cin, *hw])], ["y"], inits, target=target,
                    **plan)  # fmt: skip


def run_deconv(*args, **kwargs) -> list:
    model, feeds = deconv_model(*args, **kwargs)
    target = kwargs.get("target")
    (op,) = ops_named(model, "npu.conv_transpose")
    assert generate(model, target).unsupported == []
    results = []
    for feed in feeds:
        results += simulate(model, feed, target=target)
    assert op in {r.op for r in results}
    return results


# ---------------------------------------------------------------------- golden fields


def test_golden_fields_of_a_3x3_stride_2_deconvolution():
    # 1x8x5x6 -> 12 channels, k 3, stride 2, pads 1, output_padding 1: output
    # (5 - 1) * 2 + 3 - 1 - 1 + 1 = 10 rows, (6 - 1) * 2 + 3 - 2 + 1 = 12 columns
    model, _ = deconv_model(8, 12, (5, 6), 3, strides=[2, 2], pads=[1, 1, 1, 1],
                            output_padding=[1, 1])  # fmt: skip
    (quant,), (op,) = ops_named(model, "npu.quantize"), ops_named(model, "npu.conv_transpose")
    program = generate(model)
    assert program.unsupported == [] and len(program.tasks) == 1
    r = registers(program, 0)
    assert r["CNA.CONV_CON1"]["DECONV"] == 1 and r["CNA.CONV_CON1"]["CONV_MODE"] == 0
    # upsampling by 2: one inserted row / column (stride - 1); the convolution is stride 1
    con3 = r["CNA.CONV_CON3"]
    assert (con3["DECONV_Y_STRIDE"], con3["DECONV_X_STRIDE"]) == (1, 1)
    assert (con3["CONV_Y_STRIDE"], con3["CONV_X_STRIDE"]) == (1, 1)
    assert (con3["ATROUS_Y_DILATION"], con3["ATROUS_X_DILATION"]) == (0, 0)
    # padding k - 1 - pad = 1 above and left
    assert (r["CNA.PAD_CON0"]["PAD_TOP"], r["CNA.PAD_CON0"]["PAD_LEFT"]) == (1, 1)
    assert r["CNA.PAD_CON1"]["PAD_VALUE"] == quant.quant.zero_point
    # the CNA reads the 5 x 6 input itself, writes 10 x 12
    assert (r["CNA.DATA_SIZE0"]["DATAIN_HEIGHT"], r["CNA.DATA_SIZE0"]["DATAIN_WIDTH"]) == (5, 6)
    assert r["CNA.DATA_SIZE2"]["DATAOUT_WIDTH"] == 12
    assert r["CNA.DATA_SIZE3"]["DATAOUT_ATOMICS"] == 120
    assert r["CORE.DATAOUT_SIZE_0"] == {"DATAOUT_HEIGHT": 9, "DATAOUT_WIDTH": 11}
    # 12 kernels computed up to the output's C2 (16), the 12 real ones written
    size2 = r["CNA.WEIGHT_SIZE2"]
    assert (size2["WEIGHT_HEIGHT"], size2["WEIGHT_WIDTH"], size2["WEIGHT_KERNELS"]) == (3, 3, 16)
    assert r["DPU.DATA_CUBE_CHANNEL"]["ORIG_CHANNEL"] == 11
    # ONNX weight [ic 3, oc 5, row 0, col 2] is the direct convolution's kernel 5, channel 3,
    # row 2, col 0: packed [1][1][3][3][32][32] at ((2 * 3 + 0) * 32 + 5) * 32 + 3
    w, bias = weights_of(model, op)
    relocations = relocated(program, 0)
    _, base = relocations["CNA.DCOMP_ADDR0"]
    blob = np.frombuffer(program.weight_blob, np.int8)
    assert blob[base + (6 * 32 + 5) * 32 + 3] == w[3, 5, 0, 2]
    assert blob[base + (8 * 32 + 11) * 32 + 7] == w[7, 11, 0, 0]  # row 2, col 2
    # the zero point folds into the bias over an output channel's weights (axis 1 in ONNX)
    buffer, table = relocations["DPU_RDMA.RDMA_BS_BASE_ADDR"]
    assert buffer == WEIGHTS
    alu = records(program.weight_blob, table, 16)[:, 0]
    zp = quant.quant.zero_point
    expected = [bias[oc] - zp * w[:, oc].sum() for oc in range(12)] + [0] * 4
    np.testing.assert_array_equal(alu, expected)


def test_a_convolution_keeps_deconv_off():
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], "conv", pads=[1, 1, 1, 1])
    model, _ = compiled([node], [("x", [1, 4, 6, 6])], ["y"], {"w": f32(8, 4, 3, 3),
                                                               "b": f32(8)})  # fmt: skip
    r = registers(generate(model), 0)
    assert r["CNA.CONV_CON1"]["DECONV"] == 0
    assert (r["CNA.CONV_CON3"]["DECONV_Y_STRIDE"], r["CNA.CONV_CON3"]["DECONV_X_STRIDE"]) == (0, 0)


def test_the_simulator_upsamples_the_band_before_padding_it():
    # a 2x2 band, DECONV stride 2 (one inserted row / column of PAD_VALUE 9), PAD_TOP and
    # PAD_LEFT 1, a 2x2 kernel at stride 1 over a 4x4 output: 4 + 1 = 5 rows and columns
    cube = Cube(0, "i8", 1, 1, 2, 2, 2, 4, True)
    shape = ConvShape("i8", True, cube, (1, 1), 9, (1, 1), (1, 1), (2, 2), 1, 4, 4, (2, 2))
    x = np.array([[[1, 2], [3, 4]]])
    expected = [[9, 9, 9, 9, 9],
                [9, 1, 9, 2, 9],
                [9, 9, 9, 9, 9],
                [9, 3, 9, 4, 9],
                [9, 9, 9, 9, 9]]  # fmt: skip
    np.testing.assert_array_equal(padded_input(x, shape)[0], expected)


def encode_field(block: str, register: str, **fields: int) -> int:
    return RK3588.register(block, register).encode(**fields)


def test_the_simulator_refuses_deconv_strides_without_deconv():
    regs = RegisterFile()
    regs.write("CNA", "CONV_CON3", encode_field("CNA", "CONV_CON3", DECONV_X_STRIDE=1))
    with pytest.raises(SimulatorError, match=r"without CNA\.CONV_CON1\.DECONV"):
        deconv_upsampling(regs)


# ---------------------------------------------------------------------- bit-exactness


@pytest.mark.parametrize(
    ("cin", "cout", "hw", "k", "attrs"),
    [
        (8, 16, (6, 7), 2, {}),  # the zoo's form: 2x2 stride 2, tiling the output
        (8, 12, (5, 6), 3, {}),
        (8, 12, (5, 6), 3, {"pads": [1, 1, 1, 1]}),
        (8, 12, (5, 6), 3, {"pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
        (6, 10, (5, 5), 4, {}),
        (6, 10, (5, 5), 4, {"pads": [1, 1, 1, 1]}),
        (6, 10, (5, 5), 4, {"pads": [2, 1, 0, 2], "output_padding": [1, 0]}),
        (13, 29, (4, 5), 3, {"pads": [0, 2, 1, 0]}),  # unaligned channels, asymmetric
        (40, 20, (4, 4), 2, {}),  # two input C2 blocks
        (4, 8, (5, 5), 3, {"dilations": [2, 2], "pads": [1, 1, 1, 1]}),
    ],
    ids=["k2", "k3", "k3p1", "k3p1op1", "k4", "k4p1", "k4asym", "13to29", "40to20", "dil2"],
)
def test_stride_2(cin, cout, hw, k, attrs):
    assert_exact(run_deconv(cin, cout, hw, k, strides=[2, 2], **attrs))


def test_other_strides():
    assert_exact(run_deconv(8, 8, (4, 5), 3, strides=[3, 1], pads=[1, 0, 1, 0]))
    assert_exact(run_deconv(8, 8, (4, 5), 3, strides=[1, 1], pads=[1, 1, 1, 1]))


@pytest.mark.parametrize(
    "act",
    [
        [helper.make_node("Relu", ["c"], ["y"], "relu")],
        [helper.make_node("LeakyRelu", ["c"], ["y"], "leaky", alpha=0.1)],
        [helper.make_node("PRelu", ["c", "slope"], ["y"], "prelu")],
    ],
    ids=["relu", "leaky", "prelu"],
)
def test_fused_activations(act):
    model, feeds = deconv_model(8, 12, (5, 5), 3, act=act, strides=[2, 2], pads=[1, 1, 1, 1])
    (op,) = ops_named(model, "npu.conv_transpose")
    assert op.activation.data == act[0].op_type.lower().replace("leakyrelu", "leaky")
    for feed in feeds:
        assert_exact(simulate(model, feed), expected_ops=1)


@pytest.mark.parametrize(("cin", "cout", "group"), [(6, 4, 1), (8, 12, 2), (6, 6, 6)])
def test_flipped_weights_compute_the_transposed_convolution(cin, cout, group):
    # the mapping on the kernels alone: a stride-1 convolution over the upsampled input
    # padded by k - 1
    x = RNG.integers(-50, 50, (1, cin, 4, 5)).astype(np.float64)
    w = RNG.integers(-50, 50, (cin, cout // group, 3, 3)).astype(np.float64)
    up = np.zeros((1, cin, 7, 9))
    up[:, :, ::2, ::2] = x
    direct = conv(up, flipped_weights(w, group), None, pads=[2, 2, 2, 2], group=group)
    np.testing.assert_array_equal(direct, conv_transpose(x, w, strides=[2, 2], group=group))


def test_grouped():
    # 2 groups of 4 -> 6 channels, per-tensor weights (per-channel ones go to the CPU)
    results = run_deconv(8, 12, (4, 5), 3, group=2, strides=[2, 2], pads=[1, 1, 1, 1])
    assert_exact(results)


def test_depthwise():
    model, feeds = deconv_model(16, 16, (5, 6), 4, group=16, strides=[2, 2], pads=[1, 1, 1, 1])
    program = generate(model)
    assert registers(program, 0)["CNA.CONV_CON1"]["CONV_MODE"] == 3  # depthwise
    assert_exact(simulate(model, feeds[0], program), expected_ops=1)


def test_int16():
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["c"], "deconv", strides=[2, 2],
                            pads=[1, 1, 1, 1])  # fmt: skip
    relu = helper.make_node("Relu", ["c"], ["y"], "relu")
    model, feeds = compiled([node, relu], [("x", [1, 8, 5, 5])], ["y"],
                            {"w": f32(8, 8, 3, 3), "b": f32(8)}, dtype="i16")  # fmt: skip
    (op,) = ops_named(model, "npu.conv_transpose")
    assert op.quant.element == "i16"
    assert_exact(simulate(model, feeds[0]), expected_ops=1)


# ---------------------------------------------------------------------- many tasks


def test_row_bands_through_the_upsampling():
    # 1x8x24x10, k 3 stride 2 pads 1: 47 output rows; 4 banks of 512 B, 2 for the weights
    # (8 * 8 * 9 = 576 B), 2 banks = 1024 B of data = 12 input rows of 10 x 8 planar bytes
    # at most, of 24: three bands or more
    target = small_cbuf(banks=4, bank_bytes=512)
    results = run_deconv(8, 8, (24, 10), 3, target=target, strides=[2, 2], pads=[1, 1, 1, 1])
    (op,) = {r.op for r in results}
    tasks = get_tasks(op)
    assert len(tasks) > 2
    assert_exact(results)


def test_channel_groups_with_a_small_cbuf():
    # 32 x 64 x 3 x 3 weights (18 KiB) do not fit 3 banks of 4 KiB: output-channel groups
    target = small_cbuf(banks=4, bank_bytes=4096)
    results = run_deconv(32, 64, (5, 5), 3, target=target, strides=[2, 2], pads=[1, 1, 1, 1])
    tasks = get_tasks(results[0].op)
    assert len({(c0, c1) for _, _, c0, c1 in tasks}) > 1
    assert_exact(results)


def test_band_registers_on_a_small_cbuf():
    # 1x8x8x16 input, k 2 stride 2, no pads (output 16 x 32); 3 banks of 256 B, one for the
    # 256 B of weights, 512 B of data = 4 planar input rows of 16 x 8 B: output rows [y0, y1) read the
    # upsampled rows [y0 - 1, y1 - 1] (k - 1 - pad = 1 above), i.e. input rows
    # [ceil((y0 - 1) / 2), floor((y1 - 1) / 2)]; PAD_TOP is the upsampled rows from y0 - 1
    # to the band's first input row: 1 for an even y0, 0 for an odd one
    target = small_cbuf(banks=3, bank_bytes=256)
    model, feeds = deconv_model(8, 8, (8, 16), 2, target=target, strides=[2, 2])
    (op,) = ops_named(model, "npu.conv_transpose")
    tasks = get_tasks(op)
    assert len(tasks) >= 2
    program = generate(model, target)
    for index, (y0, y1, _, _) in enumerate(tasks):
        r = registers(program, index)
        first, last = y0 // 2, (y1 - 1) // 2
        assert r["CNA.DATA_SIZE0"]["DATAIN_HEIGHT"] == last - first + 1
        assert r["CNA.PAD_CON0"]["PAD_TOP"] == (1 if y0 % 2 == 0 else 0)
    for feed in feeds:
        assert_exact(simulate(model, feed, program, target))


# ---------------------------------------------------------------------- not generated


def test_a_left_padding_past_the_kernel_stays_on_the_cpu():
    # pads 2 > k - 1 = 1: the output would start inside the upsampled band
    model, _ = deconv_model(8, 8, (5, 5), 2, strides=[2, 2], pads=[0, 2, 0, 2])
    (op,) = ops_named(model, "npu.conv_transpose")
    program = generate(model)
    assert len(program.unsupported) == 1 and "PAD_LEFT" in program.unsupported[0]
    assert pl.get_str(op, pl.TARGET) == "cpu"
    assert pl.get_str(op, pl.REASON).startswith("code generation: ")
    assert program.weight_blob == b""  # nothing packed for an op placed on the CPU
