"""The `onnx` dialect: ONNX operators at one canonical opset (`OPSET`), values typed as
static ranked tensors, ONNX attributes as properties.

`ops.py` is generated from ONNX's schemas (`generate.py`); `constant.py` is hand-written;
`fused.py` holds the ops passes make that ONNX lacks (fused activations, Swish, GLU);
`verifiers.py` adds shape checks on top of the schema checks of `base.OnnxOp`.
"""

from xdsl.ir import Dialect

from dialects.onnx import verifiers  # noqa: F401  (registers the per-op checks)
from dialects.onnx.base import (
    NODE_NAME,
    OUTPUT_NAMES,
    AttributeSpec,
    OnnxOp,
    OnnxSchema,
    attribute_from_value,
    attribute_value,
    dense_from_numpy,
    dense_to_numpy,
)
from dialects.onnx.constant import ConstantOp
from dialects.onnx.fused import EXTENSION_OPS, FUSED_OF, FusedOp
from dialects.onnx.ops import GENERATED_OPS, OPSET

# What an ONNX file can contain, and everything the IR can contain (passes add extensions).
STANDARD_OPS: dict[str, type[OnnxOp]] = {
    cls.SCHEMA.op_type: cls for cls in (*GENERATED_OPS, ConstantOp)
}
OPS_BY_TYPE: dict[str, type[OnnxOp]] = {
    **STANDARD_OPS,
    **{cls.SCHEMA.op_type: cls for cls in EXTENSION_OPS},
}

ONNX = Dialect("onnx", list(OPS_BY_TYPE.values()), [])

__all__ = [
    "EXTENSION_OPS",
    "FUSED_OF",
    "NODE_NAME",
    "ONNX",
    "OPSET",
    "OPS_BY_TYPE",
    "OUTPUT_NAMES",
    "STANDARD_OPS",
    "AttributeSpec",
    "ConstantOp",
    "FusedOp",
    "OnnxOp",
    "OnnxSchema",
    "attribute_from_value",
    "attribute_value",
    "dense_from_numpy",
    "dense_to_numpy",
]
