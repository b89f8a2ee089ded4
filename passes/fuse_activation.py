"""`fuse-activation`: an activation after a Conv / ConvTranspose / Gemm / MatMul goes into
that op (the NPU's DPU applies it on the way out of the convolution, for free).

Two steps, in this order:

1. Recognise activations models spell with several ops, so step 2 (and the NPU) sees one:

       Mul(x, Sigmoid(x))                      -> Swish            (SiLU)
       Mul(x, Sigmoid(Mul(x, a)))              -> Swish{alpha=a}   (a a scalar constant)
       Mul(x, HardSigmoid{1/6, 0.5}(x))        -> HardSwish
       Mul(x, Clip(x + 3, 0, 6)) / 6           -> HardSwish        (Paddle's spelling)
       0.5 * x * (1 + Erf(x / sqrt(2)))        -> Gelu             (approximate "none")

   The Erf GELU is matched in the orders exporters write it: x / 1.4142135 or
   x * 0.70710677, then Erf, + 1, and the three factors x, 0.5 and (1 + erf) multiplied in
   any association and operand order. Every intermediate must be read by the pattern only;
   constants are scalars compared with a float32 tolerance (`passes.matching.RTOL`).

2. Fuse into the producer: Conv, ConvTranspose, Gemm, MatMul (or a fused op with no
   activation yet; for a FusedConv with a residual Z and no post-activation, as its
   post-activation) followed by Relu, Clip (constant bounds), LeakyRelu, PRelu (constant
   per-channel slope, which becomes the fused op's `slope` operand), Sigmoid, Tanh, Elu,
   HardSigmoid, HardSwish, Swish or Gelu ("none") -> the `Fused*` op, when the producer's
   result has the activation as its only reader.

Names: a recognised activation keeps the node name of the pattern's first op and the
output name of its last; a fused op keeps the producer's node name, lists the activation
in `onnx.fused` and takes the activation's output name.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from dialects.onnx import OnnxOp
from dialects.onnx.fused import (
    PREACTIVATION,
    FusedConvOp,
    FusedConvTransposeOp,
    FusedGemmOp,
    FusedMatMulOp,
    FusedOp,
    SwishOp,
    operand,
)
from dialects.onnx.ops import (
    AddOp,
    ClipOp,
    ConvOp,
    ConvTransposeOp,
    DivOp,
    EluOp,
    ErfOp,
    GeluOp,
    GemmOp,
    HardSigmoidOp,
    HardSwishOp,
    LeakyReluOp,
    MatMulOp,
    MulOp,
    PReluOp,
    ReluOp,
    SigmoidOp,
    TanhOp,
)
from passes.fused_forms import Activation, activation_attributes, activation_of, fused_form
from passes.matching import (
    defined_by,
    fits_float32,
    is_close,
    is_float,
    operand_orders,
    scalar_constant,
)
from passes.report import note
from passes.rewrite import (
    apply_patterns,
    build_op,
    carry_names,
    constant_value,
    erase_unused,
    has_single_use,
    replace_op,
)

PASS_NAME = "fuse-activation"


# Ops whose output the DPU can put an activation on, and which of them keep channels on
# axis 1 (the others, Gemm and MatMul, on the last axis).
PRODUCERS: tuple[type[OnnxOp], ...] = (
    ConvOp, ConvTransposeOp, GemmOp, MatMulOp,
    FusedConvOp, FusedConvTransposeOp, FusedGemmOp, FusedMatMulOp,
)  # fmt: skip
CHANNEL_AXIS_1: tuple[type[OnnxOp], ...] = (
    ConvOp, ConvTransposeOp, FusedConvOp, FusedConvTransposeOp,
)  # fmt: skip


# ---------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class FuseActivation(ModulePass):
    """Recognise Swish/HardSwish/Gelu written as several ops, then fuse activations into the Conv/Gemm/MatMul before them."""  # noqa: E501

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        # Recognition first, to its fixpoint: a Swish must exist as one op before step 2
        # can fuse it into the Conv that feeds it.
        recognise = RecogniseActivation()
        apply_patterns(op, recognise, RecogniseDivRootedActivation(recognise))
        fuse = FuseIntoProducer()
        apply_patterns(op, fuse)
        if recognise.counts:
            found = ", ".join(f"{n} {k}" for k, n in sorted(recognise.counts.items()))
            note(PASS_NAME, f"recognised {found}")
        if fuse.count:
            note(PASS_NAME, f"fused {fuse.count} activations into their producers")


# ---------------------------------------------------------------------- shared helpers


# ---------------------------------------------------------------------- step 1: recognise


@dataclass
class Recognised:
    kind: str
    attrs: dict[str, Any]
    x: SSAValue
    ops: list[Operation]  # in definition order; the last one is the pattern's root


class RecogniseActivation(RewritePattern):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MulOp, rewriter: PatternRewriter) -> None:
        if is_float(op.C):
            found = (match_swish(op) or match_hard_swish(op) or match_gelu(op)
                     or match_relu6_hard_swish(op))  # fmt: skip
            self.rewrite(op, found, rewriter)

    def rewrite(self, op: OnnxOp, found: Recognised | None, rewriter: PatternRewriter) -> None:
        if found is None:
            return
        new = build_op(found.kind, [found.x], [op.results[0].type], found.attrs)
        carry_names(new, found.ops[0], found.ops[1:], outputs_of=op)
        replace_op(rewriter, op, [new])
        erase_unused(rewriter, found.ops[:-1])
        self.counts[found.kind] = self.counts.get(found.kind, 0) + 1


def match_swish(mul: MulOp) -> Recognised | None:
    """Mul(x, Sigmoid(x)) or Mul(x, Sigmoid(Mul(x, a))), operands in either order."""
    for x, s in operand_orders(mul):
        sigmoid = defined_by(s, SigmoidOp)
        if sigmoid is None or x.type != mul.C.type:
            continue
        if sigmoid.X is x:
            return Recognised("Swish", {}, x, [sigmoid, mul])
        inner = defined_by(sigmoid.X, MulOp)
        if inner is None or inner.C.type != x.type:
            continue
        for y, a in operand_orders(inner):
            alpha = scalar_constant(a)
            if y is x and alpha is not None and fits_float32(constant_value(a)):
                return Recognised("Swish", {"alpha": alpha}, x, [inner, sigmoid, mul])
    return None


def match_hard_swish(mul: MulOp) -> Recognised | None:
    """Mul(x, HardSigmoid(x)) with alpha 1/6 and beta 0.5: HardSwish's definition."""
    for x, h in operand_orders(mul):
        hard = defined_by(h, HardSigmoidOp)
        if hard is None or hard.X is not x or x.type != mul.C.type:
            continue
        if is_close(hard.attr("alpha"), 1 / 6) and is_close(hard.attr("beta"), 0.5):
            return Recognised("HardSwish", {}, x, [hard, mul])
    return None


