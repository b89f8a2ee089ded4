"""`prune` (RKNN's `model_pruning`): drop the output channels of a convolution whose weights
and bias are all zero, and the matching input channels of every conv that reads them.

Such a channel is 0 everywhere (any input times zero weights, plus a zero bias), so after an
activation with f(0) == 0 it contributes nothing to the convs that read it: removing it, and
their weights for it, computes exactly the same (for finite inputs; 0 * inf would be nan).
It saves the MACs and the weights of both convs, and trained models with dead channels (ReLU
networks, L1-pruned checkpoints) have many.

Only where that holds for every reader:
* the producer is a Conv or a FusedConv with group 1, constant weights and bias, no residual
  Z, and activations that keep 0 at 0 (none, Relu, Clip around 0, LeakyRelu, PRelu, Tanh,
  Elu, HardSwish, Swish, Gelu; never Sigmoid or HardSigmoid, whose f(0) is not 0);
* every reader of its result is a Conv / FusedConv with group 1 and constant weights that
  reads it as X (a graph output, a residual Z, or any other op would see the channel);
* at least one channel stays (a conv whose channels are all zero keeps one).

What was removed is reported through `passes.report.note`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import InsertPoint

from dialects.onnx import ConstantOp, OnnxOp
from dialects.onnx.fused import FusedConvOp, FusedOp, operand
from dialects.onnx.ops import ConvOp
from passes.report import note
from passes.rewrite import (
    apply_patterns,
    build_op,
    carry_names,
    constant_value,
    copy_attributes,
    erase_dead_constants,
    make_constant,
    replace_op,
)

CONVS = (ConvOp, FusedConvOp)

# Fused activations f with f(0) == 0 (Clip only when its range holds 0, checked apart).
ZERO_PRESERVING = frozenset(
    {"", "Relu", "Clip", "LeakyRelu", "PRelu", "Tanh", "Elu", "HardSwish", "Swish", "Gelu"}
)


@dataclass
class PruneStats:
    channels: int = 0
    parameters: int = 0
    # the convs that lost output channels, by name (one can lose some twice: when it loses
    # input channels, more of its outputs may become zero)
    convs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Prune(ModulePass):
    """Remove all-zero output channels of convolutions and their readers' input channels (lossless)."""  # noqa: E501

    name = "prune"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        stats = PruneStats()
        apply_patterns(op, PruneZeroChannels(stats))
        if stats.channels:
            note(self.name, report(stats))


def report(stats: PruneStats) -> str:
    channels = _plural(stats.channels, "output channel")
    convs = _plural(len(stats.convs), "conv")
    return f"removed {channels} ({stats.parameters:,} parameters) from {convs}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


@dataclass(frozen=True)
class _Plan:
    keep: np.ndarray  # indices of the output channels that stay
    readers: list[OnnxOp]


class PruneZeroChannels(RewritePattern):
    def __init__(self, stats: PruneStats) -> None:
        self.stats = stats

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ConvOp | FusedConvOp, rewriter: PatternRewriter) -> None:
        plan = _plan(op)
        if plan is not None:
            self._prune(op, plan, rewriter)

    def _prune(self, conv: OnnxOp, plan: _Plan, rewriter: PatternRewriter) -> None:
        inputs = conv.onnx_inputs()
        channels = conv.results[0].type.get_shape()[1]
        removed = channels - len(plan.keep)
        parameters = 0
        new_inputs, new_consts = list(inputs), []
        for index, axis in _per_channel_inputs(conv):
            array = constant_value(inputs[index])
            parameters += array.size - array.size // channels * len(plan.keep)
            const = make_constant(np.take(array, plan.keep, axis=axis), _name(inputs[index]))
            new_consts.append(const)
            new_inputs[index] = const.results[0]
        new_conv = build_op(conv.op_type, new_inputs, [_with_channels(conv.results[0],
                            len(plan.keep))], copy_attributes(conv))  # fmt: skip
        carry_names(new_conv, conv)
        rewriter.insert([*new_consts, new_conv], InsertPoint.before(conv))
        for reader in plan.readers:
            parameters += _drop_input_channels(rewriter, reader, new_conv.results[0], plan.keep)
        old_operands = list(conv.operands)
        rewriter.erase(conv)
        erase_dead_constants(rewriter, old_operands)
        self.stats.channels += removed
        self.stats.parameters += parameters
        self.stats.convs.add(conv.node_name or ",".join(conv.output_names) or str(id(conv)))


