"""Data movement on NC1HWC2 tensors as PPU copies: a 1 x 1 window, stride 1 (or the slice's
steps), optionally padded (`backends/codegen/pool.py`'s PPU task; the reading is
`backends/registers/ppu_values.py`).

A copy keeps the values (max of a 1 x 1 window) when the input and output quantizations are
equal, and requantizes them otherwise with the 1 x 1 average: `round_shift((x - zp_in) *
M, S) + zp_out`, M and S of `s_in / s_out` (the reference's `_rescaler`, bit for bit).

- concat, axis 1 (channels): one task per input, at output surface `offset // C2` (every
  input but the last must hold a multiple of C2 channels);
- concat, axis 2 (rows): one task per input, at output row `offset`;
- concat, axis 3 (columns): one task per input and row (the PPU has no output line
  stride: a one-row cube needs none);
- slice: one task, the input window from (c0, h0, w0), H/W steps as window strides
  (<= 16); channels from a C2 boundary, step 1;
- pad (constant 0): one task, H/W padding (<= 7 a side) with the input zero point; no N/C
  padding;
- transpose, perm [0, 1, 3, 2] (H <-> W): one task per input column, written as an output
  row;
- reshape of an NC1HWC2 tensor: into a row-major tensor (the flatten before a
  fully_connected: a real layout change), one task writing NCHW (MISC_CTRL.NONALIGN); into
  an NC1HWC2 tensor that only relabels memory (same N and C, same H * W), each surface
  copied as one row (a task per 8192 elements).

float16 tensors are copied as int16 (`copied`): the same bits, C2 and atom.

Not generated here (CPU, or the copy the PPU cannot address): other transposes, resize, an
NC1HWC2 -> NC1HWC2 reshape that changes channels or H * W, planar (NCHW) inputs (PPU_RDMA
reads NC1HWC2 only).
"""

from __future__ import annotations

from collections.abc import Iterator

from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.pool import PpuTask, emit_ppu_task
from backends.codegen.tensors import Placed, placed
from backends.layout import NC1HWC2
from backends.registers.ppu_values import PAD_MAX, POOL_AVERAGE, POOL_MAX
from backends.registers.values import feature_atom
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.attributes import QuantAttr
from dialects.npu.limits import MAX_POOL_STRIDE

CUBE_LIMIT = 1 << 13  # DATA_CUBE_* fields: 13 bits, stored minus one


def _numerics(op: npu.NpuOp, in_q: QuantAttr | None) -> dict[str, int]:
    """The PpuTask fields of a copy from `in_q` into the op's quantization."""
    out_q = op.quant
    if in_q is None or ((in_q.is_float or out_q.is_float) and in_q != out_q):
        raise NotGenerated(f"{op.describe()}: a copy between {in_q} and {out_q} has no code "
                           "generation yet")  # fmt: skip
    if in_q == out_q:
        return {"method": POOL_MAX, "pad_value": in_q.zero_point}
    mant, shift = nx.encode_multiplier(in_q.scale / out_q.scale)
    return {"method": POOL_AVERAGE, "pad_value": in_q.zero_point, "multiplier": mant,
            "shift": shift, "zero_point": out_q.zero_point}  # fmt: skip


def copied(dtype: str) -> str:
    """The precision a copy of `dtype` elements runs in: float16 ones move as the int16 bit
    patterns they are (a 1 x 1 max of one element is that element), so a float16 copy is an
    int16 one and bit-exact; padding writes 0, float16's +0.0."""
    return "i16" if dtype == "f16" else dtype


def _placed_pair(op: npu.NpuOp, value, ctx: OpContext,
                 planar_out: bool = False) -> tuple[Placed, Placed]:  # fmt: skip
    x, y = placed(value, ctx.func), placed(op.output, ctx.func)
    if planar_out and y.planar:
        y = Placed(x.shape, y.dtype, NC1HWC2, x.c2, y.buffer, y.offset)  # checked below
    dtype = op.quant.element
    if dtype not in ("i8", "i16", "f16") or x.dtype != dtype or y.dtype != dtype:
        raise NotGenerated(f"{op.describe()}: {dtype} data movement has no code generation yet")
    if x.layout != NC1HWC2 or y.layout != NC1HWC2 or x.c2 != y.c2:
        raise NotGenerated(f"{op.describe()}: the PPU copies NC1HWC2 tensors of one C2 only")
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1 or y.shape[0] != 1:
        raise NotGenerated(f"{op.describe()}: only batch 1 NC1HWC2 tensors are copied")
    return x, y


