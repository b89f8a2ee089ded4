"""ONNX tensor element types -> the IR's element types."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Attribute

from compiler.errors import CompilerError
from dialects.dtypes import ONNX_CODES, element_type

# bfloat16 has a code but no numpy dtype, and the NPU does not compute in it
_SHORT = {code: name for code, name in ONNX_CODES.items() if name != "bf16"}


def ir_element_type(elem: int, what: str) -> Attribute:
    """The IR element type of ONNX element type `elem`; `what` names the tensor for errors."""
    short = _SHORT.get(elem)
    if short is None:
        name = TensorProto.DataType.Name(elem) if elem in TensorProto.DataType.values() else elem
        raise CompilerError(f"{what} has element type {name}, which is not supported")
    return element_type(short)


def ir_tensor_type(elem: int, shape: tuple[int, ...], what: str) -> TensorType:
    return TensorType(ir_element_type(elem, what), list(shape))


def onnx_element_type(dtype: np.dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
