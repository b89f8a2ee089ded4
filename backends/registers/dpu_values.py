"""What the DPU's EW-stage and LUT field values mean for DPU-only tasks (element-wise ops and
tables): the codes code generation (`backends/codegen/eltwise.py`, `lut.py`) writes and the
simulator (`runtime/simulator/dpu_task.py`) reads. Sources as in `values.py`: [nvdla] the
NVDLA SDP register semantics the DPU's names follow (anchors §1.1, §1.4); [ours] our reading,
not confirmed on hardware.
"""

from __future__ import annotations

# DPU.EW_CFG.EW_DATA_MODE / DPU_RDMA.RDMA_ERDMA_CFG.ERDMA_DATA_MODE: [nvdla] 0 per kernel
# (one operand per channel, read contiguously: channel c at c * element), 1 per element
# (`values.EW_PER_ELEMENT`).
EW_PER_CHANNEL = 0

# DPU.EW_CFG.EW_OP_TYPE [nvdla SDP Y: ALU or MUL unit; ours]: 0 the ALU (EW_ALU_ALGO max, min,
# add), 1 multiply.
EW_OP_ALU, EW_OP_MUL = 0, 1

# DPU.LUT_ACCESS_CFG [nvdla]: LUT_ACCESS_TYPE 1 writes (each DPU.LUT_ACCESS_DATA write stores
# one 16-bit entry at LUT_ADDR of table LUT_TABLE_ID, then LUT_ADDR increments); LUT_TABLE_ID
# 0 the LE (exponent) table of 65 entries, 1 the LO (linear) table of 257.
LUT_WRITE = 1
LUT_TABLE_LE, LUT_TABLE_LO = 0, 1
LUT_ENTRIES = {LUT_TABLE_LE: 65, LUT_TABLE_LO: 257}

# DPU.LUT_CFG LUT_UFLOW/OFLOW/HYBRID_PRIORITY [nvdla]: 1 = the LO table's result wins.
LUT_PRIORITY_LO = 1
