"""Where a tensor lives, as code generation addresses it: shape, dtype, layout and C2
(assign-layout), buffer and byte offset (plan-memory), read off the `backend.*` attributes of
the value's producer or, for a model input, the function's argument attributes
(`dialects/npu/placement.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import (
    DictionaryAttr,
    Float16Type,
    IntAttr,
    IntegerType,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import BlockArgument, Operation, SSAValue

from backends.codegen.buffers import ARENA, input_buffer, output_buffer
from backends.layout import NC1HWC2
from dialects.errors import CompilerError
from dialects.npu import placement as pl

INTERNAL, INPUT, OUTPUT = "internal", "input", "output"


@dataclass(frozen=True)
class Placed:
    """A tensor in memory: `shape` as the IR has it (NCHW for 4-D), `dtype` ("i8", "i16",
    "f16"), `layout` with `c2` (1 unless NC1HWC2), `buffer` id and byte `offset`."""

    shape: tuple[int, ...]
    dtype: str
    layout: str
    c2: int
    buffer: int
    offset: int

    @property
    def planar(self) -> bool:
        """Row-major in the IR's axis order (NCHW, or a non-4-D tensor)."""
        return self.layout != NC1HWC2


def dtype_of(value: SSAValue) -> str:
    element = value.type.element_type if isinstance(value.type, TensorType) else None
    if isinstance(element, IntegerType) and element.width.data in (8, 16):
        return f"i{element.width.data}"
    if isinstance(element, Float16Type):
        return "f16"
    raise CompilerError(f"no NPU storage for a tensor of {value.type}")


def placed(value: SSAValue, func: FuncOp) -> Placed:
    """`value`'s place; a CompilerError when assign-layout or plan-memory has not run."""
    assert isinstance(value.type, TensorType)
    shape = tuple(value.type.get_shape())
    attrs = _attributes(value, func)
    layout = _string(attrs, pl.LAYOUT, value)
    c2 = _int(attrs, pl.C2, value) if layout == NC1HWC2 else 1
    buffer = _string(attrs, pl.BUFFER, value)
    if buffer == INTERNAL:
        return Placed(shape, dtype_of(value), layout, c2, ARENA, _int(attrs, pl.OFFSET, value))
    if buffer == INPUT and isinstance(value, BlockArgument):
        return Placed(shape, dtype_of(value), layout, c2, input_buffer(value.index), 0)
    if buffer == OUTPUT:
        index = _returned_index(value, func)
        inputs = len(func.body.blocks[0].args)
        return Placed(shape, dtype_of(value), layout, c2, output_buffer(inputs, index), 0)
    raise CompilerError(f"{_name(value)}: unknown buffer {buffer!r}")


def _attributes(value: SSAValue, func: FuncOp) -> dict:
    if isinstance(value, BlockArgument):
        arg_attrs = func.arg_attrs.data if func.arg_attrs is not None else ()
        entry = arg_attrs[value.index] if value.index < len(arg_attrs) else None
        return dict(entry.data) if isinstance(entry, DictionaryAttr) else {}
    assert isinstance(value.owner, Operation)
    return dict(value.owner.attributes)


def _returned_index(value: SSAValue, func: FuncOp) -> int:
    """The result position of `value` (plan-memory gives a returned result its own buffer)."""
    block = func.body.blocks[0]
    ret = block.last_op
    assert isinstance(ret, ReturnOp)
    for index, returned in enumerate(ret.operands):
        if returned is value:
            return index
    raise CompilerError(f"{_name(value)} is in an output buffer but not returned")


def _string(attrs: dict, key: str, value: SSAValue) -> str:
    attr = attrs.get(key)
    if not isinstance(attr, StringAttr):
        raise CompilerError(f"{_name(value)} has no {key}: run assign-layout and plan-memory first")
    return attr.data


def _int(attrs: dict, key: str, value: SSAValue) -> int:
    attr = attrs.get(key)
    if not isinstance(attr, IntAttr):
        raise CompilerError(f"{_name(value)} has no {key}: run assign-layout and plan-memory first")
    return attr.data


def _name(value: SSAValue) -> str:
    owner = value.owner
    if isinstance(owner, Operation) and hasattr(owner, "describe"):
        return owner.describe()
    return f"model input {value.name_hint or '?'}"
