"""`canonicalize`: remove what computes nothing, merge what is computed twice, erase what
nobody reads.

* No-op removal: Identity; Dropout in inference (no `training_mode`, or a constant false
  one, and its mask unread); Reshape / Squeeze / Unsqueeze / Expand / Flatten / Cast whose
  result has the input's type; Transpose by the identity permutation; Pad by all-zero
  constant pads; Slice keeping the whole input with steps 1; Concat of one input; Split
  into one output. The users read the input instead.
* Neutral arithmetic: `x*1`, `1*x`, `x/1`, `x+0`, `0+x`, `x-0` by an all-ones / all-zeros
  constant, only when the result has `x`'s type (the constant does not broadcast `x` up).
* Common-subexpression elimination: two ops of one type on the same operands with the same
  ONNX attributes (names aside) compute the same thing: the later one's users read the
  earlier one, which lists the later node's name in `onnx.fused`. Constants merge on equal
  values: inline ones by their attribute, weight-table ones by a hash of their bytes, then
  a byte-for-byte comparison.
* Dead-code elimination (`passes.rewrite.erase_dead_ops`).

Why: importers and exporters leave such ops behind (PyTorch's Identity and Dropout, Paddle's
shape arithmetic, duplicated constants); every one left costs an NPU task or a copy.

Graph outputs keep their ONNX names and order: they are the function's result attributes,
which no rewrite touches; a removed op's output is returned as the value that replaces it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp
from xdsl.dialects.func import FuncOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern
from xdsl.rewriter import Rewriter
from xdsl.traits import Pure

from dialects.onnx import ConstantOp, OnnxOp
from dialects.onnx.ops import (
    AddOp,
    CastOp,
    ConcatOp,
    DivOp,
    DropoutOp,
    ExpandOp,
    FlattenOp,
    IdentityOp,
    MulOp,
    PadOp,
    ReshapeOp,
    SliceOp,
    SplitOp,
    SqueezeOp,
    SubOp,
    TransposeOp,
    UnsqueezeOp,
)
from dialects.weights import current_weights
from passes.report import note
from passes.rewrite import apply_patterns, carry_names, constant_value, erase_dead_ops

PASS_NAME = "canonicalize"


@dataclass(frozen=True)
class Canonicalize(ModulePass):
    """Drop no-op ops and x*1 / x+0, merge common subexpressions, erase dead code."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        counts: Counter[str] = Counter()
        before = _count_ops(op)
        for block in _bodies(op):
            erase_dead_ops(block)
        apply_patterns(op, RemoveNoOp(counts), RemoveNeutralArithmetic(counts))
        for block in _bodies(op):
            counts.update(eliminate_common_subexpressions(block))
            erase_dead_ops(block)
        note(PASS_NAME, _summary(counts, before, _count_ops(op)))


def _bodies(module: ModuleOp) -> list[Block]:
    return [block for func in module.ops if isinstance(func, FuncOp)
            for block in func.body.blocks]  # fmt: skip


def _count_ops(module: ModuleOp) -> int:
    return sum(1 for block in _bodies(module) for o in block.ops if isinstance(o, OnnxOp))


def _summary(counts: Counter[str], before: int, after: int) -> str:
    if before == after:
        return "nothing to remove"
    merged = counts["cse"] + counts["cse-constant"]
    removed = {k: n for k, n in counts.items() if n and k not in ("cse", "cse-constant")}
    parts = []
    if removed:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(removed.items()))
        parts.append(f"removed {sum(removed.values())} no-op ops ({kinds})")
    if counts["cse"]:
        parts.append(f"merged {counts['cse']} duplicate ops")
    if counts["cse-constant"]:
        parts.append(f"merged {counts['cse-constant']} duplicate constants")
    # whatever else went was dead: before the pass, or once a rewrite left it unread (the
    # constant of a removed x*1); the pattern walker erases these too, uncounted
    dead = before - after - sum(removed.values()) - merged
    if dead:
        parts.append(f"erased {dead} dead ops")
    return "; ".join(parts) + f" ({before} -> {after} ops, constants included)"


# ---------------------------------------------------------------------- no-op ops

NoOpRule = Callable[[OnnxOp], SSAValue | None]


def _first_input(op: OnnxOp) -> SSAValue | None:
    return op.onnx_inputs()[0]


