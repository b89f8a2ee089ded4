"""`npu.pool` -> PPU tasks (op-enable PPU | PPU_RDMA; the register reading is
`backends/registers/ppu_values.py`).

One PPU task per tile task (y0, y1, c0, c1) of the tile pass: PPU_RDMA reads the input rows
the output rows [y0, y1) need (NC1HWC2, channels [c0, c1) from surface c0 // C2), the PPU
pads them (the band's own top/bottom padding, the op's left/right) and pools, and writes
output rows [y0, y1) of channels [c0, c1).

- max: the input's quantization is kept (the lowering never requantizes a max pooling); the
  padding is the dtype's minimum. float16: float16 precisions, the padding -inf
  (`FLOAT16_NEGATIVE_INFINITY`, its bit pattern in PAD_VALUE_0 [ours]).
- average (and global average): the contract's `round_shift(sum * M, S) + zp_out` with one
  (M, S) for the whole output, so every window must count the same number of elements
  (count_include_pad, or no padding); otherwise (per-position multipliers) NotGenerated.
  float16 [ours]: padding +0.0, the window's sum (exact in the PPU's wide accumulator, as
  in the reference's float64) divided by the window's size, rounded to float32, then
  float16; RECIP_KERNEL_* unused (0).
- kernels and strides up to 16 (4-bit fields), paddings up to 7 (3-bit fields); an int8
  global average pooling over more than 16 rows or columns runs in two passes through the
  op's scratch (`backends/pool_split.py`): int8 -> int16 partial sums, int16 -> the output
  (PPU_RDMA.RDMA_DATA_FORMAT.IN_PRECISION the input's precision, PPU.DATA_FORMAT.
  PROC_PRECISION the output's [ours]); other wide global poolings are NotGenerated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from backends.cbuf import conv_input_rows
from backends.codegen.buffers import ARENA
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import Placed, placed
from backends.layout import NC1HWC2
from backends.pool_split import PARTIAL_DTYPE, PoolSplit, split_of
from backends.registers.ppu_values import (
    FLYING_MODE_OFF,
    PAD_MAX,
    POOL_AVERAGE,
    POOL_MAX,
    ZERO_POINT_BITS,
    to_field,
)
from backends.registers.values import PRECISION, feature_atom, raw32
from backends.targets import Target
from dialects.errors import CompilerError
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.npu.limits import MAX_POOL_KERNEL, MAX_POOL_STRIDE
from dialects.npu.placement import get_tasks

PPU_BLOCKS = ("PPU", "PPU_RDMA")
Address = tuple[int, int]  # (buffer id, offset)


@dataclass(frozen=True)
class PpuTask:
    """One PPU task: `in_*` the cube PPU_RDMA reads, `out_*` the cube the PPU writes
    (strides in atoms), the window and padding (top, left, bottom, right)."""

    dtype: str
    in_address: Address
    in_size: tuple[int, int, int]  # channels, height, width
    in_line_stride: int
    in_surf_stride: int
    out_address: Address
    out_size: tuple[int, int, int]
    out_surf_stride: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    method: int = POOL_MAX
    out_planar: bool = False  # MISC_CTRL.NONALIGN: the output row-major (C2 = 1)
    pad_value: int = 0
    multiplier: int = 0
    shift: int = 0
    zero_point: int = 0
    out_dtype: str | None = None  # the output's precision when it is not `dtype` [ours]


def emit_ppu_task(t: PpuTask) -> TaskWords:
    w = TaskWords()
    w.blocks = PPU_BLOCKS
    c, h, wd = t.in_size
    oc, oh, ow = t.out_size
    for name, limit, value in (("kernel", MAX_POOL_KERNEL, max(t.kernel)),
                               ("stride", MAX_POOL_STRIDE, max(t.stride)),
                               ("padding", PAD_MAX + 1, max(t.pads) + 1)):  # fmt: skip
        if value > limit:
            raise CompilerError(f"PPU task: {name} {value} exceeds its field")
    w.write("PPU_RDMA", "RDMA_CUBE_IN_WIDTH", CUBE_IN_WIDTH=wd - 1)
    w.write("PPU_RDMA", "RDMA_CUBE_IN_HEIGHT", CUBE_IN_HEIGHT=h - 1)
    w.write("PPU_RDMA", "RDMA_CUBE_IN_CHANNEL", CUBE_IN_CHANNEL=c - 1)
    w.address("PPU_RDMA", "RDMA_SRC_BASE_ADDR", *t.in_address)
    w.write("PPU_RDMA", "RDMA_SRC_LINE_STRIDE", SRC_LINE_STRIDE=t.in_line_stride)
    w.write("PPU_RDMA", "RDMA_SRC_SURF_STRIDE", SRC_SURF_STRIDE=t.in_surf_stride)
    w.write("PPU_RDMA", "RDMA_DATA_FORMAT", IN_PRECISION=PRECISION[t.dtype])
    w.write("PPU", "DATA_CUBE_IN_WIDTH", CUBE_IN_WIDTH=wd - 1)
    w.write("PPU", "DATA_CUBE_IN_HEIGHT", CUBE_IN_HEIGHT=h - 1)
    w.write("PPU", "DATA_CUBE_IN_CHANNEL", CUBE_IN_CHANNEL=c - 1)
    w.write("PPU", "DATA_CUBE_OUT_WIDTH", CUBE_OUT_WIDTH=ow - 1)
    w.write("PPU", "DATA_CUBE_OUT_HEIGHT", CUBE_OUT_HEIGHT=oh - 1)
    w.write("PPU", "DATA_CUBE_OUT_CHANNEL", CUBE_OUT_CHANNEL=oc - 1)
    w.write("PPU", "OPERATION_MODE_CFG", FLYING_MODE=FLYING_MODE_OFF, POOLING_METHOD=t.method)
    w.write("PPU", "POOLING_KERNEL_CFG", KERNEL_HEIGHT=t.kernel[0] - 1,
            KERNEL_WIDTH=t.kernel[1] - 1, KERNEL_STRIDE_HEIGHT=t.stride[0] - 1,
            KERNEL_STRIDE_WIDTH=t.stride[1] - 1)  # fmt: skip
    w.write("PPU", "RECIP_KERNEL_WIDTH", RECIP_KERNEL_WIDTH=t.multiplier)
    w.write("PPU", "RECIP_KERNEL_HEIGHT", RECIP_KERNEL_HEIGHT=t.shift)
    top, left, bottom, right = t.pads
    w.write("PPU", "POOLING_PADDING_CFG", PAD_TOP=top, PAD_LEFT=left, PAD_BOTTOM=bottom,
            PAD_RIGHT=right)  # fmt: skip
    w.write("PPU", "PADDING_VALUE_1_CFG", PAD_VALUE_0=raw32(t.pad_value))
    w.address("PPU", "DST_BASE_ADDR", *t.out_address)
    w.write("PPU", "DST_SURF_STRIDE", DST_SURF_STRIDE=t.out_surf_stride)
    w.write("PPU", "DATA_FORMAT", INDEX_ADD=to_field(t.zero_point, ZERO_POINT_BITS),
            PROC_PRECISION=PRECISION[t.out_dtype or t.dtype])  # fmt: skip
    w.write("PPU", "MISC_CTRL", NONALIGN=int(t.out_planar))
    return w


def pool_tasks(op: npu.PoolOp, ctx: OpContext) -> Iterator[TaskWords]:
    for task in pool_plan(op, ctx):
        yield emit_ppu_task(task)


# [ours] a float16 PPU task's PADDING_VALUE holds the padding's float16 bit pattern: -inf,
# the identity of a max, which is how ONNX's MaxPool treats its padding
FLOAT16_NEGATIVE_INFINITY = int(np.float16(-np.inf).view(np.uint16))


def pool_plan(op: npu.PoolOp, ctx: OpContext) -> list[PpuTask]:
    """The PPU tasks of `op` (a NotGenerated for the forms the PPU does not cover)."""
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    dtype = op.quant.element
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    if dtype not in ("i8", "i16", "f16") or x.dtype != dtype or y.dtype != dtype:
        raise NotGenerated(f"{op.describe()}: {dtype} pooling has no code generation yet")
    if x.layout != NC1HWC2 or y.layout != NC1HWC2 or x.c2 != y.c2:
        raise NotGenerated(f"{op.describe()}: the PPU pools NC1HWC2 tensors of one C2 only")
    _, _, h, w = x.shape
    kernel = tuple(npu.ints(op.kernel_shape))
    strides = tuple(npu.ints(op.strides))
    pads = tuple(npu.ints(op.pads)) if not op.global_pool.data else (0, 0, 0, 0)
    if op.global_pool.data:
        kernel, strides = (h, w), (1, 1)
        split = split_of(op)
        if split is not None and dtype == "f16":
            raise NotGenerated(f"{op.describe()}: a float16 global pooling over more than the "
                               "PPU's window has no code generation yet")  # fmt: skip
        if split is not None:
            return _split_plan(op, x, y, ctx, split)
    if max(kernel) > MAX_POOL_KERNEL or max(strides) > MAX_POOL_STRIDE:
        raise NotGenerated(f"{op.describe()}: window {list(kernel)} / stride {list(strides)} "
                           f"exceeds the PPU's 4-bit fields (no split reduction yet)")  # fmt: skip
    if max(pads[1], pads[3]) > PAD_MAX:
        raise NotGenerated(f"{op.describe()}: padding {list(pads)} exceeds {PAD_MAX}")
    lo = FLOAT16_NEGATIVE_INFINITY if dtype == "f16" else nx.qrange(dtype)[0]
    if op.kind.data == "max":
        if (in_q.scale, in_q.zero_point) != (op.quant.scale, op.quant.zero_point):
            raise NotGenerated(f"{op.describe()}: a max pooling that requantizes")
        method, pad_value, mant, shift, zp = POOL_MAX, lo, 0, 0, 0
    else:
        if any(pads) and not op.count_include_pad.data:
            raise NotGenerated(f"{op.describe()}: windows of different sizes (per-position "
                               f"multipliers) have no PPU form")  # fmt: skip
        if dtype == "f16":  # the PPU divides the window's exact sum by its size [ours]
            method, pad_value, mant, shift, zp = POOL_AVERAGE, 0, 0, 0, 0
        else:
            # the reference's multiplier: s_in / (s_out * count), count the whole window
            count = np.float64(kernel[0] * kernel[1])
            mant, shift = nx.encode_multiplier(float(in_q.scale / (op.quant.scale * count)))
            method, pad_value, zp = POOL_AVERAGE, in_q.zero_point, op.quant.zero_point
    tasks = get_tasks(op)
    if not tasks:
        raise CompilerError(f"{op.describe()}: no backend.tasks: run tile first")
    return [_task(op, x, y, ctx.target, dtype, kernel, strides, pads, t, method, pad_value,
                  mant, shift, zp) for t in tasks]  # fmt: skip


def _split_plan(op: npu.PoolOp, x: Placed, y: Placed, ctx: OpContext,
                split: PoolSplit) -> list[PpuTask]:  # fmt: skip
    """Two PPU tasks per tile of channels (`backends/pool_split.py`): partial sums into the
    op's scratch, then their pooling with the contract's multiplier."""
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    scratch = pl.get_int(op, pl.SCRATCH_OFFSET)
    if scratch is None:
        raise CompilerError(f"{op.describe()}: no backend.scratch_offset: run plan-memory first")
    _, _, h, w = x.shape
    (kh, kw), (h2, w2), (bottom, right) = split.window, split.partial, split.pads
    count = np.float64(h * w)
    mant, shift = nx.encode_multiplier(float(in_q.scale / (op.quant.scale * count)))
    c2_in, atom_in = feature_atom(ctx.target, "i8", planar=False)
    c2_mid, atom_mid = feature_atom(ctx.target, PARTIAL_DTYPE, planar=False)
    c2_out, atom_out = feature_atom(ctx.target, op.quant.element, planar=False)
    tasks = []
    for _, _, c0, c1 in get_tasks(op):
        if c0 % max(c2_in, c2_mid, c2_out):
            raise NotGenerated(f"{op.describe()}: a task starts at channel {c0}")
        middle = (ARENA, scratch + (c0 // c2_mid) * h2 * w2 * atom_mid)
        tasks.append(PpuTask(
            dtype="i8", method=POOL_AVERAGE, out_dtype=PARTIAL_DTYPE,
            in_address=(x.buffer, x.offset + (c0 // c2_in) * h * w * atom_in),
            in_size=(c1 - c0, h, w), in_line_stride=w, in_surf_stride=h * w,
            out_address=middle, out_size=(c1 - c0, h2, w2), out_surf_stride=h2 * w2,
            kernel=(kh, kw), stride=(kh, kw), pads=(0, 0, bottom, right),
            pad_value=in_q.zero_point, multiplier=1, shift=0, zero_point=0))  # fmt: skip
        tasks.append(PpuTask(
            dtype=PARTIAL_DTYPE, method=POOL_AVERAGE, out_dtype=op.quant.element,
            in_address=middle, in_size=(c1 - c0, h2, w2), in_line_stride=w2,
            in_surf_stride=h2 * w2,
            out_address=(y.buffer, y.offset + (c0 // c2_out) * atom_out),
            out_size=(c1 - c0, 1, 1), out_surf_stride=1, kernel=(h2, w2),
            pad_value=0, multiplier=mant, shift=shift, zero_point=op.quant.zero_point))  # fmt: skip
    return tasks


def _task(op: npu.PoolOp, x: Placed, y: Placed, target: Target, dtype: str,
          kernel: tuple[int, ...], strides: tuple[int, ...], pads: tuple[int, ...],
          task: tuple[int, int, int, int], method: int, pad_value: int, mant: int, shift: int,
          zp: int) -> PpuTask:  # fmt: skip
    y0, y1, c0, c1 = task
    _, _, h, w = x.shape
    _, _, oh, ow = y.shape
    c2, atom = feature_atom(target, dtype, planar=False)
    if c0 % c2:
        raise CompilerError(f"{op.describe()}: task channels start at {c0}, not on a C2 boundary")
    r0, r1 = conv_input_rows(y0, y1, strides[0], pads[0], kernel[0], 1, h)
    top = max(0, pads[0] - y0 * strides[0])
    bottom = max(0, (y1 - 1) * strides[0] - pads[0] + kernel[0] - r1)
    if max(top, bottom) > PAD_MAX:
        raise NotGenerated(f"{op.describe()}: padding {top}/{bottom} exceeds {PAD_MAX}")
    surface = c0 // c2
    return PpuTask(
        dtype=dtype, method=method,
        in_address=(x.buffer, x.offset + (surface * h * w + r0 * w) * atom),
        in_size=(c1 - c0, r1 - r0, w), in_line_stride=w, in_surf_stride=h * w,
        out_address=(y.buffer, y.offset + (surface * oh * ow + y0 * ow) * atom),
        out_size=(c1 - c0, y1 - y0, ow), out_surf_stride=oh * ow,
        kernel=(kernel[0], kernel[1]), stride=(strides[0], strides[1]),
        pads=(top, pads[1], bottom, pads[3]), pad_value=pad_value, multiplier=mant,
        shift=shift, zero_point=zp,
    )  # fmt: skip
