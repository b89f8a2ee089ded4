"""A DPU-only task (op-enable DPU | DPU_RDMA, no CNA / CORE): the DPU_RDMA's MRDMA reads the
main input cube from memory in place of the CORE's accumulators, the BS, BN and EW stages
and the output converter run on it (`backends/codegen/dpu.py`'s stage table), the WDMA
writes the output. `eltwise.py` and `lut.py` fill the stages; this module writes the cube,
the DMA and the bypass registers every such task shares.

MRDMA reading [ours]: DPU_RDMA.RDMA_FEATURE_MODE_CFG.MRDMA_DISABLE = 0, RDMA_SRC_BASE_ADDR is
the band's first byte, the cube is RDMA_DATA_CUBE_WIDTH/HEIGHT/CHANNEL (+1 each, equal to the
DPU's DATA_CUBE_*), element (c, h, w) at `((c // C2) * DST_SURF_STRIDE + h * width + w) *
atom + (c % C2) * element`: the main input has the output's shape, layout and strides
(DPU.FEATURE_MODE_CFG.NONALIGN for both), precision RDMA_FEATURE_MODE_CFG.IN_PRECISION. Only
DATA_CUBE_CHANNEL.ORIG_CHANNEL + 1 channels exist; CONV_MODE 0 (direct) everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.tensors import Placed
from backends.registers.values import (
    BURST_LEN,
    CONV_MODE_DIRECT,
    DPU_OUTPUT_TO_MEMORY,
    PRECISION,
    RDMA_ARBITRATION_WEIGHT,
    feature_atom,
)
from backends.targets import Target

DPU_BLOCKS = ("DPU", "DPU_RDMA")


@dataclass(frozen=True)
class Band:
    """Output rows [y0, y1) x channels [c0, c1) of a 4-D NCHW-shaped tensor."""

    y0: int
    y1: int
    c0: int
    c1: int

    @property
    def rows(self) -> int:
        return self.y1 - self.y0

    @property
    def channels(self) -> int:
        return self.c1 - self.c0


def band_address(t: Placed, band: Band, target: Target, where: str) -> tuple[int, int]:
    """(buffer, offset) of the band's first element in `t` (which has the band's H, W)."""
    _, _, h, w = t.shape
    c2, atom = feature_atom(target, t.dtype, t.planar)
    if band.c0 % c2:
        raise NotGenerated(f"{where}: a task starts at channel {band.c0}, not on a C2 boundary")
    return t.buffer, t.offset + ((band.c0 // c2) * h * w + band.y0 * w) * atom


def check_4d(where: str, *tensors: Placed) -> None:
    for t in tensors:
        if len(t.shape) != 4 or t.shape[0] != 1:
            raise NotGenerated(f"{where}: a {len(t.shape)}-D tensor {t.shape} is not read yet")


def emit_dpu_task(w: TaskWords, x: Placed, y: Placed, band: Band, target: Target,
                  where: str) -> None:  # fmt: skip
    """The cube, MRDMA and WDMA registers of a DPU-only task reading `x`'s band into `y`'s
    (the stages are the caller's)."""
    if x.planar != y.planar or x.shape[1:] != y.shape[1:]:
        raise NotGenerated(f"{where}: the DPU's main input needs the output's shape and layout")
    w.blocks = DPU_BLOCKS
    _, _, h, width = y.shape
    surf = h * width
    w.write("DPU", "S_POINTER", POINTER_PP_MODE=1, EXECUTER_PP_EN=1, POINTER_PP_EN=1)
    w.write("DPU", "FEATURE_MODE_CFG", NONALIGN=int(y.planar), BURST_LEN=BURST_LEN,
            CONV_MODE=CONV_MODE_DIRECT, OUTPUT_MODE=DPU_OUTPUT_TO_MEMORY)  # fmt: skip
    w.write("DPU", "DATA_FORMAT", OUT_PRECISION=PRECISION[y.dtype],
            IN_PRECISION=PRECISION[x.dtype], PROC_PRECISION=PRECISION[x.dtype])  # fmt: skip
    w.write("DPU", "OFFSET_PEND")
    w.address("DPU", "DST_BASE_ADDR", *band_address(y, band, target, where))
    w.write("DPU", "DST_SURF_STRIDE", DST_SURF_STRIDE=surf)
    w.write("DPU", "DATA_CUBE_WIDTH", WIDTH=width - 1)
    w.write("DPU", "DATA_CUBE_HEIGHT", HEIGHT=band.rows - 1)
    w.write("DPU", "DATA_CUBE_NOTCH_ADDR")
    w.write("DPU", "DATA_CUBE_CHANNEL", ORIG_CHANNEL=band.channels - 1, CHANNEL=band.channels - 1)
    w.write("DPU", "WDMA_SIZE_0", CHANNEL_WDMA=band.channels - 1)
    w.write("DPU", "WDMA_SIZE_1", HEIGHT_WDMA=band.rows - 1, WIDTH_WDMA=width - 1)
    w.write("DPU", "BS_OW_CFG")
    w.write("DPU", "BS_OW_OP")
    w.write("DPU", "SURFACE_ADD", SURF_ADD=surf)
    w.write("DPU_RDMA", "RDMA_S_POINTER", POINTER_PP_MODE=1, EXECUTER_PP_EN=1, POINTER_PP_EN=1)
    w.write("DPU_RDMA", "RDMA_DATA_CUBE_WIDTH", WIDTH=width - 1)
    w.write("DPU_RDMA", "RDMA_DATA_CUBE_HEIGHT", HEIGHT=band.rows - 1)
    w.write("DPU_RDMA", "RDMA_DATA_CUBE_CHANNEL", CHANNEL=band.channels - 1)
    w.address("DPU_RDMA", "RDMA_SRC_BASE_ADDR", *band_address(x, band, target, where))
    precision = PRECISION[x.dtype]
    w.write("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", IN_PRECISION=precision, BURST_LEN=BURST_LEN,
            PROC_PRECISION=precision, MRDMA_DISABLE=0, CONV_MODE=CONV_MODE_DIRECT)  # fmt: skip
    share = RDMA_ARBITRATION_WEIGHT
    w.write("DPU_RDMA", "RDMA_WEIGHT", E_WEIGHT=share, N_WEIGHT=share, B_WEIGHT=share,
            M_WEIGHT=share)  # fmt: skip


def emit_bypassed_bs_bn(w: TaskWords) -> None:
    """BS and BN bypassed, no BS operand table."""
    w.write("DPU", "BS_CFG", BS_RELU_BYPASS=1, BS_MUL_BYPASS=1, BS_ALU_BYPASS=1, BS_BYPASS=1)
    w.write("DPU", "BS_ALU_CFG")
    w.write("DPU", "BS_MUL_CFG")
    w.write("DPU", "BS_RELUX_CMP_VALUE")
    emit_bypassed_bn(w)
    w.write("DPU_RDMA", "RDMA_BRDMA_CFG")
    w.write("DPU_RDMA", "RDMA_BS_BASE_ADDR")


def emit_bypassed_bn(w: TaskWords) -> None:
    w.write("DPU", "BN_CFG", BN_RELU_BYPASS=1, BN_MUL_BYPASS=1, BN_ALU_BYPASS=1, BN_BYPASS=1)
    w.write("DPU", "BN_ALU_CFG")
    w.write("DPU", "BN_MUL_CFG")
    w.write("DPU", "BN_RELUX_CMP_VALUE")
    w.write("DPU_RDMA", "RDMA_NRDMA_CFG")
    w.write("DPU_RDMA", "RDMA_BN_BASE_ADDR")


def emit_output_converter(w: TaskWords, offset: int, scale: int = 1, shift: int = 0) -> None:
    """OUT_CVT: y = saturate(round_shift(v * scale, shift) + offset)."""
    w.write("DPU", "OUT_CVT_OFFSET", OUT_CVT_OFFSET=offset)
    w.write("DPU", "OUT_CVT_SCALE", OUT_CVT_SCALE=scale)
    w.write("DPU", "OUT_CVT_SHIFT", OUT_CVT_SHIFT=shift)
