"""`import_onnx`: an ONNX model (file or ModelProto) -> verified `onnx`-dialect IR with static
shapes and the weights in a side table.

Steps: load and check structure -> set heavy tensors aside -> pin input shapes -> canonical
opset -> onnx shape inference -> build IR -> (shapes onnx could not infer: run the reference
interpreter once on zeros, read the shapes off, rebuild) -> verify.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue
from xdsl.utils.exceptions import VerifyException

from compiler.errors import CompilerError
from compiler.frontend.builder import build_ir
from compiler.frontend.light_model import split_heavy
from compiler.frontend.load import check_structure, load_model, sort_nodes
from compiler.frontend.onnx_types import onnx_element_type
from compiler.frontend.opset import model_opset, to_canonical_opset
from compiler.frontend.shapes import (
    TensorInfo,
    apply_input_shapes,
    infer_tensor_infos,
    parse_input_shapes,
)
from compiler.ir_model import IRModel
from dialects.onnx import ConstantOp, OnnxOp

__all__ = ["import_onnx", "parse_input_shapes"]

# Ops whose output shape depends on input values whatever their inputs are, and, for the
# rest, the operands that decide the output shape.
_VALUE_SHAPED = {"NonZero", "Unique", "Compress", "NonMaxSuppression"}
_SHAPE_OPERANDS = {
    "TopK": {1},
    "Range": {0, 1, 2},
    "ConstantOfShape": {0},
    "Expand": {1},
    "Tile": {1},
    "Resize": {2, 3},
    "Reshape": {1},
    "Slice": {1, 2, 3, 4},
    "OneHot": {1},
    "Pad": {1, 3},
    "Squeeze": {1},
    "Unsqueeze": {1},
    "Split": {1},
    **{
        f"Reduce{kind}": {1}
        for kind in (
            "Mean",
            "Max",
            "Min",
            "Sum",
            "Prod",
            "L1",
            "L2",
            "SumSquare",
            "LogSum",
            "LogSumExp",
        )
    },
}


def import_onnx(
    model: onnx.ModelProto | Path | str,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> IRModel:
    """Import `model`; `input_shapes` pins dynamic input dimensions by input name."""
    if isinstance(model, onnx.ModelProto):
        source = model.graph.name or "model"
    else:
        source = str(model)
        model = load_model(model)
    source_opset = model_opset(model)
    light, heavy = split_heavy(model)  # a copy: the caller's model is never modified
    sort_nodes(light.graph)
    check_structure(light, source)
    apply_input_shapes(light, dict(input_shapes or {}), heavy.tensors, source)
    light = to_canonical_opset(light, source)
    infos = infer_tensor_infos(light, source)
    ir, unknown = build_ir(light, heavy, infos, source, source_opset)
    if unknown:
        infos = _discover_shapes(ir, infos, unknown, source)
        ir, unknown = build_ir(light, heavy, infos, source, source_opset)
        if unknown:  # pragma: no cover - _discover_shapes resolves every tensor it runs
            raise CompilerError(f"{source}: cannot determine the shape of {unknown[0]!r}")
    _verify(ir, source)
    return ir


def _discover_shapes(
    ir: IRModel, infos: Mapping[str, TensorInfo], unknown: list[str], source: str
) -> dict[str, TensorInfo]:
    """Shapes onnx's inference left open, read off one run on zeros. Valid only when no
    data-dependent op feeds them, which is checked."""
    from compiler.interpreter import Interpreter

    _reject_data_dependent(ir, set(unknown), source)
    interpreter = Interpreter(ir, check_types=False)
    zeros = {s.name: np.zeros(s.shape, s.dtype) for s in interpreter.input_specs}
    result = interpreter.run(zeros, capture=set(unknown))
    found = dict(infos)
    for name, array in result.tensors.items():
        found[name] = TensorInfo(onnx_element_type(array.dtype), tuple(array.shape))
    return found


def _reject_data_dependent(ir: IRModel, unknown: set[str], source: str) -> None:
    """Zeros stand in for the inputs only where shapes follow from constants and from
    other tensors' shapes (Shape/Size), never from the input values."""
    static = _static_values(ir)
    for op in ir.main.body.blocks[0].ops:
        if not isinstance(op, OnnxOp) or not unknown.intersection(op.output_names):
            continue
        operands = op.onnx_inputs()
        deciding = _SHAPE_OPERANDS.get(op.op_type, set())
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


def _verify(ir: IRModel, source: str) -> None:
    try:
        ir.module.verify()
    except VerifyException as exc:
        text = str(exc).strip().splitlines()
        raise CompilerError(f"{source}: inconsistent model: {text[0] if text else exc}") from None
