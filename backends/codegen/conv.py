"""`npu.conv2d` -> MAC-array tasks: direct, depthwise (CONV_MODE 3), grouped (block-diagonal
dense weights, exact: the zeros add nothing), strided, padded, dilated, with the DPU
activations and the residual add of `dpu.py`. int8, int16 and float16 (float16 weights,
`dpu.py`'s float path; no leaky / prelu yet).

Per channel group (c0, c1) of `backend.tasks` (tile) the weight blob gets the packed
weights and the BS operand table of the group's output channels; every row band of the
group is one task reading them (CBUF_CON0.WEIGHT_REUSE after the first band). A task's
input band is the rows its output rows read (`backends.cbuf.conv_input_rows`), its input
channels the ones its output channels read (all of them for group 1; a group's own
channels, down to a C2 boundary, for grouped and depthwise convolutions). PAD_TOP is the
padding above the band (on the first band only, unless the padding is taller than a
stride); bottom and right padding are where the windows leave the band (no register).

`convolution_tasks` (from the weights as a direct convolution reads them and the output
stage on) is shared with `conv_transpose.py` and `resize.py`, whose bands run over the
upsampled input (`input_band`, CNA deconvolution [ours]: `mac_task.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from backends.cbuf import (
    Cbuf,
    align_up,
    ceil_div,
    conv_input_rows,
    group_input_channels,
    transposed_input_rows,
)
from backends.cbuf import weight_bytes as cbuf_weight_bytes
from backends.codegen.dpu import OutputStage, ResidualRead, plan_layer_stage
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import MacTask, OpContext, emit_mac_task
from backends.codegen.packing import (
    STORAGE,
    block_diagonal,
    little_endian,
    pack_conv_weights,
    pack_depthwise_weights,
    window,
)
from backends.codegen.tensors import Placed, placed
from backends.codegen.weights import op_arrays
from backends.layout import NC1HWC2, NCHW
from backends.registers import RK3588
from backends.registers.values import (
    CBUF_ENTRIES_PER_BANK,
    ELEMENT_BYTES,
    feature_atom,
    weight_atoms,
)
from backends.targets import Target
from dialects.errors import CompilerError
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks

# the ops this module's tasks compute: transposed convolutions and nearest upsampling
# (`conv_transpose.py`, `resize.py`) map onto the convolution's tasks
MacOp = npu.Conv2dOp | npu.ConvTransposeOp | npu.ResizeOp
PAD_MAX = RK3588.register("CNA", "PAD_CON0").field("PAD_TOP").max_value


@dataclass(frozen=True)
class Geometry:
    """A 2-D convolution's shape numbers."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    groups: int
    depthwise: bool
    # a transposed convolution's upsampling (y, x): the CNA inserts `upsample - 1` rows and
    # columns of PAD_VALUE between input pixels (CNA_CONV_CON1.DECONV, `mac_task.py`)
    upsample: tuple[int, int] = (1, 1)

    @property
    def deconv(self) -> bool:
        return self.upsample != (1, 1)


def conv_tasks(op: npu.Conv2dOp, ctx: OpContext) -> Iterator[TaskWords]:
    """The tasks of `op`, in `backend.tasks` order."""
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    dtype = conv_dtype(op, x, y)
    arrays = op_arrays(op, ctx.weights)
    cin, cout = x.shape[1], y.shape[1]
    groups = op.group.data
    depthwise = groups == cin == cout and arrays.logical.shape[1] == 1
    kh, kw = arrays.logical.shape[2:]
    (sy, sx), (dy, dx) = npu.ints(op.strides), npu.ints(op.dilations)
    geometry = Geometry((kh, kw), (sy, sx), (dy, dx), tuple(npu.ints(op.pads)), groups, depthwise)
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    residual_q = npu.quant_of(op.residual) if op.residual is not None else None
    stage = plan_layer_stage(op, arrays.folded_bias(in_q.zero_point), residual_q)
    z = placed(op.residual, ctx.func) if op.residual is not None else None
    if z is not None and z.layout not in (NC1HWC2, NCHW):
        raise NotGenerated(f"{op.describe()}: residual layout {z.layout} is not read yet")
    yield from convolution_tasks(op, geometry, arrays.padded, stage, (x, y, z), dtype, ctx)


