"""Shapes onnx's inference cannot resolve (e.g. a Slice whose ends are computed from a
Shape through Div and Mul), read off one run of the reference interpreter on zeros.

Zeros may stand in for the inputs only where the shapes follow from constants and from other
tensors' shapes (Shape, Size), never from input values: that is checked first, and a model
whose shapes depend on its data is rejected naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue

from compiler.errors import CompilerError
from compiler.frontend.onnx_types import onnx_element_type
from compiler.frontend.shapes import TensorInfo
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.onnx import ConstantOp, OnnxOp

# Ops whose output shape follows from input values whatever the inputs are; for the rest,
# the operands that decide the output shape.
_VALUE_SHAPED = {"NonZero", "Unique", "Compress", "NonMaxSuppression"}
_REDUCTIONS = ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1",
               "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp")  # fmt: skip
_SHAPE_OPERANDS: dict[str, frozenset[int]] = {
    "TopK": frozenset({1}), "Range": frozenset({0, 1, 2}), "ConstantOfShape": frozenset({0}),
    "Expand": frozenset({1}), "Tile": frozenset({1}), "Resize": frozenset({2, 3}),
    "Reshape": frozenset({1}), "Slice": frozenset({1, 2, 3, 4}), "OneHot": frozenset({1}),
    "Pad": frozenset({1, 3}), "Squeeze": frozenset({1}), "Unsqueeze": frozenset({1}),
    "Split": frozenset({1}), **dict.fromkeys(_REDUCTIONS, frozenset({1})),
}  # fmt: skip


def discover_shapes(
    ir: IRModel, infos: Mapping[str, TensorInfo], unknown: list[str], source: str
) -> dict[str, TensorInfo]:
    """`infos` completed with the shapes of `unknown` tensors, read off one run on zeros."""
    _reject_data_dependent(ir, set(unknown), source)
    interpreter = Interpreter(ir, check_types=False)
    zeros = {s.name: np.zeros(s.shape, s.dtype) for s in interpreter.input_specs}
    result = interpreter.run(zeros, capture=set(unknown))
    found = dict(infos)
    for name, array in result.tensors.items():
        found[name] = TensorInfo(onnx_element_type(array.dtype), tuple(array.shape))
    return found


def _reject_data_dependent(ir: IRModel, unknown: set[str], source: str) -> None:
    static = _static_values(ir)
    for op in ir.main.body.blocks[0].ops:
        if not isinstance(op, OnnxOp) or not unknown.intersection(op.output_names):
            continue
        operands = op.onnx_inputs()
        deciding = _SHAPE_OPERANDS.get(op.op_type, frozenset())
        if op.op_type in _VALUE_SHAPED or any(
            i < len(operands) and operands[i] is not None and operands[i] not in static
            for i in deciding
        ):
            raise CompilerError(
                f"{source}: {op.describe()} has an output shape that depends on input data; "
                "the NPU needs static shapes (cut the model before this node)"
            )


def _static_values(ir: IRModel) -> set[SSAValue]:
    """Values computable without the inputs' data: constants, shapes, and what only
    those feed."""
    body = ir.main.body.blocks[0]
    # an empty input carries no data: its value is known without the input
    static: set[SSAValue] = {a for a in body.args if _numel(a) == 0}
    for op in body.ops:
        if not isinstance(op, OnnxOp):
            continue
        inputs = [v for v in op.onnx_inputs() if v is not None]
        if (
            isinstance(op, ConstantOp)
            or op.op_type in ("Shape", "Size")
            or (inputs and all(v in static for v in inputs))
        ):
            static.update(op.results)
    return static


def _numel(value: SSAValue) -> int:
    shape = value.type.get_shape() if isinstance(value.type, TensorType) else (-1,)
    return -1 if any(d < 0 for d in shape) else math.prod(shape)
