"""Ops the graph passes make that ONNX (at the canonical opset) does not have.

* `FusedConv`, `FusedConvTranspose`, `FusedGemm`, `FusedMatMul`: the ONNX op, with the
  activation that followed it fused in; `FusedConv` also takes a residual `Z`:

      Y = post_activation(activation(Conv(X, W, B)) + Z)

  What the NPU's DPU computes after a convolution (bias and activation stages, then the
  element-wise stage, then its own activation). An activation is named by its ONNX op type
  (`activation = "LeakyRelu"`) with that op's attributes as a dictionary
  (`activation_attrs = {alpha = 0.1 : f32}`); Clip's bounds, inputs in ONNX, are the
  attributes `min` and `max` here, and PRelu's slope is the operand `slope`.
* `Swish` (x * sigmoid(alpha * x), SiLU for alpha = 1; ONNX's own Swish arrives at opset 24
  with these semantics) and `GLU` (first half * sigmoid(second half) along `axis`): the
  decomposed forms models spell with several ops, recognised as one.

All keep the ONNX names of every node they absorbed: `onnx.node` is the main node, and
`onnx.fused` lists the others.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DictionaryAttr,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.onnx.base import AttributeSpec, OnnxOp, OnnxSchema, TypeVar
from dialects.onnx.ops import ConvOp, ConvTransposeOp, GemmOp, MatMulOp

FUSED_NODES = "onnx.fused"
# the ONNX name of the tensor a fused activation reads (lost from the graph by the fusion)
PREACTIVATION = "onnx.preact"
OPSET_OF_EXTENSIONS = 21  # they follow the canonical opset's ONNX semantics

# Activations a fused op can carry, with the attributes each takes.
FUSABLE_ACTIVATIONS: dict[str, frozenset[str]] = {
    "Relu": frozenset(),
    "Clip": frozenset({"min", "max"}),
    "LeakyRelu": frozenset({"alpha"}),
    "PRelu": frozenset(),  # the slope is the `slope` operand
    "Sigmoid": frozenset(),
    "Tanh": frozenset(),
    "Elu": frozenset({"alpha"}),
    "HardSigmoid": frozenset({"alpha", "beta"}),
    "HardSwish": frozenset(),
    "Swish": frozenset({"alpha"}),
    "Gelu": frozenset({"approximate"}),
}

_FLOATS = ("f16", "f32", "f64")
_ACTIVATION_ATTRIBUTES = {
    "activation": AttributeSpec("string", ""),
    "activation_attrs": AttributeSpec("dict", {}),
    "post_activation": AttributeSpec("string", ""),
    "post_activation_attrs": AttributeSpec("dict", {}),
}


class FusedOp(OnnxOp):
    """Base of the fused ops: the activation accessors and their verification."""

    BASE: ClassVar[type[OnnxOp]]  # the ONNX op this one extends

    # (the `activation` property itself is the IRDL field: these read it as Python values)
    def activation_spec(self) -> tuple[str, dict[str, object]]:
        """(ONNX op type, attributes) of the first activation; ("", {}) when there is none."""
        return self.attr("activation"), dict(self.attr("activation_attrs"))

    def post_activation_spec(self) -> tuple[str, dict[str, object]]:
        """(ONNX op type, attributes) of the activation after the residual add."""
        return self.attr("post_activation"), dict(self.attr("post_activation_attrs"))

    @property
    def fused_nodes(self) -> list[str]:
        attr = self.attributes.get(FUSED_NODES)
        return [a.data for a in getattr(attr, "data", ()) if isinstance(a, StringAttr)]

    def verify_(self) -> None:
        super().verify_()
        try:
            self._verify_activations()
        except VerifyException as exc:
            raise VerifyException(f"{self.describe()}: {exc}") from None

    def _verify_activations(self) -> None:
        for which in ("activation", "post_activation"):
            kind, attrs = self.attr(which), self.attr(f"{which}_attrs")
            if not kind:
                if attrs:
                    raise VerifyException(f"{which}_attrs given without {which}")
                continue
            allowed = FUSABLE_ACTIVATIONS.get(kind)
            if allowed is None:
                raise VerifyException(f"{which} {kind!r} cannot be fused")
            if not set(attrs) <= allowed:
                raise VerifyException(f"{which} {kind} takes no {sorted(set(attrs) - allowed)}")
        if (operand(self, "slope") is not None) != (self.attr("activation") == "PRelu"):
            raise VerifyException("the slope operand goes with activation PRelu, and only it")
        if self.attr("post_activation") == "PRelu":
            raise VerifyException("PRelu can only be the first activation")
        residual = operand(self, "Z") if "Z" in self.SCHEMA.inputs else None
        if residual is not None and residual.type != self.results[0].type:
            raise VerifyException(
                f"residual Z {residual.type} differs from Y {self.results[0].type}"
            )


def _schema(op_type: str, base: type[OnnxOp], extra_inputs: tuple[str, ...]) -> OnnxSchema:
    (tvar,) = base.SCHEMA.type_vars
    members = (*tvar.members, *extra_inputs)
    return OnnxSchema(
        op_type,
        OPSET_OF_EXTENSIONS,
        (*base.SCHEMA.inputs, *extra_inputs),
        base.SCHEMA.outputs,
        {**base.SCHEMA.attributes, **_ACTIVATION_ATTRIBUTES},
        (TypeVar(members, tuple(t for t in tvar.allowed if t in _FLOATS)),),
    )


@irdl_op_definition
class FusedConvOp(FusedOp):
    """Conv + activation (+ residual add + activation)."""

    name = "onnx.FusedConv"
    BASE: ClassVar[type[OnnxOp]] = ConvOp
    X = operand_def(TensorType)
    W = operand_def(TensorType)
    B = opt_operand_def(TensorType)
    Z = opt_operand_def(TensorType)
    slope = opt_operand_def(TensorType)
    Y = result_def(TensorType)
    auto_pad = opt_prop_def(StringAttr)
    dilations = opt_prop_def(DenseArrayBase[I64])
    group = opt_prop_def(IntegerAttr[I64])
    kernel_shape = opt_prop_def(DenseArrayBase[I64])
    pads = opt_prop_def(DenseArrayBase[I64])
    strides = opt_prop_def(DenseArrayBase[I64])
    activation = opt_prop_def(StringAttr)
    activation_attrs = opt_prop_def(DictionaryAttr)
    post_activation = opt_prop_def(StringAttr)
    post_activation_attrs = opt_prop_def(DictionaryAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())
    SCHEMA: ClassVar[OnnxSchema] = _schema("FusedConv", ConvOp, ("Z", "slope"))


@irdl_op_definition
class FusedConvTransposeOp(FusedOp):
    """ConvTranspose + activation."""

    name = "onnx.FusedConvTranspose"
    BASE: ClassVar[type[OnnxOp]] = ConvTransposeOp
    X = operand_def(TensorType)
    W = operand_def(TensorType)
    B = opt_operand_def(TensorType)
    slope = opt_operand_def(TensorType)
    Y = result_def(TensorType)
    auto_pad = opt_prop_def(StringAttr)
    dilations = opt_prop_def(DenseArrayBase[I64])
    group = opt_prop_def(IntegerAttr[I64])
    kernel_shape = opt_prop_def(DenseArrayBase[I64])
    output_padding = opt_prop_def(DenseArrayBase[I64])
    output_shape = opt_prop_def(DenseArrayBase[I64])
    pads = opt_prop_def(DenseArrayBase[I64])
    strides = opt_prop_def(DenseArrayBase[I64])
    activation = opt_prop_def(StringAttr)
    activation_attrs = opt_prop_def(DictionaryAttr)
    post_activation = opt_prop_def(StringAttr)
    post_activation_attrs = opt_prop_def(DictionaryAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())
    SCHEMA: ClassVar[OnnxSchema] = _schema("FusedConvTranspose", ConvTransposeOp, ("slope",))


@irdl_op_definition
class FusedGemmOp(FusedOp):
    """Gemm + activation."""

    name = "onnx.FusedGemm"
    BASE: ClassVar[type[OnnxOp]] = GemmOp
    A = operand_def(TensorType)
    B = operand_def(TensorType)
    C = opt_operand_def(TensorType)
    slope = opt_operand_def(TensorType)
    Y = result_def(TensorType)
    alpha = opt_prop_def(FloatAttr[Float32Type])
    beta = opt_prop_def(FloatAttr[Float32Type])
    transA = opt_prop_def(IntegerAttr[I64])
    transB = opt_prop_def(IntegerAttr[I64])
    activation = opt_prop_def(StringAttr)
    activation_attrs = opt_prop_def(DictionaryAttr)
    post_activation = opt_prop_def(StringAttr)
    post_activation_attrs = opt_prop_def(DictionaryAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())
    SCHEMA: ClassVar[OnnxSchema] = _schema("FusedGemm", GemmOp, ("slope",))


@irdl_op_definition
class FusedMatMulOp(FusedOp):
    """MatMul + activation."""

    name = "onnx.FusedMatMul"
    BASE: ClassVar[type[OnnxOp]] = MatMulOp
    A = operand_def(TensorType)
    B = operand_def(TensorType)
    slope = opt_operand_def(TensorType)
    Y = result_def(TensorType)
    activation = opt_prop_def(StringAttr)
    activation_attrs = opt_prop_def(DictionaryAttr)
    post_activation = opt_prop_def(StringAttr)
    post_activation_attrs = opt_prop_def(DictionaryAttr)
    traits = traits_def(Pure())
    SCHEMA: ClassVar[OnnxSchema] = _schema("FusedMatMul", MatMulOp, ("slope",))


FUSED_OF: dict[str, type[FusedOp]] = {
    cls.BASE.SCHEMA.op_type: cls
    for cls in (FusedConvOp, FusedConvTransposeOp, FusedGemmOp, FusedMatMulOp)
}


@irdl_op_definition
class SwishOp(OnnxOp):
    """Y = X * sigmoid(alpha * X) (SiLU for alpha = 1)."""

    name = "onnx.Swish"
    X = operand_def(TensorType)
    Y = result_def(TensorType)
    alpha = opt_prop_def(FloatAttr[Float32Type])
    traits = traits_def(Pure())
    SCHEMA: ClassVar[OnnxSchema] = OnnxSchema(
        "Swish", OPSET_OF_EXTENSIONS, ("X",), ("Y",), {"alpha": AttributeSpec("float", 1.0)},
        (TypeVar(("X", "Y"), _FLOATS),),
    )  # fmt: skip


@irdl_op_definition
class GLUOp(OnnxOp):
    """Y = A * sigmoid(B), where A and B are the halves of X along `axis`."""

    name = "onnx.GLU"
    X = operand_def(TensorType)
    Y = result_def(TensorType)
    axis = opt_prop_def(IntegerAttr[I64])
    traits = traits_def(Pure())
    SCHEMA: ClassVar[OnnxSchema] = OnnxSchema(
        "GLU", OPSET_OF_EXTENSIONS, ("X",), ("Y",), {"axis": AttributeSpec("int", -1)},
        (TypeVar(("X", "Y"), _FLOATS),),
    )  # fmt: skip


EXTENSION_OPS: tuple[type[OnnxOp], ...] = (*FUSED_OF.values(), SwishOp, GLUOp)


def operand(op: OnnxOp, name: str) -> SSAValue | None:
    """Operand `name` of `op` (ONNX input name), None when absent."""
    inputs = op.onnx_inputs()
    index = op.SCHEMA.inputs.index(name)
    return inputs[index] if index < len(inputs) else None