class RecogniseDivRootedActivation(RewritePattern):
    """The forms whose last op is a Div (Paddle's HardSwish divides by 6)."""

    def __init__(self, recognise: RecogniseActivation) -> None:
        self.recognise = recognise

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: DivOp, rewriter: PatternRewriter) -> None:
        if is_float(op.C):
            self.recognise.rewrite(op, match_relu6_hard_swish(op), rewriter)


def match_relu6_hard_swish(root: MulOp | DivOp) -> Recognised | None:
    """x * Clip(x + 3, 0, 6) / 6, the last step a Div by 6 or a Mul by 1/6 (Paddle's
    HardSwish; the same function as HardSwish's x * clip(x / 6 + 0.5, 0, 1))."""
    if isinstance(root, DivOp):
        candidates: Iterator[tuple[SSAValue, SSAValue]] = iter([(root.A, root.B)])
        factor = 6.0
    else:
        candidates, factor = operand_orders(root), 1 / 6
    for product, k in candidates:
        inner = defined_by(product, MulOp)
        if inner is None or not is_close(scalar_constant(k), factor):
            continue
        for x, c in operand_orders(inner):
            clip = defined_by(c, ClipOp)
            if clip is None or clip.min is None or clip.max is None or x.type != root.C.type:
                continue
            if scalar_constant(clip.min) != 0.0 or not is_close(scalar_constant(clip.max), 6.0):
                continue
            add = defined_by(clip.input, AddOp)
            for y, three in operand_orders(add) if add is not None else ():
                if y is x and is_close(scalar_constant(three), 3.0):
                    return Recognised("HardSwish", {}, x, [add, clip, inner, root])
    return None


def match_gelu(root: MulOp) -> Recognised | None:
    """The product of x, 0.5 and (1 + Erf(x / sqrt 2)), in any association: (x * e) * 0.5,
    (x * 0.5) * e or x * (e * 0.5), each Mul's operands in either order."""
    for p, q in operand_orders(root):
        if is_close(scalar_constant(q), 0.5) and (inner := defined_by(p, MulOp)):
            for x, e in operand_orders(inner):  # (x * e) * 0.5
                if (chain := erf_term(e)) and chain.x is x:
                    return _gelu(x, [*chain.ops, inner, root])
        if (chain := erf_term(p)) and (inner := defined_by(q, MulOp)):
            for x, half in operand_orders(inner):  # (x * 0.5) * e
                if x is chain.x and is_close(scalar_constant(half), 0.5):
                    return _gelu(x, [*chain.ops, inner, root])
        if inner := defined_by(q, MulOp):
            for e, half in operand_orders(inner):  # x * (e * 0.5)
                chain = erf_term(e)
                if chain and chain.x is p and is_close(scalar_constant(half), 0.5):
                    return _gelu(p, [*chain.ops, inner, root])
    return None


