"""`npu.lut` -> DPU-only tasks (`dpu_task.py`): `y = table[x - qmin]` through the DPU's LUT
block, the table uploaded in each task's command stream.

The reading [ours, after NVDLA's SDP LUT; `backends/registers/dpu_values.py`]:

- Upload: DPU.LUT_ACCESS_CFG (LUT_ACCESS_TYPE 1 = write, LUT_TABLE_ID 1 = the LO table,
  LUT_ADDR 0), then 257 DPU.LUT_ACCESS_DATA writes, each storing one 16-bit entry at
  LUT_ADDR and incrementing it. Entry i is `table[i]` for the 256 int8 inputs, entry 256
  repeats `table[255]` (the LO table's end point).
- Lookup: the EW stage runs with its operand bypassed (EW_OP_BYPASS 1, ERDMA disabled) and
  the LUT on (EW_LUT_BYPASS 0): the LO table in linear mode, index `(v - LUT_LO_START) >>
  LUT_LO_INDEX_SELECT` with LUT_LO_START = qmin = -128, LUT_LO_END = 127, LUT_LO_INDEX_SELECT
  0: every input hits an entry exactly (no interpolation fraction). LUT_CFG's UFLOW, OFLOW
  and HYBRID priorities select the LO table (1); the LE table is not used (LE start = end =
  0); the under/overflow slopes are 0 (no input leaves the LO range).
- v is the input x itself (MRDMA, BS and BN bypassed); the entry goes to OUT_CVT with
  scale 1, shift 0, offset 0 and saturates to the output dtype.

Not generated: int16 tables (65536 entries; the LO table's 257 entries would interpolate,
which the reference's exact lookup does not).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from backends.codegen.dpu_task import (
    Band,
    check_4d,
    emit_bypassed_bs_bn,
    emit_dpu_task,
    emit_output_converter,
)
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import placed
from backends.codegen.weights import constant
from backends.layout import NC1HWC2, NCHW
from backends.registers.dpu_values import (
    LUT_ENTRIES,
    LUT_PRIORITY_LO,
    LUT_TABLE_LO,
    LUT_WRITE,
)
from backends.registers.values import raw32
from dialects.errors import CompilerError
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks


def lut_entries(table: np.ndarray) -> list[int]:
    """The LO table's 257 raw 16-bit entries for a 256-entry int8 table."""
    values = [int(v) for v in np.asarray(table, np.int64).reshape(-1)]
    values.append(values[-1])
    return [v & 0xFFFF for v in values]


def lut_tasks(op: npu.LutOp, ctx: OpContext) -> Iterator[TaskWords]:
    where = op.describe()
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    if in_q.element != "i8":
        raise NotGenerated(f"{where}: a {in_q.element} table has no code generation yet")
    check_4d(where, x, y)
    for t in (x, y):
        if t.layout not in (NC1HWC2, NCHW):
            raise NotGenerated(f"{where}: layout {t.layout} is not read yet")
    table = constant(op.table, ctx.weights, op)
    qmin, qmax = nx.qrange(in_q.element)
    if table.size != qmax - qmin + 1:
        raise CompilerError(f"{where}: {table.size} table entries for {in_q.element} input")
    entries = lut_entries(table)
    assert len(entries) == LUT_ENTRIES[LUT_TABLE_LO]
    tasks = get_tasks(op)
    if not tasks:
        raise CompilerError(f"{where}: no backend.tasks: run tile first")
    for y0, y1, c0, c1 in tasks:
        w = TaskWords()
        w.write("DPU", "LUT_ACCESS_CFG", LUT_ACCESS_TYPE=LUT_WRITE, LUT_TABLE_ID=LUT_TABLE_LO,
                LUT_ADDR=0)  # fmt: skip
        for entry in entries:
            w.write("DPU", "LUT_ACCESS_DATA", LUT_ACCESS_DATA=entry)
        w.write("DPU", "LUT_CFG", LUT_HYBRID_PRIORITY=LUT_PRIORITY_LO,
                LUT_OFLOW_PRIORITY=LUT_PRIORITY_LO, LUT_UFLOW_PRIORITY=LUT_PRIORITY_LO)  # fmt: skip
        w.write("DPU", "LUT_INFO", LUT_LO_INDEX_SELECT=0, LUT_LE_INDEX_SELECT=0)
        w.write("DPU", "LUT_LE_START")
        w.write("DPU", "LUT_LE_END")
        w.write("DPU", "LUT_LO_START", LUT_LO_START=raw32(qmin))
        w.write("DPU", "LUT_LO_END", LUT_LO_END=qmax)
        for register in ("LUT_LE_SLOPE_SCALE", "LUT_LE_SLOPE_SHIFT", "LUT_LO_SLOPE_SCALE",
                         "LUT_LO_SLOPE_SHIFT"):  # fmt: skip
            w.write("DPU", register)
        emit_dpu_task(w, x, y, Band(y0, y1, c0, c1), ctx.target, where)
        emit_bypassed_bs_bn(w)
        w.write("DPU", "EW_CFG", EW_RELU_BYPASS=1, EW_OP_CVT_BYPASS=1, EW_OP_BYPASS=1)
        w.write("DPU", "EW_CVT_OFFSET_VALUE")
        w.write("DPU", "EW_CVT_SCALE_VALUE")
        w.write("DPU", "EW_RELUX_CMP_VALUE")
        emit_output_converter(w, 0)
        w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DISABLE=1)
        w.write("DPU_RDMA", "RDMA_EW_BASE_ADDR")
        w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE")
        yield w
