"""`fold-constants{limit=65536}`: compute at compile time what does not depend on the inputs.

Every op whose inputs are all `onnx.Constant`s, and every `Shape` / `Size` (shapes are
static, so only the input's type matters), is evaluated with the reference kernels (the
interpreter's own, so the folded value is exactly what the model computed) and replaced by
`onnx.Constant`s named after its output tensors. One forward sweep folds whole chains: a
folded result is a constant by the time its users are visited. The constants the folded
ops read, and whatever else only they read, go when nothing reads them any more.

Why: exporters spell shapes as `Shape -> Gather -> Unsqueeze -> Concat -> Reshape` and
weights as `Constant -> Transpose / Cast / Mul`; the NPU runs none of this well, and the
later passes need constant shapes and weights to match their patterns.

Not folded:
* an op whose outputs would take more than `limit` bytes beyond its constant inputs (a
  Tile, Expand or ConstantOfShape that would blow a tiny constant up into the model);
* ops without the `Pure` trait (RandomNormal, Bernoulli, ...), ops with no reference
  kernel, and ops the kernel rejects (`KernelError`): they stay for the runtime to report;
* an op whose computed value disagrees with the type the IR declares (shape or element
  type): the IR is not silently changed under a later pass's feet;
* an op whose results nobody reads (dead code is `canonicalize`'s job).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import Rewriter
from xdsl.traits import Pure

from dialects.dtypes import UnsupportedElementType, numpy_dtype
from dialects.onnx import ConstantOp, OnnxOp
from passes.report import note
from passes.rewrite import constant_value, make_constant
from runtime.kernels import KERNELS, KernelError, run_kernel

PASS_NAME = "fold-constants"

# Ops whose value depends only on the input's (static) type, not on its data.
SHAPE_OPS = ("Shape", "Size")

# What a kernel raises on input it cannot take, besides KernelError (the interpreter
# catches the same).
KERNEL_FAILURES = (KernelError, ValueError, IndexError, TypeError, ZeroDivisionError)


@dataclass(frozen=True)
class FoldConstants(ModulePass):
    """Evaluate ops on constant inputs (and Shape/Size) at compile time, within a size limit."""

    name = PASS_NAME
    limit: int = 65536  # bytes the outputs may exceed the constant inputs by

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        counts: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        for func in op.ops:
            if isinstance(func, FuncOp):
                for block in func.body.blocks:
                    fold_block(block, self.limit, counts, skipped)
        note(PASS_NAME, _summary(counts, skipped))


def _summary(counts: Counter[str], skipped: Counter[str]) -> str:
    if not counts:
        text = "nothing folded"
    else:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        text = f"folded {sum(counts.values())} ops ({kinds})"
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
    return f"{text}; left {reasons}" if reasons else text


def fold_block(block: Block, limit: int, counts: Counter[str], skipped: Counter[str]) -> None:
    """Fold the foldable ops of `block` in one forward sweep."""
    folded_inputs: list[SSAValue] = []
    for op in list(block.ops):
        if not isinstance(op, OnnxOp) or isinstance(op, ConstantOp):
            continue
        inputs = _foldable_inputs(op)
        if inputs is None:
            continue
        operands = list(op.operands)
        outcome = _fold(op, inputs, limit)
        if outcome is None:
            folded_inputs += operands
            counts[op.op_type] += 1
        elif outcome:
            skipped[outcome] += 1
    _erase_dead(folded_inputs)


@dataclass
class _Inputs:
    arrays: list[np.ndarray | None]  # the kernel's positional inputs
    constant_bytes: int  # what the constants among them hold


def _foldable_inputs(op: OnnxOp) -> _Inputs | None:
    """The kernel's inputs if `op` is a candidate, else None."""
    if not op.has_trait(Pure) or op.regions or op.op_type not in KERNELS:
        return None
    if not any(result.uses for result in op.results):
        return None
    arrays: list[np.ndarray | None] = []
    constants: dict[SSAValue, int] = {}  # one constant read twice counts once
    for index, value in enumerate(op.onnx_inputs()):
        array = None if value is None else constant_value(value)
        if array is not None:
            constants[value] = array.nbytes
            array = array.view()
            array.flags.writeable = False  # a kernel writing into a weight fails loudly
        elif value is not None:
            if index != 0 or op.op_type not in SHAPE_OPS:
                return None
            array = _stand_in(value)
            if array is None:
                return None
        arrays.append(array)
    while arrays and arrays[-1] is None:  # absent trailing optionals are not passed
        arrays.pop()
    return _Inputs(arrays, sum(constants.values()))