def convolution_tasks(op: MacOp, geometry: Geometry,
                      weights: np.ndarray, stage: OutputStage,
                      tensors: tuple[Placed, Placed, Placed | None], dtype: str,
                      ctx: OpContext) -> Iterator[TaskWords]:  # fmt: skip
    """The tasks of a convolution whose weights are `weights` ([K, C / groups, Kh, Kw], as
    a direct convolution reads them) and whose output stage is `stage`."""
    x, y, z = tensors
    if not 0 <= geometry.pads[1] <= PAD_MAX:
        raise CompilerError(f"{op.describe()}: left padding {geometry.pads[1]} is not in "
                            f"[0, {PAD_MAX}]")  # fmt: skip
    if geometry.groups > 1 and not geometry.depthwise:
        weights = block_diagonal(weights, geometry.groups)
    tasks = get_tasks(op)
    if not tasks:
        raise CompilerError(f"{op.describe()}: no backend.tasks: run tile first")
    group_start: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {}
    for y0, y1, c0, c1 in tasks:
        key = (c0, c1)
        first = key not in group_start
        if first:
            group_start[key] = _pack_group(weights, stage, geometry, x, y, dtype, c0, c1, ctx)
        weight_address, table_address = group_start[key]
        task = _task(op, geometry, x, y, z, dtype, (y0, y1, c0, c1), ctx.target,
                     weight_address, table_address, reuse=not first)  # fmt: skip
        yield emit_mac_task(task, stage)


def conv_dtype(op: npu.Conv2dOp | npu.ConvTransposeOp, x: Placed, y: Placed) -> str:
    for role, where in (("input", x), ("output", y)):
        if where.layout not in (NC1HWC2, NCHW):
            raise NotGenerated(f"{op.describe()}: {role} layout {where.layout} is not read yet")
    dtype = op.quant.element
    if dtype not in ("i8", "i16", "f16"):
        raise NotGenerated(f"{op.describe()}: {dtype} convolutions have no code generation yet")
    if x.dtype != dtype or y.dtype != dtype:
        raise CompilerError(f"{op.describe()}: input {x.dtype}, output {y.dtype}, op {dtype}")
    weights = op.weight_quant.element
    if dtype == "f16" and weights != dtype:
        raise NotGenerated(f"{op.describe()}: {weights} weights beside float16 activations "
                           "have no code generation yet")  # fmt: skip
    if weights != dtype:
        raise CompilerError(f"{op.describe()}: {weights} weights beside {dtype}")
    return dtype


def input_window(g: Geometry, x: Placed, y: Placed, c0: int, c1: int) -> tuple[int, int]:
    """Input channels [ci0, ci1) the output channels [c0, c1) read; ci0 on a C2 boundary of
    the input's layout."""
    cin, cout = x.shape[1], y.shape[1]
    if g.depthwise:
        return c0, min(c1, cin)
    if g.groups == 1:
        return 0, cin
    i0, i1 = group_input_channels(c0, c1, cout, cin, g.groups)
    return i0 - i0 % x.c2, i1


def output_kernels(y: Placed, c0: int, c1: int) -> int:
    """Kernels a direct-convolution task computes: [c0, c1) up to the output's C2 (the
    padding lanes compute the zero point and are not written)."""
    return align_up(c1 - c0, y.c2)


def _pack_group(weights: np.ndarray, stage: OutputStage, g: Geometry, x: Placed, y: Placed,
                dtype: str, c0: int, c1: int,
                ctx: OpContext) -> tuple[tuple[int, int], tuple[int, int]]:  # fmt: skip
    """Packed weights and operand table of output channels [c0, c1), added to the blob."""
    atoms = weight_atoms(ctx.target, dtype)
    cbuf_c2 = ctx.target.c2(dtype)
    ci0, ci1 = input_window(g, x, y, c0, c1)
    channels = align_up(ci1 - ci0, cbuf_c2)
    if g.depthwise:
        dw = window(weights, (c0, c0 + channels), (0, 1))[:, 0]
        packed = pack_depthwise_weights(dw, atoms.depthwise)
        outputs = channels
    else:
        kernels = output_kernels(y, c0, c1)
        dense = window(weights, (c0, c0 + kernels), (ci0, ci0 + channels))
        packed = pack_conv_weights(dense, atoms.cout2, atoms.cin2)
        outputs = kernels
    weight_address = ctx.blob.add(little_endian(packed.astype(STORAGE[dtype])))
    table_address = ctx.blob.add(stage.table(c0, outputs))
    return weight_address, table_address


