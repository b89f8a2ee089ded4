"""Bit-exactness of the DPU-only tasks: npu.eltwise (add, sub, mul, max, min; int8 and int16;
same shapes, a per-channel operand on either side; relu / clip after) and npu.lut (int8
tables of several functions), through the backend passes and code generation, run on the
register-level simulator and compared integer for integer with the `npu` reference executor
(`runtime/kernels/npu_ops.py`), including tiles of many tasks (a small CBUF)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from xdsl.dialects.builtin import StringAttr

from backends.codegen import generate
from backends.registers import decode, encode_value
from backends.registers.values import signed32
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks
from runtime.simulator import RegisterFile, SimulatorError
from tests.helpers.backend import conv
from tests.runtime.sim_harness import assert_exact, compiled, reference, simulate, small_cbuf

RNG = np.random.default_rng(11)
KINDS = ["Add", "Sub", "Mul", "Max", "Min"]


def f32(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def two_convs(tail: list, channels: int = 20, hw: tuple[int, int] = (5, 6), target=None,
              **plan) -> tuple:  # fmt: skip
    """a = conv1(x), b = conv2(x) (both NC1HWC2 on the NPU, other scales and zero points),
    then `tail` reading "a" and "b" and writing "y"."""
    nodes = [conv("x", "w1", "a", "c1", b="b1"), conv("x", "w2", "b", "c2", b="b2"), *tail]
    inits = {"w1": f32(channels, 4, 1, 1), "b1": f32(channels),
             "w2": f32(channels, 4, 1, 1, scale=1.5), "b2": f32(channels)}  # fmt: skip
    return compiled(nodes, [("x", [1, 4, *hw])], ["y"], inits, target=target, **plan)


def ops_of(model, name: str) -> list:
    return [op for op in model.main.body.blocks[0].ops if op.name == name]


def run_all(model, feeds, target=None) -> list:
    program = generate(model, target)
    assert not program.unsupported, program.unsupported
    results = []
    for feed in feeds:
        results += simulate(model, feed, program, target)
    return results


# ---------------------------------------------------------------------- eltwise


@pytest.mark.parametrize("dtype", ["i8", "i16"])
@pytest.mark.parametrize("kind", KINDS)
def test_eltwise_same_shape(kind, dtype):
    model, feeds = two_convs([helper.make_node(kind, ["a", "b"], ["y"], "ew")], dtype=dtype)
    (op,) = ops_of(model, "npu.eltwise")
    assert op.kind.data == kind.lower() and op.quant.element == dtype
    results = run_all(model, feeds)
    assert_exact(results, expected_ops=3 * len(feeds))


@pytest.mark.parametrize("dtype", ["i8", "i16"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("broadcast_first", [False, True], ids=["rhs", "lhs"])
def test_eltwise_per_channel_operand(kind, broadcast_first, dtype):
    # z [1, C, 1, 1] is a model input (CPU quantize, planar); the ERDMA reads it per channel,
    # the MRDMA the full-shape operand, whichever side of the op it is on
    operands = ["z", "a"] if broadcast_first else ["a", "z"]
    nodes = [conv("x", "w1", "a", "c1", b="b1"),
             helper.make_node(kind, operands, ["y"], "ew")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 4, 5, 5]), ("z", [1, 24, 1, 1])], ["y"],
                            {"w1": f32(24, 4, 1, 1), "b1": f32(24)}, dtype=dtype)  # fmt: skip
    (op,) = ops_of(model, "npu.eltwise")
    assert npu.in_shape(op.lhs if broadcast_first else op.rhs) == (1, 24, 1, 1)
    assert op.quant.element == dtype
    assert_exact(run_all(model, feeds))


def reference_with_activation(op, model, results, kind: str, bounds: tuple[int, int]) -> None:
    """The op's documented activation (the reference executor ignores it): the reference's
    output clamped to `bounds`."""
    for r in results:
        if r.op is op:
            r.expected = np.clip(r.expected, *bounds).astype(r.expected.dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ["relu", "clip"])
def test_eltwise_activation(kind, activation):
    model, feeds = two_convs([helper.make_node(kind, ["a", "b"], ["y"], "ew")])
    (op,) = ops_of(model, "npu.eltwise")
    zp, scale = op.quant.zero_point, op.quant.scale
    hi = zp + 40  # a clip's upper bound inside the range: [0, 40 * scale] in reals
    if activation == "relu":
        op.activation = StringAttr("relu")
        bounds = (zp, 127)
    else:
        op.activation = StringAttr("clip")
        op.act_params = npu.float_array([0.0, 40 * scale])
        bounds = (zp, hi)
    program = generate(model)
    if kind == "Mul" and activation == "clip":
        assert len(program.unsupported) == 1 and "multiply" in program.unsupported[0]
        return
    assert not program.unsupported
    results = []
    for feed in feeds:
        results += simulate(model, feed, program)
    reference_with_activation(op, model, results, kind, bounds)
    got = [r for r in results if r.op is op]
    assert any((r.expected == bounds[0]).any() for r in got)  # the activation bites
    assert_exact(results)


def test_eltwise_with_a_small_cbuf():
    target = small_cbuf(banks=4, bank_bytes=256)
    model, feeds = two_convs([helper.make_node("Sub", ["a", "b"], ["y"], "ew")], channels=40,
                             hw=(12, 9), target=target)  # fmt: skip
    (op,) = ops_of(model, "npu.eltwise")
    tasks = get_tasks(op)
    assert len(tasks) > 4 and len({(c0, c1) for *_, c0, c1 in tasks}) > 1  # rows and channels
    assert_exact(run_all(model, feeds, target))


def test_clip_from_above_the_zero_point_is_listed_not_generated():
    model, _ = two_convs([helper.make_node("Add", ["a", "b"], ["y"], "ew")])
    (op,) = ops_of(model, "npu.eltwise")
    op.activation = StringAttr("clip")
    op.act_params = npu.float_array([10 * op.quant.scale, 40 * op.quant.scale])
    (line,) = generate(model).unsupported
    assert "npu.eltwise 'ew'" in line and "lower bound" in line


def test_eltwise_operands_from_the_cpu_are_listed_not_generated():
    # both operands are NCHW (CPU quantize) and the output NC1HWC2: no MRDMA reading yet
    nodes = [helper.make_node("Add", ["x", "z"], ["y"], "ew")]
    model, _ = compiled(nodes, [("x", [1, 4, 5, 5]), ("z", [1, 4, 5, 5])], ["y"])
    program = generate(model)
    assert len(program.unsupported) == 1 and "shape and layout" in program.unsupported[0]


# ---------------------------------------------------------------------- lut


@pytest.mark.parametrize("function", ["Sigmoid", "Tanh", "Exp", "Softplus"])
def test_lut(function):
    model, feeds = two_convs([helper.make_node("Add", ["a", "b"], ["s"], "ew"),
                              helper.make_node(function, ["s"], ["y"], "f")])  # fmt: skip
    (op,) = ops_of(model, "npu.lut")
    assert op.function.data == function
    assert_exact(run_all(model, feeds), expected_ops=4 * len(feeds))


def test_lut_reads_most_table_entries():
    # the add's output (the table's input) takes most of the 256 int8 values
    model, feeds = two_convs([helper.make_node("Max", ["a", "b"], ["s"], "ew"),
                              helper.make_node("Sigmoid", ["s"], ["y"], "f")], channels=32,
                             hw=(16, 16))  # fmt: skip
    (ew,) = ops_of(model, "npu.eltwise")
    results = run_all(model, feeds)
    table_inputs = np.concatenate([r.got.ravel() for r in results if r.op is ew])
    assert np.unique(table_inputs).size > 150
    assert_exact(results)


def test_lut_with_a_small_cbuf():
    target = small_cbuf(banks=3, bank_bytes=256)
    model, feeds = two_convs([helper.make_node("Add", ["a", "b"], ["s"], "ew"),
                              helper.make_node("Tanh", ["s"], ["y"], "f")], channels=40,
                             hw=(10, 7), target=target)  # fmt: skip
    (op,) = ops_of(model, "npu.lut")
    assert len(get_tasks(op)) > 3
    assert_exact(run_all(model, feeds, target))


def test_int16_lut_is_listed_not_generated():
    model, _ = two_convs([helper.make_node("Add", ["a", "b"], ["s"], "ew"),
                          helper.make_node("Sigmoid", ["s"], ["y"], "f")], dtype="i16")  # fmt: skip
    program = generate(model)
    assert len(program.unsupported) == 1 and "i16 table" in program.unsupported[0]


# ---------------------------------------------------------------------- the LUT port


def test_lut_access_data_writes_entries_and_increments_the_address():
    regs = RegisterFile()
    regs.write(
        "DPU",
        "LUT_ACCESS_CFG",
        encode_value("DPU.LUT_ACCESS_CFG", LUT_ACCESS_TYPE=1, LUT_TABLE_ID=1, LUT_ADDR=0),
    )
    for entry in (5, 0xFFFF, 0x8000):
        regs.write("DPU", "LUT_ACCESS_DATA", encode_value("DPU.LUT_ACCESS_DATA",
                                                          LUT_ACCESS_DATA=entry))  # fmt: skip
    assert regs.field("DPU", "LUT_ACCESS_CFG", "LUT_ADDR") == 3
    assert regs.lut_table(1, 3).tolist() == [5, -1, -32768]  # 16-bit signed entries
    with pytest.raises(SimulatorError, match="never written"):
        regs.lut_table(1, 4)
    regs.write("DPU", "LUT_ACCESS_CFG", encode_value("DPU.LUT_ACCESS_CFG", LUT_TABLE_ID=1))
    regs.write("DPU", "LUT_ACCESS_DATA", encode_value("DPU.LUT_ACCESS_DATA", LUT_ACCESS_DATA=7))
    assert regs.lut_table(1, 3).tolist() == [5, -1, -32768]  # LUT_ACCESS_TYPE 0: no write


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("first", [False, True], ids=["x_op_k", "k_op_x"])
def test_eltwise_constant_scalar(kind, first):
    # Mul(a, 0.7): lowering quantizes the constant (npu.quantize, placed on the CPU as a
    # compile-time value); its integer goes into EW_OP_VALUE_0
    operands = ["k", "a"] if first else ["a", "k"]
    nodes = [conv("x", "w1", "a", "c1", b="b1"), helper.make_node(kind, operands, ["y"], "ew")]
    model, feeds = compiled(nodes, [("x", [1, 4, 5, 5])], ["y"],
                            {"w1": f32(20, 4, 1, 1), "b1": f32(20),
                             "k": np.array(0.7, np.float32)})  # fmt: skip
    program = generate(model)
    assert program.unsupported == []
    (quantize,) = ops_of(model, "npu.quantize")[-1:]
    assert quantize.attributes["backend.reason"].data.startswith("quantizes a constant")
    (op,) = ops_of(model, "npu.eltwise")
    k = op.lhs if first else op.rhs
    written = [decode(word).fields["EW_OPERAND_0"] for word in program.words
               if word and decode(word).register == "EW_OP_VALUE_0"]  # fmt: skip
    assert [signed32(v) for v in written] == [int(reference(model, feeds[0])[k])]
    results = []
    for feed in feeds:
        results += simulate(model, feed, program)
    assert_exact(results)


def test_squeeze_excitation_block():
    # conv -> global average pool -> sigmoid table on [1, C, 1, 1] -> per-channel multiply:
    # the LUT task's cube is 1 x 1, the multiply reads it per channel (NC1HWC2, H = W = 1)
    nodes = [conv("x", "w1", "a", "c1", b="b1"),
             helper.make_node("GlobalAveragePool", ["a"], ["g"], "gap"),
             helper.make_node("Sigmoid", ["g"], ["s"], "sig"),
             helper.make_node("Mul", ["a", "s"], ["y"], "scale")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 4, 6, 5])], ["y"],
                            {"w1": f32(24, 4, 1, 1), "b1": f32(24)})  # fmt: skip
    program = generate(model)
    assert not [u for u in program.unsupported if "eltwise" in u or "lut" in u]
    results = []
    for feed in feeds:
        results += simulate(model, feed, program)
    assert {r.op.name for r in results} >= {"npu.lut", "npu.eltwise"}
    assert_exact(results)
