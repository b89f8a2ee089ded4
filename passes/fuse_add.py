"""`fuse-add`: a residual Add after a convolution goes into it, with the activation after the
Add (RKNN's Conv+Add and Conv+Activation+Add fusions): the DPU's element-wise stage adds a
second tensor to the convolution's output, then applies its own activation.

    Add(Conv(x), z)                 -> FusedConv(x, Z=z)
    Act2(Add(Act1(Conv(x)), z))     -> FusedConv(x, Z=z){activation=Act1, post_activation=Act2}

(`Act1(Conv)` is the FusedConv `fuse-activation` makes.) Conditions: the convolution is a
Conv, or a FusedConv with no residual and no post-activation yet, whose result only the Add
reads; the other operand z has exactly the convolution output's shape and dtype (the DPU
adds element by element; a broadcast add is left alone). The activation after the Add is
taken when the Add's result has it as its only reader and the NPU can apply it after the
add: any fusable activation but PRelu. When both operands are eligible convolutions the
first one takes the other as its residual.

Names: the fused op keeps the convolution's node name, lists the Add (and the activation)
in `onnx.fused` and takes the output name of the last op it absorbed.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from dialects.onnx import OnnxOp
from dialects.onnx.fused import FusedConvOp, operand
from dialects.onnx.ops import AddOp, ConvOp
from passes.fused_forms import Activation, activation_attributes, activation_of, fused_form
from passes.matching import is_float
from passes.report import note
from passes.rewrite import apply_patterns, carry_names, has_single_use, only_user, replace_op

PASS_NAME = "fuse-add"


@dataclass(frozen=True)
class FuseAdd(ModulePass):
    """Fuse a residual Add (and the activation after it) into the Conv before it."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pattern = FuseAddPattern()
        apply_patterns(op, pattern)
        if pattern.count:
            note(PASS_NAME, f"fused {pattern.count} residual adds into convolutions")


class FuseAddPattern(RewritePattern):
    def __init__(self) -> None:
        self.count = 0

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AddOp, rewriter: PatternRewriter) -> None:
        for value, residual in ((op.A, op.B), (op.B, op.A)):
            conv = residual_conv(value)
            if conv is None or residual.type != value.type or op.C.type != value.type:
                continue  # a different shape or dtype: broadcasting, not a residual
            fuse_residual(rewriter, conv, op, residual)
            self.count += 1
            return


def residual_conv(value: SSAValue) -> OnnxOp | None:
    """The convolution defining `value` when a residual can go into it: a float Conv or a
    FusedConv with no Z and no post-activation, read only by the one Add."""
    conv = value.owner
    if isinstance(conv, FusedConvOp):
        if operand(conv, "Z") is not None or conv.attr("post_activation"):
            return None
    elif not isinstance(conv, ConvOp):
        return None
    return conv if has_single_use(value) and is_float(value) else None


def activation_after(add: AddOp) -> tuple[OnnxOp, Activation] | None:
    """The activation reading the Add's result, when it is its only reader and the DPU can
    apply it after the add (everything fusable but PRelu, whose slope only the first stage
    takes)."""
    if not has_single_use(add.C):
        return None
    reader = only_user(add.C)
    activation = activation_of(reader) if reader is not None else None
    if activation is None or activation.kind == "PRelu" or reader.operands[0] is not add.C:
        return None
    return reader, activation  # type: ignore[return-value]


def fuse_residual(rewriter: PatternRewriter, conv: OnnxOp, add: AddOp,
                  residual: SSAValue) -> None:  # fmt: skip
    """Replace `add` (and the activation after it) by `conv` with `residual` as its Z. The
    new op goes where the last absorbed op was: the residual is defined before the Add."""
    absorbed: list[Operation] = [add]
    attributes = {}
    if (after := activation_after(add)) is not None:
        act, activation = after
        absorbed.append(act)
        attributes = activation_attributes(activation, "post_activation")
    last = absorbed[-1]
    new = fused_form(conv, last.results[0].type, {"Z": residual}, attributes)
    carry_names(new, conv, absorbed, outputs_of=last)  # type: ignore[arg-type]
    replace_op(rewriter, last, [new])
    for op in (*reversed(absorbed[:-1]), conv):
        rewriter.erase(op)
