"""Activations as fused ops carry them, and the fused form of a Conv / ConvTranspose / Gemm /
MatMul: what `fuse-activation` and `fuse-add` build (`dialects/onnx/fused.py` defines the ops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xdsl.ir import Attribute, Operation, SSAValue

from dialects.onnx import FUSED_OF, OnnxOp
from dialects.onnx.fused import FUSABLE_ACTIVATIONS, FusedOp
from dialects.onnx.ops import ClipOp, GeluOp, PReluOp
from passes.matching import fits_float32
from passes.rewrite import build_op, constant_value, copy_attributes

# Activations whose ONNX attributes are exactly what a fused op carries.
_ATTRIBUTE_ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "HardSigmoid",
                          "HardSwish", "Swish", "Gelu")  # fmt: skip


@dataclass(frozen=True)
class Activation:
    """An activation as a fused op carries it: ONNX op type, attributes, PRelu's slope."""

    kind: str
    attrs: dict[str, Any]
    slope: SSAValue | None = None


def activation_of(op: Operation) -> Activation | None:
    """What `op` computes on its first operand, when a fused op can carry it; None for
    anything else (Clip with non-constant bounds, Gelu "tanh", other ops)."""
    if isinstance(op, ClipOp):
        return _clip_activation(op)
    if isinstance(op, PReluOp):
        return Activation("PRelu", {}, op.slope)
    if not isinstance(op, OnnxOp) or op.op_type not in _ATTRIBUTE_ACTIVATIONS:
        return None
    if isinstance(op, GeluOp) and op.attr("approximate") != "none":
        return None  # the tanh approximation is another function; the DPU has Erf GELU only
    names = sorted(FUSABLE_ACTIVATIONS[op.op_type])
    return Activation(op.op_type, {name: op.attr(name) for name in names})


def _clip_activation(op: ClipOp) -> Activation | None:
    bounds: dict[str, Any] = {}
    for key, value in (("min", op.min), ("max", op.max)):
        if value is None:
            continue  # an absent bound clips nothing on that side
        array = constant_value(value)
        if array is None or array.size != 1 or not fits_float32(array):
            return None
        bounds[key] = float(array.reshape(-1)[0])
    return Activation("Clip", bounds)


def activation_attributes(activation: Activation, slot: str) -> dict[str, Any]:
    """The fused op's attributes naming `activation` in `slot` ("activation" or
    "post_activation")."""
    attributes: dict[str, Any] = {slot: activation.kind}
    if activation.attrs:
        attributes[f"{slot}_attrs"] = activation.attrs
    return attributes


def fused_form(producer: OnnxOp, result_type: Attribute, operands: dict[str, SSAValue],
               attributes: dict[str, Any]) -> OnnxOp:  # fmt: skip
    """`producer` as its fused op (a fused producer as its own kind) with fused `operands`
    ("Z", "slope") and `attributes` set on top of what it has."""
    cls = type(producer) if isinstance(producer, FusedOp) else FUSED_OF[producer.op_type]
    names = cls.SCHEMA.inputs
    inputs = list(producer.onnx_inputs())
    inputs += [None] * (len(names) - len(inputs))
    for name, value in operands.items():
        inputs[names.index(name)] = value
    merged = {**copy_attributes(producer), **attributes}
    return build_op(cls.SCHEMA.op_type, inputs, [result_type], merged)
