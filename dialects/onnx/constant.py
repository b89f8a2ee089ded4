"""`onnx.Constant`, written by hand: the importer folds every spelling of an ONNX Constant
(value, value_float, value_ints, ...) into one `value`, inline for tiny tensors or a handle
into the weight table for the rest."""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType
from xdsl.irdl import irdl_op_definition, prop_def, result_def, traits_def
from xdsl.traits import ConstantLike, Pure
from xdsl.utils.exceptions import VerifyException

from dialects.onnx.base import AttributeSpec, OnnxOp, OnnxSchema
from dialects.weights import WeightRefAttr


@irdl_op_definition
class ConstantOp(OnnxOp):
    """ONNX `Constant`: a tensor given inline or by weight handle."""

    name = "onnx.Constant"
    value = prop_def(DenseIntOrFPElementsAttr | WeightRefAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure(), ConstantLike())
    SCHEMA: ClassVar[OnnxSchema] = OnnxSchema(
        "Constant", 21, (), ("output",), {"value": AttributeSpec("tensor", required=True)}
    )

    def __init__(self, value: DenseIntOrFPElementsAttr | WeightRefAttr, result_type: TensorType):
        super().__init__(properties={"value": value}, result_types=[result_type])

    @property
    def is_weight(self) -> bool:
        return isinstance(self.value, WeightRefAttr)

    def verify_(self) -> None:
        super().verify_()
        if isinstance(self.value, DenseIntOrFPElementsAttr) and (
            self.value.get_type() != self.output.type
        ):
            raise VerifyException(
                f"{self.describe()}: value type {self.value.get_type()} "
                f"differs from result type {self.output.type}"
            )
