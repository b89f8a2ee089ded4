"""The `npu` dialect: the quantized op set the NPU runs.

Every op has one result and carries its quantization as `quant` (`#npu.quant<...>`); an
op's input parameters are those of the op that produced each input (`quant_of`). Weights
are `onnx.Constant` operands (integer arrays in the weight table) with their parameters in
`weight_quant`; a bias is int32 at scale `s_in * s_w`. A float16 layer is the same op with
`#npu.quant<f16>` everywhere (weights float16, bias float32).

Activations the DPU applies on its way out (`activation`, `post_activation` after a
residual add): "none", "relu", "clip" (`act_params` = [lo, hi] in reals), "leaky"
([alpha]) and "prelu" (one alpha per output channel). Everything else is a table
(`npu.lut`).

Names: like `onnx` ops, `onnx.node` / `onnx.fused` / `onnx.outputs` hold the ONNX names the
op stands for, and verifier errors start with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntAttr,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

from dialects.npu.attributes import QuantAttr
from dialects.npu.limits import conv_violation, pool_violation
from dialects.onnx.base import NODE_NAME, OUTPUT_NAMES

FUSED_NAMES = "onnx.fused"
DPU_ACTIVATIONS = ("none", "relu", "clip", "leaky", "prelu")
POST_ACTIVATIONS = ("none", "relu", "clip")
ELTWISE_KINDS = ("add", "sub", "mul", "max", "min")
POOL_KINDS = ("max", "avg")
RESIZE_MODES = ("nearest", "linear")


def int_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def float_array(values: Sequence[float]) -> ArrayAttr[FloatAttr]:
    return ArrayAttr([FloatAttr(float(v), f64) for v in values])


def ints(attr: DenseArrayBase) -> list[int]:
    return [int(v) for v in attr.get_values()]


def floats(attr: ArrayAttr[FloatAttr]) -> list[float]:
    return [a.value.data for a in attr.data]


class NpuOp(IRDLOperation):
    """What every `npu` op shares: the output quantization and the ONNX names."""

    KIND: ClassVar[str] = ""

    quant = prop_def(QuantAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())

    # ------------------------------------------------------------------ names
    @property
    def node_name(self) -> str:
        attr = self.attributes.get(NODE_NAME)
        return attr.data if isinstance(attr, StringAttr) else ""

    @property
    def output_names(self) -> list[str]:
        attr = self.attributes.get(OUTPUT_NAMES)
        return [a.data for a in attr.data] if isinstance(attr, ArrayAttr) else []

    @property
    def fused_names(self) -> list[str]:
        attr = self.attributes.get(FUSED_NAMES)
        return [a.data for a in attr.data] if isinstance(attr, ArrayAttr) else []

    def set_names(self, node: str, outputs: Sequence[str], fused: Sequence[str] = ()) -> None:
        if node:
            self.attributes[NODE_NAME] = StringAttr(node)
        self.attributes[OUTPUT_NAMES] = ArrayAttr([StringAttr(n) for n in outputs])
        if fused:
            self.attributes[FUSED_NAMES] = ArrayAttr([StringAttr(n) for n in fused])

    def describe(self) -> str:
        """How errors name the op: its ONNX node (and output) as the user knows them."""
        node = self.node_name or "(unnamed)"
        outputs = self.output_names
        return f"{self.name} {node!r}" + (f" -> {outputs[0]!r}" if outputs else "")

    # ------------------------------------------------------------------ types
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.output.type.get_shape())

    def fail(self, message: str) -> VerifyException:
        return VerifyException(f"{self.describe()}: {message}")

    def verify_(self) -> None:
        self.verify_op()

    def verify_op(self) -> None:
        """Op-specific checks (hardware limits, operand shapes)."""


def quant_of(value: SSAValue) -> QuantAttr | None:
    """The parameters of a value an `npu` op produced (None for float values)."""
    owner = value.owner
    return owner.quant if isinstance(owner, NpuOp) else None


def in_shape(value: SSAValue) -> tuple[int, ...]:
    return tuple(value.type.get_shape())


# ---------------------------------------------------------------------- dtype boundaries


@irdl_op_definition
class QuantizeOp(NpuOp):
    """Float -> `quant`. At a model input it first normalises `(x - mean[c]) / std[c]` over
    `channel_axis` (RKNN's mean_values/std_values: the built model takes raw data)."""

    name = "npu.quantize"
    input = operand_def(TensorType)
    mean = prop_def(ArrayAttr[FloatAttr], default_value=ArrayAttr([]))
    std = prop_def(ArrayAttr[FloatAttr], default_value=ArrayAttr([]))
    channel_axis = prop_def(IntAttr, default_value=IntAttr(1))

    def verify_op(self) -> None:
        mean, std = floats(self.mean), floats(self.std)
        if len(mean) != len(std):
            raise self.fail("mean and std need the same length")
        if mean and in_shape(self.input)[self.channel_axis.data] != len(mean):
            raise self.fail(f"{len(mean)} mean values for {in_shape(self.input)} input")
        if any(s == 0 for s in std):
            raise self.fail("a std value is 0")


@irdl_op_definition
class DequantizeOp(NpuOp):
    """Quantized (or float16) -> float32 reals; `quant` is `#npu.quant<f32>`."""

    name = "npu.dequantize"
    input = operand_def(TensorType)


@irdl_op_definition
class RequantizeOp(NpuOp):
    """One quantization to another (scale, zero point or dtype: i8 <-> i16 <-> f16)."""

    name = "npu.requantize"
    input = operand_def(TensorType)


# ---------------------------------------------------------------------- MAC array ops


class _WeightedOp(NpuOp):
    """An op with constant weights: input, weight, bias; a DPU activation."""

    weight_quant = prop_def(QuantAttr)
    activation = prop_def(StringAttr, default_value=StringAttr("none"))
    act_params = prop_def(ArrayAttr[FloatAttr], default_value=ArrayAttr([]))

    def verify_activation(self, channels: int) -> None:
        kind, params = self.activation.data, floats(self.act_params)
        if kind not in DPU_ACTIVATIONS:
            raise self.fail(f"activation {kind!r} is not one the DPU applies {DPU_ACTIVATIONS}")
        expected = {"none": 0, "relu": 0, "clip": 2, "leaky": 1, "prelu": channels}[kind]
        if len(params) != expected:
            raise self.fail(f"activation {kind} takes {expected} parameters, got {len(params)}")


class _ConvBase(_WeightedOp):
    # (operands input, weight, bias are declared by each subclass: IRDL puts a subclass's
    # own fields before inherited ones, which would make a residual the first operand)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)  # [top, left, bottom, right]
    dilations = prop_def(DenseArrayBase)
    group = prop_def(IntAttr)

    def verify_op(self) -> None:
        kernel = in_shape(self.weight)[2:]
        reason = conv_violation(kernel, ints(self.strides), ints(self.dilations),
                                in_shape(self.input)[2:], self.shape[2:])  # fmt: skip
        if reason:
            raise self.fail(reason)
        self.verify_activation(self.shape[1])


@irdl_op_definition
class Conv2dOp(_ConvBase):
    """2-D convolution (grouped, depthwise, dilated), NCHW; an optional `residual` of the
    output's shape is added after `activation`, then `post_activation` applies."""

    name = "npu.conv2d"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    residual = opt_operand_def(TensorType)
    post_activation = prop_def(StringAttr, default_value=StringAttr("none"))
    post_act_params = prop_def(ArrayAttr[FloatAttr], default_value=ArrayAttr([]))

    def verify_op(self) -> None:
        super().verify_op()
        if self.residual is not None and in_shape(self.residual) != self.shape:
            raise self.fail(f"residual {in_shape(self.residual)} is not the output's shape")
        post = self.post_activation.data
        if post not in POST_ACTIVATIONS:
            raise self.fail(f"post-activation {post!r} is not one of {POST_ACTIVATIONS}")
        if post != "none" and self.residual is None:
            raise self.fail("a post-activation needs a residual")
        if self.residual is not None and self.activation.data not in ("none", "relu"):
            raise self.fail("before a residual add the DPU applies relu only")


@irdl_op_definition
class ConvTransposeOp(_ConvBase):
    """2-D transposed convolution (weights [C_in, C_out/group, kh, kw], as ONNX)."""

    name = "npu.conv_transpose"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output_padding = prop_def(DenseArrayBase)


@irdl_op_definition
class FullyConnectedOp(_WeightedOp):
    """`input [M, K] @ weight[N, K]^T + bias[N]`."""

    name = "npu.fully_connected"
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)

    def verify_op(self) -> None:
        k_in, (n, k) = in_shape(self.input)[-1], in_shape(self.weight)
        if k_in != k or self.shape[-1] != n:
            raise self.fail(f"input {in_shape(self.input)} x weight [{n}, {k}] mismatch")
        self.verify_activation(n)


