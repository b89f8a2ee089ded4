"""`lower-to-npu`: `onnx` ops -> quantized `npu` ops, with the parameters of the quantization
plan in scope (`passes.quantization_plan.using_plan`).

Walks the graph in order. Each op the NPU can run becomes its `npu` op: weights quantized
(symmetric, per output channel or per tensor), the bias int32 at `s_in * s_w`, the output's
parameters from the plan (or, for ops that only move data — Reshape, Transpose, Slice,
Split, Pad, MaxPool — the input's, so they never requantize). Inputs come in the op's
dtype: a float value gets an `npu.quantize` (at a model input with the plan's mean/std), a
value in another dtype an `npu.requantize`. An op the NPU cannot run stays a float `onnx`
op (the backend puts it on the CPU) behind `npu.dequantize`; the pass reports each one with
its reason. Graph outputs are dequantized to float32.

Per-layer overrides (`plan.overrides`, by output tensor name) change the dtype an op computes
in (int8, int16, float16); the boundaries get their requantize ops from the rule above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import (
    DictionaryAttr,
    Float16Type,
    Float32Type,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.attributes import QuantAttr
from dialects.npu.limits import conv_violation, pool_violation
from dialects.onnx import ConstantOp, OnnxOp
from dialects.onnx.fused import FusedOp, operand
from dialects.weights import current_weights
from passes.quantization_plan import QuantPlan, current_plan
from passes.report import note
from passes.rewrite import constant_value, fused_nodes, make_constant, weight_name
from runtime.kernels import KERNELS
from runtime.kernels.conv import resolve_padding

PASS_NAME = "lower-to-npu"

ELEMENT_TYPES: dict[str, Attribute] = {
    "i8": IntegerType(8), "i16": IntegerType(16), "i32": IntegerType(32),
    "f16": Float16Type(), "f32": Float32Type(),
}  # fmt: skip

# Element-wise ops with one tensor input (others constant) that a lookup table replaces.
LUT_OPS = frozenset({
    "Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Swish", "HardSwish",
    "HardSigmoid", "Gelu", "Elu", "Selu", "Celu", "Exp", "Softplus", "Softsign", "Mish",
    "Erf", "Abs", "Neg", "Sqrt", "Log", "Reciprocal", "Sin", "Cos", "ThresholdedRelu",
})  # fmt: skip
ELTWISE = {"Add": "add", "Sub": "sub", "Mul": "mul", "Max": "max", "Min": "min"}
RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
FLOAT_LIMIT = 3.4e38  # an absent Clip bound
POST_ADD = ("none", "relu", "clip")  # what the DPU applies after a residual add


class Unsupported(Exception):
    """Why the NPU does not run an op (it stays on the CPU)."""


@dataclass(frozen=True)
class LowerToNpu(ModulePass):
    """Quantize: onnx ops -> npu ops with the plan's parameters; the rest stays float (CPU)."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        plan = current_plan()
        for func in op.ops:
            if isinstance(func, FuncOp):
                lowering = Lowering(plan, func)
                lowering.run()
                lowering.report()


def tensor_type(shape: tuple[int, ...], dtype: str) -> TensorType:
    return TensorType(ELEMENT_TYPES[dtype], list(shape))


