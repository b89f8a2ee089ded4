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

Not generated: float sides (float16 <-> integer), a multiplier of 2**15 or more, a task
that starts at a channel that is not on both sides' C2 boundary.
"""

from __future__ import annotations

from collections.abc import Iterator

from backends.codegen.dpu_task import (
    Band,
    check_4d,
    emit_bypassed_bn,
    emit_dpu_task,
    emit_output_converter,
)
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import placed
from backends.layout import NC1HWC2, NCHW
from backends.registers.values import ALU_ADD, raw32
from dialects.errors import CompilerError
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks


def requantize_tasks(op: npu.RequantizeOp, ctx: OpContext) -> Iterator[TaskWords]:
    where = op.describe()
    in_q, out_q = npu.quant_of(op.input), op.quant
    assert in_q is not None
    if in_q.is_float or out_q.is_float:
        raise NotGenerated(f"{where}: {in_q.element} -> {out_q.element} has no code generation")
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    check_4d(where, x, y)
    for t in (x, y):
        if t.layout not in (NC1HWC2, NCHW):
            raise NotGenerated(f"{where}: layout {t.layout} is not read yet")
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
