"""`npu.requantize` as DPU-only tasks (`backends/codegen/requantize.py`): the conversions a
mixed-precision model gets at the edges of a widened layer (int16 -> int8 and int8 ->
int16; float16 <-> int8), bit-exact on the simulator against the reference executor,
multi-task tiles too; the words carry -zp_in in the BS ALU operand and the contract's
mantissa and shift (derived here from the scales by hand) in OUT_CVT, or the scale as a
float32 register operand; the float16 conversions by hand."""

from __future__ import annotations

import numpy as np
import pytest

from backends.codegen import generate
from backends.registers import decode
from backends.registers.values import signed32
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks
from tests.helpers.backend import conv
from tests.helpers.npu import mantissa_shift
from tests.runtime.sim_harness import assert_exact, compiled, simulate, small_cbuf

RNG = np.random.default_rng(21)


def f32(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def conv_conv(overrides: dict[str, str], hw: tuple[int, int] = (6, 7), target=None):
    """x -> conv1 -> a -> conv2 -> y, with per-tensor dtype overrides."""
    nodes = [conv("x", "w1", "a", "c1", b="b1"), conv("a", "w2", "y", "c2", b="b2")]
    inits = {"w1": f32(16, 4, 1, 1), "b1": f32(16), "w2": f32(16, 16, 1, 1), "b2": f32(16)}
    return compiled(nodes, [("x", [1, 4, *hw])], ["y"], inits, target=target,
                    overrides=overrides)  # fmt: skip


def requantizes(model) -> list[npu.RequantizeOp]:
    return [op for op in model.main.body.blocks[0].ops if isinstance(op, npu.RequantizeOp)]


@pytest.mark.parametrize(
    ("overrides", "direction"),
    [
        ({"a": "i16"}, ("i16", "i8")),
        ({"y": "i16"}, ("i8", "i16")),
        # a float16 layer of a hybrid model: a DPU-only task computing in float32
        ({"a": "f16"}, ("f16", "i8")),
        ({"y": "f16"}, ("i8", "f16")),
    ],
    ids=["int16_to_int8", "int8_to_int16", "float16_to_int8", "int8_to_float16"],
)
def test_requantize_is_bit_exact(overrides, direction):
    model, feeds = conv_conv(overrides)
    ops = requantizes(model)
    assert [(npu.quant_of(op.input).element, op.quant.element) for op in ops] == [direction]
    program = generate(model)
    assert not program.unsupported, program.unsupported
    results = []
    for feed in feeds:
        results += simulate(model, feed, program)
    assert_exact(results, expected_ops=3 * len(feeds))


def requantize_fields(overrides: dict[str, str]) -> tuple[npu.RequantizeOp, dict[str, dict]]:
    """The requantize op of `conv_conv(overrides)` and its one task's fields by register."""
    model, _ = conv_conv(overrides)
    (op,) = requantizes(model)
    program = generate(model)
    index = list(model.main.body.blocks[0].ops).index(op)
    (task,) = [t for t in program.tasks if t.op_index == index]
    fields = {}
    for word in program.words[task.first_word : task.first_word + task.word_count]:
        decoded = decode(word)
        fields[decoded.register] = decoded.fields
    return op, fields


def test_requantize_words_carry_the_zero_point_and_the_multiplier():
    op, fields = requantize_fields({"a": "i16"})
    in_q, out_q = npu.quant_of(op.input), op.quant
    assert signed32(fields["BS_ALU_CFG"]["BS_ALU_OPERAND"]) == -in_q.zero_point
    mantissa, shift = mantissa_shift(in_q.scale / out_q.scale)
    assert fields["OUT_CVT_SCALE"]["OUT_CVT_SCALE"] == mantissa
    assert fields["OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"] == shift
    assert fields["OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == out_q.zero_point
    assert fields["BS_CFG"]["BS_MUL_BYPASS"] == 1 and fields["EW_CFG"]["EW_BYPASS"] == 1


def test_requantize_over_many_tasks():
    target = small_cbuf(banks=2)
    model, feeds = conv_conv({"a": "i16"}, hw=(24, 20), target=target)
    (op,) = requantizes(model)
    assert len(get_tasks(op)) > 1
    program = generate(model, target)
    assert not program.unsupported, program.unsupported
    assert_exact(simulate(model, feeds[0], program, target))


# ---------------------------------------------------------------------- float16 sides


def test_float16_requantize_words_carry_the_scale_as_float32():
    op, fields = requantize_fields({"y": "f16"})  # int8 a -> float16 for conv2
    in_q = npu.quant_of(op.input)
    assert signed32(fields["BS_ALU_CFG"]["BS_ALU_OPERAND"]) == -in_q.zero_point
    operand = np.uint32(fields["EW_OP_VALUE_0"]["EW_OPERAND_0"]).view(np.float32)
    assert operand == np.float32(in_q.scale)
    assert fields["OUT_CVT_SCALE"]["FP32TOFP16_EN"] == 1


def test_float16_conversions_by_hand():
    # int8 -> float16: (q - zp) * scale in float32; float16 -> int8: x / scale rounded half
    # away from zero, + zp, saturated
    from dialects.npu import numerics as nx

    params = nx.QuantParams("i8", np.float64(0.5), np.int64(-3))
    q = np.array([-128, -3, 0, 127], np.int8)
    assert nx.float16_from_integer(q, params).tolist() == [-62.5, 0.0, 1.5, 65.0]
    x = np.array([-70.0, -0.25, 0.25, 1.0, 100.0], np.float16)
    # x / 0.5 = -140, -0.5, 0.5, 2, 200 -> round half away -140, -1, 1, 2, 200 -> + (-3)
    assert nx.integer_from_float16(x, params).tolist() == [-128, -4, -2, -1, 127]