class Lowering:
    def __init__(self, plan: QuantPlan, func: FuncOp) -> None:
        self.plan = plan
        self.func = func
        self.block: Block = func.body.blocks[0]
        self.converted: dict[tuple[SSAValue, str], SSAValue] = {}
        self.dequantized: dict[SSAValue, SSAValue] = {}
        self.cpu_ops: list[tuple[str, str]] = []  # (describe, reason)
        self.npu_count = 0
        self._at: Operation | None = None

    # ------------------------------------------------------------------ the walk
    def run(self) -> None:
        for op in list(self.block.ops):
            if isinstance(op, ReturnOp):
                self._lower_return(op)
            elif isinstance(op, OnnxOp) and not isinstance(op, ConstantOp):
                self._lower(op)

    def _lower(self, op: OnnxOp) -> None:
        self._at = op
        rule = RULES.get(op.op_type)
        try:
            if rule is None:
                raise Unsupported(f"{op.op_type} has no NPU lowering")
            if self.plan.on_cpu([op.node_name, *fused_nodes(op), *op.output_names]):
                raise Unsupported("sent to the CPU by op_target")
            results = rule(self, op)
        except Unsupported as exc:
            self._keep_float(op, str(exc))
            return
        # a rule returns the results that are used (MaxPool's unused Indices has none)
        for old, new in zip(op.results[: len(results)], results, strict=True):
            old.replace_all_uses_with(new)
        self.block.erase_op(op)
        self.npu_count += 1

    def _keep_float(self, op: OnnxOp, reason: str) -> None:
        self.cpu_ops.append((op.describe(), reason))
        for index, value in enumerate(op.operands):
            op.operands[index] = self._as_float(value)

    def _lower_return(self, ret: ReturnOp) -> None:
        self._at = ret
        for index, value in enumerate(ret.operands):
            ret.operands[index] = self._as_float(value)

    def _as_float(self, value: SSAValue) -> SSAValue:
        """What a float op reads for `value`: NPU values dequantized; a model input with
        mean/std normalised (the model takes raw pixels) through its quantize op."""
        if isinstance(value.owner, npu.NpuOp):
            return self._dequantize(value)
        if isinstance(value, BlockArgument) and self.name_of(value) in self.plan.normalization:
            return self._dequantize(self.as_input(value, self.plan.dtype))
        return value

    def report(self) -> None:
        note(PASS_NAME, f"{self.npu_count} ops on the NPU, {len(self.cpu_ops)} stay float (CPU)")
        for what, why in self.cpu_ops:
            note(PASS_NAME, f"CPU: {what}: {why}")

    # ------------------------------------------------------------------ building
    def insert(self, op: Operation) -> Operation:
        Rewriter.insert_op(op, InsertPoint.before(self._at))
        return op

    def npu_op(self, cls: type[npu.NpuOp], source: OnnxOp, operands: list[SSAValue],
               quant: QuantAttr, shape: tuple[int, ...], properties: dict | None = None,
               output_index: int = 0) -> SSAValue:  # fmt: skip
        new = cls.create(
            operands=operands,
            result_types=[tensor_type(shape, quant.element)],
            properties={"quant": quant, **(properties or {})},
        )
        names = source.output_names
        output = names[output_index] if output_index < len(names) else ""
        new.set_names(source.node_name, [output] if output else [], fused_nodes(source))
        self.insert(new)
        return new.output

    def constant(self, array: np.ndarray, name: str) -> SSAValue:
        return self.insert(make_constant(array, name)).results[0]

    # ------------------------------------------------------------------ values
    def name_of(self, value: SSAValue) -> str:
        if isinstance(value, BlockArgument):
            attrs = self.func.arg_attrs
            d = attrs.data[value.index] if attrs is not None else None
            name = d.data.get("onnx.name") if isinstance(d, DictionaryAttr) else None
            return name.data if isinstance(name, StringAttr) else f"input{value.index}"
        owner = value.owner
        if isinstance(owner, (OnnxOp, npu.NpuOp)):
            names = owner.output_names
            index = value.index if hasattr(value, "index") else 0
            return names[index] if index < len(names) else ""
        return ""

    def output_quant(self, op: OnnxOp, index: int = 0) -> QuantAttr:
        name = op.output_names[index] if index < len(op.output_names) else ""
        dtype = self.plan.dtype_of(name)
        params = self.plan.params(name, dtype)
        if params is None:
            raise Unsupported(f"no quantization range for tensor {name!r}")
        return QuantAttr.from_params(params)

    def op_dtype(self, op: OnnxOp) -> str:
        return self.plan.dtype_of(op.output_names[0] if op.output_names else "")

    def as_input(self, value: SSAValue, dtype: str) -> SSAValue:
        """`value` in `dtype`: as it is, requantized, or quantized from float."""
        key = (value, dtype)
        if key in self.converted:
            return self.converted[key]
        have = npu.quant_of(value)
        if have is not None and have.element == dtype:
            return value
        name = self.name_of(value)
        params = self.plan.params(name, dtype) or self._constant_params(value, dtype)
        if params is None:
            raise Unsupported(f"no quantization range for input tensor {name!r}")
        quant = QuantAttr.from_params(params)
        shape = tuple(value.type.get_shape())
        properties = self._normalization(value) if have is None else {}
        cls = npu.RequantizeOp if have is not None else npu.QuantizeOp
        new = cls.create(operands=[value], result_types=[tensor_type(shape, dtype)],
                         properties={"quant": quant, **properties})  # fmt: skip
        new.set_names("", [name])
        # a value converted once serves every reader after its producer
        self._insert_after_producer(new, value)
        self.converted[key] = new.output
        return new.output

    def _insert_after_producer(self, new: Operation, value: SSAValue) -> None:
        if isinstance(value, BlockArgument):
            Rewriter.insert_op(new, InsertPoint.at_start(self.block))
        else:
            Rewriter.insert_op(new, InsertPoint.after(value.owner))

    def _constant_params(self, value: SSAValue, dtype: str) -> nx.QuantParams | None:
        array = constant_value(value)
        if array is None or array.dtype.kind != "f":
            return None
        if dtype in nx.FLOAT_DTYPES:
            return nx.QuantParams(dtype, np.float64(1.0), np.int64(0))
        return nx.asymmetric_params(float(array.min()), float(array.max()), dtype)

    def _normalization(self, value: SSAValue) -> dict:
        if not isinstance(value, BlockArgument):
            return {}
        norm = self.plan.normalization.get(self.name_of(value))
        if norm is None:
            return {}
        return {"mean": npu.float_array(norm.mean), "std": npu.float_array(norm.std),
                "channel_axis": npu.IntAttr(norm.axis)}  # fmt: skip

    def _dequantize(self, value: SSAValue) -> SSAValue:
        if value in self.dequantized:
            return self.dequantized[value]
        new = npu.DequantizeOp.create(
            operands=[value],
            result_types=[tensor_type(tuple(value.type.get_shape()), "f32")],
            properties={"quant": QuantAttr("f32")},
        )
        new.set_names("", [self.name_of(value)])
        Rewriter.insert_op(new, InsertPoint.after(value.owner))
        self.dequantized[value] = new.output
        return new.output


