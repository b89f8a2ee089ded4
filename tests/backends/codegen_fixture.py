"""Reading a generated program back for golden tests: each task's register writes decoded by
name, the relocations of its address registers, its trailer, and the IR facts the tests
derive expectations from (zero points, scales, integer weights, memory offsets)."""

from __future__ import annotations

import numpy as np

from backends.codegen import Program
from backends.registers import decode
from compiler.ir_model import IRModel
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from tests.helpers.npu import const


def registers(program: Program, task: int) -> dict[str, dict[str, int]]:
    """`"BLOCK.REGISTER" -> fields` of one task's writes (the last write of each)."""
    record = program.tasks[task]
    out: dict[str, dict[str, int]] = {}
    for word in program.words[record.first_word : record.first_word + record.word_count]:
        block, register, fields = decode(word)
        out[f"{block}.{register}"] = fields
    return out


def relocated(program: Program, task: int) -> dict[str, tuple[int, int]]:
    """`"BLOCK.REGISTER" -> (buffer id, offset)` of the task's relocated words."""
    record = program.tasks[task]
    first, last = record.first_word * 8, (record.first_word + record.word_count) * 8
    out = {}
    for r in program.relocations:
        if first <= r.offset_in_commands < last:
            block, register, _ = decode(program.words[r.offset_in_commands // 8])
            out[f"{block}.{register}"] = (r.buffer_id, r.buffer_offset)
    return out


def words_of(program: Program, task: int) -> list[int]:
    record = program.tasks[task]
    return program.words[record.first_word : record.first_word + record.word_count]


def ops_named(model: IRModel, name: str) -> list[npu.NpuOp]:
    return [op for op in model.main.body.blocks[0].ops if op.name == name]


def offset(op) -> int:
    return pl.get_int(op, pl.OFFSET)


def weights_of(model: IRModel, op) -> tuple[np.ndarray, np.ndarray]:
    """The op's logical integer weights and bias, int64."""
    return const(model, op.weight).astype(np.int64), const(model, op.bias).astype(np.int64)


def records(blob: bytes, offset: int, count: int) -> np.ndarray:
    """`count` operand records (alu, mul, aux, shift) at `offset` of the weight blob."""
    return np.frombuffer(blob, "<i8", count * 4, offset).reshape(count, 4)


def field_value(value: int, bits: int = 32) -> int:
    """A negative number as the raw `bits`-bit field a register holds."""
    return value & ((1 << bits) - 1)
