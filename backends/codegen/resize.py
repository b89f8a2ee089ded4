"""`npu.resize`, nearest, by an integer factor -> MAC-array tasks: a depthwise transposed
convolution (`conv_transpose.py`, the CNA's deconvolution [ours]) with stride = kernel =
the factor s (per axis), every weight 1 and no padding, and an identity output stage.

Why it is exact: output row y reads source row floor(y / s) for the coordinate modes
accepted here (asymmetric with floor: y / s; half_pixel and pytorch_half_pixel, any
nearest mode: (y + 0.5) / s - 0.5 = q + (2r + 1 - s) / 2s for y = qs + r, whose fraction
lies in (-1/2, 1/2), so it rounds to q). The stride-1 window of output y over the input
upsampled by s (padding s - 1 above and left) covers upsampled rows [y - s + 1, y], of which
exactly one, s * floor(y / s), is an input row; the others are PAD_VALUE = zp_in, and the
folded bias -zp_in * s * s cancels them: acc = x[floor(y / s)] - zp_in. With the input's
quantization equal to the output's (lower-to-npu gives a nearest resize its input's), the
multiplier is 1 (M = 2**S exactly) and y = acc + zp_out = x, the reference's copy. A
float16 resize is the same over the float path: padding +0.0, weights 1.0, so the sum is
x + 0.0 = x, except that a -0.0 comes out +0.0, which the reference executor's float16
nearest resize does as well.

Not generated: linear modes, non-integer or shrinking scales, other coordinate modes, and
different input and output quantization. The tile pass gives a resize done this way the
row bands and weight banks of a transposed convolution (`nearest_upsampling`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from backends.codegen.conv import Geometry, convolution_tasks
from backends.codegen.conv_transpose import UPSAMPLE_MAX
from backends.codegen.dpu import plan_float_output_stage, plan_output_stage
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import placed
from backends.layout import NC1HWC2, NCHW
from dialects.npu import ops as npu
from dialects.npu import placement as pl

HALF_PIXEL = ("half_pixel", "pytorch_half_pixel")


def resize_tasks(op: npu.ResizeOp, ctx: OpContext) -> Iterator[TaskWords]:
    """The tasks of `op`, in `backend.tasks` order."""
    sy, sx = upsampling_scales(op)
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    for role, where in (("input", x), ("output", y)):
        if where.layout not in (NC1HWC2, NCHW):
            raise NotGenerated(f"{op.describe()}: {role} layout {where.layout} is not read yet")
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    channels = x.shape[1]
    geometry = Geometry((sy, sx), (1, 1), (1, 1), (sy - 1, sx - 1, sy - 1, sx - 1), channels,
                        depthwise=True, upsample=(sy, sx))  # fmt: skip
    if op.quant.element == "f16":  # the one sample plus +0.0 padding: x, with -0.0 as +0.0
        weights = np.ones((channels, 1, sy, sx), np.float16)
        stage = plan_float_output_stage(bias=np.zeros(channels, np.float32), activation="none",
                                        act_params=[], where=op.describe())  # fmt: skip
    else:
        weights = np.ones((channels, 1, sy, sx), np.int64)
        stage = plan_output_stage(
            in_q=in_q, out_q=op.quant, weight_scales=np.ones(channels), channels=channels,
            folded_bias=np.full(channels, -in_q.zero_point * sy * sx, np.int64),
            activation="none", act_params=[], where=op.describe(),
        )  # fmt: skip
    yield from convolution_tasks(op, geometry, weights, stage, (x, y, None), op.quant.element,
                                 ctx)  # fmt: skip


def upsampling_scales(op: npu.ResizeOp) -> tuple[int, int]:
    """(sy, sx) of a resize this module generates; NotGenerated says why another is not."""
    where = op.describe()
    if op.mode.data != "nearest":
        raise NotGenerated(f"{where}: {op.mode.data} resize has no code generation yet")
    in_q = npu.quant_of(op.input)
    if in_q is None or in_q != op.quant or in_q.element == "f32":
        raise NotGenerated(f"{where}: a nearest resize that requantizes is not generated yet")
    (_, _, h, w), (_, _, oh, ow) = npu.in_shape(op.input), op.shape
    if oh % h or ow % w or oh < h or ow < w:
        raise NotGenerated(f"{where}: {h}x{w} -> {oh}x{ow} is not an integer upsampling")
    if max(oh // h, ow // w) > UPSAMPLE_MAX:
        raise NotGenerated(f"{where}: upsampling by more than {UPSAMPLE_MAX}")
    mode, rounding = op.coordinate_transformation_mode.data, op.nearest_mode.data
    if not (mode in HALF_PIXEL or (mode == "asymmetric" and rounding == "floor")):
        raise NotGenerated(f"{where}: nearest resize with {mode} / {rounding} coordinates is "
                           f"not generated yet")  # fmt: skip
    return oh // h, ow // w


def nearest_upsampling(op: npu.ResizeOp) -> tuple[int, int] | None:
    """(sy, sx) when code generation makes `op` a transposed convolution, else None (the
    tile pass sizes its tasks accordingly)."""
    if pl.get_str(op, pl.TARGET) == "cpu":
        return None
    try:
        return upsampling_scales(op)
    except NotGenerated:
        return None