# ---------------------------------------------------------------------- weighted ops


def _const(value: SSAValue | None, what: str) -> np.ndarray:
    array = constant_value(value)
    if array is None:
        raise Unsupported(f"the {what} is not constant")
    return array


def _dpu_activation(op: OnnxOp, which: str, channels: int) -> tuple[str, list[float]]:
    """A fused op's activation as the DPU applies it: (kind, parameters)."""
    if not isinstance(op, FusedOp):
        return "none", []
    kind, attrs = op.activation_spec() if which == "activation" else op.post_activation_spec()
    if not kind:
        return "none", []
    if kind == "Relu":
        return "relu", []
    if kind == "Clip":
        return "clip", [float(attrs.get("min", -FLOAT_LIMIT)), float(attrs.get("max", FLOAT_LIMIT))]
    if kind == "LeakyRelu":
        return "leaky", [float(attrs.get("alpha", 0.01))]
    if kind == "PRelu":
        slope = _const(operand(op, "slope"), "PRelu slope").astype(np.float64).reshape(-1)
        if slope.size not in (1, channels):
            raise Unsupported("PRelu slope is not per channel")
        return "prelu", np.broadcast_to(slope, (channels,)).tolist()
    raise Unsupported(f"activation {kind} is not one the DPU applies (run split-lut-activations)")


