"""`fuse-subgraphs`: subgraphs exporters write for one operation become that operation, which
the NPU (or a later pass) runs as one:

* LayerNormalization written out (PyTorch's and TF's older exports):

      mean = ReduceMean(x, axes); d = Sub(x, mean); var = ReduceMean(Pow(d, 2), axes)
      y = Div(d, Sqrt(Add(var, eps)))  [-> Mul(y, gamma)]  [-> Add(., beta)]
      -> LayerNormalization(x, gamma or ones, beta or zeros){axis, epsilon}

  Exactly this connectivity (one x feeds the ReduceMean and the Sub, one d the Pow and the
  Div), both ReduceMeans over the same constant axes [axis, ..., rank-1] with keepdims 1,
  eps and the exponent 2 scalar constants, gamma / beta constants broadcasting to the
  normalized shape x.shape[axis:] (given to the op at exactly that shape).
* GLU: Split(x) into two equal halves along an axis, Mul(first, Sigmoid(second))
  -> GLU{axis}.
* Gemm: MatMul(A, B) + bias, A 2-D, B a constant 2-D, bias a constant broadcasting to the
  [M, N] result ([N], [1, N], [M, N], ...) -> Gemm(A, B, C=bias).

Every intermediate result must be read by the pattern only (not by another op, not a graph
output). The new op keeps the node name of the pattern's first op, lists the others in
`onnx.fused` and takes the output name of the last one.
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
from dialects.onnx.ops import (
    AddOp,
    DivOp,
    MatMulOp,
    MulOp,
    PowOp,
    ReduceMeanOp,
    SigmoidOp,
    SplitOp,
    SqrtOp,
    SubOp,
)
from passes.matching import (
    fits_float32,
    is_float,
    operand_orders,
    scalar_constant,
    single_reader,
)
from passes.report import note
from passes.rewrite import (
    apply_patterns,
    build_op,
    carry_names,
    constant_value,
    erase_unused,
    has_single_use,
    make_constant,
    replace_op,
    users,
)

PASS_NAME = "fuse-subgraphs"


@dataclass(frozen=True)
class FuseSubgraphs(ModulePass):
    """Fuse decomposed LayerNormalization, GLU (Split+Sigmoid+Mul) and MatMul+Add (as Gemm) into one op."""  # noqa: E501

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = [LayerNormPattern(), GLUPattern(), GemmPattern()]
        apply_patterns(op, *patterns)
        found = [f"{p.count} {p.op_type}" for p in patterns if p.count]
        if found:
            note(PASS_NAME, f"fused {', '.join(found)}")


class CountingPattern(RewritePattern):
    op_type = ""

    def __init__(self) -> None:
        self.count = 0


def replace_subgraph(rewriter: PatternRewriter, ops: list[Operation], new_ops: list[OnnxOp],
                     new: OnnxOp) -> None:  # fmt: skip
    """Put `new_ops` (ending with `new`) where the pattern's last op was, with the names of
    the pattern (first op's node name, last op's output names), and erase the pattern."""
    carry_names(new, ops[0], ops[1:], outputs_of=ops[-1])  # type: ignore[arg-type]
    replace_op(rewriter, ops[-1], new_ops)
    erase_unused(rewriter, ops[:-1])


# ---------------------------------------------------------------------- LayerNormalization


class LayerNormPattern(CountingPattern):
    op_type = "LayerNormalization"

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ReduceMeanOp, rewriter: PatternRewriter) -> None:
        match = match_layer_norm(op)
        if match is None:
            return
        x, axis, eps, gamma, beta, ops = match
        name = ops[0].node_name or "layer_norm"  # type: ignore[attr-defined]
        constants = [make_constant(gamma, f"{name}.scale"), make_constant(beta, f"{name}.bias")]
        inputs = [x, constants[0].results[0], constants[1].results[0]]
        attributes = {"axis": axis, "epsilon": eps}
        new = build_op("LayerNormalization", inputs, [x.type, None, None], attributes)
        replace_subgraph(rewriter, ops, [*constants, new], new)
        self.count += 1


LayerNormMatch = tuple[SSAValue, int, float, np.ndarray, np.ndarray, list[Operation]]


def match_layer_norm(mean: ReduceMeanOp) -> LayerNormMatch | None:
    """The decomposed LayerNormalization starting at `mean`: (x, axis, eps, gamma, beta,
    the ops in definition order), else None."""
    x = mean.data
    shape = x.type.get_shape()
    axes = reduced_axes(mean, len(shape))
    if not is_float(x) or not axes or axes != list(range(axes[0], len(shape))):
        return None
    sub = single_reader(mean.reduced, SubOp)
    if sub is None or sub.A is not x or sub.B is not mean.reduced or sub.C.type != x.type:
        return None
    d = sub.C
    readers = users(d)
    power = next((r for r in readers if isinstance(r, PowOp)), None)
    div = next((r for r in readers if isinstance(r, DivOp)), None)
    if len(readers) != 2 or power is None or div is None or power.X is not d or div.A is not d:
        return None
    exponent = constant_value(power.Y)
    if exponent is None or exponent.size != 1 or float(exponent.reshape(-1)[0]) != 2.0:
        return None
    variance = single_reader(power.Z, ReduceMeanOp)
    if variance is None or reduced_axes(variance, len(shape)) != axes:
        return None
    add = single_reader(variance.reduced, AddOp)
    eps = _other_scalar(add, variance.reduced) if add is not None else None
    sqrt = single_reader(add.C, SqrtOp) if eps is not None else None
    if sqrt is None or single_reader(sqrt.Y, DivOp) is not div or div.B is not sqrt.Y:
        return None
    if div.C.type != x.type:
        return None
    ops: list[Operation] = [mean, sub, power, variance, add, sqrt, div]
    normalized = tuple(shape[axes[0] :])
    dtype = numpy_dtype(x.type.element_type)
    gamma, beta = np.ones(normalized, dtype), np.zeros(normalized, dtype)
    last = div.C
    for cls in (MulOp, AddOp):  # the optional affine part, in this order
        step = single_reader(last, cls)
        param = _affine_parameter(step, last, normalized, dtype) if step is not None else None
        if param is None or step.results[0].type != x.type:
            continue
        if cls is MulOp:
            gamma = param
        else:
            beta = param
        ops.append(step)
        last = step.results[0]
    return x, axes[0], eps, gamma, beta, ops


def reduced_axes(op: ReduceMeanOp, rank: int) -> list[int] | None:
    """The sorted non-negative axes a keepdims ReduceMean reduces, None when not constant."""
    if op.attr("keepdims") != 1:
        return None
    if op.axes is None:
        return None if op.attr("noop_with_empty_axes") else list(range(rank))
    axes = constant_value(op.axes)
    if axes is None or axes.dtype.kind not in "iu":
        return None
    normalized = sorted({int(a) % rank for a in axes.reshape(-1) if -rank <= a < rank})
    return normalized if len(normalized) == axes.size else None


def _other_scalar(op: AddOp, value: SSAValue) -> float | None:
    """The scalar constant `op` adds to `value` (eps, stored as a float32 attribute)."""
    for first, other in operand_orders(op):
        if first is value and (eps := scalar_constant(other)) is not None:
            return eps if fits_float32(constant_value(other)) else None
    return None


def _affine_parameter(op: Operation, value: SSAValue, normalized: tuple[int, ...],
                      dtype: np.dtype) -> np.ndarray | None:  # fmt: skip
    """The constant `op` combines with `value`, as an array of exactly the normalized shape,
    when it broadcasts to that shape (leading 1s beyond its rank allowed)."""
    for first, other in operand_orders(op):
        array = constant_value(other) if first is value else None
        if array is None or array.dtype != dtype:
            continue
        extra = array.ndim - len(normalized)
        if extra > 0:
            if any(d != 1 for d in array.shape[:extra]):
                continue  # it varies along an axis the normalization does not cover
            array = array.reshape(array.shape[extra:])
        if broadcasts_to(array.shape, normalized):
            return np.ascontiguousarray(np.broadcast_to(array, normalized))
    return None


def broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


# ---------------------------------------------------------------------- GLU


class GLUPattern(CountingPattern):
    op_type = "GLU"

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: SplitOp, rewriter: PatternRewriter) -> None:
        match = match_glu(op)
        if match is None:
            return
        axis, ops = match
        mul = ops[-1]
        new = build_op("GLU", [op.input], [mul.results[0].type], {"axis": axis})
        replace_subgraph(rewriter, ops, [new], new)
        self.count += 1


def match_glu(split: SplitOp) -> tuple[int, list[Operation]] | None:
    """(axis, [split, sigmoid, mul]) when `split` halves its input and the halves meet in
    Mul(first, Sigmoid(second)), else None."""
    outputs = list(split.outputs)
    shape = split.input.type.get_shape()
    if len(outputs) != 2 or outputs[0].type != outputs[1].type or not is_float(split.input):
        return None
    axis = int(split.attr("axis")) % len(shape)
    first, second = outputs
    sigmoid = single_reader(second, SigmoidOp)
    mul = single_reader(sigmoid.Y, MulOp) if sigmoid is not None else None
    if mul is None or single_reader(first, MulOp) is not mul:
        return None
    if mul.C.type != first.type or not any(
            a is first and b is sigmoid.Y for a, b in operand_orders(mul)):  # fmt: skip
        return None
    return axis, [split, sigmoid, mul]


# ---------------------------------------------------------------------- Gemm


class GemmPattern(CountingPattern):
    op_type = "Gemm"

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AddOp, rewriter: PatternRewriter) -> None:
        for product, bias in operand_orders(op):
            matmul = gemm_matmul(product, bias)
            if matmul is None or op.C.type != product.type:
                continue
            new = build_op("Gemm", [matmul.A, matmul.B, bias], [op.C.type])
            replace_subgraph(rewriter, [matmul, op], [new], new)
            self.count += 1
            return


def gemm_matmul(product: SSAValue, bias: SSAValue) -> MatMulOp | None:
    """The MatMul defining `product` when MatMul + `bias` is a Gemm: A 2-D, B a constant
    2-D, the bias a constant broadcasting to [M, N], the product read only by the Add."""
    matmul = product.owner
    if not isinstance(matmul, MatMulOp) or not has_single_use(product) or not is_float(product):
        return None
    weights, array = constant_value(matmul.B), constant_value(bias)
    if len(matmul.A.type.get_shape()) != 2 or weights is None or weights.ndim != 2:
        return None
    if array is None or array.ndim > 2 or bias.type.element_type != product.type.element_type:
        return None
    return matmul if broadcasts_to(array.shape, tuple(product.type.get_shape())) else None
