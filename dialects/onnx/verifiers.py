"""Per-op checks beyond the schema: operand and result shapes that must agree, attribute
values in range. They catch a pass that builds an op with the wrong shape, at the op.

Each check is registered for its op types with `op_verifier`; `OnnxOp.verify_` runs it
and prefixes the node name to the message. Shape-deciding operands held in the weight table
(not inline) are not read here: only what the IR itself states is checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import SSAValue
from xdsl.utils.exceptions import VerifyException

from dialects.dtypes import ONNX_CODES, element_type_name
from dialects.onnx.base import OnnxOp, dense_to_numpy, op_verifier

Shape = tuple[int, ...]

# ------------------------------------------------------------------------- helpers


def shape_of(value: SSAValue) -> Shape:
    t = value.type
    assert isinstance(t, TensorType)
    return tuple(t.get_shape())


def broadcast_shapes(*shapes: Shape) -> Shape:
    """ONNX multidirectional (numpy) broadcasting."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise VerifyException(f"shapes {', '.join(map(_fmt, shapes))} do not broadcast") from None


def inline_constant(value: SSAValue | None) -> np.ndarray | None:
    """The value of an operand defined by an inline `onnx.Constant`, else None."""
    from dialects.onnx.constant import ConstantOp

    if value is None or not isinstance(value.owner, ConstantOp):
        return None
    attr = value.owner.value
    return dense_to_numpy(attr) if isinstance(attr, DenseIntOrFPElementsAttr) else None


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise VerifyException(f"{what} {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _expect(op: OnnxOp, value: SSAValue, shape: Shape, what: str = "result") -> None:
    actual = shape_of(value)
    if actual != tuple(shape):
        raise VerifyException(f"{what} shape {_fmt(actual)}, expected {_fmt(shape)}")


def _results(op: OnnxOp) -> list[SSAValue]:
    return [r for r in op.onnx_results() if r is not None]


def _inputs(op: OnnxOp) -> list[SSAValue]:
    return [v for v in op.onnx_inputs() if v is not None]


# ------------------------------------------------------------------------- element-wise

_UNARY = (
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "CastLike", "Ceil", "Celu", "Clip",
    "Cos", "Cosh", "Dropout", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish",
    "Identity", "IsInf", "IsNaN", "LeakyRelu", "Log", "Mish", "Neg", "Not", "Reciprocal", "Relu",
    "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt",
    "Tan", "Tanh", "ThresholdedRelu", "QuantizeLinear", "DequantizeLinear", "LpNormalization",
    "Swish",
)  # fmt: skip


@op_verifier(*_UNARY)
def _same_shape(op: OnnxOp) -> None:
    source = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    for result in _results(op):
        if op.op_type == "Dropout" and result is not op.onnx_results()[0]:
            continue  # the mask has the shape too, but its type is checked by the schema
        _expect(op, result, source)


@op_verifier("Cast")
def _cast(op: OnnxOp) -> None:
    _same_shape(op)
    target = ONNX_CODES.get(op.attr("to"))
    result = _results(op)[0].type
    assert isinstance(result, TensorType)
    if target is not None and element_type_name(result.element_type) != target:
        raise VerifyException(
            f"result element type {element_type_name(result.element_type)}, `to` says {target}"
        )


@op_verifier("Softmax", "LogSoftmax", "Hardmax")
def _softmax(op: OnnxOp) -> None:
    _same_shape(op)
    normalize_axis(op.attr("axis"), len(shape_of(op.onnx_inputs()[0])))  # type: ignore[arg-type]


_BROADCASTING = (
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Equal", "Greater",
    "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor", "BitShift", "Where",
    "BitwiseAnd", "BitwiseOr", "BitwiseXor",
)  # fmt: skip


@op_verifier(*_BROADCASTING)
def _broadcasting(op: OnnxOp) -> None:
    expected = broadcast_shapes(*(shape_of(v) for v in _inputs(op)))
    _expect(op, _results(op)[0], expected)


@op_verifier("PRelu")
def _prelu(op: OnnxOp) -> None:
    x, slope = _inputs(op)
    if broadcast_shapes(shape_of(x), shape_of(slope)) != shape_of(x):
        raise VerifyException(
            f"slope {_fmt(shape_of(slope))} does not broadcast to X {_fmt(shape_of(x))}"
        )
    _expect(op, _results(op)[0], shape_of(x))


# ------------------------------------------------------------------------- convolution


def _spatial_attr(op: OnnxOp, name: str, n: int, default: int) -> list[int]:
    value = op.attr(name)
    value = [default] * n if value is None else list(value)
    if len(value) != n:
        raise VerifyException(f"{name} has {len(value)} entries, expected {n}")
    return value


def _pads(op: OnnxOp, n: int) -> list[int]:
    pads = _spatial_attr(op, "pads", 2 * n, 0)
    if any(p < 0 for p in pads):
        raise VerifyException(f"negative pads {pads}")
    return pads


def conv_output_shape(
    x: Shape,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    auto_pad: str,
    ceil_mode: bool = False,
) -> list[int]:
    """Spatial output sizes of a convolution or pooling window."""
    n = len(kernel)
    out = []
    for i in range(n):
        size, k, s, d = x[i], kernel[i], strides[i], dilations[i]
        effective = (k - 1) * d + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(math.ceil(size / s))
        elif auto_pad == "VALID":
            out.append(math.ceil((size - effective + 1) / s))
        else:
            total = size + pads[i] + pads[i + n] - effective
            rounded = math.ceil(total / s) if ceil_mode else total // s
            if ceil_mode and (rounded * s) >= size + pads[i]:
                rounded -= 1  # the last window must start inside the input or left pad
            out.append(rounded + 1)
    return out


@op_verifier("Conv", "FusedConv")
def _conv(op: OnnxOp) -> None:
    x, w = shape_of(op.onnx_inputs()[0]), shape_of(op.onnx_inputs()[1])  # type: ignore[arg-type]
    if len(x) < 3 or len(w) != len(x):
        raise VerifyException(f"X {_fmt(x)} and W {_fmt(w)} must have the same rank >= 3")
    group = op.attr("group")
    n = len(x) - 2
    if group < 1 or x[1] != w[1] * group or w[0] % group:
        raise VerifyException(f"X channels {x[1]}, W {_fmt(w)} and group {group} disagree")
    kernel = _spatial_attr(op, "kernel_shape", n, 0) if op.attr("kernel_shape") else list(w[2:])
    if list(kernel) != list(w[2:]):
        raise VerifyException(f"kernel_shape {kernel} differs from W {_fmt(w)}")
    inputs = op.onnx_inputs()
    if len(inputs) > 2 and inputs[2] is not None and shape_of(inputs[2]) != (w[0],):
        raise VerifyException(f"B shape {_fmt(shape_of(inputs[2]))}, expected [{w[0]}]")
    spatial = conv_output_shape(
        x[2:],
        kernel,
        _spatial_attr(op, "strides", n, 1),
        _spatial_attr(op, "dilations", n, 1),
        _pads(op, n),
        op.attr("auto_pad"),
    )
    _expect(op, _results(op)[0], (x[0], w[0], *spatial))


@op_verifier("ConvTranspose", "FusedConvTranspose")
def _conv_transpose(op: OnnxOp) -> None:
    x, w = shape_of(op.onnx_inputs()[0]), shape_of(op.onnx_inputs()[1])  # type: ignore[arg-type]
    if len(x) < 3 or len(w) != len(x):
        raise VerifyException(f"X {_fmt(x)} and W {_fmt(w)} must have the same rank >= 3")
    group, n = op.attr("group"), len(x) - 2
    if group < 1 or x[1] != w[0]:
        raise VerifyException(f"X channels {x[1]} and W {_fmt(w)} disagree")
    out_channels = w[1] * group
    result = shape_of(_results(op)[0])
    if result[:2] != (x[0], out_channels) or len(result) != len(x):
        raise VerifyException(f"result shape {_fmt(result)}, expected [{x[0]},{out_channels},...]")
    if op.attr("output_shape") or op.attr("auto_pad") not in ("NOTSET", "VALID"):
        return  # the output size is given, or set by SAME padding; nothing to recompute
    strides = _spatial_attr(op, "strides", n, 1)
    dilations = _spatial_attr(op, "dilations", n, 1)
    out_pad = _spatial_attr(op, "output_padding", n, 0)
    pads = _pads(op, n) if op.attr("auto_pad") == "NOTSET" else [0] * (2 * n)
    spatial = [
        strides[i] * (x[i + 2] - 1)
        + out_pad[i]
        + (w[i + 2] - 1) * dilations[i]
        + 1
        - pads[i]
        - pads[i + n]
        for i in range(n)
    ]
    _expect(op, _results(op)[0], (x[0], out_channels, *spatial))


# ------------------------------------------------------------------------- pooling


@op_verifier("MaxPool", "AveragePool", "LpPool")
def _pool(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    n = len(x) - 2
    kernel = op.attr("kernel_shape")
    if n < 1 or kernel is None or len(kernel) != n:
        raise VerifyException(f"kernel_shape {kernel} does not fit X {_fmt(x)}")
    ceil = bool(op.attr("ceil_mode")) if "ceil_mode" in op.SCHEMA.attributes else False
    spatial = conv_output_shape(
        x[2:],
        kernel,
        _spatial_attr(op, "strides", n, 1),
        _spatial_attr(op, "dilations", n, 1) if "dilations" in op.SCHEMA.attributes else [1] * n,
        _pads(op, n),
        op.attr("auto_pad"),
        ceil,
    )
    for result in _results(op):
        _expect(op, result, (x[0], x[1], *spatial))


@op_verifier("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def _global_pool(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    if len(x) < 3:
        raise VerifyException(f"X {_fmt(x)} needs rank >= 3")
    _expect(op, _results(op)[0], (x[0], x[1], *([1] * (len(x) - 2))))


# ------------------------------------------------------------------------- linear algebra


@op_verifier("Gemm", "FusedGemm")
def _gemm(op: OnnxOp) -> None:
    inputs = op.onnx_inputs()
    a, b = shape_of(inputs[0]), shape_of(inputs[1])  # type: ignore[arg-type]
    if len(a) != 2 or len(b) != 2:
        raise VerifyException(f"A {_fmt(a)} and B {_fmt(b)} must be 2-D")
    m, k = (a[1], a[0]) if op.attr("transA") else a
    k2, n = (b[1], b[0]) if op.attr("transB") else b
    if k != k2:
        raise VerifyException(f"inner dimensions differ: A {_fmt(a)}, B {_fmt(b)}")
    if len(inputs) > 2 and inputs[2] is not None:
        c = shape_of(inputs[2])
        if broadcast_shapes(c, (m, n)) != (m, n):
            raise VerifyException(f"C {_fmt(c)} does not broadcast to [{m},{n}]")
    _expect(op, _results(op)[0], (m, n))


def matmul_shape(a: Shape, b: Shape) -> Shape:
    if not a or not b:
        raise VerifyException("MatMul operands must have rank >= 1")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise VerifyException(f"inner dimensions differ: {_fmt(a)} x {_fmt(b)}")
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = (*out[:-2], out[-1])
    if len(b) == 1:
        out = out[:-1]
    return out


@op_verifier("MatMul", "MatMulInteger", "FusedMatMul")
def _matmul(op: OnnxOp) -> None:
    inputs = op.onnx_inputs()
    _expect(op, _results(op)[0], matmul_shape(shape_of(inputs[0]), shape_of(inputs[1])))  # type: ignore[arg-type]


# ------------------------------------------------------------------------- normalization


@op_verifier("BatchNormalization", "InstanceNormalization")
def _per_channel_norm(op: OnnxOp) -> None:
    inputs = _inputs(op)
    x = shape_of(inputs[0])
    channels = x[1] if len(x) > 1 else 1
    for value in inputs[1:]:
        if shape_of(value) != (channels,):
            raise VerifyException(
                f"per-channel operand {_fmt(shape_of(value))}, expected [{channels}]"
            )
    _expect(op, _results(op)[0], x)


@op_verifier("LayerNormalization")
def _layer_norm(op: OnnxOp) -> None:
    inputs = _inputs(op)
    x = shape_of(inputs[0])
    axis = normalize_axis(op.attr("axis"), len(x))
    for value in inputs[1:]:
        if broadcast_shapes(shape_of(value), x[axis:]) != x[axis:]:
            raise VerifyException(
                f"{_fmt(shape_of(value))} does not broadcast to the "
                f"normalized shape {_fmt(x[axis:])}"
            )
    _expect(op, _results(op)[0], x)


# ------------------------------------------------------------------------- data movement


@op_verifier("Concat")
def _concat(op: OnnxOp) -> None:
    shapes = [shape_of(v) for v in _inputs(op)]
    rank = len(shapes[0])
    axis = normalize_axis(op.attr("axis"), rank)
    for s in shapes:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise VerifyException(f"inputs {', '.join(map(_fmt, shapes))} differ off axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    _expect(op, _results(op)[0], tuple(out))


@op_verifier("Split")
def _split(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    axis = normalize_axis(op.attr("axis"), len(x))
    results = _results(op)
    total = 0
    for r in results:
        s = shape_of(r)
        if len(s) != len(x) or any(s[i] != x[i] for i in range(len(x)) if i != axis):
            raise VerifyException(f"output {_fmt(s)} does not fit input {_fmt(x)} on axis {axis}")
        total += s[axis]
    if total != x[axis]:
        raise VerifyException(f"outputs cover {total} of the {x[axis]} entries on axis {axis}")


@op_verifier("GLU")
def _glu(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    axis = normalize_axis(op.attr("axis"), len(x))
    if x[axis] % 2:
        raise VerifyException(f"axis {axis} of {_fmt(x)} has odd size; GLU halves it")
    _expect(op, _results(op)[0], tuple(d // 2 if i == axis else d for i, d in enumerate(x)))


@op_verifier("Transpose")
def _transpose(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    perm = op.attr("perm")
    perm = list(range(len(x)))[::-1] if perm is None else list(perm)
    if sorted(perm) != list(range(len(x))):
        raise VerifyException(f"perm {perm} is not a permutation of {len(x)} axes")
    _expect(op, _results(op)[0], tuple(x[p] for p in perm))


@op_verifier("Reshape", "Squeeze", "Unsqueeze", "Flatten")
def _same_size(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    y = shape_of(_results(op)[0])
    if math.prod(x) != math.prod(y):
        raise VerifyException(f"{_fmt(x)} and {_fmt(y)} differ in size")
    if op.op_type == "Flatten":
        axis = op.attr("axis")
        if not -len(x) <= axis <= len(x):
            raise VerifyException(f"axis {axis} out of range for rank {len(x)}")
        axis += len(x) if axis < 0 else 0  # Flatten's axis may equal the rank
        _expect(op, _results(op)[0], (math.prod(x[:axis]), math.prod(x[axis:])))


@op_verifier("Gather")
def _gather(op: OnnxOp) -> None:
    data, indices = (shape_of(v) for v in _inputs(op))
    axis = normalize_axis(op.attr("axis"), len(data))
    _expect(op, _results(op)[0], (*data[:axis], *indices, *data[axis + 1 :]))


@op_verifier("Shape")
def _shape(op: OnnxOp) -> None:
    rank = len(shape_of(op.onnx_inputs()[0]))  # type: ignore[arg-type]
    start, end = op.attr("start"), op.attr("end")
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = rank if end is None else min(max(end + rank if end < 0 else end, 0), rank)
    _expect(op, _results(op)[0], (max(end - start, 0),))


@op_verifier("DepthToSpace", "SpaceToDepth")
def _depth_space(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    b = op.attr("blocksize")
    if len(x) != 4:
        raise VerifyException(f"input {_fmt(x)} must be 4-D")
    if op.op_type == "DepthToSpace":
        if x[1] % (b * b):
            raise VerifyException(f"channels {x[1]} not divisible by blocksize^2 = {b * b}")
        expected = (x[0], x[1] // (b * b), x[2] * b, x[3] * b)
    else:
        if x[2] % b or x[3] % b:
            raise VerifyException(f"spatial size {_fmt(x[2:])} not divisible by {b}")
        expected = (x[0], x[1] * b * b, x[2] // b, x[3] // b)
    _expect(op, _results(op)[0], expected)


_REDUCTIONS = (
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSum",
    "ReduceLogSumExp",
)


@op_verifier(*_REDUCTIONS)
def _reduce(op: OnnxOp) -> None:
    inputs = op.onnx_inputs()
    x = shape_of(inputs[0])  # type: ignore[arg-type]
    axes_value = inputs[1] if len(inputs) > 1 else None
    axes = inline_constant(axes_value)
    if axes_value is not None and axes is None:
        return  # axes held in the weight table: not read here
    if axes is None or axes.size == 0:
        if op.attr("noop_with_empty_axes"):
            _expect(op, _results(op)[0], x)
            return
        reduced = set(range(len(x)))
    else:
        reduced = {normalize_axis(int(a), len(x), "axes entry") for a in axes.reshape(-1)}
    keep = op.attr("keepdims")
    expected = tuple(1 if i in reduced else d for i, d in enumerate(x) if keep or i not in reduced)
    _expect(op, _results(op)[0], expected)


@op_verifier("ArgMax", "ArgMin")
def _arg_reduce(op: OnnxOp) -> None:
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    axis = normalize_axis(op.attr("axis"), len(x))
    keep = op.attr("keepdims")
    expected = tuple(1 if i == axis else d for i, d in enumerate(x) if keep or i != axis)
    _expect(op, _results(op)[0], expected)


@op_verifier("TopK")
def _topk(op: OnnxOp) -> None:
    values, indices = _results(op)
    if shape_of(values) != shape_of(indices):
        raise VerifyException("Values and Indices differ in shape")
    x = shape_of(op.onnx_inputs()[0])  # type: ignore[arg-type]
    axis = normalize_axis(op.attr("axis"), len(x))
    y = shape_of(values)
    if len(y) != len(x) or any(y[i] != x[i] for i in range(len(x)) if i != axis):
        raise VerifyException(f"result {_fmt(y)} does not fit input {_fmt(x)} off axis {axis}")