def _weights_and_bias(
    low: Lowering, w: np.ndarray, b: np.ndarray | None, in_quant: QuantAttr, dtype: str,
    name: str, axis: int = 0, channels: int | None = None,
) -> tuple[SSAValue, SSAValue, QuantAttr]:  # fmt: skip
    """Quantized weight and integer bias constants (float16 / float32 for a float16 layer);
    `axis` is the weights' output-channel axis, `channels` the output channels when the
    weights hold only a group's (a grouped ConvTranspose)."""
    channels = w.shape[axis] if channels is None else channels
    bias = np.zeros(channels, np.float64) if b is None else b.astype(np.float64).reshape(-1)
    wdtype = low.plan.weight_dtype_for(dtype)
    if wdtype == "f16":
        wq = QuantAttr("f16")
        return (low.constant(w.astype(np.float16), f"{name}_w_f16"),
                low.constant(bias.astype(np.float32), f"{name}_b_f32"), wq)  # fmt: skip
    params, w_int = _rounded_weights(low.plan, name, w, wdtype, axis)
    if params is None:
        params = _given_weight_params(low.plan, name, w, wdtype, axis) or nx.weight_params(
            np.moveaxis(w, axis, 0), wdtype, low.plan.per_channel
        )
        if params.axis is not None:
            params = nx.QuantParams(params.dtype, params.scale, params.zero_point, axis)
        w_int = nx.quantize(w, params)
    wq = QuantAttr.from_params(params)
    if dtype == "f16":  # w4a16: integer weights, float16 arithmetic, float32 bias
        return (low.constant(w_int, f"{name}_q"), low.constant(bias.astype(np.float32),
                f"{name}_b_f32"), wq)  # fmt: skip
    bias_q = nx.bias_params(in_quant.scale, params, dtype)
    b_int = nx.saturate(nx.round_half_away(bias / np.broadcast_to(bias_q.scale, (channels,))),
                        bias_q.dtype)  # fmt: skip
    return (low.constant(w_int, f"{name}_q"), low.constant(b_int, f"{name}_bias_q"), wq)


def _rounded_weights(plan: QuantPlan, name: str, w: np.ndarray, dtype: str, axis: int
                     ) -> tuple[nx.QuantParams | None, np.ndarray | None]:  # fmt: skip
    """The plan's rounded integers for weight `name` when they were made from exactly `w`
    (output channels on axis 0), in `dtype` with the plan's per-channel choice."""
    rounded = plan.rounded_weights.get(name)
    if rounded is None or axis != 0 or rounded.params.dtype != dtype:
        return None, None
    same_grid = (rounded.params.axis is not None) == plan.per_channel
    if not same_grid or rounded.source.shape != w.shape or not np.array_equal(rounded.source, w):
        return None, None
    return rounded.params, rounded.values.astype(nx.STORAGE[dtype])


def _given_weight_params(plan: QuantPlan, name: str, w: np.ndarray, dtype: str,
                         axis: int) -> nx.QuantParams | None:  # fmt: skip
    """The plan's parameters for weight `name` (from a QDQ model) when they still fit `w`:
    same dtype, per tensor or per output channel along `axis`, and `w` exactly on their
    grid (a pass that rescaled the weights, e.g. BatchNorm folding, voids them)."""
    params = plan.weight_params.get(name)
    if params is None or params.dtype != dtype:
        return None
    if params.axis is not None:
        if params.axis != axis or params.scale.size != w.shape[axis]:
            return None
        params = nx.QuantParams(params.dtype, params.scale, params.zero_point, axis)
    roundtrip = nx.dequantize(nx.quantize(w, params), params)
    return params if np.allclose(roundtrip, w, rtol=1e-6, atol=0.0) else None


