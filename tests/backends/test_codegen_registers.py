"""Golden register tests: small convolutions compiled, and their command words decoded and
compared with field values derived here by hand from the facts (shapes, strides, pads,
the CBUF's banks, zero points, scales; the reading of each field is in
backends/codegen/mac_task.py and dpu.py). Nothing below is computed by the code under
test: sizes are worked out in the comments, multipliers with the hand-written fixed point
of tests/helpers/npu.py."""

from __future__ import annotations

import numpy as np
from onnx import helper

from backends.codegen import ARENA, COMMANDS, WEIGHTS, generate
from backends.registers import decode
from dialects.npu.placement import get_tasks
from tests.backends.codegen_fixture import (
    field_value,
    offset,
    ops_named,
    records,
    registers,
    relocated,
    weights_of,
    words_of,
)
from tests.helpers.backend import conv
from tests.helpers.npu import mantissa_shift, quantize, rha
from tests.runtime.sim_harness import compiled, small_cbuf

RNG = np.random.default_rng(8)
CONV_ENABLE = {"CNA_OP_EN": 1, "CORE_OP_EN": 1, "DPU_OP_EN": 1, "DPU_RDMA_OP_EN": 1}


def f32(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.2).astype(np.float32)


def subset(fields: dict[str, int], *names: str) -> dict[str, int]:
    return {name: fields[name] for name in names}


# ---------------------------------------------------------------------- 3x3 stride 2


