"""`npu.conv_transpose` -> MAC-array tasks: the CNA's deconvolution [ours] (the reading of
CNA_CONV_CON1.DECONV and CONV_CON3.DECONV_X/Y_STRIDE in `mac_task.py`'s module doc), then
the DPU output stage of a convolution (`dpu.py`: fused relu / clip / leaky / prelu,
per-channel requantization). int8, int16 and float16 (`dpu.py`'s float path).

A transposed convolution with stride s, dilation d, kernel k and pads (top, left, bottom,
right) is computed as a stride-1 convolution over the input upsampled by s (input pixel
(h, w) at (h * s, w * s), zeros between) with

- the weights flipped in both spatial axes and their in / out channels swapped, per group:
  `w'[g * O + o, i, y, x] = w[g * I + i, o, Kh - 1 - y, Kw - 1 - x]` for w [C_in, O, Kh, Kw]
  (ONNX's layout, O = C_out / groups, I = C_in / groups); done here, at compile time, so
  the packing is the direct convolution's;
- padding `d * (k - 1) - pad` above and left, `d * (k - 1) - pad_end + output_padding`
  below and right (the last two need no register: PAD_VALUE is read wherever the windows
  leave the band);
- the inserted zeros and the padding real zeros: both are PAD_VALUE = zp_in, and the
  input zero point is folded into the bias over the flipped weights (`dpu.py`), so the
  accumulator is Σ (x - zp_in) * w + bias, the reference's (`runtime/kernels/quantized.py`
  `conv_transpose_accumulate`) exactly.

Row bands (`backend.tasks`, `passes/tile.py` with `backends.cbuf.transposed_input_rows`):
output rows [y0, y1) read the upsampled rows [y0 - p, y1 - 1 + d * (k - 1) - p] (p the top
padding above), i.e. the input rows r with r * s in that range; the band's PAD_TOP is
r0 * s - (y0 - p) (`conv.input_band`). Output-channel groups and their weight reuse are the
convolution's (`conv.convolution_tasks`). Grouped and depthwise transposed convolutions
(per-tensor weights: lower-to-npu keeps grouped ones with per-channel weights on the CPU)
take the convolution's block-diagonal and depthwise paths with the flipped weights.

Not generated (the op runs on the CPU with the reference kernel): a left padding larger
than d * (k - 1) (the output would start inside the upsampled band: no register crops
columns) or one above PAD_LEFT's 15, upsampling by more than 8 (DECONV_*_STRIDE are 3
bits), and bands of output rows that read no input row (a kernel smaller than the stride).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from backends.codegen.conv import (
    PAD_MAX,
    Geometry,
    conv_dtype,
    convolution_tasks,
    input_band,
)
from backends.codegen.dpu import plan_layer_stage
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import placed
from backends.codegen.weights import OpArrays, op_arrays
from backends.registers import RK3588
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks

UPSAMPLE_MAX = RK3588.register("CNA", "CONV_CON3").field("DECONV_Y_STRIDE").max_value + 1


def conv_transpose_tasks(op: npu.ConvTransposeOp, ctx: OpContext) -> Iterator[TaskWords]:
    """The tasks of `op`, in `backend.tasks` order."""
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    dtype = conv_dtype(op, x, y)
    arrays = op_arrays(op, ctx.weights)
    groups = op.group.data
    weights = flipped_weights(arrays.logical, groups)
    geometry = deconv_geometry(op, weights, x.shape[1], y.shape[1])
    _check_bands(op, geometry, x.shape[2])
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    # fold zp_in over the weights the MAC array multiplies (the flipped ones)
    folded = OpArrays(weights, arrays.bias, weights).folded_bias(in_q.zero_point)
    stage = plan_layer_stage(op, folded)
    yield from convolution_tasks(op, geometry, weights, stage, (x, y, None), dtype, ctx)


def flipped_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """Transposed-convolution weights [C_in, O, Kh, Kw] -> the direct convolution's
    [groups * O, C_in / groups, Kh, Kw] that computes it over the upsampled input."""
    cin, per_group_out, kh, kw = w.shape
    per_group_in = cin // groups
    swapped = w.reshape(groups, per_group_in, per_group_out, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = swapped.reshape(groups * per_group_out, per_group_in, kh, kw)[:, :, ::-1, ::-1]
    return np.ascontiguousarray(flipped)


def deconv_geometry(op: npu.ConvTransposeOp, weights: np.ndarray, cin: int,
                    cout: int) -> Geometry:  # fmt: skip
    """The stride-1 convolution over the upsampled input (see the module doc)."""
    kh, kw = weights.shape[2:]
    (sy, sx), (dy, dx) = npu.ints(op.strides), npu.ints(op.dilations)
    top, left, bottom, right = npu.ints(op.pads)
    out_pad_y, out_pad_x = npu.ints(op.output_padding)
    span_y, span_x = (kh - 1) * dy, (kw - 1) * dx
    pads = (span_y - top, span_x - left, span_y - bottom + out_pad_y, span_x - right + out_pad_x)
    if max(sy, sx) > UPSAMPLE_MAX:
        raise NotGenerated(f"{op.describe()}: stride {(sy, sx)} exceeds the CNA's "
                           f"deconvolution stride {UPSAMPLE_MAX}")  # fmt: skip
    if not 0 <= pads[1] <= PAD_MAX:
        raise NotGenerated(f"{op.describe()}: left padding {left} of a {kw}-wide kernel "
                           f"needs PAD_LEFT {pads[1]}, outside [0, {PAD_MAX}]")  # fmt: skip
    groups = op.group.data
    depthwise = groups == cin == cout and weights.shape[1] == 1
    return Geometry((kh, kw), (1, 1), (dy, dx), pads, groups, depthwise, upsample=(sy, sx))


def _check_bands(op: npu.ConvTransposeOp, g: Geometry, in_rows: int) -> None:
    """Every band must read an input row and fit PAD_TOP: checked before any weight is
    packed, so that an op placed on the CPU leaves nothing in the weight blob."""
    for y0, y1, _, _ in get_tasks(op):
        r0, r1, pad = input_band(g, y0, y1, in_rows)
        if r1 <= r0:
            raise NotGenerated(f"{op.describe()}: output rows [{y0}, {y1}) read no input row")
        if pad > PAD_MAX:
            raise NotGenerated(f"{op.describe()}: output rows [{y0}, {y1}) need PAD_TOP "
                               f"{pad} > {PAD_MAX}")  # fmt: skip
