"""Walking the command stream: `run_tasks(words, memory, start)` fetches a task's words from
`start` up to its op-enable word, decodes each (`backends.registers.decode`) into the
register file, executes what the registers describe when the op-enable word comes, then
follows the trailer's PC.BASE_ADDRESS to the next task (an address in the command buffer)
until a task's trailer has none (0, or the bare NOP word of a single-task chain).

The trailer's PC.REGISTER_AMOUNTS must announce the next task's size as Mesa computes it
(`backends.registers.data_amount`). Simulated: convolution tasks (op-enable CNA | CORE | DPU |
DPU_RDMA) and DPU-only tasks (DPU | DPU_RDMA: `dpu_task.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backends.registers import CMD, CONV_BLOCKS, RegisterError, data_amount, decode, unpack
from backends.registers.values import PRECISION_NAME
from backends.targets import Target, get_target
from runtime.simulator.cube import FLOAT_STORAGE
from runtime.simulator.dpu import run_dpu
from runtime.simulator.dpu_float import run_converting_dpu_task, run_float_dpu, run_float_dpu_task
from runtime.simulator.dpu_task import DPU_BLOCKS, run_dpu_task
from runtime.simulator.mac import run_mac
from runtime.simulator.memory import WORD_BYTES, Memory, SimulatorError
from runtime.simulator.ppu import PPU_BLOCKS, run_ppu
from runtime.simulator.registers import RegisterFile

BLOCK_ENABLES = ("CNA", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA")


@dataclass(frozen=True)
class TaskTrace:
    """One executed task: its first word and word count, and the blocks it started."""

    first_word: int
    word_count: int
    blocks: tuple[str, ...]


def run_tasks(
    words: Sequence[int],
    memory: Memory,
    start: int = 0,
    target: Target | None = None,
    registers: RegisterFile | None = None,
    after_task: Callable[[TaskTrace], None] | None = None,
) -> list[TaskTrace]:
    """Run the chain of tasks whose first word is `words[start]`; `words` are the patched
    words the loader stored in `memory`'s command buffer. `after_task` sees each task
    when it is done (memory as it left it)."""
    chip = target or get_target()
    regs = registers or RegisterFile()
    traces: list[TaskTrace] = []
    position, announced = start, None
    while True:
        trace, next_address, amount = _run_task(words, position, regs, memory, chip)
        if announced is not None and data_amount(trace.word_count) != announced:
            raise SimulatorError(
                f"task at word {position}: {trace.word_count} words, but the previous "
                f"trailer announced PC_DATA_AMOUNT {announced}"
            )
        traces.append(trace)
        if after_task is not None:
            after_task(trace)
        if not next_address:
            return traces
        position, announced = _word_index(next_address, memory, len(words)), amount


def _run_task(words: Sequence[int], start: int, regs: RegisterFile, memory: Memory,
              target: Target) -> tuple[TaskTrace, int, int]:  # fmt: skip
    next_address, amount = 0, 0
    index = start
    while True:
        if index >= len(words):
            raise SimulatorError(f"the task at word {start} has no op-enable word")
        try:
            block, register, fields = _decoded(words[index])
        except RegisterError as exc:
            raise SimulatorError(f"word {index}: {exc}") from None
        _, value, _ = unpack(words[index])
        if block == CMD:
            if register == "OP_ENABLE":
                blocks = tuple(b for b in BLOCK_ENABLES if fields[f"{b}_OP_EN"])
                _execute(blocks, regs, memory, target, index)
                return TaskTrace(start, index + 1 - start, blocks), next_address, amount
        elif block == "PC":
            if register == "BASE_ADDRESS":
                next_address = fields["PC_SOURCE_ADDR"] << 4
            elif register == "REGISTER_AMOUNTS":
                amount = fields["PC_DATA_AMOUNT"]
            else:
                raise SimulatorError(f"word {index}: PC.{register} in a command stream")
        else:
            regs.write(block, register, value)
        index += 1


@functools.lru_cache(maxsize=1 << 16)
def _decoded(word: int) -> tuple[str, str, dict[str, int]]:
    """`decode`, once per distinct word: a program's words repeat from run to run and task
    to task, and decoding was a fifth of a run (the fields are only read)."""
    block, register, fields = decode(word)
    return block, register, fields


def _execute(blocks: tuple[str, ...], regs: RegisterFile, memory: Memory, target: Target,
             index: int) -> None:  # fmt: skip
    if set(blocks) == set(PPU_BLOCKS):
        run_ppu(regs, memory, target)
        return
    if set(blocks) == set(DPU_BLOCKS):
        _dpu_task_kind(regs)(regs, memory, target)
        return
    if set(blocks) != set(CONV_BLOCKS):
        raise SimulatorError(
            f"word {index}: op-enable of {', '.join(blocks) or 'no block'}: only convolution "
            f"tasks ({' | '.join(CONV_BLOCKS)}) are simulated"
        )
    shape, acc = run_mac(regs, memory, target)
    if shape.dtype in FLOAT_STORAGE:
        run_float_dpu(acc, shape, regs, memory, target)
    else:
        run_dpu(acc, shape, regs, memory, target)


def _dpu_task_kind(regs: RegisterFile) -> Callable[[RegisterFile, Memory, Target], None]:
    """A DPU-only task's simulation by its precisions: integer, float16, or a conversion."""
    precisions = (regs.field("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "IN_PRECISION"),
                  regs.field("DPU", "DATA_FORMAT", "OUT_PRECISION"))  # fmt: skip
    floating = [PRECISION_NAME.get(code) in FLOAT_STORAGE for code in precisions]
    if all(floating):
        return run_float_dpu_task
    return run_converting_dpu_task if any(floating) else run_dpu_task


def _word_index(address: int, memory: Memory, count: int) -> int:
    if memory.commands_buffer is None:
        raise SimulatorError("the memory has no command buffer (use runtime.simulator.load)")
    buffer_id, offset = memory.locate(address, WORD_BYTES)
    if buffer_id != memory.commands_buffer or offset % WORD_BYTES or offset // WORD_BYTES >= count:
        raise SimulatorError(f"next task address {address:#x} is not a word of the commands")
    return offset // WORD_BYTES