def _check(op: npu.NpuOp, *sizes: tuple[int, int, int]) -> None:
    if max(max(s) for s in sizes) > CUBE_LIMIT:
        raise NotGenerated(f"{op.describe()}: a cube side exceeds the PPU's 13-bit fields")


def concat_tasks(op: npu.ConcatOp, ctx: OpContext) -> Iterator[TaskWords]:
    out = placed(op.output, ctx.func)
    if len(out.shape) != 4:
        raise NotGenerated(f"{op.describe()}: concat of {len(out.shape)}-D tensors")
    axis = op.axis.data % 4
    _, _, oh, ow = out.shape
    start = 0
    tasks: list[PpuTask] = []
    for index, value in enumerate(op.inputs):
        x, y = _placed_pair(op, value, ctx)
        _, c, h, w = x.shape
        c2, atom = feature_atom(ctx.target, y.dtype, planar=False)
        numerics = _numerics(op, npu.quant_of(value))
        if axis == 0:
            raise NotGenerated(f"{op.describe()}: concat along the batch")
        if axis == 1 and (start % c2 or (c % c2 and index + 1 < len(op.inputs))):
            raise NotGenerated(f"{op.describe()}: channel concat of inputs not on C2 "
                               f"boundaries ({c} channels at {start})")  # fmt: skip
        rows = range(h) if axis == 3 else [None]
        for row in rows:
            r0, hh = (0, h) if row is None else (row, 1)
            out_c = start // c2 * oh * ow if axis == 1 else 0
            out_r = (start if axis == 2 else r0) * ow
            out_w = start if axis == 3 else 0
            _check(op, (c, hh, w))
            tasks.append(PpuTask(
                dtype=copied(y.dtype), in_address=(x.buffer, x.offset + r0 * w * atom),
                in_size=(c, hh, w), in_line_stride=w, in_surf_stride=h * w,
                out_address=(y.buffer, y.offset + (out_c + out_r + out_w) * atom),
                out_size=(c, hh, w), out_surf_stride=oh * ow, **numerics,
            ))  # fmt: skip
        start += x.shape[axis]
    for task in tasks:
        yield emit_ppu_task(task)


