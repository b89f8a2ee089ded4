"""`assign-layout`: the memory layout of every op's result and of the model's inputs and
outputs (after `partition-cpu`, which it needs).

- a 4-D result of an NPU op: NC1HWC2, with `backend.c2` = the chip's C2 for its dtype
  (`Target.c2`; the chip is the module's `backend.chip`, rk3588 when absent);
- a 4-D result of a CPU op: NCHW;
- anything not 4-D: UNDEFINED (RKNN keeps the ONNX order);
- model inputs and outputs, as `backend.layout` in the function's argument / result
  attributes (beside `onnx.name`): NCHW for 4-D, UNDEFINED otherwise, except a 4-D input
  with 1, 3 or 4 channels of float, int8 or uint8 elements, which RKNN takes as NHWC
  natively (sdk_inventory §5.3, RKNN_QUERY_NATIVE_INPUT_ATTR).

Constants get no layout (how weights are stored is code generation's business). An op with
several results gets the layout of its first. Where an NPU op reads a CPU op's NCHW result
(or the other way round) the layouts differ: converting there is for the code that runs the
segments.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    Float16Type,
    Float32Type,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Operation
from xdsl.passes import ModulePass

from backends.layout import NC1HWC2, NCHW, NHWC, UNDEFINED
from backends.targets import Target, get_target
from dialects.errors import CompilerError
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.onnx import ConstantOp, OnnxOp

PASS_NAME = "assign-layout"
NATIVE_NHWC_CHANNELS = (1, 3, 4)  # sdk §5.3: 4-D inputs RKNN takes as NHWC


@dataclass(frozen=True)
class AssignLayout(ModulePass):
    """Sets the layout of every result and model input/output (backend.layout, backend.c2).

    NC1HWC2 with the chip's C2 on the NPU, NCHW on the CPU, UNDEFINED off 4-D; NHWC for a
    model input of 1, 3 or 4 channels."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip = get_target(pl.get_str(op, pl.CHIP))
        funcs = [f for f in op.ops if isinstance(f, FuncOp)]
        placed = [o for f in funcs for o in f.body.blocks[0].ops
                  if not isinstance(o, (ConstantOp, ReturnOp))]  # fmt: skip
        for o in placed:
            if pl.get_str(o, pl.TARGET) is None:
                raise CompilerError(
                    f"{PASS_NAME} needs partition-cpu first: {_describe(o)} has no "
                    f"{pl.TARGET} (run 'partition-cpu,{PASS_NAME}')"
                )
        for o in placed:
            layout, c2 = op_layout(o, chip)
            pl.set_str(o, pl.LAYOUT, layout)
            if c2 is None:
                o.attributes.pop(pl.C2, None)
            else:
                pl.set_int(o, pl.C2, c2)
        for func in funcs:
            func.arg_attrs = _with_layouts(func.arg_attrs, func.function_type.inputs.data, True)
            func.res_attrs = _with_layouts(func.res_attrs, func.function_type.outputs.data, False)


def op_layout(op: Operation, chip: Target) -> tuple[str, int | None]:
    """(layout, C2 or None) of `op`'s (first) result."""
    if not op.results or not _is_4d(op.results[0].type):
        return UNDEFINED, None
    if pl.get_str(op, pl.TARGET) == "npu" and isinstance(op, npu.NpuOp):
        dtype = op.quant.element
        if dtype in chip.activation_dtypes:
            return NC1HWC2, chip.c2(dtype)
    return NCHW, None


def boundary_layout(value_type: Attribute, is_input: bool) -> str:
    """The layout RKNN gives a model input (`is_input`) or output of this type."""
    if not _is_4d(value_type):
        return UNDEFINED
    assert isinstance(value_type, TensorType)
    element = value_type.element_type
    native = isinstance(element, (Float32Type, Float16Type)) or (
        isinstance(element, IntegerType) and element.width.data == 8
    )
    if is_input and native and value_type.get_shape()[1] in NATIVE_NHWC_CHANNELS:
        return NHWC
    return NCHW


def _is_4d(value_type: Attribute) -> bool:
    return isinstance(value_type, TensorType) and len(value_type.get_shape()) == 4


def _with_layouts(attrs: ArrayAttr[DictionaryAttr] | None, types: tuple[Attribute, ...],
                  is_input: bool) -> ArrayAttr[DictionaryAttr]:  # fmt: skip
    """The argument / result attribute dictionaries with `backend.layout` added (the
    others, `onnx.name` among them, kept)."""
    old = list(attrs.data) if attrs is not None else []
    new = []
    for index, value_type in enumerate(types):
        entries = dict(old[index].data) if index < len(old) else {}
        entries[pl.LAYOUT] = StringAttr(boundary_layout(value_type, is_input))
        new.append(DictionaryAttr(entries))
    return ArrayAttr(new)


def _describe(op: Operation) -> str:
    return op.describe() if isinstance(op, (OnnxOp, npu.NpuOp)) else op.name