def _dropout_input(op: OnnxOp) -> SSAValue | None:
    """Inference Dropout is the identity (its mask, all true, must be unread)."""
    assert isinstance(op, DropoutOp)
    if op.mask is not None and op.mask.uses:
        return None
    if op.training_mode is not None:
        training = constant_value(op.training_mode)
        if training is None or np.any(training):
            return None
    return op.data


def _transpose_input(op: OnnxOp) -> SSAValue | None:
    rank = len(op.onnx_inputs()[0].type.get_shape())
    perm = op.attr("perm")
    identity = rank <= 1 if perm is None else list(perm) == list(range(rank))
    return op.onnx_inputs()[0] if identity else None


def _pad_input(op: OnnxOp) -> SSAValue | None:
    """Zero pads in every mode leave the tensor as it is (a negative pad would crop)."""
    pads = constant_value(op.onnx_inputs()[1])
    return op.onnx_inputs()[0] if pads is not None and not np.any(pads) else None


def _slice_input(op: OnnxOp) -> SSAValue | None:
    """With steps 1, an output as large as the input is the whole input (the caller checks
    the shapes); a step -1 of the same size would reverse it."""
    inputs = op.onnx_inputs()
    steps = inputs[4] if len(inputs) > 4 else None
    if steps is not None:
        values = constant_value(steps)
        if values is None or not np.all(values == 1):
            return None
    return inputs[0]


def _concat_input(op: OnnxOp) -> SSAValue | None:
    inputs = op.onnx_inputs()
    return inputs[0] if len(inputs) == 1 else None


def _split_input(op: OnnxOp) -> SSAValue | None:
    return op.onnx_inputs()[0] if len(op.results) == 1 else None


# op type -> the value the op passes through unchanged (when its result has that value's
# type, which `_forwarded` checks for every rule), else None
NO_OP_RULES: dict[str, NoOpRule] = {
    "Identity": _first_input,
    "Dropout": _dropout_input,
    "Reshape": _first_input,
    "Squeeze": _first_input,
    "Unsqueeze": _first_input,
    "Expand": _first_input,
    "Flatten": _first_input,
    "Cast": _first_input,
    "Transpose": _transpose_input,
    "Pad": _pad_input,
    "Slice": _slice_input,
    "Concat": _concat_input,
    "Split": _split_input,
}


def _forwarded(op: OnnxOp) -> SSAValue | None:
    """The input `op` passes through unchanged, if it does."""
    value = NO_OP_RULES[op.op_type](op)
    if value is None or value.type != op.results[0].type:
        return None
    if any(result.uses for result in op.results[1:]):
        return None
    return value


def _bypass(rewriter: PatternRewriter, op: Operation, value: SSAValue) -> None:
    """Users of `op`'s (first) result read `value`; `op` goes (its other results are
    unread)."""
    rewriter.replace(op, [], [value, *([None] * (len(op.results) - 1))])


class RemoveNoOp(RewritePattern):
    """An op of `NO_OP_RULES` that passes its input through: its users read the input."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self,
        op: IdentityOp | DropoutOp | ReshapeOp | SqueezeOp | UnsqueezeOp | ExpandOp
        | FlattenOp | CastOp | TransposeOp | PadOp | SliceOp | ConcatOp | SplitOp,
        rewriter: PatternRewriter,
    ) -> None:  # fmt: skip
        value = _forwarded(op)
        if value is not None:
            _bypass(rewriter, op, value)
            self.counts[op.op_type] += 1


# ---------------------------------------------------------------------- neutral arithmetic

# op type -> (neutral constant, whether the constant may be the first operand)
NEUTRAL: dict[str, tuple[int, bool]] = {
    "Mul": (1, True),
    "Div": (1, False),
    "Add": (0, True),
    "Sub": (0, False),
}
NEUTRAL_KIND = {"Mul": "x*1", "Div": "x/1", "Add": "x+0", "Sub": "x-0"}


def neutral_operand(op: OnnxOp) -> SSAValue | None:
    """`x` when `op` is `x (op) neutral` (or `neutral (op) x` where that commutes) and the
    result has x's type."""
    neutral, commutes = NEUTRAL[op.op_type]
    a, b = op.onnx_inputs()[:2]
    pairs = [(a, b), (b, a)] if commutes else [(a, b)]
    for x, c in pairs:
        if x is None or x.type != op.results[0].type:
            continue
        array = constant_value(c)
        if array is not None and np.all(array == neutral):
            return x
    return None


