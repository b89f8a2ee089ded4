"""`plan-memory`: where each tensor lives at run time.

- Schedule: the block order, kept as it is. The ops already run in that order, and
  reordering to shorten lifetimes (Vela's cascading and striping, anchors §2.4) is left
  for later.
- Liveness: a tensor produced by an op (NPU or CPU) at position i of the block is live from
  i to the position of its last reader (i itself when nothing reads it). Both ends are
  inclusive, so an op's output never shares bytes with its inputs. A value the function
  returns is read by `func.return` and so stays live to the end.
- Sizes: `backends/layout.storage_bytes` of the result in its layout (`backend.layout`,
  `backend.c2`) and dtype (the result's element type). An op with several results gets one
  block holding them back to back, each at a 64-byte aligned offset within the block.
- Buffers: each model input is its own buffer "input" (recorded in the function's argument
  attributes, beside `backend.layout`). An op whose result the function returns (on a
  quantized model, the `npu.dequantize` that feeds `func.return`) is its own buffer
  "output". Each of these sits at offset 0. Every other tensor is "internal": it gets
  `backend.offset` in one arena shared by all of them, and the module attribute
  `backend.internal_bytes` holds the arena's size.
- Scratch: an op that needs working memory of its own (a global average pooling in two
  PPU passes, `backends/pool_split.py`) gets it in the arena, live at its position only,
  its offset in `backend.scratch_offset`.
- Arena: Vela's greedy allocation (`tensor_allocation.greedy_allocation`). Tensors are
  placed largest first (ties: earliest first), each at the lowest 64-byte aligned offset
  where it overlaps no tensor whose live range meets its own. Two tensors that are never
  live at once can share bytes.

Report: weights (the `onnx.Constant`s that NPU ops read), internal arena (and what it would
take without reuse: every tensor at its own aligned offset), model inputs and outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntAttr, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass

from backends.cbuf import align_up
from backends.pool_split import scratch_bytes
from backends.targets import Target
from dialects.module import main_func
from dialects.npu import ops as npu
from dialects.npu.placement import (
    BUFFER,
    BYTES,
    INTERNAL_BYTES,
    OFFSET,
    SCRATCH_OFFSET,
    set_int,
    set_str,
)
from dialects.onnx import ConstantOp
from passes.backend_values import (
    element_bits,
    runs_on_npu,
    shape_of,
    target_of,
    value_bytes,
)
from passes.report import note

ALIGNMENT = 64  # bytes: every tensor offset in the arena (and within a multi-result block)
INPUT, OUTPUT, INTERNAL = "input", "output", "internal"


@dataclass
class Tensor:
    """The result(s) of one op: bytes, live range [start, end] (block positions), offset."""

    op: Operation
    bytes: int
    start: int
    end: int
    offset: int = 0
    scratch: bool = False  # working memory of the op itself, not its result

    def live_with(self, other: Tensor) -> bool:
        return self.start <= other.end and other.start <= self.end

    def overlaps(self, other: Tensor) -> bool:
        """Whether the byte ranges share a byte (empty tensors share none)."""
        return (self.bytes > 0 and other.bytes > 0 and self.offset < other.offset + other.bytes
                and other.offset < self.offset + self.bytes)  # fmt: skip


@dataclass
class MemoryPlan:
    inputs: list[int]  # bytes per model input, in argument order
    outputs: list[Tensor]  # ops whose result is returned (offset 0 in their own buffer)
    internal: list[Tensor]  # in the arena
    arena: int  # bytes

    @property
    def without_reuse(self) -> int:
        return sum(align_up(t.bytes, ALIGNMENT) for t in self.internal)


@dataclass(frozen=True)
class PlanMemory(ModulePass):
    """Liveness, buffers and arena offsets of every tensor (backend.offset/bytes/buffer)."""

    name = "plan-memory"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = target_of(op)
        func = main_func(op)
        memory = plan(func, target)
        func.arg_attrs = _argument_buffers(func, memory.inputs)
        for tensor in memory.outputs:
            _record(tensor, OUTPUT)
        for tensor in memory.internal:
            if tensor.scratch:
                set_int(tensor.op, SCRATCH_OFFSET, tensor.offset)
            else:
                _record(tensor, INTERNAL)
        set_int(op, INTERNAL_BYTES, memory.arena)
        note(self.name, report(memory, weight_bytes(func.body.blocks[0])))


def plan(func: FuncOp, target: Target) -> MemoryPlan:
    block = func.body.blocks[0]
    tensors, outputs = live_ranges(block, target)
    internal = [t for t in tensors if t.scratch or t.op not in outputs]
    return MemoryPlan(
        inputs=[value_bytes(arg, target) for arg in block.args],
        outputs=[t for t in tensors if not t.scratch and t.op in outputs],
        internal=internal,
        arena=allocate(internal),
    )


def live_ranges(block: Block, target: Target) -> tuple[list[Tensor], set[Operation]]:
    """A `Tensor` per op with results (constants excepted), and the ops whose results the
    block returns."""
    position = {op: i for i, op in enumerate(block.ops)}
    returned: set[Operation] = set()
    tensors = []
    for op in block.ops:
        if isinstance(op, ReturnOp):
            returned |= {v.owner for v in op.operands if isinstance(v.owner, Operation)}
        if isinstance(op, ConstantOp | ReturnOp) or not op.results:
            continue
        readers = [block.find_ancestor_op_in_block(use.operation)
                   for r in op.results for use in r.uses]  # fmt: skip
        end = max([position[o] for o in readers if o is not None], default=position[op])
        tensors.append(Tensor(op, op_bytes(op, target), position[op], end))
        scratch = scratch_bytes(op, target) if isinstance(op, npu.PoolOp) else 0
        if scratch:  # live while the op runs: it never shares bytes with its operands
            tensors.append(Tensor(op, scratch, position[op], position[op], scratch=True))
    return tensors, returned


def op_bytes(op: Operation, target: Target) -> int:
    """Bytes of `op`'s results, back to back at aligned offsets (one result: its size)."""
    sizes = [value_bytes(r, target) for r in op.results]
    return sum(align_up(s, ALIGNMENT) for s in sizes[:-1]) + sizes[-1]


