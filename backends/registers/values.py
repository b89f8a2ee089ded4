"""What register field values mean: the codes code generation writes and the simulator reads
(`backends/codegen`, `runtime/simulator`). The register map (`rk3588.py`) says where a field
is; this module says what its numbers stand for, each with its source or marked as our own
reading. Both sides import these names, so a code has one definition.

Sources: [mesa] Mesa rocket `rkt_regcmd.c` / `rkt_coefs.c` / `rkt_ml.h` (anchors §1.3-1.7);
[nvdla] the NVDLA SDP/CDMA register semantics Mesa's names follow (anchors §1.1);
[mtx512] mtx512/rk3588-npu precision codes (anchors §1.4); [ours] our reading, not
confirmed on hardware: the simulator implements it and code generation writes it, nothing
more is claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.targets import Target

# ---------------------------------------------------------------------- precisions

# CNA.CONV_CON1.IN/PROC_PRECISION, CORE.MISC_CFG.PROC_PRECISION, DPU.DATA_FORMAT.*_PRECISION,
# DPU_RDMA.RDMA_FEATURE_MODE_CFG.*_PRECISION. [mtx512] int8 0, fp16 2, int32 4, fp32 5;
# [nvdla] int16 1 (NVDLA's precision enum: INT8 0, INT16 1, FP16 2).
PRECISION = {"i8": 0, "i16": 1, "f16": 2, "i32": 4, "f32": 5}
PRECISION_NAME = {code: name for name, code in PRECISION.items()}
ELEMENT_BYTES = {"i8": 1, "i16": 2, "f16": 2, "i32": 4, "f32": 4}

# ---------------------------------------------------------------------- convolution

CONV_MODE_DIRECT = 0  # CNA.CONV_CON1.CONV_MODE, DPU.FEATURE_MODE_CFG.CONV_MODE [mesa]
CONV_MODE_DEPTHWISE = 3  # [mesa] "depthwise -> CONV_MODE=3" (CNA, DPU and DPU_RDMA)
BURST_LEN = 15  # CNA.DMA_CON0 DATA/WEIGHT_BURST_LEN, DPU and DPU_RDMA BURST_LEN [mesa]
DPU_OUTPUT_TO_MEMORY = 2  # DPU.FEATURE_MODE_CFG.OUTPUT_MODE [mesa]: the WDMA writes memory
RDMA_ARBITRATION_WEIGHT = 1  # DPU_RDMA.RDMA_WEIGHT E/N/B/M_WEIGHT [mesa]: equal shares

# One CBUF entry is a bank's bytes over this many entries: [mesa] rkt_ml.h
# CBUF_ENTRIES_PER_BANK 256 (32 KiB banks: 128-byte entries). CNA.CBUF_CON1.DATA_ENTRIES
# counts the entries one input row takes ([ours]: Mesa's formula carries an unexplained x2).
CBUF_ENTRIES_PER_BANK = 256

# ---------------------------------------------------------------------- DPU ALUs

# DPU.BS_CFG.BS_ALU_ALGO, BN_CFG.BN_ALU_ALGO, EW_CFG.EW_ALU_ALGO [nvdla]: MAX 0, MIN 1, SUM 2
# (Mesa writes 2 for its bias add and its fused add).
ALU_MAX, ALU_MIN, ALU_ADD = 0, 1, 2
ALU_ALGOS = {ALU_MAX: "max", ALU_MIN: "min", ALU_ADD: "add"}

# DPU_RDMA.RDMA_BRDMA_CFG.BRDMA_DATA_USE: what the BS operand table at RDMA_BS_BASE_ADDR
# holds per output channel.
#   1 [mesa, nvdla "ALU"]: one little-endian int32 per channel, the BS ALU operand (bias).
#   3 [ours]: one OPERAND_RECORD per channel (below).
BRDMA_ALU_INT32 = 1
BRDMA_RECORD = 3

# [ours] The per-channel operand record (BRDMA_DATA_USE = BRDMA_RECORD): four little-endian
# int64, in this order. Which stage consumes which field is code generation's DPU reading
# (`backends/codegen/dpu.py`), which the simulator implements.
OPERAND_RECORD = ("alu", "mul", "aux", "shift")
OPERAND_RECORD_BYTES = 8 * len(OPERAND_RECORD)

# DPU.EW_CFG.EW_DATA_MODE / DPU_RDMA.RDMA_ERDMA_CFG.ERDMA_DATA_MODE: [mesa] writes 1 for
# its fused add, an operand per element (the other tensor, read by the ERDMA).
EW_PER_ELEMENT = 1
# DPU.EW_CFG.EDATA_SIZE / DPU_RDMA.RDMA_ERDMA_CFG.ERDMA_DATA_SIZE: [mesa] writes 1 for an
# int8 addend; 2 for int16 is [ours] (one code up per doubling).
EW_DATA_SIZE = {"i8": 1, "i16": 2}
EW_DATA_SIZE_NAME = {code: name for name, code in EW_DATA_SIZE.items()}


# ---------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightAtoms:
    """How packed weights group channels: direct convolution
    `[K1][C1][Kh][Kw][cout2][cin2]`, depthwise `[C1][Kh][Kw][depthwise]`."""

    cout2: int
    cin2: int
    depthwise: int


def weight_atoms(target: Target, dtype: str) -> WeightAtoms:
    """[mesa] int8: WEIGHT_ATOMIC_SIZE 32 output x 32 input channels, depthwise groups of
    2 x 32 = 64 channels (rkt_coefs.c). [ours] other dtypes: the MAC array's atomic K and C
    (`Target.mac_array`, itself an assumption beside int8) and the chip's depthwise
    channel alignment (64 for int8 on RK3588, the same number)."""
    mac = target.mac_array(dtype)
    return WeightAtoms(mac.output_channels, mac.input_channels,
                       target.alignment(dtype, "depthwise"))  # fmt: skip


def feature_atom(target: Target, dtype: str, planar: bool) -> tuple[int, int]:
    """(C2, atom bytes) of a feature map in memory: NC1HWC2 with the chip's C2, or planar
    (NCHW, row-major) when the DMA's NONALIGN bit is set ([ours]: C2 = 1). CNA.DMA_CON1/2,
    DPU.DST_SURF_STRIDE and DPU_RDMA.RDMA_EW_SURF_STRIDE count strides in atoms ([mesa]:
    16-byte units for int8 NC1HWC2, line stride = width, surface stride = width x height)."""
    c2 = 1 if planar else target.c2(dtype)
    return c2, c2 * ELEMENT_BYTES[dtype]


def signed32(value: int) -> int:
    """A raw 32-bit register value as the two's complement number it holds."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >> 31 else value


def raw32(value: int) -> int:
    """A signed number as the raw 32-bit value of a field typed unsigned in the map."""
    if not -(1 << 31) <= value < 1 << 32:
        raise ValueError(f"{value} does not fit 32 bits")
    return value & 0xFFFF_FFFF


# [ours] A float16 layer's DPU computes in float32: its 32-bit operands (the BS table's bias,
# BN_ALU_CFG, the RELUX bounds) hold float32 bit patterns (public reverse engineering of
# RKNN's RK3576 float programs reads the bias that way), and the EW addend is float16, two
# bytes like int16 (EDATA_SIZE 2).
EW_FLOAT16_DATA_SIZE = 2
EW_ELEMENT_SIZE = {**EW_DATA_SIZE, "f16": EW_FLOAT16_DATA_SIZE}  # any addend's EDATA_SIZE


def float32_bits(value: float) -> int:
    """The raw 32-bit pattern of `value` as float32."""
    return int(np.float32(value).view(np.uint32))


def bits_float32(raw: int | np.ndarray) -> np.ndarray:
    """Raw 32-bit patterns (any integer type, two's complement included) as float32."""
    return (np.asarray(raw, np.int64) & 0xFFFF_FFFF).astype(np.uint32).view(np.float32)