@dataclass
class ErfChain:
    x: SSAValue
    ops: list[Operation] = field(default_factory=list)


def erf_term(value: SSAValue) -> ErfChain | None:
    """`value` = 1 + Erf(x / sqrt 2) (or Erf(x * (1 / sqrt 2))), each step read only by
    the next: the chain and its x."""
    add = defined_by(value, AddOp)
    if add is None:
        return None
    for e, one in operand_orders(add):
        erf = defined_by(e, ErfOp)
        if erf is None or not is_close(scalar_constant(one), 1.0):
            continue
        scaled = erf.input
        if (div := defined_by(scaled, DivOp)) and is_close(scalar_constant(div.B), math.sqrt(2)):
            chain = ErfChain(div.A, [div, erf, add])
        elif mul := defined_by(scaled, MulOp):
            x = _times_constant(mul, math.sqrt(0.5))
            chain = ErfChain(x, [mul, erf, add]) if x is not None else None
        else:
            chain = None
        if chain and all(op.results[0].type == chain.x.type for op in chain.ops):
            return chain
    return None


def _times_constant(mul: MulOp, factor: float) -> SSAValue | None:
    """x when `mul` is x * factor (either order)."""
    for x, c in operand_orders(mul):
        if is_close(scalar_constant(c), factor):
            return x
    return None


def _gelu(x: SSAValue, ops: list[Operation]) -> Recognised | None:
    if any(op.results[0].type != x.type for op in ops):
        return None  # a constant broadcast the values to a larger shape
    return Recognised("Gelu", {}, x, ops)


# ---------------------------------------------------------------------- step 2: fuse


class FuseIntoProducer(RewritePattern):
    def __init__(self) -> None:
        self.count = 0

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self,
        op: ReluOp | ClipOp | LeakyReluOp | PReluOp | SigmoidOp | TanhOp | EluOp
        | HardSigmoidOp | HardSwishOp | SwishOp | GeluOp,
        rewriter: PatternRewriter,
    ) -> None:  # fmt: skip
        value = op.operands[0]
        producer = value.owner
        if not isinstance(producer, PRODUCERS) or not has_single_use(value) or not is_float(value):
            return
        activation = activation_of(op)
        slot = fusion_slot(producer)
        if activation is None or slot is None:
            return
        prelu_fits = slot == "activation" and per_channel_slope(activation.slope, producer)
        if activation.kind == "PRelu" and not prelu_fits:
            return  # the DPU's PRelu is per channel and comes before the residual add
        fuse_activation(rewriter, producer, op, activation, slot)
        self.count += 1


def fusion_slot(producer: OnnxOp) -> str | None:
    """Where an activation after `producer` goes: "activation" for a plain op (or a fused
    one with nothing fused yet), "post_activation" after a FusedConv's residual add, None
    when both places are taken (activations do not chain)."""
    if not isinstance(producer, FusedOp):
        return "activation"
    if producer.attr("post_activation"):
        return None
    if "Z" in producer.SCHEMA.inputs and operand(producer, "Z") is not None:
        return "post_activation"
    return None if producer.attr("activation") else "activation"


def per_channel_slope(slope: SSAValue | None, producer: OnnxOp) -> bool:
    """The slope is constant and broadcasts as one value per output channel (axis 1 for
    convolutions, the last axis for Gemm/MatMul) over the producer's output."""
    array = constant_value(slope)
    shape = producer.results[0].type.get_shape()
    if array is None or array.ndim > len(shape):
        return False
    channel = 1 if isinstance(producer, CHANNEL_AXIS_1) else len(shape) - 1
    aligned = (1,) * (len(shape) - array.ndim) + tuple(array.shape)
    return all(d == 1 or (axis == channel and d == shape[axis]) for axis, d in enumerate(aligned))


def fuse_activation(rewriter: PatternRewriter, producer: OnnxOp, act: OnnxOp,
                    activation: Activation, slot: str) -> None:  # fmt: skip
    """Replace `act` by the fused form of `producer` carrying `activation` in `slot`."""
    operands = {"slope": activation.slope} if activation.slope is not None else {}
    new = fused_form(producer, act.results[0].type, operands,
                     activation_attributes(activation, slot))  # fmt: skip
    carry_names(new, producer, [act], outputs_of=act)
    if slot == "activation" and producer.output_names:
        new.attributes[PREACTIVATION] = StringAttr(producer.output_names[0])
    replace_op(rewriter, act, [new])
    rewriter.erase(producer)