def test_3x3_stride_2_on_a_planar_input():
    # 1x8x10x10 -> 16 channels, pads 1, stride 2: output 5x5 ((10 + 2 - 3) // 2 + 1). The
    # input is the CPU quantize's NCHW result: planar (NONALIGN_DMA), strides in elements
    node = conv("x", "w", "y", "conv", b="b", pads=[1, 1, 1, 1], strides=[2, 2])
    model, _ = compiled(
        [node], [("x", [1, 8, 10, 10])], ["y"], {"w": f32(16, 8, 3, 3), "b": f32(16)}
    )
    (quant,), (op,) = ops_named(model, "npu.quantize"), ops_named(model, "npu.conv2d")
    program = generate(model)
    assert len(program.tasks) == 1 and program.jobs == [0]
    r = registers(program, 0)
    assert subset(r["CNA.CONV_CON1"], "CONV_MODE", "NONALIGN_DMA", "IN_PRECISION",
                  "PROC_PRECISION") == dict(CONV_MODE=0, NONALIGN_DMA=1, IN_PRECISION=0,
                                            PROC_PRECISION=0)  # fmt: skip
    assert r["CNA.CONV_CON3"]["CONV_X_STRIDE"] == r["CNA.CONV_CON3"]["CONV_Y_STRIDE"] == 2
    assert r["CNA.CONV_CON3"]["ATROUS_X_DILATION"] == r["CNA.CONV_CON3"]["ATROUS_Y_DILATION"] == 0
    assert subset(r["CNA.DATA_SIZE0"], "DATAIN_WIDTH", "DATAIN_HEIGHT") == {
        "DATAIN_WIDTH": 10, "DATAIN_HEIGHT": 10}  # fmt: skip
    # 8 channels: the CBUF's C2 (16) aligned, 7 = real - 1
    assert subset(r["CNA.DATA_SIZE1"], "DATAIN_CHANNEL", "DATAIN_CHANNEL_REAL") == {
        "DATAIN_CHANNEL": 16, "DATAIN_CHANNEL_REAL": 7}  # fmt: skip
    assert r["CNA.DATA_SIZE2"]["DATAOUT_WIDTH"] == 5
    assert r["CNA.DATA_SIZE3"]["DATAOUT_ATOMICS"] == 25
    # weights packed [1][1][3][3][32][32]: 3*3*32 = 288 bytes a kernel, 32 kernels stored
    assert r["CNA.WEIGHT_SIZE2"]["WEIGHT_KERNELS"] == 16
    assert (r["CNA.WEIGHT_SIZE2"]["WEIGHT_WIDTH"], r["CNA.WEIGHT_SIZE2"]["WEIGHT_HEIGHT"]) == (3, 3)
    assert r["CNA.WEIGHT_SIZE1"]["WEIGHT_BYTES_PER_KERNEL"] == 288
    assert r["CNA.WEIGHT_SIZE0"]["WEIGHT_BYTES"] == 32 * 288
    # CBUF: 16 x 8 x 9 = 1152 weight bytes -> 1 bank of 32 KiB, 11 banks for data; one
    # input row in 16-channel atoms = 10 * 16 = 160 B = 2 entries of 128 B
    assert subset(r["CNA.CBUF_CON0"], "DATA_BANK", "WEIGHT_BANK", "WEIGHT_REUSE") == {
        "DATA_BANK": 11, "WEIGHT_BANK": 1, "WEIGHT_REUSE": 0}  # fmt: skip
    assert r["CNA.CBUF_CON1"]["DATA_ENTRIES"] == 2
    assert (r["CNA.PAD_CON0"]["PAD_TOP"], r["CNA.PAD_CON0"]["PAD_LEFT"]) == (1, 1)
    assert r["CNA.PAD_CON1"]["PAD_VALUE"] == quant.quant.zero_point
    assert r["CNA.DMA_CON1"]["LINE_STRIDE"] == 10 and r["CNA.DMA_CON2"]["SURF_STRIDE"] == 100
    assert r["CORE.DATAOUT_SIZE_0"] == {"DATAOUT_HEIGHT": 4, "DATAOUT_WIDTH": 4}
    assert r["CORE.DATAOUT_SIZE_1"]["DATAOUT_CHANNEL"] == 15
    assert r["CORE.CLIP_TRUNCATE"]["CLIP_TRUNCATE"] == 0
    assert r["DPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 25  # 5 x 5 atoms
    assert subset(r["DPU.DATA_CUBE_CHANNEL"], "CHANNEL", "ORIG_CHANNEL") == {
        "CHANNEL": 15, "ORIG_CHANNEL": 15}  # fmt: skip
    assert (r["DPU.DATA_CUBE_WIDTH"]["WIDTH"], r["DPU.DATA_CUBE_HEIGHT"]["HEIGHT"]) == (4, 4)
    assert r["DPU.FEATURE_MODE_CFG"]["NONALIGN"] == 0  # the output is NC1HWC2
    # addresses: input and output in the arena at plan-memory's offsets; the weights at the
    # blob's start, the 16 operand records after them (9216 is 64-byte aligned)
    assert relocated(program, 0) == {
        "CNA.FEATURE_DATA_ADDR": (ARENA, offset(quant)),
        "CNA.DCOMP_ADDR0": (WEIGHTS, 0),
        "DPU.DST_BASE_ADDR": (ARENA, offset(op)),
        "DPU_RDMA.RDMA_BS_BASE_ADDR": (WEIGHTS, 9216),
    }
    assert len(program.weight_blob) == 9216 + 16 * 32
    # an operation's only task: the trailer's first word is the bare zero word
    tail = [decode(w) for w in words_of(program, 0)[-4:]]
    assert [(d.block, d.register) for d in tail] == [
        ("CMD", "NOP"), ("PC", "REGISTER_AMOUNTS"), ("CMD", "OP_40"), ("CMD", "OP_ENABLE")]  # fmt: skip
    assert tail[1].fields["PC_DATA_AMOUNT"] == 0
    assert {k: v for k, v in tail[3].fields.items() if v} == CONV_ENABLE


# ---------------------------------------------------------------------- 1x1 on NC1HWC2


def two_convs(second: dict, cout2: int, k2: int, hw: int = 6, cout1: int = 32):
    nodes = [conv("x", "w1", "a", "conv1", b="b1", pads=[1, 1, 1, 1]),
             conv("a", "w2", "y", "conv2", b="b2", **second)]  # fmt: skip
    cin2 = cout1 // second.get("group", 1)
    inits = {"w1": f32(cout1, 3, 3, 3), "b1": f32(cout1), "w2": f32(cout2, cin2, k2, k2),
             "b2": f32(cout2)}  # fmt: skip
    return compiled(nodes, [("x", [1, 3, hw, hw])], ["y"], inits)[0]


def test_1x1_on_an_nc1hwc2_input_chains_to_the_first_conv():
    model = two_convs({}, cout2=16, k2=1)
    conv1, conv2 = ops_named(model, "npu.conv2d")
    program = generate(model)
    assert program.jobs == [0] and [t.op_index for t in program.tasks] == [
        list(model.main.body.blocks[0].ops).index(o) for o in (conv1, conv2)]  # fmt: skip
    r = registers(program, 1)
    assert r["CNA.CONV_CON1"]["NONALIGN_DMA"] == 0
    # 32 channels = 2 atoms of 16: LINE_STRIDE 6 atoms, SURF_STRIDE 6 x 6 atoms
    assert r["CNA.DMA_CON1"]["LINE_STRIDE"] == 6 and r["CNA.DMA_CON2"]["SURF_STRIDE"] == 36
    assert subset(r["CNA.DATA_SIZE1"], "DATAIN_CHANNEL", "DATAIN_CHANNEL_REAL") == {
        "DATAIN_CHANNEL": 32, "DATAIN_CHANNEL_REAL": 31}  # fmt: skip
    # a row: 6 positions x 32 bytes = 192 B = 2 entries; kernel 1x1x32 = 32 B, 32 stored
    assert r["CNA.CBUF_CON1"]["DATA_ENTRIES"] == 2
    assert r["CNA.WEIGHT_SIZE1"]["WEIGHT_BYTES_PER_KERNEL"] == 32
    assert r["CNA.WEIGHT_SIZE0"]["WEIGHT_BYTES"] == 1024
    assert r["CNA.WEIGHT_SIZE2"]["WEIGHT_KERNELS"] == 16
    assert r["CNA.PAD_CON1"]["PAD_VALUE"] == conv1.quant.zero_point
    assert (r["CNA.PAD_CON0"]["PAD_TOP"], r["CNA.PAD_CON0"]["PAD_LEFT"]) == (0, 0)
    assert relocated(program, 1)["CNA.FEATURE_DATA_ADDR"] == (ARENA, offset(conv1))
    # conv1's trailer: PC.BASE_ADDRESS -> conv2's first word in the command blob, and
    # REGISTER_AMOUNTS = Mesa's align((words - 4) / 2, 2) of conv2's task
    first = program.tasks[0]
    base_word = first.first_word + first.word_count - 4
    chain = [r for r in program.relocations if r.offset_in_commands == base_word * 8]
    assert [(c.buffer_id, c.buffer_offset) for c in chain] == [
        (COMMANDS, program.tasks[1].first_word * 8)]  # fmt: skip
    assert program.tasks[1].first_word % 8 == 0  # 64-byte aligned
    count = program.tasks[1].word_count
    half = (count - 4) // 2
    amount = decode(program.words[base_word + 1])
    assert (amount.register, amount.fields["PC_DATA_AMOUNT"]) == (
        "REGISTER_AMOUNTS", half + half % 2)  # fmt: skip
    # the last task of the chain: PC.BASE_ADDRESS 0, not relocated
    last = decode(words_of(program, 1)[-4])
    assert (last.register, last.fields["PC_SOURCE_ADDR"]) == ("BASE_ADDRESS", 0)


def test_depthwise():
    model = two_convs({"group": 32, "pads": [1, 1, 1, 1]}, cout2=32, k2=3)
    program = generate(model)
    r = registers(program, 1)
    assert r["CNA.CONV_CON1"]["CONV_MODE"] == 3 and r["CORE.MISC_CFG"]["DW_EN"] == 1
    assert r["DPU.FEATURE_MODE_CFG"]["CONV_MODE"] == 3
    assert r["DPU_RDMA.RDMA_FEATURE_MODE_CFG"]["CONV_MODE"] == 3
    # one kernel of 32 channels packed in groups of 64: 3 * 3 * 64 = 576 bytes
    assert r["CNA.WEIGHT_SIZE2"]["WEIGHT_KERNELS"] == 1
    assert r["CNA.WEIGHT_SIZE1"]["WEIGHT_BYTES_PER_KERNEL"] == 576
    assert r["CNA.WEIGHT_SIZE0"]["WEIGHT_BYTES"] == 576
    assert r["CORE.DATAOUT_SIZE_1"]["DATAOUT_CHANNEL"] == 31
    # CBUF weights as the tile pass counts them: 32 x 1 x 9 = 288 B -> 1 bank
    assert (r["CNA.CBUF_CON0"]["WEIGHT_BANK"], r["CNA.CBUF_CON0"]["DATA_BANK"]) == (1, 11)


# ---------------------------------------------------------------------- channel counts


def test_one_input_channel():
    model, _ = compiled([conv("x", "w", "y", "conv", b="b", pads=[1, 1, 1, 1])],
                        [("x", [1, 1, 8, 8])], ["y"], {"w": f32(8, 1, 3, 3), "b": f32(8)})  # fmt: skip
    r = registers(generate(model), 0)
    assert r["CNA.CONV_CON1"]["NONALIGN_DMA"] == 1
    assert subset(r["CNA.DATA_SIZE1"], "DATAIN_CHANNEL", "DATAIN_CHANNEL_REAL") == {
        "DATAIN_CHANNEL": 16, "DATAIN_CHANNEL_REAL": 0}  # fmt: skip
    assert r["CNA.DMA_CON1"]["LINE_STRIDE"] == 8 and r["CNA.DMA_CON2"]["SURF_STRIDE"] == 64
    assert r["CNA.WEIGHT_SIZE1"]["WEIGHT_BYTES_PER_KERNEL"] == 3 * 3 * 32


def test_13_to_29_channels():
    model, _ = compiled([conv("x", "w", "y", "conv", b="b", pads=[1, 1, 1, 1])],
                        [("x", [1, 13, 7, 7])], ["y"], {"w": f32(29, 13, 3, 3), "b": f32(29)})  # fmt: skip
    (op,) = ops_named(model, "npu.conv2d")
    program = generate(model)
    r = registers(program, 0)
    assert subset(r["CNA.DATA_SIZE1"], "DATAIN_CHANNEL", "DATAIN_CHANNEL_REAL") == {
        "DATAIN_CHANNEL": 16, "DATAIN_CHANNEL_REAL": 12}  # fmt: skip
    # 29 output channels: 32 computed (2 atoms), 29 written
    assert r["CNA.WEIGHT_SIZE2"]["WEIGHT_KERNELS"] == 32
    assert r["CORE.DATAOUT_SIZE_1"]["DATAOUT_CHANNEL"] == 31
    assert subset(r["DPU.DATA_CUBE_CHANNEL"], "CHANNEL", "ORIG_CHANNEL") == {
        "CHANNEL": 31, "ORIG_CHANNEL": 28}  # fmt: skip
    assert r["CNA.WEIGHT_SIZE0"]["WEIGHT_BYTES"] == 32 * 3 * 3 * 32
    # the operand table: 32 records, the 3 padding channels all zero; the real ones hold
    # bias - zp_in * sum(w), M and S of s_in * s_w / s_out (hand fixed point), aux 0
    w, b = weights_of(model, op)
    table = records(program.weight_blob, 32 * 288, 32)
    assert not table[29:].any()
    zp_in = ops_named(model, "npu.quantize")[0].quant.zero_point
    np.testing.assert_array_equal(table[:29, 0], b - zp_in * w.reshape(29, -1).sum(axis=1))
    s_in, s_out = ops_named(model, "npu.quantize")[0].quant.scale, op.quant.scale
    s_w = op.weight_quant.scale_values
    expected = [mantissa_shift(s_in * s / s_out) for s in s_w]
    assert [tuple(row) for row in table[:29, [1, 3]]] == expected
    assert not table[:, 2].any()


# ---------------------------------------------------------------------- row bands


def test_row_bands_pad_the_first_band_only_and_reuse_the_weights():
    # 1x8x12x12 -> 8, 3x3 pads 1, CBUF 4 banks of 512 B: weights 8*8*9 = 576 B take 2 banks,
    # data 2 banks = 1024 B = 10 planar input rows of 12*8 = 96 B. Output rows [0, 9) read
    # input rows [0, 10); [9, 12) read [8, 12) and pad below
    target = small_cbuf(banks=4, bank_bytes=512)
    model, _ = compiled([conv("x", "w", "y", "conv", b="b", pads=[1, 1, 1, 1])],
                        [("x", [1, 8, 12, 12])], ["y"], {"w": f32(8, 8, 3, 3), "b": f32(8)},
                        target=target)  # fmt: skip
    (quant,), (op,) = ops_named(model, "npu.quantize"), ops_named(model, "npu.conv2d")
    assert get_tasks(op) == [(0, 9, 0, 8), (9, 12, 0, 8)]
    program = generate(model, target)
    first, second = registers(program, 0), registers(program, 1)
    assert [(t["CNA.DATA_SIZE0"]["DATAIN_HEIGHT"], t["CNA.PAD_CON0"]["PAD_TOP"],
             t["CNA.DATA_SIZE3"]["DATAOUT_ATOMICS"], t["CNA.CBUF_CON0"]["WEIGHT_REUSE"],
             t["CNA.CBUF_CON0"]["DATA_BANK"], t["CNA.CBUF_CON0"]["WEIGHT_BANK"])
            for t in (first, second)] == [(10, 1, 9 * 12, 0, 2, 2),
                                          (4, 0, 3 * 12, 1, 2, 2)]  # fmt: skip
    # the second band starts 8 input rows in (planar: 8 x 12 bytes) and 9 output rows in
    # (NC1HWC2: 9 x 12 atoms of 16 bytes); both tasks read the same weights and table
    one, two = relocated(program, 0), relocated(program, 1)
    assert two["CNA.FEATURE_DATA_ADDR"] == (ARENA, offset(quant) + 8 * 12)
    assert two["DPU.DST_BASE_ADDR"] == (ARENA, offset(op) + 9 * 12 * 16)
    assert one["CNA.DCOMP_ADDR0"] == two["CNA.DCOMP_ADDR0"]
    assert one["DPU_RDMA.RDMA_BS_BASE_ADDR"] == two["DPU_RDMA.RDMA_BS_BASE_ADDR"]
    assert program.jobs == [0]


# ---------------------------------------------------------------------- DPU paths


def conv_with(act: list, per_channel: bool = True, cout: int = 8):
    nodes = [conv("x", "w", "c" if act else "y", "conv", b="b", pads=[1, 1, 1, 1]), *act]
    inits = {"w": f32(cout, 4, 3, 3), "b": f32(cout), "lo": np.array(0.05, np.float32),
             "hi": np.array(0.4, np.float32)}  # fmt: skip
    model, _ = compiled(nodes, [("x", [1, 4, 6, 6])], ["y"], inits, per_channel=per_channel)
    (op,) = ops_named(model, "npu.conv2d")
    program = generate(model)
    return model, op, program, registers(program, 0)


def test_per_channel_requantization_in_the_bs_stage():
    _, op, _, r = conv_with([])
    assert subset(r["DPU.BS_CFG"], "BS_BYPASS", "BS_ALU_BYPASS", "BS_ALU_SRC", "BS_ALU_ALGO",
                  "BS_MUL_BYPASS", "BS_MUL_PRELU", "BS_RELU_BYPASS") == dict(
        BS_BYPASS=0, BS_ALU_BYPASS=0, BS_ALU_SRC=1, BS_ALU_ALGO=2, BS_MUL_BYPASS=0,
        BS_MUL_PRELU=0, BS_RELU_BYPASS=1)  # fmt: skip
    assert subset(r["DPU.BS_MUL_CFG"], "BS_MUL_SRC", "BS_TRUNCATE_SRC") == {
        "BS_MUL_SRC": 1, "BS_TRUNCATE_SRC": 1}  # fmt: skip
    assert r["DPU_RDMA.RDMA_BRDMA_CFG"]["BRDMA_DATA_USE"] == 3
    assert r["DPU.BN_CFG"]["BN_BYPASS"] == 1 and r["DPU.EW_CFG"]["EW_BYPASS"] == 1
    assert r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"] == 1
    assert r["DPU.OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"] == 0
    assert r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == op.quant.zero_point
    assert r["DPU_RDMA.RDMA_ERDMA_CFG"]["ERDMA_DISABLE"] == 1


def test_per_tensor_requantization_in_the_output_converter():
    model, op, program, r = conv_with([helper.make_node("Relu", ["c"], ["y"], "relu")],
                                      per_channel=False)  # fmt: skip
    assert r["DPU.BS_CFG"]["BS_MUL_BYPASS"] == 1 and r["DPU.BS_CFG"]["BS_RELU_BYPASS"] == 0
    assert r["DPU_RDMA.RDMA_BRDMA_CFG"]["BRDMA_DATA_USE"] == 1  # one int32 bias a channel
    s_in = ops_named(model, "npu.quantize")[0].quant.scale
    mant, shift = mantissa_shift(s_in * op.weight_quant.scale / op.quant.scale)
    assert r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"] == mant
    assert r["DPU.OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"] == shift
    assert r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == op.quant.zero_point
    w, b = weights_of(model, op)
    zp_in = ops_named(model, "npu.quantize")[0].quant.zero_point
    table_at = relocated(program, 0)["DPU_RDMA.RDMA_BS_BASE_ADDR"][1]
    bias = np.frombuffer(program.weight_blob, "<i4", 8, table_at)
    np.testing.assert_array_equal(bias, b - zp_in * w.reshape(8, -1).sum(axis=1))


def test_clip_in_the_bn_stage():
    _, op, _, r = conv_with([helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip")])
    zp, scale = op.quant.zero_point, op.quant.scale
    # calibration saw the clipped range, widened to hold 0: [0, 0.4]; the lower bound bites
    lo, hi = (int(quantize(v, scale, zp)) for v in (0.05, 0.4))
    assert lo > zp
    assert subset(r["DPU.BN_CFG"], "BN_BYPASS", "BN_ALU_BYPASS", "BN_ALU_ALGO", "BN_MUL_BYPASS",
                  "BN_RELU_BYPASS", "BN_RELUX_EN") == dict(
        BN_BYPASS=0, BN_ALU_BYPASS=0, BN_ALU_ALGO=2, BN_MUL_BYPASS=1, BN_RELU_BYPASS=0,
        BN_RELUX_EN=1)  # fmt: skip
    # v - (lo - zp) >= 0, <= hi - lo; then the converter adds lo back
    assert r["DPU.BN_ALU_CFG"]["BN_ALU_OPERAND"] == field_value(-(lo - zp))
    assert r["DPU.BN_RELUX_CMP_VALUE"]["BN_RELUX_CMP_DAT"] == hi - lo
    assert r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == lo


def test_leaky_relu_multiplies_negatives_by_the_aux_operand():
    model, op, program, r = conv_with([helper.make_node("LeakyRelu", ["c"], ["y"], "leaky",
                                                        alpha=0.125)])  # fmt: skip
    assert r["DPU.BS_CFG"]["BS_MUL_PRELU"] == 1
    s_in = ops_named(model, "npu.quantize")[0].quant.scale
    table = records(program.weight_blob, relocated(program, 0)["DPU_RDMA.RDMA_BS_BASE_ADDR"][1], 8)
    for oc, s_w in enumerate(op.weight_quant.scale_values):
        m = s_in * s_w / op.quant.scale
        mant, shift = mantissa_shift(m)
        assert (table[oc, 1], table[oc, 3]) == (mant, shift)
        assert table[oc, 2] == rha(m * 0.125 * 2.0**shift)


def test_residual_add_in_the_ew_stage():
    nodes = [conv("x", "w1", "a", "conv1", b="b1", pads=[1, 1, 1, 1]),
             conv("a", "w2", "c", "conv2", b="b2", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "a"], ["s"], "add"),
             helper.make_node("Relu", ["s"], ["y"], "relu")]  # fmt: skip
    inits = {"w1": f32(16, 4, 3, 3), "b1": f32(16), "w2": f32(16, 16, 3, 3), "b2": f32(16)}
    model, _ = compiled(nodes, [("x", [1, 4, 5, 5])], ["y"], inits,
                        passes="fuse-activation,fuse-add")  # fmt: skip
    conv1, conv2 = ops_named(model, "npu.conv2d")
    assert conv2.residual is not None and conv2.post_activation.data == "relu"
    program = generate(model)
    r = registers(program, 1)
    assert subset(r["DPU.EW_CFG"], "EW_BYPASS", "EW_OP_BYPASS", "EW_OP_SRC", "EW_ALU_ALGO",
                  "EW_OP_CVT_BYPASS", "EW_RELU_BYPASS", "EW_RELUX_EN", "EW_DATA_MODE",
                  "EDATA_SIZE", "EW_LUT_BYPASS") == dict(
        EW_BYPASS=0, EW_OP_BYPASS=0, EW_OP_SRC=1, EW_ALU_ALGO=2, EW_OP_CVT_BYPASS=0,
        EW_RELU_BYPASS=0, EW_RELUX_EN=0, EW_DATA_MODE=1, EDATA_SIZE=1, EW_LUT_BYPASS=1)  # fmt: skip
    assert r["DPU.EW_CVT_OFFSET_VALUE"]["EW_OP_CVT_OFFSET"] == -conv1.quant.zero_point
    assert r["DPU.EW_CVT_SCALE_VALUE"] == {"EW_TRUNCATE": 0, "EW_OP_CVT_SHIFT": 0,
                                           "EW_OP_CVT_SCALE": 0}  # fmt: skip
    assert subset(r["DPU_RDMA.RDMA_ERDMA_CFG"], "ERDMA_DISABLE", "ERDMA_DATA_MODE",
                  "ERDMA_DATA_SIZE", "ERDMA_NONALIGN") == dict(
        ERDMA_DISABLE=0, ERDMA_DATA_MODE=1, ERDMA_DATA_SIZE=1, ERDMA_NONALIGN=0)  # fmt: skip
    assert relocated(program, 1)["DPU_RDMA.RDMA_EW_BASE_ADDR"] == (ARENA, offset(conv1))
    assert r["DPU_RDMA.RDMA_EW_SURF_STRIDE"]["EW_SURF_STRIDE"] == 25
    # the BS stage multiplies without shifting; the EW stage shifts after the add
    assert r["DPU.BS_MUL_CFG"]["BS_TRUNCATE_SRC"] == 0
    assert r["DPU.BS_MUL_CFG"]["BS_MUL_SHIFT_VALUE"] == 0
    # records: M, Mz share the shift of the smaller multiplier (hand fixed point)
    table = records(program.weight_blob, relocated(program, 1)["DPU_RDMA.RDMA_BS_BASE_ADDR"][1], 16)
    s_in, s_out = conv1.quant.scale, conv2.quant.scale
    m_z = s_in / s_out  # the residual is conv1's output, at conv1's scale
    for oc, s_w in enumerate(conv2.weight_quant.scale_values):
        m = s_in * s_w / s_out
        _, shift = mantissa_shift(min(m, m_z))
        assert (table[oc, 1], table[oc, 2], table[oc, 3]) == (
            rha(m * 2.0**shift), rha(m_z * 2.0**shift), shift)  # fmt: skip


# ---------------------------------------------------------------------- fully connected


def test_fully_connected_reads_and_writes_rows():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)]
    model, _ = compiled(nodes, [("x", [2, 40])], ["y"], {"w": f32(10, 40), "b": f32(10)})
    (quant,), (fc,) = ops_named(model, "npu.quantize"), ops_named(model, "npu.fully_connected")
    program = generate(model)
    assert len(program.tasks) == 2 and program.jobs == [0]  # one task a row, chained
    for row in range(2):
        r = registers(program, row)
        assert (
            r["CNA.CONV_CON1"]["NONALIGN_DMA"] == 1 and r["DPU.FEATURE_MODE_CFG"]["NONALIGN"] == 1
        )
        assert (r["CNA.DATA_SIZE0"]["DATAIN_WIDTH"], r["CNA.DATA_SIZE0"]["DATAIN_HEIGHT"]) == (1, 1)
        # K = 40: 48 channels (3 atoms), 39 = real - 1; packed input channels 64 = 2 x 32
        assert subset(r["CNA.DATA_SIZE1"], "DATAIN_CHANNEL", "DATAIN_CHANNEL_REAL") == {
            "DATAIN_CHANNEL": 48, "DATAIN_CHANNEL_REAL": 39}  # fmt: skip
        assert r["CNA.WEIGHT_SIZE2"]["WEIGHT_KERNELS"] == 10
        assert r["CNA.WEIGHT_SIZE1"]["WEIGHT_BYTES_PER_KERNEL"] == 64
        assert r["CNA.WEIGHT_SIZE0"]["WEIGHT_BYTES"] == 32 * 64
        assert r["CNA.CBUF_CON0"]["WEIGHT_REUSE"] == row
        assert (
            r["CNA.DMA_CON2"]["SURF_STRIDE"] == 1
            and r["DPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 1
        )
        assert subset(r["DPU.DATA_CUBE_CHANNEL"], "CHANNEL", "ORIG_CHANNEL") == {
            "CHANNEL": 9, "ORIG_CHANNEL": 9}  # fmt: skip
        where = relocated(program, row)
        assert where["CNA.FEATURE_DATA_ADDR"] == (ARENA, offset(quant) + 40 * row)
        assert where["DPU.DST_BASE_ADDR"] == (ARENA, offset(fc) + 10 * row)