def lower_conv(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x, w_value, b_value = ([*op.onnx_inputs(), None])[:3]
    w = _const(w_value, "weight")
    if w.ndim != 4:
        raise Unsupported(f"a {w.ndim - 2}-D convolution (the NPU runs 2-D)")
    attrs = op.attribute_values(current_weights())
    strides, dilations = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    group = int(attrs.get("group", 1))
    begin, end, _ = resolve_padding(str(attrs.get("auto_pad", "NOTSET")), npu.in_shape(x)[2:],
                                    w.shape[2:], strides, dilations, attrs.get("pads"))  # fmt: skip
    out_shape = npu.in_shape(op.results[0])
    reason = conv_violation(w.shape[2:], strides, dilations, npu.in_shape(x)[2:], out_shape[2:])
    if reason:
        raise Unsupported(reason)
    dtype = low.op_dtype(op)
    activation, act_params = _dpu_activation(op, "activation", out_shape[1])
    post, post_params = _dpu_activation(op, "post_activation", out_shape[1])
    residual = operand(op, "Z") if isinstance(op, FusedOp) else None
    if residual is not None and (activation not in ("none", "relu") or post not in POST_ADD):
        raise Unsupported(f"around a residual add the DPU applies relu before and "
                          f"relu/clip after, not {activation} / {post}")  # fmt: skip
    x_in = low.as_input(x, dtype)
    in_quant = npu.quant_of(x_in)
    b = None if b_value is None else _const(b_value, "bias")
    w_q, b_q, w_quant = _weights_and_bias(low, w, b, in_quant, dtype, weight_name(w_value, op, "W"))
    operands = [x_in, w_q, b_q] + ([low.as_input(residual, dtype)] if residual is not None else [])
    props = {
        "strides": npu.int_array(strides), "dilations": npu.int_array(dilations),
        "pads": npu.int_array([begin[0], begin[1], end[0], end[1]]), "group": npu.IntAttr(group),
        "weight_quant": w_quant, "activation": StringAttr(activation),
        "act_params": npu.float_array(act_params),
    }  # fmt: skip
    if residual is not None:
        props |= {
            "post_activation": StringAttr(post),
            "post_act_params": npu.float_array(post_params),
        }
    return [low.npu_op(npu.Conv2dOp, op, operands, low.output_quant(op), out_shape, props)]


def lower_conv_transpose(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x, w_value, b_value = ([*op.onnx_inputs(), None])[:3]
    w = _const(w_value, "weight")
    attrs = op.attribute_values(current_weights())
    if w.ndim != 4 or attrs.get("auto_pad", "NOTSET") != "NOTSET" or "output_shape" in attrs:
        raise Unsupported("ConvTranspose other than 2-D with explicit pads")
    strides, dilations = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    group = int(attrs.get("group", 1))
    out_shape = npu.in_shape(op.results[0])
    reason = conv_violation(w.shape[2:], strides, dilations, npu.in_shape(x)[2:], out_shape[2:])
    if reason:
        raise Unsupported(reason)
    dtype = low.op_dtype(op)
    activation, act_params = _dpu_activation(op, "activation", out_shape[1])
    x_in = low.as_input(x, dtype)
    b = None if b_value is None else _const(b_value, "bias")
    # ConvTranspose weights are [C_in, C_out/group, kh, kw]: output channels on axis 1 only
    # for group 1; per-channel parameters then run along axis 1
    if group != 1 and low.plan.per_channel and dtype != "f16":
        raise Unsupported("grouped ConvTranspose with per-channel weights")
    w_q, b_q, w_quant = _weights_and_bias(low, w, b, npu.quant_of(x_in), dtype,
                                          weight_name(w_value, op, "W"), axis=1,
                                          channels=out_shape[1])  # fmt: skip
    props = {
        "strides": npu.int_array(strides), "dilations": npu.int_array(dilations),
        "pads": npu.int_array(attrs.get("pads", [0, 0, 0, 0])), "group": npu.IntAttr(group),
        "output_padding": npu.int_array(attrs.get("output_padding", [0, 0])),
        "weight_quant": w_quant, "activation": StringAttr(activation),
        "act_params": npu.float_array(act_params),
    }  # fmt: skip
    operands = [x_in, w_q, b_q]
    return [low.npu_op(npu.ConvTransposeOp, op, operands, low.output_quant(op), out_shape, props)]


def lower_gemm(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    inputs = [*op.onnx_inputs(), None]
    a, b_value, c_value = inputs[:3]
    b = _const(b_value, "B operand").astype(np.float64)
    attrs = op.attribute_values(current_weights())
    if attrs.get("transA", 0):
        raise Unsupported("Gemm with transA")
    if b.ndim != 2:
        raise Unsupported(f"MatMul with a {b.ndim}-D constant")
    weight = b if attrs.get("transB", 0) else b.T  # [N, K]
    weight = weight * float(attrs.get("alpha", 1.0))
    n = weight.shape[0]
    bias = None
    if c_value is not None:
        c = _const(c_value, "C operand").astype(np.float64) * float(attrs.get("beta", 1.0))
        if c.size not in (1, n):
            raise Unsupported("Gemm C is not a per-column vector")
        bias = np.broadcast_to(c.reshape(-1), (n,))
    out_shape = npu.in_shape(op.results[0])
    dtype = low.op_dtype(op)
    activation, act_params = _dpu_activation(op, "activation", n)
    a_in = low.as_input(a, dtype)
    w_q, b_q, w_quant = _weights_and_bias(low, weight, bias, npu.quant_of(a_in), dtype,
                                          weight_name(b_value, op, "W"))  # fmt: skip
    props = {"weight_quant": w_quant, "activation": StringAttr(activation),
             "act_params": npu.float_array(act_params)}  # fmt: skip
    return [low.npu_op(npu.FullyConnectedOp, op, [a_in, w_q, b_q], low.output_quant(op),
                       out_shape, props)]  # fmt: skip


# ---------------------------------------------------------------------- element-wise


def lower_eltwise(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    lhs, rhs = op.onnx_inputs()[:2]
    dtype = low.op_dtype(op)
    operands = [low.as_input(lhs, dtype), low.as_input(rhs, dtype)]
    props = {"kind": StringAttr(ELTWISE[op.op_type])}
    return [low.npu_op(npu.EltwiseOp, op, operands, low.output_quant(op),
                       npu.in_shape(op.results[0]), props)]  # fmt: skip


def lower_lut(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    """A one-input element-wise op as a table over every input value (computed here, from
    the op's own float kernel, so the table is the op exactly up to quantization)."""
    x, *rest = op.onnx_inputs()
    extra = [None if v is None else _const(v, f"{op.op_type} operand") for v in rest]
    dtype = low.op_dtype(op)
    if dtype == "f16":
        raise Unsupported(f"{op.op_type} in float16 (tables are integer)")
    x_in = low.as_input(x, dtype)
    in_params = npu.quant_of(x_in).params()
    out_quant = low.output_quant(op)
    qmin, qmax = nx.qrange(dtype)
    grid = nx.dequantize(np.arange(qmin, qmax + 1), in_params)
    attrs = op.attribute_values(current_weights())
    with np.errstate(all="ignore"):
        real = np.asarray(KERNELS[op.op_type](grid, *extra, **attrs), np.float64)
    if not np.all(np.isfinite(real)):
        real = np.nan_to_num(real, nan=0.0, posinf=FLOAT_LIMIT, neginf=-FLOAT_LIMIT)
    table = nx.quantize(real, out_quant.params())
    table_value = low.constant(table, f"{op.output_names[0] if op.output_names else 'lut'}_table")
    props = {"function": StringAttr(op.op_type)}
    return [low.npu_op(npu.LutOp, op, [x_in, table_value], out_quant, npu.in_shape(op.results[0]),
                       props)]  # fmt: skip


# ---------------------------------------------------------------------- pooling


def lower_pool(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x = op.onnx_inputs()[0]
    if any(r.uses for r in op.results[1:]):
        raise Unsupported("MaxPool Indices output is used")
    shape, out_shape = npu.in_shape(x), npu.in_shape(op.results[0])
    if len(shape) != 4:
        raise Unsupported(f"{len(shape) - 2}-D pooling")
    global_pool = op.op_type.startswith("Global")
    kind = "max" if "Max" in op.op_type else "avg"
    attrs = {} if global_pool else op.attribute_values(current_weights())
    if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise Unsupported("pooling with ceil_mode or dilations")
    kernel = list(shape[2:]) if global_pool else list(attrs["kernel_shape"])
    strides = [1, 1] if global_pool else list(attrs.get("strides", [1, 1]))
    begin, end, _ = resolve_padding(str(attrs.get("auto_pad", "NOTSET")), shape[2:], kernel,
                                    strides, [1, 1], attrs.get("pads"), crop_same=True)  # fmt: skip
    if min(begin + end) < 0:
        raise Unsupported("pooling that crops its input")
    reason = pool_violation(kernel, strides, global_pool)
    if reason:
        raise Unsupported(reason)
    dtype = low.op_dtype(op)
    x_in = low.as_input(x, dtype)
    # max pooling picks input values: it keeps the input's parameters, no requantize
    quant = npu.quant_of(x_in) if kind == "max" else low.output_quant(op)
    props = {
        "kind": StringAttr(kind), "kernel_shape": npu.int_array(kernel),
        "strides": npu.int_array(strides), "pads": npu.int_array([*begin, *end]),
        "count_include_pad": npu.IntAttr(int(attrs.get("count_include_pad", 0))),
        "global_pool": npu.IntAttr(int(global_pool)),
    }  # fmt: skip
    return [low.npu_op(npu.PoolOp, op, [x_in], quant, out_shape, props)]


# ---------------------------------------------------------------------- data movement


def _same_quant_input(low: Lowering, op: OnnxOp) -> tuple[SSAValue, QuantAttr]:
    x = op.onnx_inputs()[0]
    x_in = low.as_input(x, low.op_dtype(op))
    return x_in, npu.quant_of(x_in)


def lower_reshape(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x_in, quant = _same_quant_input(low, op)
    return [low.npu_op(npu.ReshapeOp, op, [x_in], quant, npu.in_shape(op.results[0]))]


def lower_transpose(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x_in, quant = _same_quant_input(low, op)
    perm = op.attribute_values(current_weights()).get("perm")
    perm = list(range(len(npu.in_shape(x_in))))[::-1] if perm is None else list(perm)
    return [low.npu_op(npu.TransposeOp, op, [x_in], quant, npu.in_shape(op.results[0]),
                       {"perm": npu.int_array(perm)})]  # fmt: skip


def lower_concat(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    dtype = low.op_dtype(op)
    inputs = [low.as_input(v, dtype) for v in op.onnx_inputs()]
    axis = int(op.attribute_values(current_weights())["axis"]) % len(npu.in_shape(op.results[0]))
    return [low.npu_op(npu.ConcatOp, op, inputs, low.output_quant(op), npu.in_shape(op.results[0]),
                       {"axis": npu.IntAttr(axis)})]  # fmt: skip


def _slice_op(low: Lowering, op: OnnxOp, x_in: SSAValue, quant: QuantAttr,
              bounds: list[tuple[int, int, int]], index: int) -> SSAValue:  # fmt: skip
    starts, ends, steps = zip(*bounds, strict=True)
    props = {"starts": npu.int_array(starts), "ends": npu.int_array(ends),
             "steps": npu.int_array(steps)}  # fmt: skip
    return low.npu_op(npu.SliceOp, op, [x_in], quant, npu.in_shape(op.results[index]), props, index)


def lower_slice(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x, starts, ends, *rest = [*op.onnx_inputs(), None, None]
    shape = npu.in_shape(x)
    s, e = _const(starts, "starts"), _const(ends, "ends")
    axes = _const(rest[0], "axes") if rest and rest[0] is not None else np.arange(len(s))
    steps = _const(rest[1], "steps") if len(rest) > 1 and rest[1] is not None else np.ones_like(s)
    bounds = [(0, d, 1) for d in shape]
    for a, lo, hi, st in zip(axes, s, e, steps, strict=True):
        axis = int(a) % len(shape)
        start, stop, step = slice(int(lo), int(hi), int(st)).indices(shape[axis])
        if step < 0:
            raise Unsupported("Slice with a negative step")
        bounds[axis] = (start, stop, step)
    x_in, quant = _same_quant_input(low, op)
    return [_slice_op(low, op, x_in, quant, bounds, 0)]


def lower_split(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x = op.onnx_inputs()[0]
    shape = npu.in_shape(x)
    axis = int(op.attribute_values(current_weights()).get("axis", 0)) % len(shape)
    x_in, quant = _same_quant_input(low, op)
    results, start = [], 0
    for index, result in enumerate(op.results):
        size = npu.in_shape(result)[axis]
        bounds = [(0, d, 1) for d in shape]
        bounds[axis] = (start, start + size, 1)
        results.append(_slice_op(low, op, x_in, quant, bounds, index))
        start += size
    return results


def lower_pad(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    _x, pads_value, *rest = [*op.onnx_inputs(), None, None]
    attrs = op.attribute_values(current_weights())
    if attrs.get("mode", "constant") != "constant" or (len(rest) > 1 and rest[1] is not None):
        raise Unsupported("Pad other than constant mode over all axes")
    pads = _const(pads_value, "pads").astype(np.int64)
    value = (
        0.0 if not rest or rest[0] is None else float(_const(rest[0], "pad value").reshape(-1)[0])
    )
    if pads.min() < 0 or value != 0.0:
        raise Unsupported("Pad with negative pads or a non-zero value")
    x_in, quant = _same_quant_input(low, op)
    return [low.npu_op(npu.PadOp, op, [x_in], quant, npu.in_shape(op.results[0]),
                       {"pads": npu.int_array(pads.tolist())})]  # fmt: skip


def lower_resize(low: Lowering, op: OnnxOp) -> list[SSAValue]:
    x = op.onnx_inputs()[0]
    attrs = op.attribute_values(current_weights())
    mode = str(attrs.get("mode", "nearest"))
    shape, out_shape = npu.in_shape(x), npu.in_shape(op.results[0])
    if mode not in npu.RESIZE_MODES or len(shape) != 4 or shape[:2] != out_shape[:2]:
        raise Unsupported(f"Resize mode {mode} or resizing other than H, W")
    if attrs.get("antialias", 0) or attrs.get("exclude_outside", 0):
        raise Unsupported("Resize with antialias or exclude_outside")
    ctm = str(attrs.get("coordinate_transformation_mode", "half_pixel"))
    if ctm == "tf_crop_and_resize":
        raise Unsupported("Resize tf_crop_and_resize")
    dtype = low.op_dtype(op)
    x_in = low.as_input(x, dtype)
    quant = npu.quant_of(x_in) if mode == "nearest" else low.output_quant(op)
    props = {
        "mode": StringAttr(mode),
        "coordinate_transformation_mode": StringAttr(ctm),
        "nearest_mode": StringAttr(str(attrs.get("nearest_mode", "round_prefer_floor"))),
    }
    return [low.npu_op(npu.ResizeOp, op, [x_in], quant, out_shape, props)]


Rule = Callable[[Lowering, OnnxOp], list[SSAValue]]
RULES: dict[str, Rule] = {
    "Conv": lower_conv, "FusedConv": lower_conv,
    "ConvTranspose": lower_conv_transpose, "FusedConvTranspose": lower_conv_transpose,
    "Gemm": lower_gemm, "FusedGemm": lower_gemm, "MatMul": lower_gemm, "FusedMatMul": lower_gemm,
    **dict.fromkeys(ELTWISE, lower_eltwise),
    **dict.fromkeys(LUT_OPS, lower_lut),
    **dict.fromkeys(("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"), lower_pool),
    **dict.fromkeys(RESHAPES, lower_reshape),
    "Transpose": lower_transpose, "Concat": lower_concat, "Slice": lower_slice,
    "Split": lower_split, "Pad": lower_pad, "Resize": lower_resize,
}  # fmt: skip
