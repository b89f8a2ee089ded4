"""A per-channel affine map `y -> y * scale + shift` after a Conv / ConvTranspose goes into
its weights and bias: what `fold-batchnorm` and `fold-scale` share.

Folding is computed in float64 and cast back to the weight dtype. The folded op keeps the
producer's node name, lists the consumer in `onnx.fused` and takes its output name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.ir import Operation, SSAValue
from xdsl.pattern_rewriter import PatternRewriter

from dialects.onnx import ConstantOp, OnnxOp
from dialects.onnx.fused import FusedConvOp, FusedConvTransposeOp, FusedOp, operand
from dialects.onnx.ops import ConvOp, ConvTransposeOp
from passes.matching import is_float
from passes.rewrite import (
    build_op,
    carry_names,
    constant_value,
    copy_attributes,
    erase_dead_constants,
    has_single_use,
    make_constant,
    replace_op,
    weight_name,
)

CONV_TYPES: tuple[type[OnnxOp], ...] = (ConvOp, FusedConvOp)


CONV_TRANSPOSE_TYPES: tuple[type[OnnxOp], ...] = (ConvTransposeOp, FusedConvTransposeOp)


@dataclass(frozen=True)
class ChannelAffine:
    """`y -> y * scale + shift` per channel of axis 1 (float64 vectors of length C)."""

    scale: np.ndarray
    shift: np.ndarray


def is_plain(op: Operation) -> bool:
    """Not a fused op, or one with nothing fused after the linear part (no activation, no
    residual): its result is still linear in its weights."""
    if not isinstance(op, FusedOp):
        return True
    extra = [name for name in ("Z", "slope") if name in op.SCHEMA.inputs]
    return (not op.attr("activation") and not op.attr("post_activation")
            and all(operand(op, name) is None for name in extra))  # fmt: skip


def foldable_producer(value: SSAValue, types: tuple[type[OnnxOp], ...]) -> OnnxOp | None:
    """The op of `types` defining `value` when a per-channel map after it can go into its
    weights: plain, float, weights (input 1) and bias (input 2) constant, and `value` read
    only by the one op being folded."""
    producer = value.owner
    if not isinstance(producer, types) or not is_plain(producer):
        return None
    if not has_single_use(value) or not is_float(value):
        return None
    inputs = producer.onnx_inputs()
    if constant_value(inputs[1]) is None:
        return None
    bias = inputs[2] if len(inputs) > 2 else None
    if bias is not None and constant_value(bias) is None:
        return None
    return producer


def fold_affine_into_conv(rewriter: PatternRewriter, conv: OnnxOp, affine: ChannelAffine,
                          consumer: OnnxOp) -> None:  # fmt: skip
    """Replace `consumer` (computing `conv(x) * scale + shift`) by `conv` with rescaled
    weights and bias. `conv` is a plain Conv or ConvTranspose (see `foldable_producer`)."""
    inputs = conv.onnx_inputs()
    w_value, b_value = inputs[1], inputs[2] if len(inputs) > 2 else None
    weights, bias = constant_value(w_value), constant_value(b_value)
    w64 = weights.astype(np.float64)
    if isinstance(conv, CONV_TRANSPOSE_TYPES):
        new_w = scale_conv_transpose_weights(w64, affine.scale, int(conv.attr("group")))
    else:
        new_w = w64 * affine.scale.reshape(-1, *([1] * (w64.ndim - 1)))
    b64 = np.zeros_like(affine.scale) if bias is None else bias.astype(np.float64)
    new_b = b64 * affine.scale + affine.shift
    w_const = make_constant(new_w.astype(weights.dtype), weight_name(w_value, conv, "W"))
    b_const = make_constant(new_b.astype(weights.dtype), weight_name(b_value, conv, "B"))
    new_inputs = [inputs[0], w_const.results[0], b_const.results[0], *inputs[3:]]
    replace_with_folded(rewriter, conv, consumer, [w_const, b_const], new_inputs, conv.op_type)


def scale_conv_transpose_weights(w: np.ndarray, scale: np.ndarray, group: int) -> np.ndarray:
    """ConvTranspose W is [C_in, C_out/group, k...]; output channel g*(C_out/group) + j comes
    from W[g-th block of C_in, j]."""
    c_in, per_group, kernel = w.shape[0], w.shape[1], w.shape[2:]
    blocks = w.reshape(group, c_in // group, per_group, *kernel)
    factors = scale.reshape(group, 1, per_group, *([1] * len(kernel)))
    return (blocks * factors).reshape(w.shape)


def replace_with_folded(
    rewriter: PatternRewriter,
    producer: OnnxOp,
    consumer: OnnxOp,
    constants: list[ConstantOp],
    inputs: list[SSAValue | None],
    op_type: str,
    attributes: dict | None = None,
) -> None:
    """`consumer` becomes one `op_type` op on `inputs` named after `producer`; `producer`
    and the constants only it read go."""
    attributes = copy_attributes(producer) if attributes is None else attributes
    result = consumer.results[0]
    new = build_op(op_type, inputs, [result.type], attributes)
    carry_names(new, producer, absorbed=[consumer], outputs_of=consumer)
    replace_op(rewriter, consumer, [*constants, new])
    old_inputs = list(producer.operands)
    rewriter.erase(producer)
    erase_dead_constants(rewriter, old_inputs)
