"""`fold-scale`: Mul / Div / Add / Sub by a per-channel (or scalar) constant right after a
convolution goes into its weights and bias (the "Conv+Mul" fusion RKNN lists as planned).

Each is a per-channel affine map `y * s + t` of the conv output y:

    y * c -> s = c        y / c -> s = 1 / c (float64; never when some c is 0)
    y + c -> t = c        y - c -> t = -c          c - y -> s = -1, t = c

so the fold is the one `fold-batchnorm` makes (`fold_affine_into_conv`): W[o] *= s[o],
B = B * s + t. The constant must broadcast as [1, C, 1, ...] against the conv output (after
right-aligning, every dimension 1 except axis 1, which is 1 or C): anything else (a [W]
vector, a constant of higher rank) changes values along other axes, or the result's shape,
and stays. The conv (a Conv / ConvTranspose, or a fused one with nothing fused) must have
constant weights and bias and no other reader. The folded op keeps the conv's node name,
lists the arithmetic node in `onnx.fused` and takes its output name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from dialects.onnx import OnnxOp
from dialects.onnx.ops import AddOp, DivOp, MulOp, SubOp
from passes.channel_affine import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    ChannelAffine,
    fold_affine_into_conv,
    foldable_producer,
)
from passes.rewrite import apply_patterns, constant_value

FOLDABLE_CONVS = CONV_TYPES + CONV_TRANSPOSE_TYPES


@dataclass(frozen=True)
class FoldScale(ModulePass):
    """Fold Mul/Div/Add/Sub by a per-channel or scalar constant after a Conv into its weights and bias."""  # noqa: E501

    name = "fold-scale"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_patterns(op, FoldScalePattern())


class FoldScalePattern(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(
        self, op: MulOp | DivOp | AddOp | SubOp, rewriter: PatternRewriter
    ) -> None:
        for conv_side, (value, other) in enumerate(((op.A, op.B), (op.B, op.A))):
            conv = foldable_producer(value, FOLDABLE_CONVS)
            if conv is None or value.type != op.C.type:
                continue  # (a result type unlike the conv's: the constant grew the shape)
            vector = per_channel_vector(other, value)
            if vector is None:
                continue
            affine = _affine(op, vector, conv_is_first=conv_side == 0)
            if affine is not None:
                fold_affine_into_conv(rewriter, conv, affine, op)
            return


def per_channel_vector(value: SSAValue, conv_output: SSAValue) -> np.ndarray | None:
    """The constant `value` as a float64 [C] vector when it broadcasts as [1, C, 1, ...]
    against `conv_output` [N, C, ...], else None."""
    array = constant_value(value)
    shape = conv_output.type.get_shape()
    if array is None or array.ndim > len(shape) or array.dtype.kind != "f":
        return None
    aligned = (1,) * (len(shape) - array.ndim) + array.shape
    channels = shape[1]
    if any(d != 1 for i, d in enumerate(aligned) if i != 1) or aligned[1] not in (1, channels):
        return None
    return np.broadcast_to(array.astype(np.float64).reshape(-1), (channels,)).copy()


def _affine(op: OnnxOp, c: np.ndarray, conv_is_first: bool) -> ChannelAffine | None:
    """`op` applied to the conv output, as y * scale + shift; None where it is not one."""
    ones, zeros = np.ones_like(c), np.zeros_like(c)
    if isinstance(op, MulOp):
        return ChannelAffine(c, zeros)
    if isinstance(op, DivOp):
        if not conv_is_first or not np.all(c != 0):
            return None  # c / y is not affine; y / 0 is inf or nan, not a finite weight
        return ChannelAffine(1.0 / c, zeros)
    if isinstance(op, AddOp):
        return ChannelAffine(ones, c)
    return ChannelAffine(ones, -c) if conv_is_first else ChannelAffine(-ones, c)