def allocate(tensors: list[Tensor], alignment: int = ALIGNMENT) -> int:
    """Set each tensor's offset (greedy by size, lowest aligned gap among the tensors live
    with it) and return the arena's size."""
    placed: list[Tensor] = []
    for tensor in sorted(tensors, key=lambda t: (-t.bytes, t.start, t.end)):
        busy = sorted((t.offset, t.offset + t.bytes) for t in placed
                      if t.live_with(tensor) and t.bytes > 0)  # fmt: skip
        offset = 0
        for lo, hi in busy:
            if offset + tensor.bytes <= lo:
                break
            offset = max(offset, align_up(hi, alignment))
        tensor.offset = offset
        placed.append(tensor)
    return max((t.offset + t.bytes for t in tensors), default=0)


def weight_bytes(block: Block) -> int:
    """Bytes of the constants NPU ops read (each counted once, int4 packed two a byte)."""
    total = 0
    for op in block.ops:
        if isinstance(op, ConstantOp) and any(runs_on_npu(u.operation) for u in op.output.uses):
            total += -(-math.prod(shape_of(op.output)) * element_bits(op.output) // 8)
    return total


def report(memory: MemoryPlan, weights: int) -> str:
    io = sum(memory.inputs) + sum(t.bytes for t in memory.outputs)
    return (
        f"weights {_kib(weights)} KiB, internal {_kib(memory.arena)} KiB "
        f"({_kib(memory.without_reuse)} KiB without reuse), inputs/outputs {_kib(io)} KiB "
        f"(schedule: block order, {len(memory.internal)} internal tensors)"
    )


def _kib(nbytes: int) -> str:
    return f"{nbytes / 1024:.1f}"


def _record(tensor: Tensor, buffer: str) -> None:
    set_str(tensor.op, BUFFER, buffer)
    set_int(tensor.op, OFFSET, tensor.offset if buffer == INTERNAL else 0)
    set_int(tensor.op, BYTES, tensor.bytes)


def _argument_buffers(func: FuncOp, sizes: list[int]) -> ArrayAttr[DictionaryAttr]:
    """The argument attribute dictionaries with buffer "input", offset 0 and the bytes
    added (the other entries, `onnx.name` and `backend.layout` among them, kept)."""
    old = list(func.arg_attrs.data) if func.arg_attrs is not None else []
    new = []
    for index, size in enumerate(sizes):
        entries = dict(old[index].data) if index < len(old) else {}
        entries.update({BUFFER: StringAttr(INPUT), OFFSET: IntAttr(0), BYTES: IntAttr(size)})
        new.append(DictionaryAttr(entries))
    return ArrayAttr(new)
