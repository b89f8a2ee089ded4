"""The CNA and the CORE: fetch the input band and the packed weights the CNA registers
describe, convolve exactly, and truncate as CORE.CLIP_TRUNCATE says. The register reading is
`backends/codegen/mac_task.py`'s module doc; the weight layouts are anchors §1.6 (Mesa
rkt_coefs.c), unpacked here without the code generator's packing code:

    direct     [ceil(K / cout2)][ceil(C / cin2)][Kh][Kw][cout2][cin2]
    depthwise  [ceil(C / group)][Kh][Kw][group]

With CNA_CONV_CON1.DECONV set, the band is upsampled before the padding ([ours], the reading
in `mac_task.py`'s module doc): element (h, w) at (h * sy, w * sx) with sy, sx the
DECONV_Y/X_STRIDE fields + 1, PAD_VALUE in between.

A task with CNA.CBUF_CON0.WEIGHT_REUSE set does not read its weights: it computes with the
ones the job's previous convolution task loaded (Mesa sets it on the tasks after the first
of an output-channel group, anchors §1.5), and the simulator checks that they are the
weights the task's own registers describe (`cbuf_weights`).

Sums are float64 dot products of integers: exact while every partial sum stays below 2**53,
which is checked (int8: up to 2**38 products; int16: 2**22). A float16 task (IN_PRECISION
float16, [ours]: PAD_VALUE holds the padding's float16 bits) sums its products, exact in
float64, there and hands the DPU float32 accumulators (`numerics.float_accumulator`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.registers.values import (
    CONV_MODE_DEPTHWISE,
    CONV_MODE_DIRECT,
    ELEMENT_BYTES,
    PRECISION_NAME,
    weight_atoms,
)
from backends.targets import Target
from dialects.npu import numerics as nx
from runtime.simulator.cube import FLOAT_STORAGE, STORAGE, Cube, read_cube
from runtime.simulator.memory import Memory, SimulatorError
from runtime.simulator.registers import CbufWeights, RegisterFile

EXACT_LIMIT = 2.0**53


def align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


@dataclass(frozen=True)
class ConvShape:
    dtype: str
    depthwise: bool
    input: Cube
    pad: tuple[int, int]  # top, left
    pad_value: int
    stride: tuple[int, int]  # y, x
    dilation: tuple[int, int]
    kernel: tuple[int, int]  # height, width
    kernels: int
    out_height: int
    out_width: int
    upsample: tuple[int, int] = (1, 1)  # y, x (DECONV)

    @property
    def out_channels(self) -> int:
        return self.input.channels if self.depthwise else self.kernels


def conv_shape(regs: RegisterFile) -> ConvShape:
    """What the CNA and CORE registers describe (with consistency checks)."""
    f = regs.field
    mode = f("CNA", "CONV_CON1", "CONV_MODE")
    if mode not in (CONV_MODE_DIRECT, CONV_MODE_DEPTHWISE):
        raise SimulatorError(f"CNA.CONV_CON1.CONV_MODE {mode} is not simulated")
    depthwise = mode == CONV_MODE_DEPTHWISE
    if f("CORE", "MISC_CFG", "DW_EN") != int(depthwise):
        raise SimulatorError("CORE.MISC_CFG.DW_EN disagrees with CNA.CONV_CON1.CONV_MODE")
    precision = f("CNA", "CONV_CON1", "IN_PRECISION")
    dtype = PRECISION_NAME.get(precision, "?")
    if dtype not in STORAGE:
        raise SimulatorError(f"input precision {precision} ({dtype}) is not simulated")
    for reg, name in (("CNA.CONV_CON1", "PROC_PRECISION"), ("CORE.MISC_CFG", "PROC_PRECISION")):
        block, register = reg.split(".")
        if f(block, register, name) != precision:
            raise SimulatorError(f"{reg}.{name} differs from CNA.CONV_CON1.IN_PRECISION")
    if f("CNA", "CVT_CON0", "CVT_BYPASS") != 1 or regs.raw("CNA", "DCOMP_CTRL"):
        raise SimulatorError("the CNA input convert and weight decompression are not simulated")
    width, height = f("CNA", "DATA_SIZE0", "DATAIN_WIDTH"), f("CNA", "DATA_SIZE0", "DATAIN_HEIGHT")
    channels = f("CNA", "DATA_SIZE1", "DATAIN_CHANNEL")
    real = f("CNA", "DATA_SIZE1", "DATAIN_CHANNEL_REAL") + 1
    if (f("CNA", "FC_DATA_SIZE0", "DMA_WIDTH"), f("CNA", "FC_DATA_SIZE0", "DMA_HEIGHT"),
            f("CNA", "FC_DATA_SIZE1", "DMA_CHANNEL")) != (width, height, channels):  # fmt: skip
        raise SimulatorError("CNA.FC_DATA_SIZE0/1 disagree with CNA.DATA_SIZE0/1")
    out_width = f("CNA", "DATA_SIZE2", "DATAOUT_WIDTH")
    atomics = f("CNA", "DATA_SIZE3", "DATAOUT_ATOMICS")
    if out_width == 0 or atomics % out_width:
        raise SimulatorError(f"DATAOUT_ATOMICS {atomics} is not a multiple of width {out_width}")
    out_height = atomics // out_width
    core = regs.fields("CORE", "DATAOUT_SIZE_0")
    if (core["DATAOUT_WIDTH"] + 1, core["DATAOUT_HEIGHT"] + 1) != (out_width, out_height):
        raise SimulatorError("CORE.DATAOUT_SIZE_0 disagrees with the CNA's output size")
    stride = (f("CNA", "CONV_CON3", "CONV_Y_STRIDE"), f("CNA", "CONV_CON3", "CONV_X_STRIDE"))
    if min(stride) < 1:
        raise SimulatorError(f"stride {stride}")
    dilation = (f("CNA", "CONV_CON3", "ATROUS_Y_DILATION") + 1,
                f("CNA", "CONV_CON3", "ATROUS_X_DILATION") + 1)  # fmt: skip
    upsample = deconv_upsampling(regs)
    planar = bool(f("CNA", "CONV_CON1", "NONALIGN_DMA"))
    cube = Cube(regs.raw("CNA", "FEATURE_DATA_ADDR"), dtype, channels, min(real, channels),
                height, width, f("CNA", "DMA_CON1", "LINE_STRIDE"),
                f("CNA", "DMA_CON2", "SURF_STRIDE"), planar)  # fmt: skip
    shape = ConvShape(
        dtype, depthwise, cube,
        (f("CNA", "PAD_CON0", "PAD_TOP"), f("CNA", "PAD_CON0", "PAD_LEFT")),
        f("CNA", "PAD_CON1", "PAD_VALUE"), stride, dilation,
        (f("CNA", "WEIGHT_SIZE2", "WEIGHT_HEIGHT"), f("CNA", "WEIGHT_SIZE2", "WEIGHT_WIDTH")),
        f("CNA", "WEIGHT_SIZE2", "WEIGHT_KERNELS"), out_height, out_width, upsample,
    )  # fmt: skip
    if f("CORE", "DATAOUT_SIZE_1", "DATAOUT_CHANNEL") + 1 != shape.out_channels:
        raise SimulatorError("CORE.DATAOUT_SIZE_1 disagrees with the kernels the CNA computes")
    if depthwise and shape.kernels != 1:
        raise SimulatorError("a depthwise task has WEIGHT_KERNELS 1")
    return shape


def deconv_upsampling(regs: RegisterFile) -> tuple[int, int]:
    """(sy, sx) of CNA_CONV_CON1.DECONV: the DECONV strides + 1; (1, 1) without DECONV."""
    f = regs.field
    strides = (f("CNA", "CONV_CON3", "DECONV_Y_STRIDE"), f("CNA", "CONV_CON3", "DECONV_X_STRIDE"))
    if not f("CNA", "CONV_CON1", "DECONV"):
        if any(strides):
            raise SimulatorError(f"DECONV strides {strides} without CNA.CONV_CON1.DECONV")
        return (1, 1)
    return (strides[0] + 1, strides[1] + 1)


def upsampled(x: np.ndarray, factor: tuple[int, int], fill: float) -> np.ndarray:
    """[C, H, W] -> [C, (H - 1) * sy + 1, (W - 1) * sx + 1]: x at every (sy, sx)-th position,
    `fill` between."""
    (sy, sx), (c, h, w) = factor, x.shape
    if (sy, sx) == (1, 1) or h == 0 or w == 0:
        return x
    out = np.full((c, (h - 1) * sy + 1, (w - 1) * sx + 1), fill, x.dtype)
    out[:, ::sy, ::sx] = x
    return out


def read_weights(regs: RegisterFile, memory: Memory, shape: ConvShape,
                 target: Target) -> np.ndarray:  # fmt: skip
    """[K, C, Kh, Kw] (depthwise: [C, Kh, Kw]) int64 from DCOMP_ADDR0."""
    f = regs.field
    atoms = weight_atoms(target, shape.dtype)
    size = ELEMENT_BYTES[shape.dtype]
    kh, kw = shape.kernel
    channels = shape.input.channels
    group = atoms.depthwise if shape.depthwise else atoms.cin2
    per_kernel = kh * kw * align(channels, group) * size
    rows = 1 if shape.depthwise else align(shape.kernels, atoms.cout2)
    declared = (f("CNA", "WEIGHT_SIZE1", "WEIGHT_BYTES_PER_KERNEL"),
                f("CNA", "WEIGHT_SIZE0", "WEIGHT_BYTES"))  # fmt: skip
    if declared != (per_kernel, rows * per_kernel):
        raise SimulatorError(f"weight sizes {declared}, the layout needs "
                             f"{(per_kernel, rows * per_kernel)}")  # fmt: skip
    count = rows * per_kernel // size
    offsets = np.arange(count, dtype=np.int64) * size
    flat = memory.read_elements(regs.raw("CNA", "DCOMP_ADDR0"), offsets, STORAGE[shape.dtype])
    c1 = align(channels, group) // group
    if shape.depthwise:
        blocks = flat.reshape(c1, kh, kw, group).transpose(0, 3, 1, 2)
        return blocks.reshape(c1 * group, kh, kw)[:channels]
    k1 = rows // atoms.cout2
    blocks = flat.reshape(k1, c1, kh, kw, atoms.cout2, group).transpose(0, 4, 1, 5, 2, 3)
    return blocks.reshape(rows, c1 * group, kh, kw)[: shape.kernels, :channels]


def cbuf_weights(regs: RegisterFile, memory: Memory, shape: ConvShape,
                 target: Target) -> np.ndarray:  # fmt: skip
    """The task's weights: read from DCOMP_ADDR0 into the CBUF, or, with
    CBUF_CON0.WEIGHT_REUSE, the ones an earlier task of the job left there, which must be
    the same weights (else the hardware would compute with the wrong ones: an error)."""
    f = regs.field
    source = (regs.raw("CNA", "DCOMP_ADDR0"), f("CNA", "WEIGHT_SIZE0", "WEIGHT_BYTES"),
              f("CNA", "CBUF_CON0", "WEIGHT_BANK"), shape.dtype, shape.depthwise,
              shape.kernels, shape.input.channels, shape.kernel)  # fmt: skip
    if not f("CNA", "CBUF_CON0", "WEIGHT_REUSE"):
        regs.cbuf_weights = CbufWeights(source, read_weights(regs, memory, shape, target))
        return regs.cbuf_weights.values
    held = regs.cbuf_weights
    if held is None:
        raise SimulatorError("CBUF_CON0.WEIGHT_REUSE is set, but no earlier task of the job "
                             "loaded weights into the CBUF")  # fmt: skip
    if held.source != source:
        raise SimulatorError(
            f"CBUF_CON0.WEIGHT_REUSE is set for the weights at {source[0]:#x} ({source[1]} B, "
            f"{source[2]} banks), but the CBUF holds those at {held.source[0]:#x} "
            f"({held.source[1]} B, {held.source[2]} banks)"
        )
    return held.values


def pad_value(shape: ConvShape) -> float:
    """PAD_VALUE as a number of the input's type (a float16 input's bit pattern)."""
    if shape.dtype in FLOAT_STORAGE:
        return float(np.uint16(shape.pad_value).view(np.float16))
    return shape.pad_value


def padded_input(x: np.ndarray, shape: ConvShape) -> np.ndarray:
    """The band (upsampled under DECONV) with PAD_TOP / PAD_LEFT padding above and left and
    PAD_VALUE wherever the windows of the output pass the band's bottom and right edges."""
    x = upsampled(x, shape.upsample, pad_value(shape))
    (kh, kw), (sy, sx), (dy, dx) = shape.kernel, shape.stride, shape.dilation
    rows = (shape.out_height - 1) * sy + (kh - 1) * dy + 1
    cols = (shape.out_width - 1) * sx + (kw - 1) * dx + 1
    top, left = shape.pad
    out = np.full((x.shape[0], rows, cols), pad_value(shape), x.dtype)
    h, w = min(x.shape[1], rows - top), min(x.shape[2], cols - left)
    if h > 0 and w > 0:
        out[:, top : top + h, left : left + w] = x[:, :h, :w]
    return out


