"""What the backend passes (`tile`, `plan-memory`) read about values and ops: the target
chip (module attribute `backend.chip`), an op's placement, and a value's dtype, layout, C2
and storage size. The layout and C2 are the `backend.*` attributes of the value's producer
(`dialects/npu/placement.py`), which assign-layout sets.

Where assign-layout has left no attribute, a default applies: a 4-D tensor of an NPU
activation dtype (i8, i16, f16) is taken as NC1HWC2 with the target's C2, any other 4-D
tensor as NCHW, and tensors of other ranks as UNDEFINED.
"""

from __future__ import annotations

from xdsl.dialects.builtin import AnyFloat, IntegerType, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue

from backends.layout import ELEMENT_BYTES, NC1HWC2, NCHW, UNDEFINED, storage_bytes
from backends.targets import Target, get_target
from dialects.errors import CompilerError
from dialects.npu.placement import C2, CHIP, LAYOUT, TARGET, get_int, get_str


def target_of(module: ModuleOp) -> Target:
    """The chip named by the module's `backend.chip` attribute (rk3588 when it is absent)."""
    return get_target(get_str(module, CHIP))


def runs_on_npu(op: Operation) -> bool:
    return get_str(op, TARGET) == "npu"


def shape_of(value: SSAValue) -> tuple[int, ...]:
    assert isinstance(value.type, TensorType), value.type
    return tuple(value.type.get_shape())


def element_bits(value: SSAValue) -> int:
    assert isinstance(value.type, TensorType), value.type
    return _bits(value.type.element_type)


def dtype_name(value: SSAValue) -> str:
    """The element type of `value` as a dtype name: "i8", "i16", "f16", "f32", "i64", ..."""
    assert isinstance(value.type, TensorType), value.type
    element = value.type.element_type
    prefix = "f" if isinstance(element, AnyFloat) else "i"
    return f"{prefix}{_bits(element)}"


def element_bytes(value: SSAValue) -> int:
    return max(1, -(-element_bits(value) // 8))


def _bits(element: Attribute) -> int:
    if isinstance(element, IntegerType | AnyFloat):
        return element.bitwidth
    raise CompilerError(f"no storage size for element type {element}")


def layout_of(value: SSAValue, target: Target) -> tuple[str, int]:
    """(layout, C2) of `value`. C2 is 1 unless the layout is NC1HWC2."""
    owner = value.owner if isinstance(value.owner, Operation) else None
    layout = get_str(owner, LAYOUT) if owner is not None else argument_layout(value)
    rank = len(shape_of(value))
    if layout is None:
        if rank == 4 and dtype_name(value) in target.activation_dtypes:
            layout = NC1HWC2
        else:
            layout = NCHW if rank == 4 else UNDEFINED
    if layout != NC1HWC2 or rank != 4:
        return layout, 1
    c2 = get_int(owner, C2) if owner is not None else None
    return layout, c2 if c2 is not None else target.c2(dtype_name(value))


def argument_layout(value: SSAValue) -> str | None:
    """A function argument's `backend.layout` (in the function's argument attributes)."""
    if not isinstance(value, BlockArgument):
        return None
    func = value.block.parent_op()
    if not isinstance(func, FuncOp) or func.arg_attrs is None:
        return None
    if value.index >= len(func.arg_attrs.data):
        return None
    layout = func.arg_attrs.data[value.index].data.get(LAYOUT)
    return layout.data if isinstance(layout, StringAttr) else None


def value_bytes(value: SSAValue, target: Target) -> int:
    """Bytes `value` takes in memory in its layout (backends/layout.storage_bytes)."""
    layout, c2 = layout_of(value, target)
    shape, dtype = shape_of(value), dtype_name(value)
    if dtype in ELEMENT_BYTES:
        return storage_bytes(shape, dtype, layout, c2)
    return storage_bytes(shape, "u8", layout, c2) * element_bytes(value)  # one byte each
