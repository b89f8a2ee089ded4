"""`generate(model) -> Program`: the register command stream of every NPU op code generation
covers, in block order, after the backend passes (partition-cpu, assign-layout,
align-channels, tile, plan-memory).

One module per op kind (`conv.py`, `fully_connected.py`) turns an op into tasks. Tasks of
consecutive generated ops of one NPU segment form one PC chain (one job): each task's
trailer points to the next (PC.BASE_ADDRESS, relocated to the command blob). A CPU op ends
the chain: the runtime runs it between two jobs.

An NPU op code generation does not cover (an op kind, dtype or operand form without a
generator yet: `NotGenerated`) is placed on the CPU here, with its reason
(`backend.reason` "code generation: ...", listed in `Program.unsupported`), and segments
are renumbered: it keeps the buffers plan-memory gave it, and the runtime runs it with the
`npu` reference executor's integer kernel, bit-exact like the NPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from xdsl.dialects.builtin import DictionaryAttr, IntAttr, ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Operation

from backends.codegen.buffers import ARENA, COMMANDS, WEIGHTS, input_buffer, output_buffer
from backends.codegen.conv import conv_tasks
from backends.codegen.conv_transpose import conv_transpose_tasks
from backends.codegen.datamove import (
    concat_tasks,
    pad_tasks,
    reshape_tasks,
    slice_tasks,
    transpose_tasks,
)
from backends.codegen.eltwise import eltwise_tasks
from backends.codegen.emit import WORD_BYTES, NotGenerated, Program, ProgramBuilder, TaskWords
from backends.codegen.fully_connected import fully_connected_tasks
from backends.codegen.lut import lut_tasks
from backends.codegen.mac_task import OpContext
from backends.codegen.pool import pool_tasks
from backends.codegen.requantize import requantize_tasks
from backends.codegen.resize import resize_tasks
from backends.targets import Target, get_target
from dialects.module import main_func
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.onnx import ConstantOp
from dialects.weights import WeightTable


class ModelLike(Protocol):
    """What code generation reads of a model (`compiler.ir_model.IRModel` is one)."""

    module: ModuleOp
    weights: WeightTable


Generator = Callable[..., Iterator[TaskWords]]
GENERATED_DTYPES = ("i8", "i16")
# float16 ops with code generation (the others run on the CPU)
FLOAT16_GENERATED = (
    npu.Conv2dOp,
    npu.ConvTransposeOp,
    npu.FullyConnectedOp,
    npu.EltwiseOp,
    npu.PoolOp,
    npu.ConcatOp,
    npu.SliceOp,
    npu.PadOp,
    npu.ReshapeOp,
    npu.TransposeOp,
    npu.RequantizeOp,
    npu.ResizeOp,
)
GENERATORS: dict[type[npu.NpuOp], Generator] = {
    npu.Conv2dOp: conv_tasks,
    npu.ConvTransposeOp: conv_transpose_tasks,
    npu.FullyConnectedOp: fully_connected_tasks,
    npu.EltwiseOp: eltwise_tasks,
    npu.LutOp: lut_tasks,
    npu.PoolOp: pool_tasks,
    npu.ConcatOp: concat_tasks,
    npu.SliceOp: slice_tasks,
    npu.PadOp: pad_tasks,
    npu.ReshapeOp: reshape_tasks,
    npu.TransposeOp: transpose_tasks,
    npu.RequantizeOp: requantize_tasks,
    npu.ResizeOp: resize_tasks,
}


def generate(model: ModelLike, target: Target | None = None) -> Program:
    """The program of `model`; `target` overrides the module's `backend.chip` (a variant
    built with `dataclasses.replace`, whose CBUF the tile pass must have used too)."""
    func = main_func(model.module)
    chip = target or get_target(pl.get_str(model.module, pl.CHIP))
    builder = ProgramBuilder()
    ctx = OpContext(func, model.weights, chip, builder.blob)
    unsupported: list[str] = []
    chain_segment: int | None = None
    for index, op in enumerate(func.body.blocks[0].ops):
        if isinstance(op, ConstantOp | ReturnOp):
            continue
        if pl.get_str(op, pl.TARGET) != "npu" or not isinstance(op, npu.NpuOp):
            chain_segment = None
            continue
        name = op.node_name or (op.output_names or [""])[0]
        try:
            tasks = list(_tasks(op, ctx))
        except NotGenerated as exc:
            unsupported.append(_place_on_cpu(op, str(exc)))
            chain_segment = None
            continue
        segment = pl.get_int(op, pl.SEGMENT)
        for task in tasks:
            builder.add(index, name, task, chained=chain_segment is not None
                        and chain_segment == segment)  # fmt: skip
            chain_segment = segment
    if unsupported:
        pl.number_segments(op for op in func.body.blocks[0].ops
                           if not isinstance(op, ConstantOp | ReturnOp))  # fmt: skip
    program = builder.build()
    program.unsupported = unsupported
    program.buffer_bytes = _buffer_bytes(model.module, func, program)
    return program


def _tasks(op: npu.NpuOp, ctx: OpContext) -> Iterator[TaskWords]:
    make = GENERATORS.get(type(op))
    if make is None:
        raise NotGenerated(f"{op.describe()}: no code generation for {op.name} yet")
    floating = op.quant.element == "f16" and isinstance(op, FLOAT16_GENERATED)
    if op.quant.element not in GENERATED_DTYPES and not floating:
        raise NotGenerated(f"{op.describe()}: no code generation for {op.quant.element} "
                           f"{op.name} yet")  # fmt: skip
    return make(op, ctx)


def _place_on_cpu(op: npu.NpuOp, message: str) -> str:
    """Moves `op` to the CPU (backend.target, backend.reason): it keeps its buffers, so the
    memory plan stays valid, and the runtime runs it with the reference executor's integer
    kernel between two jobs. Returns the report line."""
    prefix = f"{op.describe()}: "
    reason = message.removeprefix(prefix)
    pl.set_str(op, pl.TARGET, "cpu")
    pl.set_str(op, pl.REASON, f"code generation: {reason}")
    return f"{op.describe()}: {reason}"


def _buffer_bytes(module: ModuleOp, func: FuncOp, program: Program) -> dict[int, int]:
    sizes = {
        WEIGHTS: len(program.weight_blob),
        ARENA: pl.get_int(module, pl.INTERNAL_BYTES, 0) or 0,
        COMMANDS: len(program.words) * WORD_BYTES,
    }
    block = func.body.blocks[0]
    arg_attrs = func.arg_attrs.data if func.arg_attrs is not None else ()
    for index, attrs in enumerate(arg_attrs):
        size = attrs.data.get(pl.BYTES) if isinstance(attrs, DictionaryAttr) else None
        if isinstance(size, IntAttr):
            sizes[input_buffer(index)] = size.data
    ret = block.last_op
    if isinstance(ret, ReturnOp):
        for index, value in enumerate(ret.operands):
            owner = value.owner
            if isinstance(owner, Operation):
                sizes[output_buffer(len(block.args), index)] = pl.get_int(owner, pl.BYTES, 0) or 0
    return sizes