class RemoveNeutralArithmetic(RewritePattern):
    """`x*1`, `x/1`, `x+0`, `x-0` (and `1*x`, `0+x`) -> x."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: MulOp | DivOp | AddOp | SubOp,
                          rewriter: PatternRewriter) -> None:  # fmt: skip
        x = neutral_operand(op)
        if x is not None:
            _bypass(rewriter, op, x)
            self.counts[NEUTRAL_KIND[op.op_type]] += 1


# ---------------------------------------------------------------------- CSE


def eliminate_common_subexpressions(block: Block) -> Counter[str]:
    """Merge the ops of `block` that compute the same value into the first of them, in one
    forward sweep (operands are merged before their users are looked at, so duplicated
    chains merge whole). Returns counts: `cse` (ops), `cse-constant` (constants)."""
    counts: Counter[str] = Counter()
    seen: dict[Hashable, OnnxOp] = {}
    weights = _WeightIndex()
    for op in list(block.ops):
        if not isinstance(op, OnnxOp) or not op.has_trait(Pure) or op.regions:
            continue
        key = _structural_key(op)
        kept = seen.get(key)
        if kept is None and isinstance(op, ConstantOp) and op.is_weight:
            kept = weights.equal_earlier(op)
        if kept is None:
            seen[key] = op
            continue
        seen[key] = kept
        _merge(op, kept)
        counts["cse-constant" if isinstance(op, ConstantOp) else "cse"] += 1
    return counts


def _structural_key(op: OnnxOp) -> Hashable:
    """What decides the computation: op, operands, properties (ONNX attributes, inline
    constant values), result types, and discardable attributes other than the `onnx.*`
    names."""
    properties = tuple(sorted(op.properties.items(), key=lambda item: item[0]))
    extra = tuple(sorted((k, v) for k, v in op.attributes.items() if not k.startswith("onnx.")))
    types = tuple(r.type for r in op.results)
    return (op.name, tuple(op.operands), properties, types, extra)


def _merge(duplicate: OnnxOp, kept: OnnxOp) -> None:
    """`kept` (earlier in the block, so it dominates every use) takes over `duplicate`."""
    for old, new in zip(duplicate.results, kept.results, strict=True):
        old.replace_all_uses_with(new)
    carry_names(kept, kept, absorbed=[duplicate])
    Rewriter.erase_op(duplicate)


class _WeightIndex:
    """Weight-table constants by value. Hashing every weight costs time (tens of ms for a
    ResNet), so constants are first told apart by type and a sample of their bytes, and
    hashed only once a second constant with the same type and sample shows up."""

    def __init__(self) -> None:
        self.first: dict[Hashable, ConstantOp] = {}
        self.hashed: set[Hashable] = set()
        self.by_digest: dict[Hashable, ConstantOp] = {}

    def equal_earlier(self, op: ConstantOp) -> ConstantOp | None:
        """An earlier weight constant holding the same array as `op`, else None (and
        `op` is remembered)."""
        data = _bytes(op)
        key = (op.output.type, _sample(data))
        first = self.first.setdefault(key, op)
        if first is op:
            return None
        if key not in self.hashed:
            self.hashed.add(key)
            self.by_digest[_digest(first, _bytes(first))] = first
        earlier = self.by_digest.setdefault(_digest(op, data), op)
        if earlier is op or not np.array_equal(_bytes(earlier), data):
            return None  # new, or (never seen in practice) a digest collision: keep both
        return earlier


def _sample(data: np.ndarray, size: int = 256) -> bytes:
    """About `size` bytes spread over `data`, and its last bytes."""
    step = max(1, data.size // size)
    return data[::step][:size].tobytes() + data[-16:].tobytes()


def _bytes(op: ConstantOp) -> np.ndarray:
    """The constant's bytes as a flat uint8 array (bit-exact: -0.0 and 0.0 differ, equal
    NaNs match)."""
    attr = op.value
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return np.frombuffer(attr.data.data, np.uint8)
    return np.ascontiguousarray(current_weights()[attr]).reshape(-1).view(np.uint8)


def _digest(op: ConstantOp, data: np.ndarray) -> Hashable:
    return (op.output.type, hashlib.blake2b(data, digest_size=16).digest())
