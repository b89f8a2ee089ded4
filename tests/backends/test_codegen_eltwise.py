"""Golden register tests of the DPU-only tasks: one small npu.eltwise of each arithmetic
(add, mul, max; a per-channel operand) and one npu.lut, their command words decoded and
compared with field values derived here by hand from the IR's facts (shapes, zero points,
scales, offsets, the table); the reading of each field is backends/codegen/eltwise.py's and
lut.py's module doc. Multipliers use the hand-written fixed point of tests/helpers/npu.py."""

from __future__ import annotations

import numpy as np
from onnx import helper

from backends.codegen import ARENA, WEIGHTS, generate
from backends.registers import decode
from tests.backends.codegen_fixture import (
    field_value,
    offset,
    ops_named,
    records,
    registers,
    relocated,
    words_of,
)
from tests.helpers.backend import conv
from tests.helpers.npu import const, mantissa_shift, rha
from tests.runtime.sim_harness import compiled

RNG = np.random.default_rng(21)
DPU_ENABLE = {"CNA_OP_EN": 0, "CORE_OP_EN": 0, "DPU_OP_EN": 1, "DPU_RDMA_OP_EN": 1}


def f32(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def subset(fields: dict[str, int], *names: str) -> dict[str, int]:
    return {name: fields[name] for name in names}


def two_convs(tail: list, channels: int = 20) -> tuple:
    """a, b: 1x1 convolutions of x [1, 4, 3, 5] (NC1HWC2, C2 = 16 for int8: C1 = 2)."""
    nodes = [conv("x", "w1", "a", "c1", b="b1"), conv("x", "w2", "b", "c2", b="b2"), *tail]
    inits = {"w1": f32(channels, 4, 1, 1), "b1": f32(channels),
             "w2": f32(channels, 4, 1, 1, scale=1.5), "b2": f32(channels)}  # fmt: skip
    return compiled(nodes, [("x", [1, 4, 3, 5])], ["y"], inits)


def enable_fields(program, task: int) -> dict[str, int]:
    last = decode(words_of(program, task)[-1])
    return subset(last.fields, *DPU_ENABLE)


def common_cube(r: dict, rel: dict, op, a, b) -> None:
    """The cube, MRDMA, WDMA and ERDMA words of one whole-tensor task of 20 x 3 x 5."""
    assert r["DPU.DATA_CUBE_WIDTH"]["WIDTH"] == 4 and r["DPU.DATA_CUBE_HEIGHT"]["HEIGHT"] == 2
    assert subset(r["DPU.DATA_CUBE_CHANNEL"], "CHANNEL", "ORIG_CHANNEL") == {
        "CHANNEL": 19, "ORIG_CHANNEL": 19}  # fmt: skip
    assert r["DPU_RDMA.RDMA_DATA_CUBE_CHANNEL"]["CHANNEL"] == 19
    assert r["DPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 15  # H x W atoms
    assert r["DPU.FEATURE_MODE_CFG"]["NONALIGN"] == 0  # NC1HWC2
    assert subset(r["DPU_RDMA.RDMA_FEATURE_MODE_CFG"], "MRDMA_DISABLE", "IN_PRECISION",
                  "CONV_MODE") == {"MRDMA_DISABLE": 0, "IN_PRECISION": 0, "CONV_MODE": 0}  # fmt: skip
    assert rel["DPU_RDMA.RDMA_SRC_BASE_ADDR"] == (ARENA, offset(a.owner))
    assert rel["DPU.DST_BASE_ADDR"] == (ARENA, offset(op))
    if b is not None:
        assert rel["DPU_RDMA.RDMA_EW_BASE_ADDR"] == (ARENA, offset(b.owner))
        assert subset(r["DPU_RDMA.RDMA_ERDMA_CFG"], "ERDMA_DISABLE", "ERDMA_DATA_MODE",
                      "ERDMA_DATA_SIZE", "ERDMA_NONALIGN") == {
            "ERDMA_DISABLE": 0, "ERDMA_DATA_MODE": 1, "ERDMA_DATA_SIZE": 1,
            "ERDMA_NONALIGN": 0}  # fmt: skip
        assert r["DPU_RDMA.RDMA_EW_SURF_STRIDE"]["EW_SURF_STRIDE"] == 15


def test_add():
    model, _ = two_convs([helper.make_node("Add", ["a", "b"], ["y"], "add")])
    (op,) = ops_named(model, "npu.eltwise")
    qa, qb, qy = op.lhs.owner.quant, op.rhs.owner.quant, op.quant
    program = generate(model)
    task = len(program.tasks) - 1  # after the two convolutions
    assert enable_fields(program, task) == DPU_ENABLE
    r, rel = registers(program, task), relocated(program, task)
    common_cube(r, rel, op, op.lhs, op.rhs)
    # shared shift by hand: the smaller multiplier's 15-bit shift, both mantissas at it
    m_a, m_b = qa.scale / qy.scale, qb.scale / qy.scale
    _, shift = mantissa_shift(min(m_a, m_b))
    mant_a, mant_b = int(rha(m_a * 2.0**shift)), int(rha(m_b * 2.0**shift))
    assert max(mant_a, mant_b) < 2**31
    assert subset(r["DPU.BS_CFG"], "BS_BYPASS", "BS_ALU_BYPASS", "BS_ALU_SRC", "BS_ALU_ALGO",
                  "BS_MUL_BYPASS", "BS_RELU_BYPASS") == {
        "BS_BYPASS": 0, "BS_ALU_BYPASS": 0, "BS_ALU_SRC": 0, "BS_ALU_ALGO": 2,
        "BS_MUL_BYPASS": 0, "BS_RELU_BYPASS": 1}  # fmt: skip
    assert r["DPU.BS_ALU_CFG"]["BS_ALU_OPERAND"] == field_value(-qa.zero_point)
    assert subset(r["DPU.BS_MUL_CFG"], "BS_MUL_SRC", "BS_TRUNCATE_SRC", "BS_MUL_SHIFT_VALUE") == {
        "BS_MUL_SRC": 1, "BS_TRUNCATE_SRC": 0, "BS_MUL_SHIFT_VALUE": 0}  # fmt: skip
    assert r["DPU.BN_CFG"]["BN_BYPASS"] == 1
    assert subset(r["DPU.EW_CFG"], "EW_BYPASS", "EW_OP_BYPASS", "EW_OP_SRC", "EW_OP_TYPE",
                  "EW_ALU_ALGO", "EW_LUT_BYPASS", "EW_OP_CVT_BYPASS", "EW_RELU_BYPASS",
                  "EW_DATA_MODE", "EDATA_SIZE") == {
        "EW_BYPASS": 0, "EW_OP_BYPASS": 0, "EW_OP_SRC": 1, "EW_OP_TYPE": 0, "EW_ALU_ALGO": 2,
        "EW_LUT_BYPASS": 1, "EW_OP_CVT_BYPASS": 0, "EW_RELU_BYPASS": 1, "EW_DATA_MODE": 1,
        "EDATA_SIZE": 1}  # fmt: skip
    assert r["DPU.EW_CVT_OFFSET_VALUE"]["EW_OP_CVT_OFFSET"] == -qb.zero_point
    assert all(v == 0 for v in r["DPU.EW_CVT_SCALE_VALUE"].values())  # per channel: table
    assert r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == qy.zero_point
    assert r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"] == 1
    assert r["DPU.OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"] == 0
    assert r["DPU_RDMA.RDMA_BRDMA_CFG"]["BRDMA_DATA_USE"] == 3
    buffer, at = rel["DPU_RDMA.RDMA_BS_BASE_ADDR"]
    assert buffer == WEIGHTS
    expected = [[-qa.zero_point, mant_a, mant_b, shift]] * 20
    assert records(program.weight_blob, at, 20).tolist() == expected


def test_mul_and_max():
    for kind in ("Mul", "Max"):
        model, _ = two_convs([helper.make_node(kind, ["a", "b"], ["y"], "ew")])
        (op,) = ops_named(model, "npu.eltwise")
        qa, qb, qy = op.lhs.owner.quant, op.rhs.owner.quant, op.quant
        program = generate(model)
        task = len(program.tasks) - 1
        r, rel = registers(program, task), relocated(program, task)
        common_cube(r, rel, op, op.lhs, op.rhs)
        assert r["DPU.BS_ALU_CFG"]["BS_ALU_OPERAND"] == field_value(-qa.zero_point)
        assert r["DPU.EW_CVT_OFFSET_VALUE"]["EW_OP_CVT_OFFSET"] == -qb.zero_point
        assert r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == qy.zero_point
        assert r["DPU_RDMA.RDMA_BRDMA_CFG"]["BRDMA_DATA_USE"] == 0  # no table
        cvt = r["DPU.EW_CVT_SCALE_VALUE"]
        if kind == "Mul":
            mant, shift = mantissa_shift(qa.scale * qb.scale / qy.scale)
            assert r["DPU.BS_CFG"]["BS_MUL_BYPASS"] == 1
            assert r["DPU.EW_CFG"]["EW_OP_TYPE"] == 1
            assert (cvt["EW_OP_CVT_SCALE"], cvt["EW_OP_CVT_SHIFT"], cvt["EW_TRUNCATE"]) == (1, 0, 0)
            assert r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"] == mant
            assert r["DPU.OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"] == shift
        else:
            (ma, sa), (mb, sb) = (mantissa_shift(qa.scale / qy.scale),
                                  mantissa_shift(qb.scale / qy.scale))  # fmt: skip
            assert r["DPU.BS_CFG"]["BS_MUL_BYPASS"] == 0
            assert subset(r["DPU.BS_MUL_CFG"], "BS_MUL_SRC", "BS_MUL_OPERAND",
                          "BS_MUL_SHIFT_VALUE") == {"BS_MUL_SRC": 0, "BS_MUL_OPERAND": ma,
                                                    "BS_MUL_SHIFT_VALUE": sa}  # fmt: skip
            assert subset(r["DPU.EW_CFG"], "EW_OP_TYPE", "EW_ALU_ALGO") == {
                "EW_OP_TYPE": 0, "EW_ALU_ALGO": 0}  # fmt: skip
            assert (cvt["EW_OP_CVT_SCALE"], cvt["EW_OP_CVT_SHIFT"], cvt["EW_TRUNCATE"]) == (
                mb, sb, 0)  # fmt: skip
            assert r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"] == 1


def test_per_channel_operand():
    # z [1, 20, 1, 1] is model input 1 (CPU quantize: its own internal NCHW tensor)
    nodes = [conv("x", "w1", "a", "c1", b="b1"), helper.make_node("Add", ["a", "z"], ["y"], "ew")]
    model, _ = compiled(nodes, [("x", [1, 4, 3, 5]), ("z", [1, 20, 1, 1])], ["y"],
                        {"w1": f32(20, 4, 1, 1), "b1": f32(20)})  # fmt: skip
    (op,) = ops_named(model, "npu.eltwise")
    program = generate(model)
    task = len(program.tasks) - 1
    r, rel = registers(program, task), relocated(program, task)
    assert r["DPU.EW_CFG"]["EW_DATA_MODE"] == 0
    assert r["DPU_RDMA.RDMA_ERDMA_CFG"]["ERDMA_DATA_MODE"] == 0
    assert r["DPU_RDMA.RDMA_ERDMA_CFG"]["ERDMA_NONALIGN"] == 1  # the quantize's NCHW
    assert rel["DPU_RDMA.RDMA_EW_BASE_ADDR"] == (ARENA, offset(op.rhs.owner))
    assert rel["DPU_RDMA.RDMA_SRC_BASE_ADDR"] == (ARENA, offset(op.lhs.owner))


def test_lut():
    model, _ = two_convs([helper.make_node("Add", ["a", "b"], ["s"], "add"),
                          helper.make_node("Sigmoid", ["s"], ["y"], "sig")])  # fmt: skip
    (op,) = ops_named(model, "npu.lut")
    table = const(model, op.table).astype(np.int64)
    assert table.shape == (256,)
    program = generate(model)
    task = len(program.tasks) - 1
    assert enable_fields(program, task) == DPU_ENABLE
    words = [decode(w) for w in words_of(program, task)]
    names = [f"{w.block}.{w.register}" for w in words]
    first = names.index("DPU.LUT_ACCESS_CFG")
    assert subset(words[first].fields, "LUT_ACCESS_TYPE", "LUT_TABLE_ID", "LUT_ADDR") == {
        "LUT_ACCESS_TYPE": 1, "LUT_TABLE_ID": 1, "LUT_ADDR": 0}  # fmt: skip
    data = [w.fields["LUT_ACCESS_DATA"] for w in words if w.register == "LUT_ACCESS_DATA"]
    # 257 entries in order right after the access word: table[0..255], then table[255] again
    assert names[first + 1 : first + 258] == ["DPU.LUT_ACCESS_DATA"] * 257
    assert data == [int(v) & 0xFFFF for v in [*table, table[-1]]]
    r, rel = registers(program, task), relocated(program, task)
    common_cube(r, rel, op, op.input, None)
    assert r["DPU.LUT_LO_START"]["LUT_LO_START"] == field_value(-128)
    assert r["DPU.LUT_LO_END"]["LUT_LO_END"] == 127
    assert r["DPU.LUT_INFO"]["LUT_LO_INDEX_SELECT"] == 0
    assert subset(r["DPU.LUT_CFG"], "LUT_HYBRID_PRIORITY", "LUT_OFLOW_PRIORITY",
                  "LUT_UFLOW_PRIORITY") == dict.fromkeys(
        ("LUT_HYBRID_PRIORITY", "LUT_OFLOW_PRIORITY", "LUT_UFLOW_PRIORITY"), 1)  # fmt: skip
    assert subset(r["DPU.EW_CFG"], "EW_BYPASS", "EW_OP_BYPASS", "EW_LUT_BYPASS",
                  "EW_RELU_BYPASS") == {"EW_BYPASS": 0, "EW_OP_BYPASS": 1, "EW_LUT_BYPASS": 0,
                                        "EW_RELU_BYPASS": 1}  # fmt: skip
    assert r["DPU.BS_CFG"]["BS_BYPASS"] == r["DPU.BN_CFG"]["BN_BYPASS"] == 1
    assert r["DPU_RDMA.RDMA_ERDMA_CFG"]["ERDMA_DISABLE"] == 1
    assert (r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"], r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"],
            r["DPU.OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"]) == (0, 1, 0)  # fmt: skip
