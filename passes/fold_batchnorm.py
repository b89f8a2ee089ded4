"""`fold-batchnorm`: inference-mode BatchNormalization disappears into the op before it, or
becomes a per-channel scale and shift the NPU runs.

In inference mode a BatchNormalization with constant parameters is a per-channel affine map
`y * s + t` with `s = scale / sqrt(var + eps)` and `t = B - mean * s` (channels on axis 1).

* After a Conv / ConvTranspose / Gemm / 2-D MatMul with constant weights whose result only
  the BN reads, the map goes into the weights and bias: the BN costs nothing at run time.
  A MatMul becomes a Gemm, which has a bias (C). The folded op keeps its node name, lists
  the BN in `onnx.fused` and takes the BN's output name.
* Anywhere else it becomes what the NPU's DPU can run: a depthwise 1x1 Conv (rank 3-5) or
  a Mul + Add by [C] constants (rank 2), named after the BN.

Folding is computed in float64 and cast back to the weight dtype. The per-channel affine
fold into a convolution is shared with `fold-scale` (`passes/channel_affine.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from dialects.dtypes import numpy_dtype
from dialects.onnx import OnnxOp
from dialects.onnx.fused import (
    FusedGemmOp,
    FusedMatMulOp,
)
from dialects.onnx.ops import BatchNormalizationOp, GemmOp, MatMulOp
from passes.channel_affine import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    ChannelAffine,
    fold_affine_into_conv,
    foldable_producer,
    replace_with_folded,
)
from passes.matching import is_float
from passes.rewrite import (
    apply_patterns,
    build_op,
    carry_names,
    constant_value,
    copy_attributes,
    erase_dead_constants,
    make_constant,
    replace_op,
    weight_name,
)

GEMM_TYPES: tuple[type[OnnxOp], ...] = (GemmOp, FusedGemmOp)
MATMUL_TYPES: tuple[type[OnnxOp], ...] = (MatMulOp, FusedMatMulOp)


# Ranks a depthwise 1x1 Conv covers (1-D to 3-D convolutions).
DEPTHWISE_RANKS = (3, 4, 5)


# ---------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class FoldBatchNorm(ModulePass):
    """Fold inference BatchNormalization into Conv/ConvTranspose/Gemm/MatMul weights, or make it a depthwise conv / Mul+Add."""  # noqa: E501

    name = "fold-batchnorm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_patterns(op, FoldBatchNormPattern())


class FoldBatchNormPattern(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: BatchNormalizationOp, rewriter: PatternRewriter) -> None:
        affine = batchnorm_affine(op)
        if affine is None:
            return
        if (conv := foldable_producer(op.X, CONV_TYPES + CONV_TRANSPOSE_TYPES)) is not None:
            fold_affine_into_conv(rewriter, conv, affine, op)
        elif (gemm := foldable_producer(op.X, GEMM_TYPES)) is not None:
            _fold_into_gemm(rewriter, gemm, affine, op)
        elif (matmul := _foldable_matmul(op.X)) is not None:
            _fold_into_matmul(rewriter, matmul, affine, op)
        else:
            _standalone(rewriter, op, affine)


def batchnorm_affine(bn: BatchNormalizationOp) -> ChannelAffine | None:
    """The map an inference-mode BN with constant parameters computes, else None."""
    if bn.attr("training_mode") != 0 or not is_float(bn.X):
        return None
    if len(bn.results) != 1:
        return None  # running statistics as outputs: a training graph's form, left alone
    params = [constant_value(v) for v in (bn.scale, bn.B, bn.input_mean, bn.input_var)]
    if any(p is None for p in params):
        return None
    scale, beta, mean, var = (np.asarray(p, np.float64) for p in params)
    s = scale / np.sqrt(var + float(bn.attr("epsilon")))
    return ChannelAffine(s, beta - mean * s)


# ---------------------------------------------------------------------- producers


def _foldable_matmul(value: SSAValue) -> OnnxOp | None:
    """A MatMul of a 2-D A by a constant 2-D B, which a Gemm can replace."""
    producer = foldable_producer(value, MATMUL_TYPES)
    if producer is None:
        return None
    a, b = producer.onnx_inputs()[:2]
    return producer if (_rank(a), _rank(b)) == (2, 2) else None


def _rank(value: SSAValue | None) -> int:
    return len(value.type.get_shape()) if value is not None else 0


# ---------------------------------------------------------------------- folding


def _fold_into_gemm(rewriter: PatternRewriter, gemm: OnnxOp, affine: ChannelAffine,
                    consumer: OnnxOp) -> None:  # fmt: skip
    """Y = alpha*A@B + beta*C, then per column n: Y*s + t = alpha*A@(B*s) + (beta*C*s + t)."""
    inputs = gemm.onnx_inputs()
    b_value, c_value = inputs[1], inputs[2] if len(inputs) > 2 else None
    weights, bias = constant_value(b_value), constant_value(c_value)
    w64 = weights.astype(np.float64)
    # columns of the product are rows of B when B is stored transposed
    new_w = w64 * (affine.scale[:, None] if gemm.attr("transB") else affine.scale[None, :])
    beta = float(gemm.attr("beta"))
    new_c = affine.shift if bias is None else beta * bias.astype(np.float64) * affine.scale
    if bias is not None:
        new_c = new_c + affine.shift
    w_const = make_constant(new_w.astype(weights.dtype), weight_name(b_value, gemm, "B"))
    c_const = make_constant(new_c.astype(weights.dtype), weight_name(c_value, gemm, "C"))
    attributes = {**copy_attributes(gemm), "beta": 1.0}
    new_inputs = [inputs[0], w_const.results[0], c_const.results[0], *inputs[3:]]
    replace_with_folded(rewriter, gemm, consumer, [w_const, c_const], new_inputs,
                         gemm.op_type, attributes)  # fmt: skip


def _fold_into_matmul(rewriter: PatternRewriter, matmul: OnnxOp, affine: ChannelAffine,
                      consumer: OnnxOp) -> None:  # fmt: skip
    """A [M,K] @ B [K,N], then per column: Gemm(A, B*s, C=t)."""
    a_value, b_value = matmul.onnx_inputs()[:2]
    weights = constant_value(b_value)
    new_w = weights.astype(np.float64) * affine.scale[None, :]
    w_const = make_constant(new_w.astype(weights.dtype), weight_name(b_value, matmul, "B"))
    c_const = make_constant(affine.shift.astype(weights.dtype), weight_name(None, matmul, "C"))
    # a plain MatMul has no attributes, and a plain Gemm needs none
    new_inputs = [a_value, w_const.results[0], c_const.results[0]]
    replace_with_folded(rewriter, matmul, consumer, [w_const, c_const], new_inputs, "Gemm", {})


# ---------------------------------------------------------------------- standalone


def _standalone(rewriter: PatternRewriter, bn: BatchNormalizationOp,
                affine: ChannelAffine) -> None:  # fmt: skip
    """BN with nothing to fold into: a depthwise 1x1 Conv, or Mul + Add at rank 2."""
    shape = bn.X.type.get_shape()
    rank, channels = len(shape), shape[1]
    dtype = numpy_dtype(bn.X.type.element_type)
    if rank in DEPTHWISE_RANKS:
        _as_depthwise_conv(rewriter, bn, affine, dtype, rank, channels)
    elif rank == 2:
        _as_mul_add(rewriter, bn, affine, dtype)


def _as_depthwise_conv(rewriter: PatternRewriter, bn: BatchNormalizationOp,
                       affine: ChannelAffine, dtype: np.dtype, rank: int,
                       channels: int) -> None:  # fmt: skip
    name = bn.node_name or "BatchNormalization"
    weights = affine.scale.reshape(channels, *([1] * (rank - 1))).astype(dtype)
    w_const = make_constant(weights, f"{name}_W")
    b_const = make_constant(affine.shift.astype(dtype), f"{name}_B")
    conv = build_op("Conv", [bn.X, w_const.results[0], b_const.results[0]],
                    [bn.Y.type], {"group": channels})  # fmt: skip
    carry_names(conv, bn)
    _replace_standalone(rewriter, bn, [w_const, b_const, conv])


def _as_mul_add(rewriter: PatternRewriter, bn: BatchNormalizationOp, affine: ChannelAffine,
                dtype: np.dtype) -> None:  # fmt: skip
    """[N, C] * s[C] + t[C]: a [C] vector broadcasts on the last axis, which is axis 1."""
    name = bn.node_name or "BatchNormalization"
    out_name = bn.output_names[0] if bn.output_names else name
    s_const = make_constant(affine.scale.astype(dtype), f"{name}_scale")
    t_const = make_constant(affine.shift.astype(dtype), f"{name}_shift")
    mul = build_op("Mul", [bn.X, s_const.results[0]], [bn.Y.type])
    mul.set_names(f"{name}_scale", [f"{out_name}_scaled"])
    add = build_op("Add", [mul.results[0], t_const.results[0]], [bn.Y.type])
    carry_names(add, bn)
    _replace_standalone(rewriter, bn, [s_const, t_const, mul, add])


def _replace_standalone(rewriter: PatternRewriter, bn: BatchNormalizationOp,
                        new_ops: list[Operation]) -> None:  # fmt: skip
    """`bn` becomes `new_ops` (the last one gives its result); its parameters go."""
    parameters = list(bn.operands[1:])
    replace_op(rewriter, bn, new_ops)
    erase_dead_constants(rewriter, parameters)