def convolve(x: np.ndarray, weights: np.ndarray, shape: ConvShape) -> np.ndarray:
    """acc[k, i, j] = Σ x * w over the window, int64 (depthwise: per channel); float64 sums
    for a float16 task."""
    (kh, kw), (sy, sx), (dy, dx) = shape.kernel, shape.stride, shape.dilation
    oh, ow = shape.out_height, shape.out_width
    xp = padded_input(x, shape).astype(np.float64)
    wf = weights.astype(np.float64)
    taps = wf.reshape(wf.shape[0], -1)
    floating = shape.dtype in FLOAT_STORAGE
    bound = np.abs(taps).sum(axis=1).max(initial=0.0) * np.abs(xp).max(initial=0.0)
    if not floating and bound >= EXACT_LIMIT:
        raise SimulatorError("an accumulator could leave the exact float64 range")
    # every window as a column (C, kh, kw, OH, OW): a strided view, no copy yet
    sc, sh, sw = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, (xp.shape[0], kh, kw, oh, ow), (sc, sh * dy, sw * dx, sh * sy, sw * sx),
        writeable=False,
    )  # fmt: skip
    if shape.depthwise:
        acc = np.einsum("ckl,cklhw->chw", wf, windows)
    else:
        # one matrix product over all taps (float64 sums of integers are exact below 2**53)
        columns = windows.reshape(-1, oh * ow)
        acc = (taps @ columns).reshape(shape.out_channels, oh, ow)
    return acc if floating else np.rint(acc).astype(np.int64)


def run_mac(regs: RegisterFile, memory: Memory, target: Target) -> tuple[ConvShape, np.ndarray]:
    """The CNA + CORE part of a convolution task: (shape, accumulators [K, OH, OW])."""
    shape = conv_shape(regs)
    x = read_cube(memory, shape.input, target)
    weights = cbuf_weights(regs, memory, shape, target)
    acc = convolve(x, weights, shape)
    truncate = regs.field("CORE", "CLIP_TRUNCATE", "CLIP_TRUNCATE")
    if shape.dtype in FLOAT_STORAGE:
        if truncate:
            raise SimulatorError("CORE.CLIP_TRUNCATE on a float16 task")
        return shape, nx.float_accumulator(acc)
    return shape, nx.round_shift(acc, truncate) if truncate else acc