# ---------------------------------------------------------------------- DPU / PPU ops


@irdl_op_definition
class EltwiseOp(NpuOp):
    """Element-wise add/sub/mul/max/min with numpy broadcasting; relu or clip after."""

    name = "npu.eltwise"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    kind = prop_def(StringAttr)
    activation = prop_def(StringAttr, default_value=StringAttr("none"))
    act_params = prop_def(ArrayAttr[FloatAttr], default_value=ArrayAttr([]))

    def verify_op(self) -> None:
        if self.kind.data not in ELTWISE_KINDS:
            raise self.fail(f"element-wise kind {self.kind.data!r} not in {ELTWISE_KINDS}")
        if self.activation.data not in POST_ACTIVATIONS:
            raise self.fail(f"activation {self.activation.data!r} not in {POST_ACTIVATIONS}")


@irdl_op_definition
class PoolOp(NpuOp):
    """Max or average pooling (NCHW); `global_pool` reduces H and W whole."""

    name = "npu.pool"
    input = operand_def(TensorType)
    kind = prop_def(StringAttr)
    kernel_shape = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    count_include_pad = prop_def(IntAttr, default_value=IntAttr(0))
    global_pool = prop_def(IntAttr, default_value=IntAttr(0))

    def verify_op(self) -> None:
        if self.kind.data not in POOL_KINDS:
            raise self.fail(f"pooling kind {self.kind.data!r} not in {POOL_KINDS}")
        reason = pool_violation(ints(self.kernel_shape), ints(self.strides),
                                bool(self.global_pool.data))  # fmt: skip
        if reason:
            raise self.fail(reason)