def _plan(conv: OnnxOp) -> _Plan | None:
    """What to prune from `conv`, or None when nothing can be."""
    if conv.attr("group") != 1 or not _zero_stays_zero(conv):
        return None
    inputs = conv.onnx_inputs()
    weights = constant_value(inputs[1])
    if weights is None or weights.dtype.kind != "f":
        return None
    readers = _readers(conv.results[0])
    per_channel = [constant_value(inputs[i]) for i, _ in _per_channel_inputs(conv)]
    if readers is None or any(array is None for array in per_channel):
        return None
    zero = np.all(weights.reshape(weights.shape[0], -1) == 0, axis=1)
    bias = inputs[2] if len(inputs) > 2 else None
    if bias is not None:
        zero &= constant_value(bias) == 0
    if not zero.any():
        return None
    keep = np.flatnonzero(~zero)
    if keep.size == 0:
        if weights.shape[0] == 1:
            return None
        keep = np.array([0])  # never all: a conv with no output channel is no conv
    return _Plan(keep, readers)


def _zero_stays_zero(conv: OnnxOp) -> bool:
    """The fused activations map 0 to 0, and nothing is added after them."""
    if not isinstance(conv, FusedOp):
        return True
    if operand(conv, "Z") is not None:
        return False
    for which in ("activation", "post_activation"):
        kind, attrs = conv.attr(which), conv.attr(f"{which}_attrs")
        if kind not in ZERO_PRESERVING:
            return False
        if kind == "Clip" and not attrs.get("min", -math.inf) <= 0 <= attrs.get("max", math.inf):
            return False
    return True


def _per_channel_inputs(conv: OnnxOp) -> list[tuple[int, int]]:
    """(ONNX input index, axis over output channels) of the operands to cut: the weights
    W [C, ...], the bias B [C], and a PRelu slope that varies along the channel axis (it
    broadcasts against the output, right-aligned, so its axis lines up with output axis 1)."""
    inputs = conv.onnx_inputs()
    cut = [(1, 0)]
    if len(inputs) > 2 and inputs[2] is not None:
        cut.append((2, 0))
    slope = operand(conv, "slope") if isinstance(conv, FusedConvOp) else None
    if slope is not None:
        rank = len(conv.results[0].type.get_shape())
        shape = slope.type.get_shape()
        axis = len(shape) - (rank - 1)
        if axis >= 0 and shape[axis] != 1:
            cut.append((conv.SCHEMA.inputs.index("slope"), axis))
    return cut


def _readers(value: SSAValue) -> list[OnnxOp] | None:
    """The convs reading `value`, when every reader is a group-1 conv with constant
    weights reading it as X; else None."""
    readers: list[OnnxOp] = []
    for use in value.uses:
        reader = use.operation
        if not isinstance(reader, CONVS) or use.index != 0 or reader.attr("group") != 1:
            return None
        if constant_value(reader.W) is None:
            return None
        readers.append(reader)
    return readers or None


def _drop_input_channels(rewriter: PatternRewriter, reader: OnnxOp, x: SSAValue,
                         keep: np.ndarray) -> int:  # fmt: skip
    """`reader` rebuilt on the pruned `x`, without the weights of the dropped channels;
    returns how many weights went."""
    weights = constant_value(reader.W)
    const = make_constant(np.take(weights, keep, axis=1), _name(reader.W))
    inputs = reader.onnx_inputs()
    new_inputs = [x, const.results[0], *inputs[2:]]
    new = build_op(reader.op_type, new_inputs, [reader.results[0].type], copy_attributes(reader))
    carry_names(new, reader)
    old_weights = [reader.W]
    replace_op(rewriter, reader, [const, new])
    erase_dead_constants(rewriter, old_weights)
    return weights.size - const.results[0].type.element_count()


def _with_channels(value: SSAValue, channels: int) -> TensorType:
    shape = list(value.type.get_shape())
    shape[1] = channels
    return TensorType(value.type.element_type, shape)


def _name(value: SSAValue) -> str:
    owner = value.owner
    if isinstance(owner, ConstantOp) and owner.output_names:
        return owner.output_names[0]
    return value.name_hint or "pruned"
