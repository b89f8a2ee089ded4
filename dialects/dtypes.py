"""Element types: xDSL builtin types <-> numpy dtypes <-> short names.

The short names are MLIR's spelling (`f32`, `i64`, `ui8`, `i1`); the generated ONNX op
classes use them in their type constraints.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
    TensorType,
)
from xdsl.ir import Attribute

_UNSIGNED = Signedness.UNSIGNED

# name -> (xDSL type, numpy dtype or None when numpy has no native dtype for it)
_TYPES: dict[str, tuple[Attribute, np.dtype | None]] = {
    "f16": (Float16Type(), np.dtype(np.float16)),
    "f32": (Float32Type(), np.dtype(np.float32)),
    "f64": (Float64Type(), np.dtype(np.float64)),
    "bf16": (BFloat16Type(), None),
    "i1": (IntegerType(1), np.dtype(np.bool_)),
    "i8": (IntegerType(8), np.dtype(np.int8)),
    "i16": (IntegerType(16), np.dtype(np.int16)),
    "i32": (IntegerType(32), np.dtype(np.int32)),
    "i64": (IntegerType(64), np.dtype(np.int64)),
    "ui8": (IntegerType(8, _UNSIGNED), np.dtype(np.uint8)),
    "ui16": (IntegerType(16, _UNSIGNED), np.dtype(np.uint16)),
    "ui32": (IntegerType(32, _UNSIGNED), np.dtype(np.uint32)),
    "ui64": (IntegerType(64, _UNSIGNED), np.dtype(np.uint64)),
}

# ONNX's TensorProto.DataType codes (stable across onnx releases): the `to` of Cast,
# ConstantOfShape's value type, the element types of ONNX tensors.
ONNX_CODES: dict[int, str] = {
    1: "f32", 2: "ui8", 3: "i8", 4: "ui16", 5: "i16", 6: "i32", 7: "i64", 9: "i1", 10: "f16",
    11: "f64", 12: "ui32", 13: "ui64", 16: "bf16",
}  # fmt: skip

_BY_TYPE: dict[Attribute, str] = {t: name for name, (t, _) in _TYPES.items()}
_BY_DTYPE: dict[np.dtype, str] = {d: name for name, (_, d) in _TYPES.items() if d is not None}


class UnsupportedElementType(ValueError):
    """An element type the IR has no numpy representation for."""


def element_type(name: str) -> Attribute:
    """`"f32"` -> `f32`."""
    return _TYPES[name][0]


def element_type_name(elem: Attribute) -> str:
    """`f32` -> `"f32"`; an unknown type gives its printed form."""
    return _BY_TYPE.get(elem, str(elem))


def numpy_dtype(elem: Attribute) -> np.dtype:
    """The numpy dtype that holds values of element type `elem`."""
    name = _BY_TYPE.get(elem)
    dtype = _TYPES[name][1] if name else None
    if dtype is None:
        raise UnsupportedElementType(f"element type {elem} has no numpy representation")
    return dtype


def element_type_of(dtype: np.dtype | type) -> Attribute:
    """The element type for numpy `dtype`."""
    name = _BY_DTYPE.get(np.dtype(dtype))
    if name is None:
        raise UnsupportedElementType(f"numpy dtype {np.dtype(dtype)} has no IR element type")
    return _TYPES[name][0]


def tensor_type(shape: tuple[int, ...] | list[int], dtype: np.dtype | type) -> TensorType:
    """A ranked tensor type of numpy `dtype`."""
    return TensorType(element_type_of(dtype), list(shape))


def tensor_type_of(array: np.ndarray) -> TensorType:
    return tensor_type(array.shape, array.dtype)


def known_element_type_names() -> tuple[str, ...]:
    return tuple(_TYPES)