@irdl_op_definition
class LutOp(NpuOp):
    """`output = table[input - qmin]`: any one-input activation as the DPU's lookup table.
    `function` names what the table holds (for reports); the table is computed once, by the
    lowering, from the float function and both quantizations."""

    name = "npu.lut"
    input = operand_def(TensorType)
    table = operand_def(TensorType)
    function = prop_def(StringAttr)


# ---------------------------------------------------------------------- data movement


@irdl_op_definition
class ConcatOp(NpuOp):
    """Concatenation on `axis`; inputs with other parameters are requantized on the way."""

    name = "npu.concat"
    inputs = var_operand_def(TensorType)
    axis = prop_def(IntAttr)


@irdl_op_definition
class SliceOp(NpuOp):
    """`input[starts:ends:steps]` per axis (full rank, normalised)."""

    name = "npu.slice"
    input = operand_def(TensorType)
    starts = prop_def(DenseArrayBase)
    ends = prop_def(DenseArrayBase)
    steps = prop_def(DenseArrayBase)


@irdl_op_definition
class ReshapeOp(NpuOp):
    """Same data, the result type's shape."""

    name = "npu.reshape"
    input = operand_def(TensorType)


@irdl_op_definition
class TransposeOp(NpuOp):
    name = "npu.transpose"
    input = operand_def(TensorType)
    perm = prop_def(DenseArrayBase)


@irdl_op_definition
class PadOp(NpuOp):
    """Constant padding with the real `value` (ONNX pads order: begins, then ends)."""

    name = "npu.pad"
    input = operand_def(TensorType)
    pads = prop_def(DenseArrayBase)
    value = prop_def(FloatAttr, default_value=FloatAttr(0.0, f64))


@irdl_op_definition
class ResizeOp(NpuOp):
    """Nearest or (bi)linear resize to the result shape, ONNX Resize semantics."""

    name = "npu.resize"
    input = operand_def(TensorType)
    mode = prop_def(StringAttr)
    coordinate_transformation_mode = prop_def(StringAttr)
    nearest_mode = prop_def(StringAttr, default_value=StringAttr("round_prefer_floor"))

    def verify_op(self) -> None:
        if self.mode.data not in RESIZE_MODES:
            raise self.fail(f"resize mode {self.mode.data!r} not in {RESIZE_MODES}")


NPU_OPS: tuple[type[NpuOp], ...] = (
    QuantizeOp, DequantizeOp, RequantizeOp, Conv2dOp, ConvTransposeOp, FullyConnectedOp,
    EltwiseOp, PoolOp, LutOp, ConcatOp, SliceOp, ReshapeOp, TransposeOp, PadOp, ResizeOp,
)  # fmt: skip


def result_type(shape: Sequence[int], element: Attribute) -> TensorType:
    return TensorType(element, list(shape))


__all__ = [name for name in dir() if name.endswith("Op")] + ["NPU_OPS", "quant_of"]
