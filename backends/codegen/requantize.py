"""`npu.requantize` -> DPU-only tasks (`dpu_task.py`): one integer quantization to another,
`y = sat(round_shift((x - zp_in) * M, S) + zp_out)` with the contract's (M, S) for
`s_in / s_out` (`runtime/kernels/quantized.py` `rescale`): the conversions at the edges of
a widened layer of a mixed-precision model (int8 <-> int16), and between two int8
parameter sets.

Stages (the reading of `dpu.py`): the MRDMA reads x in its precision (IN_PRECISION), BS ALU
adds the register operand -zp_in (BS_ALU_SRC 0, BS_ALU_CFG), BS MUL, BN and EW are
bypassed, OUT_CVT multiplies by M (OUT_CVT_SCALE, a 15-bit mantissa), rounds by S
(OUT_CVT_SHIFT), adds zp_out and saturates to the output precision (OUT_PRECISION). The
input and the output share the cube and its surface stride in atoms; each is addressed
with its own precision's C2 (int8 16, int16 8 channels per atom on RK3588).

float16 <-> integer (a float16 layer of a hybrid model beside int8 ones) is a DPU-only task
computing in float32 [ours]: `_float_side_tasks`.

Not generated: float32 sides, a multiplier of 2**15 or more, a task that starts at a
channel that is not on both sides' C2 boundary.
"""

from __future__ import annotations

from collections.abc import Iterator

from backends.codegen.dpu_task import (
    Band,
    check_4d,
    emit_bypassed_bn,
    emit_bypassed_bs_bn,
    emit_dpu_task,
    emit_output_converter,
)
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import Placed, placed
from backends.layout import NC1HWC2, NCHW
from backends.registers.dpu_values import EW_OP_MUL
from backends.registers.values import ALU_ADD, float32_bits, raw32
from dialects.errors import CompilerError
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks


def requantize_tasks(op: npu.RequantizeOp, ctx: OpContext) -> Iterator[TaskWords]:
    where = op.describe()
    in_q, out_q = npu.quant_of(op.input), op.quant
    assert in_q is not None
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    check_4d(where, x, y)
    for t in (x, y):
        if t.layout not in (NC1HWC2, NCHW):
            raise NotGenerated(f"{where}: layout {t.layout} is not read yet")
    if in_q.is_float or out_q.is_float:
        yield from _float_side_tasks(op, x, y, ctx)
        return
    try:
        mantissa, shift = nx.encode_multiplier(float(in_q.scale / out_q.scale))
    except ValueError as exc:
        raise NotGenerated(f"{where}: {exc}") from None
    tasks = get_tasks(op)
    if not tasks:
        raise CompilerError(f"{where}: no backend.tasks: run tile first")
    for y0, y1, c0, c1 in tasks:
        w = TaskWords()
        emit_dpu_task(w, x, y, Band(y0, y1, c0, c1), ctx.target, where)
        w.write("DPU", "BS_CFG", BS_ALU_ALGO=ALU_ADD, BS_RELU_BYPASS=1, BS_MUL_BYPASS=1)
        w.write("DPU", "BS_ALU_CFG", BS_ALU_OPERAND=raw32(-int(in_q.zero_point)))
        w.write("DPU", "BS_MUL_CFG")
        w.write("DPU", "BS_RELUX_CMP_VALUE")
        emit_bypassed_bn(w)
        w.write("DPU", "EW_CFG", EW_BYPASS=1, EW_RELU_BYPASS=1, EW_OP_CVT_BYPASS=1,
                EW_OP_BYPASS=1, EW_LUT_BYPASS=1)  # fmt: skip
        w.write("DPU", "EW_CVT_OFFSET_VALUE")
        w.write("DPU", "EW_CVT_SCALE_VALUE")
        w.write("DPU", "EW_RELUX_CMP_VALUE")
        emit_output_converter(w, int(out_q.zero_point), mantissa, shift)
        w.write("DPU_RDMA", "RDMA_BRDMA_CFG")
        w.write("DPU_RDMA", "RDMA_BS_BASE_ADDR")
        w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DISABLE=1)
        w.write("DPU_RDMA", "RDMA_EW_BASE_ADDR")
        w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE")
        yield w


def _float_side_tasks(op: npu.RequantizeOp, x: Placed, y: Placed,
                      ctx: OpContext) -> Iterator[TaskWords]:  # fmt: skip
    """integer <-> float16 (`numerics.float16_from_integer` / `integer_from_float16`,
    `runtime/simulator/dpu_float.py` `run_converting_dpu_task`): BS ALU -zp_in on an integer
    input; EW multiplies by the register operand, the float32 of s_in (to float16) or of
    1 / s_out (to an integer); OUT_CVT rounds to float16 (FP32TOFP16_EN), or half away from
    zero plus zp_out with saturation."""
    in_q, out_q, where = npu.quant_of(op.input), op.quant, op.describe()
    assert in_q is not None
    sides = {in_q.element, out_q.element}
    if "f16" not in sides or sides & {"f32"}:
        raise NotGenerated(f"{where}: {in_q.element} -> {out_q.element} has no code generation")
    to_float = out_q.element == "f16"
    factor = float(in_q.scale) if to_float else 1.0 / float(out_q.scale)
    for y0, y1, c0, c1 in get_tasks(op):
        w = TaskWords()
        emit_dpu_task(w, x, y, Band(y0, y1, c0, c1), ctx.target, where)
        if to_float:
            w.write("DPU", "BS_CFG", BS_ALU_ALGO=ALU_ADD, BS_RELU_BYPASS=1, BS_MUL_BYPASS=1)
            w.write("DPU", "BS_ALU_CFG", BS_ALU_OPERAND=raw32(-int(in_q.zero_point)))
            w.write("DPU", "BS_MUL_CFG")
            w.write("DPU", "BS_RELUX_CMP_VALUE")
            emit_bypassed_bn(w)
            w.write("DPU_RDMA", "RDMA_BRDMA_CFG")
            w.write("DPU_RDMA", "RDMA_BS_BASE_ADDR")
        else:
            emit_bypassed_bs_bn(w)
        w.write("DPU", "EW_CFG", EW_RELU_BYPASS=1, EW_OP_CVT_BYPASS=1, EW_LUT_BYPASS=1,
                EW_OP_SRC=0, EW_OP_TYPE=EW_OP_MUL)  # fmt: skip
        w.write("DPU", "EW_CVT_OFFSET_VALUE")
        w.write("DPU", "EW_CVT_SCALE_VALUE")
        w.write("DPU", "EW_RELUX_CMP_VALUE")
        w.write("DPU", "EW_OP_VALUE_0", EW_OPERAND_0=float32_bits(factor))
        offset = 0 if to_float else int(out_q.zero_point)
        w.write("DPU", "OUT_CVT_OFFSET", OUT_CVT_OFFSET=offset)
        w.write("DPU", "OUT_CVT_SCALE", OUT_CVT_SCALE=1, FP32TOFP16_EN=int(to_float))
        w.write("DPU", "OUT_CVT_SHIFT")
        w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DISABLE=1)
        w.write("DPU_RDMA", "RDMA_EW_BASE_ADDR")
        w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE")
        yield w
