"""One MAC-array task (a band of a convolution, a row of a fully connected op) as register
writes: the CNA (feature and weight DMA, CBUF, padding, strides), the CORE (output cube, no
truncation) and the DPU / DPU_RDMA (output cube and write DMA; the output stage is
`dpu.py`'s). `conv.py` and `fully_connected.py` compute the numbers, this module names the
registers. Field meanings are `backends.registers.values`' (Mesa's where it has them):

- feature DMA: FEATURE_DATA_ADDR is the band's first byte; element (c, h, w) of the band
  is at `((c // C2) * SURF_STRIDE + h * LINE_STRIDE + w) * atom + (c % C2) * element`
  with strides in atoms (`values.feature_atom`; CONV_CON1.NONALIGN_DMA = planar, C2 1);
  DATAIN_CHANNEL is the channel count aligned to the CBUF's C2, DATAIN_CHANNEL_REAL + 1
  the channels that exist (the others read as 0).
- padding: PAD_TOP rows above the band and PAD_LEFT columns are PAD_VALUE; the rows and
  columns a window reads past the band's bottom and right edges are too (no register).
- ATROUS_X/Y_DILATION hold dilation - 1 ([ours], NVDLA's `dilation_ext` convention).
- deconvolution [ours: the bits are in the register map (anchors §1), nothing documents
  what they do]: CONV_CON1.DECONV = 1 makes the CNA feed the MAC array the band upsampled,
  input element (h, w) at (h * sy, w * sx) and PAD_VALUE at the `s - 1` rows and columns
  inserted between two input rows and columns (not after the last ones), with
  DECONV_Y/X_STRIDE = sy - 1, sx - 1 (the count of inserted rows and columns, like
  ATROUS's dilation - 1; 0 to 7, so s <= 8). Everything else reads as for a convolution
  over that upsampled band: PAD_TOP / PAD_LEFT rows and columns of PAD_VALUE above and
  left of it, windows of WEIGHT_HEIGHT x WEIGHT_WIDTH at stride CONV_Y/X_STRIDE (1 for a
  transposed convolution) and ATROUS dilation, PAD_VALUE past its bottom and right edges.
  DATAIN_HEIGHT / WIDTH, FEATURE_GRAINS and DATA_ENTRIES count the band's own input rows.
  With DECONV = 0 the DECONV strides are 0. `conv_transpose.py` maps a transposed
  convolution onto this reading.
- output: DATA_CUBE_CHANNEL.CHANNEL + 1 channels computed, ORIG_CHANNEL + 1 written (the
  real ones); DST_SURF_STRIDE in atoms, line stride = the cube width; FEATURE_MODE_CFG.
  NONALIGN = planar output.
- FEATURE_GRAINS: the band's input rows, clamped to the field ([ours]; Mesa writes a
  "magic" 50 + stride + 1). DATA_ENTRIES: CBUF entries one input row takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.func import FuncOp

from backends.codegen.dpu import OutputStage, ResidualRead, emit_output_stage, emit_residual_read
from backends.codegen.emit import TaskWords, WeightBlob
from backends.registers import RK3588
from backends.registers.values import (
    BURST_LEN,
    CONV_MODE_DEPTHWISE,
    CONV_MODE_DIRECT,
    DPU_OUTPUT_TO_MEMORY,
    PRECISION,
    RDMA_ARBITRATION_WEIGHT,
)
from backends.targets import Target
from dialects.weights import WeightTable

Address = tuple[int, int]  # (buffer id, byte offset)


@dataclass(frozen=True)
class OpContext:
    """What code generation of one op needs besides the op."""

    func: FuncOp
    weights: WeightTable
    target: Target
    blob: WeightBlob


GRAINS_MAX = RK3588.register("CNA", "CONV_CON2").field("FEATURE_GRAINS").max_value


@dataclass(frozen=True)
class MacTask:
    dtype: str
    depthwise: bool
    # input band
    in_address: Address
    in_planar: bool
    in_width: int
    in_height: int
    in_channels: int  # aligned to the CBUF's C2
    in_real: int
    line_stride: int  # atoms
    surf_stride: int  # atoms
    pad_top: int
    pad_left: int
    pad_value: int
    stride: tuple[int, int]  # (y, x)
    dilation: tuple[int, int]  # (y, x)
    # weights
    weight_address: Address
    kernel: tuple[int, int]  # (height, width)
    kernels: int  # WEIGHT_KERNELS
    weight_bytes: int
    weight_bytes_per_kernel: int
    # CBUF
    data_banks: int
    weight_banks: int
    weight_reuse: bool
    data_entries: int
    # output band
    out_address: Address
    out_planar: bool
    out_width: int
    out_height: int
    out_channels: int  # computed
    out_real: int  # written
    out_surf_stride: int  # atoms
    # output stage
    table_address: Address
    residual: ResidualRead | None = None
    upsample: tuple[int, int] = (1, 1)  # (y, x): DECONV when not (1, 1)


def emit_mac_task(t: MacTask, stage: OutputStage) -> TaskWords:
    w = TaskWords()
    _cna(w, t)
    _core(w, t)
    _dpu(w, t, stage)
    _dpu_rdma(w, t, stage)
    return w


def _cna(w: TaskWords, t: MacTask) -> None:
    precision = PRECISION[t.dtype]
    w.write("CNA", "CBUF_CON0", WEIGHT_REUSE=int(t.weight_reuse), WEIGHT_BANK=t.weight_banks,
            DATA_BANK=t.data_banks)  # fmt: skip
    w.write("CNA", "DCOMP_REGNUM")
    w.write("CNA", "DCOMP_CTRL")
    deconv = t.upsample != (1, 1)
    w.write("CNA", "CONV_CON1", NONALIGN_DMA=int(t.in_planar), DECONV=int(deconv),
            PROC_PRECISION=precision, IN_PRECISION=precision,
            CONV_MODE=CONV_MODE_DEPTHWISE if t.depthwise else CONV_MODE_DIRECT)  # fmt: skip
    w.write("CNA", "CONV_CON2", FEATURE_GRAINS=min(t.in_height, GRAINS_MAX))
    w.write("CNA", "CONV_CON3", ATROUS_Y_DILATION=t.dilation[0] - 1,
            ATROUS_X_DILATION=t.dilation[1] - 1, DECONV_Y_STRIDE=t.upsample[0] - 1,
            DECONV_X_STRIDE=t.upsample[1] - 1, CONV_Y_STRIDE=t.stride[0],
            CONV_X_STRIDE=t.stride[1])  # fmt: skip
    w.write("CNA", "DATA_SIZE0", DATAIN_WIDTH=t.in_width, DATAIN_HEIGHT=t.in_height)
    w.write("CNA", "DATA_SIZE1", DATAIN_CHANNEL_REAL=t.in_real - 1, DATAIN_CHANNEL=t.in_channels)
    w.write("CNA", "DATA_SIZE2", DATAOUT_WIDTH=t.out_width)
    w.write("CNA", "DATA_SIZE3", DATAOUT_ATOMICS=t.out_width * t.out_height)
    w.write("CNA", "WEIGHT_SIZE0", WEIGHT_BYTES=t.weight_bytes)
    w.write("CNA", "WEIGHT_SIZE1", WEIGHT_BYTES_PER_KERNEL=t.weight_bytes_per_kernel)
    w.write("CNA", "WEIGHT_SIZE2", WEIGHT_WIDTH=t.kernel[1], WEIGHT_HEIGHT=t.kernel[0],
            WEIGHT_KERNELS=t.kernels)  # fmt: skip
    w.write("CNA", "CBUF_CON1", DATA_ENTRIES=t.data_entries)
    w.write("CNA", "CVT_CON0", DATA_SIGN=1, CVT_BYPASS=1)
    w.write("CNA", "FC_CON0")
    w.write("CNA", "FC_CON1")
    w.write("CNA", "PAD_CON0", PAD_LEFT=t.pad_left, PAD_TOP=t.pad_top)
    w.address("CNA", "FEATURE_DATA_ADDR", *t.in_address)
    w.write("CNA", "FC_CON2")
    w.write("CNA", "DMA_CON0", WEIGHT_BURST_LEN=BURST_LEN, DATA_BURST_LEN=BURST_LEN)
    w.write("CNA", "DMA_CON1", LINE_STRIDE=t.line_stride)
    w.write("CNA", "DMA_CON2", SURF_STRIDE=t.surf_stride)
    w.write("CNA", "FC_DATA_SIZE0", DMA_WIDTH=t.in_width, DMA_HEIGHT=t.in_height)
    w.write("CNA", "FC_DATA_SIZE1", DMA_CHANNEL=t.in_channels)
    w.address("CNA", "DCOMP_ADDR0", *t.weight_address)
    w.write("CNA", "CVT_CON5")
    w.write("CNA", "PAD_CON1", PAD_VALUE=t.pad_value)


def _core(w: TaskWords, t: MacTask) -> None:
    w.write("CORE", "MISC_CFG", PROC_PRECISION=PRECISION[t.dtype], DW_EN=int(t.depthwise),
            QD_EN=1)  # fmt: skip
    w.write("CORE", "DATAOUT_SIZE_0", DATAOUT_HEIGHT=t.out_height - 1,
            DATAOUT_WIDTH=t.out_width - 1)  # fmt: skip
    w.write("CORE", "DATAOUT_SIZE_1", DATAOUT_CHANNEL=t.out_channels - 1)
    w.write("CORE", "CLIP_TRUNCATE")
    w.write("CORE", "UNKNOWN_3030")


def _dpu(w: TaskWords, t: MacTask, stage: OutputStage) -> None:
    precision = PRECISION[t.dtype]
    w.write("DPU", "S_POINTER", POINTER_PP_MODE=1, EXECUTER_PP_EN=1, POINTER_PP_EN=1)
    w.write("DPU", "FEATURE_MODE_CFG", NONALIGN=int(t.out_planar), BURST_LEN=BURST_LEN,
            CONV_MODE=CONV_MODE_DEPTHWISE if t.depthwise else CONV_MODE_DIRECT,
            OUTPUT_MODE=DPU_OUTPUT_TO_MEMORY)  # fmt: skip
    w.write("DPU", "DATA_FORMAT", OUT_PRECISION=PRECISION[stage.dtype], IN_PRECISION=precision,
            PROC_PRECISION=precision)  # fmt: skip
    w.write("DPU", "OFFSET_PEND")
    w.address("DPU", "DST_BASE_ADDR", *t.out_address)
    w.write("DPU", "DST_SURF_STRIDE", DST_SURF_STRIDE=t.out_surf_stride)
    w.write("DPU", "DATA_CUBE_WIDTH", WIDTH=t.out_width - 1)
    w.write("DPU", "DATA_CUBE_HEIGHT", HEIGHT=t.out_height - 1)
    w.write("DPU", "DATA_CUBE_NOTCH_ADDR")
    w.write("DPU", "DATA_CUBE_CHANNEL", ORIG_CHANNEL=t.out_real - 1, CHANNEL=t.out_channels - 1)
    w.write("DPU", "WDMA_SIZE_0", CHANNEL_WDMA=t.out_channels - 1)
    w.write("DPU", "WDMA_SIZE_1", HEIGHT_WDMA=t.out_height - 1, WIDTH_WDMA=t.out_width - 1)
    emit_output_stage(w, stage, t.table_address)
    w.write("DPU", "SURFACE_ADD", SURF_ADD=t.out_surf_stride)


def _dpu_rdma(w: TaskWords, t: MacTask, stage: OutputStage) -> None:
    w.write("DPU_RDMA", "RDMA_S_POINTER", POINTER_PP_MODE=1, EXECUTER_PP_EN=1, POINTER_PP_EN=1)
    w.write("DPU_RDMA", "RDMA_DATA_CUBE_WIDTH", WIDTH=t.out_width - 1)
    w.write("DPU_RDMA", "RDMA_DATA_CUBE_HEIGHT", HEIGHT=t.out_height - 1)
    w.write("DPU_RDMA", "RDMA_DATA_CUBE_CHANNEL", CHANNEL=t.out_channels - 1)
    w.write("DPU_RDMA", "RDMA_SRC_BASE_ADDR")
    emit_residual_read(w, stage, t.residual)
    precision = PRECISION[t.dtype]
    w.write("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", IN_PRECISION=precision, BURST_LEN=BURST_LEN,
            PROC_PRECISION=precision, MRDMA_DISABLE=1,
            CONV_MODE=CONV_MODE_DEPTHWISE if t.depthwise else CONV_MODE_DIRECT)  # fmt: skip
    share = RDMA_ARBITRATION_WEIGHT
    w.write("DPU_RDMA", "RDMA_WEIGHT", E_WEIGHT=share, N_WEIGHT=share, B_WEIGHT=share,
            M_WEIGHT=share)  # fmt: skip