def _stand_in(value: SSAValue) -> np.ndarray | None:
    """A zero-cost array of `value`'s shape (a broadcast scalar): all Shape/Size read."""
    if not isinstance(value.type, TensorType):
        return None
    return np.broadcast_to(np.zeros((), np.float32), tuple(value.type.get_shape()))


def _fold(op: OnnxOp, inputs: _Inputs, limit: int) -> str | None:
    """Replace `op` by constants; None when done, else why not ("" for no reason worth
    reporting)."""
    expected = _expected(op)
    if expected is None:
        return ""
    output_bytes = sum(math.prod(shape) * dtype.itemsize for _, shape, dtype in expected)
    if output_bytes - inputs.constant_bytes > limit:
        return "over the size limit"
    try:
        with np.errstate(all="ignore"):  # IEEE results (inf, nan) are the ONNX semantics
            results = run_kernel(op.op_type, inputs.arrays, op.attribute_values())
    except KERNEL_FAILURES:
        return "rejected by their kernel"
    arrays = {}
    for position, shape, dtype in expected:
        array = np.asarray(results[position]) if position < len(results) else None
        if array is None or array.shape != shape or array.dtype != dtype:
            return "whose value disagrees with the IR type"
        arrays[position] = _own_copy(array, inputs.arrays)
    _replace(op, arrays)
    return None


def _expected(op: OnnxOp) -> list[tuple[int, tuple[int, ...], np.dtype]] | None:
    """(ONNX output position, shape, dtype) of each present result."""
    expected = []
    for position, result in enumerate(op.onnx_results()):
        if result is None:
            continue
        if not isinstance(result.type, TensorType):
            return None
        try:
            dtype = numpy_dtype(result.type.element_type)
        except UnsupportedElementType:
            return None
        expected.append((position, tuple(result.type.get_shape()), dtype))
    return expected


def _own_copy(array: np.ndarray, inputs: list[np.ndarray | None]) -> np.ndarray:
    """`array`, copied if it is a view into an input (Reshape, Slice, ... return views): a
    new weight must not share memory with another."""
    if any(a is not None and np.may_share_memory(array, a) for a in inputs):
        return array.copy()
    return array


def _replace(op: OnnxOp, arrays: dict[int, np.ndarray]) -> None:
    """Constants for the read results of `op` (`arrays` by ONNX output position), inserted
    before it, named after its output tensors; `op` goes."""
    names = iter(op.output_names)  # one per present result, in order
    constants: list[ConstantOp] = []
    replacement: dict[SSAValue, SSAValue] = {}
    for position, result in enumerate(op.onnx_results()):
        if result is None:
            continue
        name = next(names, None) or f"{op.node_name or op.op_type}_{position}"
        if not result.uses:
            continue
        constant = make_constant(arrays[position], name)
        constant.output.name_hint = result.name_hint
        constants.append(constant)
        replacement[result] = constant.output
    Rewriter.replace_op(op, constants, [replacement.get(r) for r in op.results])


def _erase_dead(values: list[SSAValue]) -> None:
    """Erase the ops defining `values` that nothing reads any more, and transitively what
    only they read (the constants and shape sources of folded ops)."""
    pending = list(values)
    while pending:
        owner = pending.pop().owner
        if not isinstance(owner, Operation) or owner.parent is None:
            continue
        if not owner.has_trait(Pure) or any(r.uses for r in owner.results):
            continue
        pending += owner.operands
        Rewriter.erase_op(owner)
