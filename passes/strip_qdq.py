"""`strip-qdq`: a pre-quantized (QDQ) ONNX model -> its float graph plus the parameters the
QuantizeLinear / DequantizeLinear nodes carried.

onnxruntime's `quantize_static`, NNCF and PyTorch QAT exports mark every quantized tensor
with a QuantizeLinear -> DequantizeLinear pair and store weights as integers behind a
DequantizeLinear. This pass removes both:

    x -> QuantizeLinear(s, zp) -> DequantizeLinear(s, zp) -> y      =>  x   (x gets (s, zp))
    DequantizeLinear(w_int8 const, s[, zp], axis)                    =>  float const (s, axis)

The parameters go to the `QdqParameters` in scope (`with recording_qdq() as found:`), by
ONNX tensor name (activations) and weight constant name (weights), where the quantizer picks
them up instead of calibrating. Unsigned 8/16-bit activations become signed ones with the
same scale (zero point - 128 / - 32768: the same real values). Weights keep their integer
values only when they are symmetric (zero point 0), as the contract wants; others are
requantized from the float values, which the pass notes.

Dynamic quantization (ConvInteger, MatMulInteger, DynamicQuantizeLinear) and the QOperator
format (QLinearConv, ...) compute their own scales at run time or in their own integer
ops: those models are refused with the node named.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import DictionaryAttr, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from dialects.errors import CompilerError
from dialects.npu import numerics as nx
from dialects.onnx import OnnxOp
from passes.report import note
from passes.rewrite import constant_value, make_constant
from runtime.kernels.quantize import dequantize_linear

PASS_NAME = "strip-qdq"

# ONNX ops that mean the model was quantized some way the NPU flow cannot take over
REFUSED = {
    "ConvInteger": "dynamic quantization",
    "MatMulInteger": "dynamic quantization",
    "DynamicQuantizeLinear": "dynamic quantization",
    "QLinearConv": "the QOperator format",
    "QLinearMatMul": "the QOperator format",
    "QLinearAdd": "the QOperator format",
    "QLinearMul": "the QOperator format",
}
SIGNED = {np.dtype(np.int8): "i8", np.dtype(np.int16): "i16"}
UNSIGNED = {np.dtype(np.uint8): ("i8", 128), np.dtype(np.uint16): ("i16", 32768)}


@dataclass
class QdqParameters:
    """What a QDQ model's nodes said: activation parameters by tensor name, weight
    parameters by the name of the float constant that replaced the integer weights."""

    activations: dict[str, nx.QuantParams] = field(default_factory=dict)
    weights: dict[str, nx.QuantParams] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.activations or self.weights)


_FOUND: contextvars.ContextVar[QdqParameters | None] = contextvars.ContextVar("qdq", default=None)


@contextlib.contextmanager
def recording_qdq() -> Iterator[QdqParameters]:
    found = QdqParameters()
    token = _FOUND.set(found)
    try:
        yield found
    finally:
        _FOUND.reset(token)


@dataclass(frozen=True)
class StripQdq(ModulePass):
    """Remove QuantizeLinear/DequantizeLinear pairs and integer weights, keeping their parameters."""  # noqa: E501

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        found = _FOUND.get()
        found = QdqParameters() if found is None else found
        for block in _blocks(op):
            _refuse_dynamic(block)
            pairs, weights, kept = _strip(block, found)
            if pairs or weights:
                note(PASS_NAME, f"removed {pairs} quantize/dequantize pairs, "
                                f"{weights} integer weights")  # fmt: skip
            for what in kept:
                note(PASS_NAME, what)


def _blocks(module: ModuleOp) -> list[Block]:
    return [region.blocks[0] for func in module.ops for region in func.regions if region.blocks]


def _refuse_dynamic(block: Block) -> None:
    for op in block.ops:
        if isinstance(op, OnnxOp) and op.op_type in REFUSED:
            raise CompilerError(
                f"{op.describe()}: a model quantized with {REFUSED[op.op_type]} cannot be "
                "compiled; give the float model (with --dataset) or a QDQ model "
                "(onnxruntime quantize_static with QuantFormat.QDQ)"
            )


def _strip(block: Block, found: QdqParameters) -> tuple[int, int, list[str]]:
    pairs = weights = 0
    kept: list[str] = []
    for op in list(block.ops):
        if not isinstance(op, OnnxOp) or op.op_type != "DequantizeLinear":
            continue
        source = op.onnx_inputs()[0]
        producer = source.owner if source is not None else None
        if isinstance(producer, OnnxOp) and producer.op_type == "QuantizeLinear":
            pairs += _strip_pair(op, producer, found, kept)
        elif constant_value(source) is not None:
            weights += _strip_weight(op, found, kept)
    _erase_unused_qdq(block)
    return pairs, weights, kept


def _erase_unused_qdq(block: Block) -> None:
    for op in reversed(list(block.ops)):
        is_qdq = isinstance(op, OnnxOp) and op.op_type in ("QuantizeLinear", "DequantizeLinear")
        if is_qdq and all(not r.uses for r in op.results):
            block.erase_op(op)


def _strip_pair(dq: OnnxOp, q: OnnxOp, found: QdqParameters, kept: list[str]) -> int:
    x = q.onnx_inputs()[0]
    params = _activation_params(q)
    if x is None or params is None:
        kept.append(f"kept {q.describe()}: its parameters are not constant per-tensor ones")
        return 0
    found.activations.setdefault(_tensor_name(x, q), params)
    dq.results[0].replace_all_uses_with(x)
    return 1


def _activation_params(q: OnnxOp) -> nx.QuantParams | None:
    _, scale_value, *rest = [*q.onnx_inputs(), None]
    scale = constant_value(scale_value)
    zero_point = constant_value(rest[0]) if rest and rest[0] is not None else None
    if scale is None or scale.size != 1 or (zero_point is not None and zero_point.size != 1):
        return None
    zp_dtype = zero_point.dtype if zero_point is not None else np.dtype(np.uint8)
    zp = int(zero_point.reshape(())) if zero_point is not None else 0
    if zp_dtype in SIGNED:
        dtype = SIGNED[zp_dtype]
    elif zp_dtype in UNSIGNED:
        dtype, offset = UNSIGNED[zp_dtype]
        zp -= offset
    else:
        return None
    return nx.QuantParams(dtype, np.float64(scale.reshape(())), np.int64(zp))


def _tensor_name(value: SSAValue, reader: OnnxOp) -> str:
    """The ONNX name of `value`: a graph input's (from the function) or its producer's."""
    owner = value.owner
    if isinstance(owner, OnnxOp):
        names = owner.output_names
        index = getattr(value, "index", 0)
        return names[index] if index < len(names) else ""
    return _argument_name(value, reader)


def _argument_name(value: SSAValue, reader: OnnxOp) -> str:
    func = reader.parent_op()
    index = getattr(value, "index", 0)
    if isinstance(func, FuncOp) and func.arg_attrs is not None:
        d = func.arg_attrs.data[index]
        name = d.data.get("onnx.name") if isinstance(d, DictionaryAttr) else None
        if isinstance(name, StringAttr):
            return name.data
    return f"input{index}"


def _strip_weight(dq: OnnxOp, found: QdqParameters, kept: list[str]) -> int:
    inputs = [*dq.onnx_inputs(), None, None]
    q_values, scale = constant_value(inputs[0]), constant_value(inputs[1])
    zero_point = constant_value(inputs[2]) if inputs[2] is not None else None
    if q_values is None or scale is None or (inputs[2] is not None and zero_point is None):
        return 0
    attrs = dq.attribute_values()
    if int(attrs.get("block_size", 0) or 0):
        kept.append(f"kept {dq.describe()}: blocked quantization is not supported")
        return 0
    axis = int(attrs.get("axis", 1))
    real = dequantize_linear(q_values, scale, zero_point, axis=axis, block_size=0)
    name = dq.output_names[0] if dq.output_names else f"{dq.node_name}_w"
    constant = make_constant(np.asarray(real, np.float32), name)
    Rewriter.insert_op(constant, InsertPoint.before(dq))
    dq.results[0].replace_all_uses_with(constant.results[0])
    params = _weight_params(q_values, scale, zero_point, axis)
    if params is not None:
        found.weights[constant.output_names[0]] = params
    elif q_values.dtype != np.int32:  # an int32 bias is requantized exactly at s_in * s_w
        kept.append(f"{dq.describe()}: weights are not symmetric int8/int16; requantized")
    return 1


def _weight_params(q_values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
                   axis: int) -> nx.QuantParams | None:  # fmt: skip
    """Symmetric weight parameters (per channel of `axis` or per tensor), else None."""
    if q_values.dtype not in SIGNED or (zero_point is not None and np.any(zero_point != 0)):
        return None
    dtype = SIGNED[q_values.dtype]
    if scale.size == 1:
        return nx.QuantParams(dtype, np.float64(scale.reshape(())), np.int64(0))
    axis = axis % q_values.ndim
    return nx.QuantParams(dtype, scale.astype(np.float64).reshape(-1),
                          np.zeros(scale.size, np.int64), axis)  # fmt: skip