def slice_tasks(op: npu.SliceOp, ctx: OpContext) -> Iterator[TaskWords]:
    x, y = _placed_pair(op, op.input, ctx)
    _, _, h, w = x.shape
    _, oc, oh, ow = y.shape
    starts, steps = npu.ints(op.starts), npu.ints(op.steps)
    c2, atom = feature_atom(ctx.target, y.dtype, planar=False)
    if min(steps) < 1 or steps[0] != 1 or steps[1] != 1:
        raise NotGenerated(f"{op.describe()}: steps {steps}: only positive H/W steps")
    if starts[1] % c2 or max(steps[2:]) > MAX_POOL_STRIDE:
        raise NotGenerated(f"{op.describe()}: channels from {starts[1]} (not on a C2 "
                           f"boundary) or steps {steps[2:]} over {MAX_POOL_STRIDE}")  # fmt: skip
    sy, sx = steps[2], steps[3]
    in_size = (oc, (oh - 1) * sy + 1, (ow - 1) * sx + 1)
    _check(op, in_size)
    first = (starts[1] // c2 * h + starts[2]) * w + starts[3]
    yield emit_ppu_task(PpuTask(
        dtype=copied(y.dtype), in_address=(x.buffer, x.offset + first * atom), in_size=in_size,
        in_line_stride=w, in_surf_stride=h * w, out_address=(y.buffer, y.offset),
        out_size=(oc, oh, ow), out_surf_stride=oh * ow, stride=(sy, sx),
        **_numerics(op, npu.quant_of(op.input)),
    ))  # fmt: skip


def pad_tasks(op: npu.PadOp, ctx: OpContext) -> Iterator[TaskWords]:
    x, y = _placed_pair(op, op.input, ctx)
    _, c, h, w = x.shape
    _, _, oh, ow = y.shape
    pads = npu.ints(op.pads)
    if op.value.value.data != 0.0:
        raise NotGenerated(f"{op.describe()}: padding with {op.value.value.data}, not 0")
    begin, end = pads[:4], pads[4:]
    if begin[:2] != [0, 0] or end[:2] != [0, 0] or min(pads) < 0 or max(pads) > PAD_MAX:
        raise NotGenerated(f"{op.describe()}: pads {pads}: only H/W padding of 0..{PAD_MAX}")
    _check(op, (c, oh, ow))
    yield emit_ppu_task(PpuTask(
        dtype=copied(y.dtype), in_address=(x.buffer, x.offset), in_size=(c, h, w), in_line_stride=w,
        in_surf_stride=h * w, out_address=(y.buffer, y.offset), out_size=(c, oh, ow),
        out_surf_stride=oh * ow, pads=(begin[2], begin[3], end[2], end[3]),
        **_numerics(op, npu.quant_of(op.input)),
    ))  # fmt: skip


def reshape_tasks(op: npu.ReshapeOp, ctx: OpContext) -> Iterator[TaskWords]:
    """A reshape of an NC1HWC2 tensor: into a row-major tensor (the flatten before a
    fully_connected), the input written NCHW (MISC_CTRL.NONALIGN: C2 = 1, line stride W,
    surface stride H * W), whose row-major bytes are every reshape's; into an NC1HWC2
    tensor of the same channels and H * W, each surface copied as one row."""
    out = placed(op.output, ctx.func)
    x, _ = _placed_pair(op, op.input, ctx, planar_out=True)
    _, c, h, w = x.shape
    numerics = _numerics(op, npu.quant_of(op.input))
    _, atom = feature_atom(ctx.target, out.dtype, planar=False)
    if out.planar:
        _check(op, (c, h, w))
        yield emit_ppu_task(PpuTask(
            dtype=copied(out.dtype), in_address=(x.buffer, x.offset), in_size=(c, h, w),
            in_line_stride=w, in_surf_stride=h * w, out_address=(out.buffer, out.offset),
            out_size=(c, h, w), out_surf_stride=h * w, out_planar=True, **numerics,
        ))  # fmt: skip
        return
    if len(out.shape) != 4 or c != out.shape[1] or h * w != out.shape[2] * out.shape[3]:
        raise NotGenerated(f"{op.describe()}: a reshape {list(x.shape)} -> {list(out.shape)} "
                           f"that moves data across NC1HWC2 surfaces")  # fmt: skip
    plane = h * w
    for first in range(0, plane, CUBE_LIMIT):
        width = min(CUBE_LIMIT, plane - first)
        yield emit_ppu_task(PpuTask(
            dtype=copied(out.dtype), in_address=(x.buffer, x.offset + first * atom),
            in_size=(c, 1, width), in_line_stride=plane, in_surf_stride=plane,
            out_address=(out.buffer, out.offset + first * atom), out_size=(c, 1, width),
            out_surf_stride=plane, **numerics,
        ))  # fmt: skip


def transpose_tasks(op: npu.TransposeOp, ctx: OpContext) -> Iterator[TaskWords]:
    """perm [0, 1, 3, 2] (H <-> W) of an NC1HWC2 tensor: one task per input column j, read
    as a W-strided H x 1 cube and written as output row j (an output cube one column wide
    has line stride 1: its H elements are the row's consecutive atoms)."""
    perm = npu.ints(op.perm)
    if perm not in ([0, 1, 3, 2], [0, 1, 2, 3]):
        raise NotGenerated(f"{op.describe()}: perm {perm}: only H <-> W moves on the PPU")
    x, y = _placed_pair(op, op.input, ctx)
    _, c, h, w = x.shape
    _, atom = feature_atom(ctx.target, y.dtype, planar=False)
    numerics = _numerics(op, npu.quant_of(op.input))
    _check(op, (c, h, w))
    if perm == [0, 1, 2, 3]:
        yield emit_ppu_task(PpuTask(
            dtype=copied(y.dtype), in_address=(x.buffer, x.offset), in_size=(c, h, w),
            in_line_stride=w, in_surf_stride=h * w, out_address=(y.buffer, y.offset),
            out_size=(c, h, w), out_surf_stride=h * w, **numerics,
        ))  # fmt: skip
        return
    for j in range(w):
        yield emit_ppu_task(PpuTask(
            dtype=copied(y.dtype), in_address=(x.buffer, x.offset + j * atom), in_size=(c, h, 1),
            in_line_stride=w, in_surf_stride=h * w,
            out_address=(y.buffer, y.offset + j * h * atom),
            out_size=(c, h, 1), out_surf_stride=h * w, **numerics,
        ))  # fmt: skip
