"""Predicates patterns use to match the graph: value dtypes, scalar constants compared with
a float32 tolerance, and "the one op reading / defining this value" (a value with another
reader cannot be absorbed into a fused op)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from xdsl.ir import Operation, SSAValue

from dialects.dtypes import element_type_name
from passes.rewrite import constant_value, has_single_use, only_user

# Relative tolerance for the constants of a decomposed activation: exporters write them in
# float32 (1.4142135, 0.70710677, 0.16666667), a few ulps from the exact value.
RTOL = 1e-6

FLOAT_TYPES = ("f16", "f32", "f64")


def fits_float32(array: np.ndarray) -> bool:
    """The value survives a float32 attribute (fused attributes are f32) unchanged."""
    return bool(np.all(array.astype(np.float32).astype(array.dtype) == array))


def is_float(value: SSAValue) -> bool:
    return element_type_name(value.type.element_type) in FLOAT_TYPES


def scalar_constant(value: SSAValue) -> float | None:
    """The value of a one-element float constant, else None."""
    array = constant_value(value)
    if array is None or array.size != 1 or array.dtype.kind != "f":
        return None
    return float(array.reshape(-1)[0])


def is_close(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= RTOL * abs(target)


def single_reader(value: SSAValue, cls: type[Operation]) -> Operation | None:
    """The one op reading `value` when it is a `cls` (the graph output does not count as
    one: a value the graph returns is read twice)."""
    reader = only_user(value) if has_single_use(value) else None
    return reader if isinstance(reader, cls) else None


def defined_by(value: SSAValue, cls: type[Operation]) -> Operation | None:
    """The `cls` op defining `value` when `value` has no other reader than the one asking."""
    owner = value.owner
    return owner if isinstance(owner, cls) and has_single_use(value) else None


def operand_orders(op: Operation) -> Iterator[tuple[SSAValue, SSAValue]]:
    """(first, second) and (second, first): the operands of a commutative binary op."""
    a, b = op.operands
    yield a, b
    yield b, a
