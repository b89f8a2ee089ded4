"""What the PPU and PPU_RDMA field values mean (pooling, and the PPU copy): the codes code
generation (`backends/codegen/pool.py`) writes and the simulator (`runtime/simulator/ppu.py`)
reads. Sources as in `values.py`: [nvdla] the NVDLA PDP register semantics the PPU's names
follow (anchors §1.1, §1.4); [ours] our reading, not confirmed on hardware.

A PPU task (op-enable PPU | PPU_RDMA) [ours, after NVDLA's off-flying PDP]:

- PPU_RDMA reads the input cube at RDMA_SRC_BASE_ADDR: RDMA_CUBE_IN_WIDTH/HEIGHT/CHANNEL
  (each stored minus one), element (c, h, w) at `((c // C2) * SRC_SURF_STRIDE + h *
  SRC_LINE_STRIDE + w) * atom + (c % C2) * element` (strides in atoms of C2 elements, as the
  DPU's; NC1HWC2 only), precision RDMA_DATA_FORMAT.IN_PRECISION (`values.PRECISION`).
- The PPU pads the cube with PADDING_VALUE_1_CFG.PAD_VALUE_0 (signed 32-bit) on
  POOLING_PADDING_CFG's sides and slides a KERNEL_WIDTH+1 x KERNEL_HEIGHT+1 window with
  strides KERNEL_STRIDE_WIDTH+1, KERNEL_STRIDE_HEIGHT+1 (POOLING_KERNEL_CFG) over it, giving
  DATA_CUBE_OUT_WIDTH+1 x DATA_CUBE_OUT_HEIGHT+1 outputs per channel.
- POOLING_METHOD (OPERATION_MODE_CFG) [nvdla]: AVERAGE 0, MAX 1, MIN 2. MAX/MIN: the
  window's extreme (pad with the dtype's minimum/maximum so that padding never wins).
- AVERAGE, [ours] the numerics contract's arithmetic, not NVDLA's: NVDLA multiplies the
  window sum by two 17-bit reciprocals (1/kw, 1/kh, each 2**16 / k) and rounds twice, which
  cannot reproduce the contract's single `round_shift(sum * M, S)` with
  `M * 2**-S ~ s_in / (s_out * count)` (a 15-bit mantissa, `dialects/npu/numerics.py`).
  So the registers carry the contract: RECIP_KERNEL_WIDTH = M (17 bits), RECIP_KERNEL_HEIGHT
  = S, DATA_FORMAT.INDEX_ADD = the output zero point (28-bit two's complement), and
      y = saturate(round_shift(sum_window(x - PAD_VALUE_0) * M, S) + INDEX_ADD)
  with PAD_VALUE_0 = the input zero point (a padded element adds 0: count_include_pad).
- The PPU writes the output cube at DST_BASE_ADDR: DATA_CUBE_OUT_CHANNEL+1 channels, line
  stride = the output width, surface stride DST_SURF_STRIDE (atoms), precision
  DATA_FORMAT.PROC_PRECISION; NC1HWC2, or row-major (C2 = 1: an atom is one element, so
  NCHW with surface stride H * W) when MISC_CTRL.NONALIGN is set [ours: the name's reading,
  as CNA/DPU NONALIGN].
"""

from __future__ import annotations

POOL_AVERAGE, POOL_MAX, POOL_MIN = 0, 1, 2  # OPERATION_MODE_CFG.POOLING_METHOD [nvdla]
POOL_METHODS = {POOL_AVERAGE: "average", POOL_MAX: "max", POOL_MIN: "min"}
FLYING_MODE_OFF = 1  # OPERATION_MODE_CFG.FLYING_MODE [nvdla]: 1 reads memory (PPU_RDMA)
PAD_MAX = 7  # POOLING_PADDING_CFG PAD_*: 3 bits
ZERO_POINT_BITS = 28  # DATA_FORMAT.INDEX_ADD carries the output zero point [ours]
RECIP_BITS = 17  # RECIP_KERNEL_WIDTH/HEIGHT


def to_field(value: int, bits: int) -> int:
    """A signed number as a `bits`-bit two's complement field."""
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f"{value} does not fit {bits} signed bits")
    return value & ((1 << bits) - 1)


def from_field(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) else raw
