"""`merge-layout-ops`: chains of ops that only move data collapse into one op, or none.

* Reshaping chains: Reshape, Flatten, Squeeze and Unsqueeze never reorder elements (each is
  a row-major reshape), so any chain of them is one Reshape to the last shape (a new inline
  shape constant), and nothing at all when that is the first input's shape. A Reshape or
  Flatten feeding a Gemm thereby merges with the chain before it; the Gemm input stays the
  2-D shape the last op gave it, as ONNX requires.
* Transpose(Transpose(x)) (and longer chains) is one Transpose by the composed
  permutation, and nothing when that is the identity.

Only chains whose intermediate results have a single reader (not a graph output) merge:
an intermediate someone else reads has to be computed anyway, and merging would then
duplicate the work instead of removing it. The op that replaces a chain keeps the last
node's name and output names and lists the others in `onnx.fused`.

Why: exporters emit these chains (PyTorch's `flatten` after `view`, Paddle's Unsqueeze /
Squeeze pairs, NHWC <-> NCHW transposes around an op); every layout op is a pass over the
tensor in memory on the NPU.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.traits import Pure

from dialects.onnx import OnnxOp
from dialects.onnx.ops import FlattenOp, GemmOp, ReshapeOp, SqueezeOp, TransposeOp, UnsqueezeOp
from passes.report import note
from passes.rewrite import (
    apply_patterns,
    build_op,
    carry_names,
    has_single_use,
    make_constant,
    only_user,
)

PASS_NAME = "merge-layout-ops"

RESHAPING: tuple[type[OnnxOp], ...] = (ReshapeOp, FlattenOp, SqueezeOp, UnsqueezeOp)


@dataclass(frozen=True)
class MergeLayoutOps(ModulePass):
    """Collapse Reshape/Flatten/Squeeze/Unsqueeze chains and compose Transpose chains."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        counts: Counter[str] = Counter()
        apply_patterns(op, CollapseReshapeChain(counts), ComposeTransposes(counts))
        note(PASS_NAME, _summary(counts))


def _summary(counts: Counter[str]) -> str:
    if not counts:
        return "nothing to merge"
    removed = counts.pop("removed", 0)
    parts = [f"{n} {what}" for what, n in sorted(counts.items())]
    return ", ".join(parts) + f" ({removed} layout ops removed)"


# ---------------------------------------------------------------------- reshaping chains


def reshaping_chain(last: OnnxOp) -> list[OnnxOp]:
    """The reshaping ops ending at `last`, first to last, each intermediate result read
    only by the next op."""
    chain = [last]
    source = _data(last)
    while isinstance(source.owner, RESHAPING) and has_single_use(source):
        chain.insert(0, source.owner)
        source = _data(source.owner)
    return chain


def _continues(value: SSAValue) -> bool:
    """Whether `value` is an intermediate of a longer reshaping chain (the data, not the
    shape, of the one op reading it)."""
    user = only_user(value)
    return has_single_use(value) and isinstance(user, RESHAPING) and _data(user) is value


def _data(op: Operation) -> SSAValue:
    assert isinstance(op, OnnxOp)
    value = op.onnx_inputs()[0]
    assert value is not None
    return value


class CollapseReshapeChain(RewritePattern):
    """A chain of two or more reshaping ops -> one Reshape (or nothing)."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: ReshapeOp | FlattenOp | SqueezeOp | UnsqueezeOp,
                          rewriter: PatternRewriter) -> None:  # fmt: skip
        if _continues(op.results[0]):
            return  # the chain goes on: collapse it whole at its last op
        chain = reshaping_chain(op)
        if len(chain) < 2:
            return
        source, result = _data(chain[0]), op.results[0]
        shape = result.type.get_shape()
        if source.type == result.type:
            rewriter.replace(op, [], [source])
            self.counts["reshaping chains cancelled"] += 1
            self.counts["removed"] += len(chain)
        elif 0 in shape:
            return  # a 0 in a Reshape's shape means "copy this dimension" (allowzero=0)
        else:
            name = (op.output_names or [op.node_name or "reshape"])[0]
            target = make_constant(np.array(shape, np.int64), f"{name}_shape")
            reshape = build_op("Reshape", [source, target.output], [result.type])
            carry_names(reshape, op, absorbed=chain[:-1])
            rewriter.replace(op, [target, reshape], reshape.results)
            self.counts[_chain_kind(reshape)] += 1
            self.counts["removed"] += len(chain) - 1
        _erase_unread(rewriter, chain[:-1])


def _chain_kind(last: OnnxOp) -> str:
    readers = [use.operation for use in last.results[0].uses]
    into_gemm = any(isinstance(r, GemmOp) for r in readers)
    return "reshaping chains merged before a Gemm" if into_gemm else "reshaping chains merged"


def _erase_unread(rewriter: PatternRewriter, chain: list[OnnxOp]) -> None:
    """Erase the ops of `chain` (now unread) and, transitively, what only they read (shape
    and axes constants, a shape computation)."""
    pending: list[Operation] = list(reversed(chain))
    while pending:
        op = pending.pop(0)
        if op.parent is None or not op.has_trait(Pure) or any(r.uses for r in op.results):
            continue
        operands = list(op.operands)
        rewriter.erase(op)
        pending += [v.owner for v in operands if isinstance(v.owner, Operation)]


# ---------------------------------------------------------------------- transposes


def permutation(op: TransposeOp) -> list[int]:
    """The op's `perm` (ONNX default: the axes reversed)."""
    perm = op.attr("perm")
    rank = len(op.data.type.get_shape())
    return list(range(rank))[::-1] if perm is None else [int(p) for p in perm]


def transpose_chain(last: TransposeOp) -> list[TransposeOp]:
    """The Transposes ending at `last`, first to last, each intermediate result read only by
    the next one."""
    chain = [last]
    source = last.data
    while isinstance(source.owner, TransposeOp) and has_single_use(source):
        chain.insert(0, source.owner)
        source = source.owner.data
    return chain


class ComposeTransposes(RewritePattern):
    """Transpose(Transpose(...(x))) -> one Transpose, or x when they cancel."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TransposeOp, rewriter: PatternRewriter) -> None:
        value = op.transposed
        if has_single_use(value) and isinstance(only_user(value), TransposeOp):
            return  # the chain goes on: compose it whole at its last op
        chain = transpose_chain(op)
        if len(chain) < 2:
            return
        source = chain[0].data
        perm = list(range(len(source.type.get_shape())))
        for transpose in chain:
            # output axis k of `transpose` is axis p[k] of its input, which is axis
            # perm[p[k]] of the source
            perm = [perm[k] for k in permutation(transpose)]
        if perm == list(range(len(perm))):
            rewriter.replace(op, [], [source])
            self.counts["transpose chains cancelled"] += 1
            self.counts["removed"] += len(chain)
        else:
            composed = build_op("Transpose", [source], [value.type], {"perm": perm})
            carry_names(composed, op, absorbed=chain[:-1])
            rewriter.replace(op, [composed], composed.results)
            self.counts["transpose chains composed"] += 1
            self.counts["removed"] += len(chain) - 1
        for transpose in reversed(chain[:-1]):
            rewriter.erase(transpose)
