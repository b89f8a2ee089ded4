"""What graph passes share: reading and making constants, building ONNX ops, carrying ONNX
names over to the ops that replace others, and applying rewrite patterns.

Constants: an operand is constant when an `onnx.Constant` defines it, inline or in the
weight table (`dialects.weights.current_weights()`, which the pipeline puts in scope).
Names: the op that replaces others keeps the main node's name in `onnx.node`, lists every
other node it absorbed in `onnx.fused`, and takes the ONNX names of the results it stands
for in `onnx.outputs`, so reports and configs keep speaking the user's names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, DenseIntOrFPElementsAttr, ModuleOp, StringAttr
from xdsl.dialects.func import ReturnOp
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.traits import Pure

from dialects.dtypes import tensor_type_of
from dialects.onnx import OPS_BY_TYPE, ConstantOp, OnnxOp, attribute_from_value
from dialects.onnx.base import dense_from_numpy, dense_to_numpy
from dialects.onnx.fused import FUSED_NODES
from dialects.weights import current_weights

# Constants up to this many elements are inline in the IR, the rest in the weight table
# (the importer's rule, kept for constants passes make).
INLINE_ELEMENTS = 16


# ---------------------------------------------------------------------- constants


def constant_value(value: SSAValue | None) -> np.ndarray | None:
    """The array `value` holds if an `onnx.Constant` defines it, else None."""
    if value is None or not isinstance(value.owner, ConstantOp):
        return None
    attr = value.owner.value
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return dense_to_numpy(attr)
    return current_weights()[attr]


def make_constant(array: np.ndarray, name: str) -> ConstantOp:
    """A new `onnx.Constant` holding `array` (inline when tiny), with ONNX tensor name `name`
    (made unique in the weight table)."""
    array = np.asarray(array)
    value = (dense_from_numpy(array) if array.size <= INLINE_ELEMENTS
             else current_weights().add(array, name))  # fmt: skip
    op = ConstantOp(value, tensor_type_of(array))
    op.set_names(None, [name])
    return op


# ---------------------------------------------------------------------- building ops


def build_op(
    op_type: str,
    inputs: Sequence[SSAValue | None],
    result_types: Sequence[Attribute | None],
    attributes: Mapping[str, Any] | None = None,
) -> OnnxOp:
    """An op of `op_type` from ONNX-ordered operands and Python attribute values."""
    cls = OPS_BY_TYPE[op_type]
    specs = cls.SCHEMA.attributes
    properties = {}
    for name, value in (attributes or {}).items():
        is_attribute = isinstance(value, Attribute)
        properties[name] = value if is_attribute else attribute_from_value(specs[name].kind, value)
    return cls.create_onnx(inputs, result_types, properties)


def copy_attributes(op: OnnxOp) -> dict[str, Attribute]:
    """The ONNX attributes set on `op`, as properties (to rebuild it with changes)."""
    return {name: op.properties[name] for name in op.SCHEMA.attributes if name in op.properties}


# ---------------------------------------------------------------------- names


def carry_names(new: OnnxOp, main: OnnxOp, absorbed: Iterable[OnnxOp] = (),
                outputs_of: OnnxOp | None = None) -> None:  # fmt: skip
    """Give `new` the node name of `main`, list the nodes of `absorbed` (and everything they
    had absorbed) in `onnx.fused`, and take the tensor names of `outputs_of` (default:
    `main`)."""
    fused: list[str] = [*fused_nodes(main)]
    for op in absorbed:
        fused += [n for n in (op.node_name, *fused_nodes(op)) if n]
    new.set_names(main.node_name or None, (outputs_of or main).output_names)
    if fused:
        new.attributes[FUSED_NODES] = ArrayAttr([StringAttr(n) for n in dict.fromkeys(fused)])


def weight_name(value: SSAValue | None, op: OnnxOp, role: str) -> str:
    """The ONNX name of the constant `value` (a new array replaces it), else one made
    from the op's node name."""
    owner = None if value is None else value.owner
    if isinstance(owner, ConstantOp) and owner.output_names:
        return owner.output_names[0]
    return f"{op.node_name or op.op_type}_{role}"


def fused_nodes(op: OnnxOp) -> list[str]:
    attr = op.attributes.get(FUSED_NODES)
    return [a.data for a in attr.data if isinstance(a, StringAttr)] if isinstance(
        attr, ArrayAttr) else []  # fmt: skip


# ---------------------------------------------------------------------- uses


def users(value: SSAValue) -> list[Operation]:
    return [use.operation for use in value.uses]


def only_user(value: SSAValue) -> Operation | None:
    """The one op reading `value` (a graph output counts as a reader), else None."""
    readers = users(value)
    return readers[0] if len(readers) == 1 else None


def has_single_use(value: SSAValue) -> bool:
    """Read by exactly one op, which is not the graph's return."""
    reader = only_user(value)
    return reader is not None and not isinstance(reader, ReturnOp)


# ---------------------------------------------------------------------- applying


def apply_patterns(module: ModuleOp, *patterns: RewritePattern, recursive: bool = True) -> bool:
    """Rewrite `module` with `patterns` until none applies; dead pure ops are erased on the
    way. Returns whether anything changed."""
    walker = PatternRewriteWalker(
        GreedyRewritePatternApplier(list(patterns)), apply_recursively=recursive
    )
    return walker.rewrite_module(module)


def replace_op(rewriter: PatternRewriter, old: Operation, new_ops: Sequence[Operation],
               new_results: Sequence[SSAValue] | None = None) -> None:  # fmt: skip
    """Replace `old` by `new_ops` (inserted before it); `new_results` default to the results
    of the last new op. Keeps the SSA name hints readable."""
    results = list(new_results if new_results is not None else new_ops[-1].results)
    for old_result, new_result in zip(old.results, results, strict=True):
        if new_result.name_hint is None:
            new_result.name_hint = old_result.name_hint
    rewriter.replace(old, list(new_ops), results)


# ---------------------------------------------------------------------- erasing


def erase_dead_ops(block: Block) -> int:
    """Erase dead pure ops of `block` (a DAG: one reverse sweep reaches a fixpoint).
    Returns how many were erased."""
    erased = 0
    for op in reversed(list(block.ops)):
        if op.has_trait(Pure) and all(not r.uses for r in op.results):
            block.erase_op(op)
            erased += 1
    return erased


def erase_dead_constants(rewriter: PatternRewriter, values: list[SSAValue]) -> None:
    """Erase the constants among `values` that nothing reads any more (the pattern walker
    would only find them on a later sweep)."""
    for value in values:
        owner = value.owner
        if isinstance(owner, ConstantOp) and owner.has_trait(Pure) and not value.uses:
            rewriter.erase(owner)


def erase_unused(rewriter: PatternRewriter, ops: Sequence[Operation]) -> None:
    """Erase `ops` (given in definition order) now that nothing reads them."""
    for op in reversed(ops):
        if all(not result.uses for result in op.results):
            rewriter.erase(op)