def input_band(g: Geometry, y0: int, y1: int, in_rows: int) -> tuple[int, int, int]:
    """(first input row, end row, PAD_TOP) of the band output rows [y0, y1) read. A
    transposed convolution's windows run over the upsampled rows: upsampled row u holds
    input row u / s when s divides u; the band's padding above it is the distance from the
    first window row, y0 - pad_top, to the band's first row, r0 * s (at most s - 1 on a band
    within the input)."""
    (kh, _), (sy, _), (dy, _), pad_top = g.kernel, g.stride, g.dilation, g.pads[0]
    if not g.deconv:
        r0, r1 = conv_input_rows(y0, y1, sy, pad_top, kh, dy, in_rows)
        return r0, r1, max(0, pad_top - y0 * sy)
    s = g.upsample[0]
    # transposed_input_rows takes the transposed convolution's own top padding
    r0, r1 = transposed_input_rows(y0, y1, s, (kh - 1) * dy - pad_top, kh, dy, in_rows)
    return r0, r1, r0 * s - (y0 - pad_top)


def _task(op: MacOp, g: Geometry, x: Placed, y: Placed, z: Placed | None, dtype: str,
          task: tuple[int, int, int, int], target: Target, weight_address: tuple[int, int],
          table_address: tuple[int, int], reuse: bool) -> MacTask:  # fmt: skip
    y0, y1, c0, c1 = task
    (kh, kw), (sy, sx) = g.kernel, g.stride
    _, _, h, w = x.shape
    _, _, oh, ow = y.shape
    r0, r1, band_pad = input_band(g, y0, y1, h)
    if r1 <= r0:
        raise CompilerError(f"{op.describe()}: output rows [{y0}, {y1}) read no input row")
    if band_pad > PAD_MAX:
        raise CompilerError(f"{op.describe()}: top padding {band_pad} exceeds {PAD_MAX}")
    cbuf_c2 = target.c2(dtype)
    ci0, ci1 = input_window(g, x, y, c0, c1)
    channels = align_up(ci1 - ci0, cbuf_c2)
    atoms = weight_atoms(target, dtype)
    size = ELEMENT_BYTES[dtype]
    if g.depthwise:
        kernels, outputs = 1, channels
        per_kernel = kh * kw * align_up(channels, atoms.depthwise) * size
        total = per_kernel
    else:
        kernels = outputs = output_kernels(y, c0, c1)
        per_kernel = kh * kw * align_up(channels, atoms.cin2) * size
        total = align_up(kernels, atoms.cout2) * per_kernel
    in_c2, in_atom = feature_atom(target, dtype, x.planar)
    in_offset = x.offset + ((ci0 // in_c2) * h * w + r0 * w) * in_atom
    out_c2, out_atom = feature_atom(target, dtype, y.planar)
    out_offset = y.offset + ((c0 // out_c2) * oh * ow + y0 * ow) * out_atom
    cbuf = Cbuf(target.cbuf_banks, target.cbuf_bank_bytes)
    per_group = x.shape[1] // g.groups
    split = cbuf.split(cbuf_weight_bytes(c1 - c0, per_group, kh * kw, 8 * size))
    if split is None:
        raise CompilerError(
            f"{op.describe()}: the weights of channels [{c0}, {c1}) exceed the CBUF"
        )
    entry = target.cbuf_bank_bytes // CBUF_ENTRIES_PER_BANK
    row_bytes = w * ceil_div(channels, cbuf_c2) * cbuf_c2 * size
    residual = None
    if z is not None:
        z_c2, z_atom = feature_atom(target, z.dtype, z.planar)
        z_offset = z.offset + ((c0 // z_c2) * oh * ow + y0 * ow) * z_atom
        residual = ResidualRead((z.buffer, z_offset), oh * ow, z.planar)
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    return MacTask(
        dtype=dtype, depthwise=g.depthwise, in_address=(x.buffer, in_offset),
        in_planar=x.planar, in_width=w, in_height=r1 - r0, in_channels=channels,
        in_real=min(ci1, x.shape[1]) - ci0, line_stride=w, surf_stride=h * w,
        pad_top=band_pad, pad_left=g.pads[1], pad_value=in_q.zero_point, stride=(sy, sx),
        dilation=g.dilation, upsample=g.upsample, weight_address=weight_address,
        kernel=(kh, kw), kernels=kernels,
        weight_bytes=total, weight_bytes_per_kernel=per_kernel, data_banks=split.data_banks,
        weight_banks=split.weight_banks, weight_reuse=reuse,
        data_entries=ceil_div(row_bytes, entry), out_address=(y.buffer, out_offset),
        out_planar=y.planar, out_width=ow, out_height=y1 - y0, out_channels=outputs,
        out_real=c1 - c0, out_surf_stride=oh * ow, table_address=table_address,
        residual=residual,
    )  # fmt: skip
