"""The `npu` reference executor: one closure per `npu` op, bit-exact to the numerics
contract (`dialects/npu/numerics.py`). The compiler's interpreter runs them beside the float
`onnx` kernels of the ops that stay on the CPU; the runtime's session runs them for the
quantized ops a container places on the CPU (edge conversions, ops without code
generation). The simulator and the code generator must agree with this bit for bit.

Each builder reads the op once (weights, multipliers, clamps) and returns
`run(*inputs) -> output` over numpy arrays in the ops' storage dtypes (int8, int16,
float16). A float16 op computes in float32 with the float kernels and rounds its output to
float16; a MAC-array op sums its exact products in float64 first (`numerics.
float_accumulator`), so that the simulator's tiled sums give the same bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr

from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.attributes import QuantAttr
from dialects.onnx import ConstantOp, dense_to_numpy
from dialects.weights import WeightTable
from runtime.kernels import KERNELS
from runtime.kernels import quantized as qk

Run = Callable[..., np.ndarray]


def build_kernel(op: npu.NpuOp, weights: WeightTable) -> Run:
    return BUILDERS[type(op)](op, weights)


def constant_array(value, weights: WeightTable) -> np.ndarray:
    owner = value.owner
    if not isinstance(owner, ConstantOp):
        raise ValueError("expected a constant operand")
    attr = owner.value
    return dense_to_numpy(attr) if isinstance(attr, DenseIntOrFPElementsAttr) else weights[attr]


def _q(value) -> QuantAttr:
    quant = npu.quant_of(value)
    if quant is None:
        raise ValueError("an npu op reads a value no npu op produced")
    return quant


def _clamp(kind: str, params: list[float], out: QuantAttr) -> tuple[int, int] | None:
    """relu / clip as integer bounds in the output domain."""
    if kind == "relu":
        return out.zero_point, nx.qrange(out.element)[1]
    if kind == "clip":
        lo, hi = nx.quantize(np.array(params, np.float64), out.params()).astype(np.int64)
        return int(lo), int(hi)
    return None


def _float_activation(y: np.ndarray, kind: str, params: list[float], axis: int = 1) -> np.ndarray:
    """A DPU activation on float values; PRelu's slopes run along the channel `axis`."""
    if kind == "relu":
        return np.maximum(y, 0)
    if kind == "clip":
        return np.clip(y, params[0], params[1])
    if kind == "leaky":
        return np.where(y < 0, y * params[0], y)
    if kind == "prelu":
        alpha = np.asarray(params, np.float32).reshape(qk.channel_shape(y.ndim, axis))
        return np.where(y < 0, y * alpha, y)
    return y


# ---------------------------------------------------------------------- MAC array ops


def build_conv(op: npu.Conv2dOp | npu.ConvTransposeOp, weights: WeightTable) -> Run:
    w = constant_array(op.weight, weights)
    bias = constant_array(op.bias, weights)
    strides, dilations, group = npu.ints(op.strides), npu.ints(op.dilations), op.group.data
    pads = npu.ints(op.pads)
    transposed = isinstance(op, npu.ConvTransposeOp)
    geometry = {"strides": strides, "pads": pads, "dilations": dilations, "group": group}
    if transposed:
        geometry["output_padding"] = npu.ints(op.output_padding)
    act, act_params = op.activation.data, npu.floats(op.act_params)
    residual = None if transposed else op.residual
    post = "none" if transposed else op.post_activation.data
    post_params = [] if transposed else npu.floats(op.post_act_params)
    if op.quant.is_float:
        float_conv = KERNELS["ConvTranspose" if transposed else "Conv"]
        wf, bf = _float_weights(w, op.weight_quant).astype(np.float64), _channel_bias(bias)

        def run_float(x: np.ndarray, *rest: np.ndarray) -> np.ndarray:
            sums = float_conv(x.astype(np.float64), wf, None, **geometry)
            y = _float_activation(nx.float_accumulator(sums) + bf, act, act_params)
            if len(rest) == 3:  # weight, bias, residual
                y = _float_activation(y + rest[2].astype(np.float32), post, post_params)
            return nx.to_float16(y)

        return run_float
    in_q, out_q = _q(op.input), op.quant
    w_scales = op.weight_quant.params().scale
    accumulate = qk.conv_transpose_accumulate if transposed else qk.conv_accumulate
    zp_in, zp_out = in_q.zero_point, out_q.zero_point
    m = in_q.scale * np.broadcast_to(w_scales, (op.shape[1],)) / out_q.scale
    if residual is not None:
        z_q = _q(residual)
        (mant, z_mant), shift = nx.shared_shift(m, np.full_like(m, z_q.scale / out_q.scale))
        clamp = _clamp(post, post_params, out_q)

        def run_residual(
            x: np.ndarray, _w: np.ndarray, _b: np.ndarray, z: np.ndarray
        ) -> np.ndarray:
            acc = accumulate(x, zp_in, w, bias, **geometry)
            return qk.residual_output(acc, mant, z, z_q.zero_point, z_mant, shift, zp_out,
                                      out_q.element, act == "relu", clamp)  # fmt: skip

        return run_residual
    mant, shift = nx.encode_multipliers(m)
    alpha = _alphas(act, act_params, op.shape[1])
    alpha_mant = None if alpha is None else nx.scaled_mantissa(m * alpha, shift)
    clamp = _clamp(act, act_params, out_q)

    def run(x: np.ndarray, *_constants: np.ndarray) -> np.ndarray:
        acc = accumulate(x, zp_in, w, bias, **geometry)
        return qk.dpu_output(acc, mant, shift, zp_out, out_q.element, act, alpha_mant, clamp)

    return run


def _channel_bias(bias: np.ndarray) -> np.ndarray:
    """A float16 layer's bias as the DPU adds it: float32, over axis 1 of NCHW."""
    return bias.astype(np.float32).reshape(1, -1, 1, 1)


def _float_weights(w: np.ndarray, quant: QuantAttr) -> np.ndarray:
    """A float16 layer's weights as float32: float16 ones as they are, integer ones (int4
    beside float16 activations, w4a16) dequantized and rounded to float16 on the way in."""
    if quant.is_float:
        return w.astype(np.float32)
    return nx.to_float16(nx.dequantize(w, quant.params())).astype(np.float32)


def _alphas(kind: str, params: list[float], channels: int) -> np.ndarray | None:
    if kind == "leaky":
        return np.full(channels, params[0])
    if kind == "prelu":
        return np.asarray(params, np.float64)
    return None


def build_fully_connected(op: npu.FullyConnectedOp, weights: WeightTable) -> Run:
    w = constant_array(op.weight, weights)
    bias = constant_array(op.bias, weights)
    act, act_params = op.activation.data, npu.floats(op.act_params)
    n = w.shape[0]
    if op.quant.is_float:
        wf, bf = _float_weights(w, op.weight_quant), bias.astype(np.float32)

        def run_float(x: np.ndarray, *_c: np.ndarray) -> np.ndarray:
            y = nx.float_accumulator(x.astype(np.float64) @ wf.astype(np.float64).T) + bf
            return nx.to_float16(_float_activation(y, act, act_params, axis=-1))

        return run_float
    in_q, out_q = _q(op.input), op.quant
    m = in_q.scale * np.broadcast_to(op.weight_quant.params().scale, (n,)) / out_q.scale
    mant, shift = nx.encode_multipliers(m)
    alpha = _alphas(act, act_params, n)
    alpha_mant = None if alpha is None else nx.scaled_mantissa(m * alpha, shift)
    clamp = _clamp(act, act_params, out_q)

    def run(x: np.ndarray, *_c: np.ndarray) -> np.ndarray:
        acc = qk.fc_accumulate(x, in_q.zero_point, w, bias)
        return qk.dpu_output(acc, mant, shift, out_q.zero_point, out_q.element, act,
                             alpha_mant, clamp, axis=-1)  # fmt: skip

    return run


# ---------------------------------------------------------------------- DPU / PPU ops


def build_eltwise(op: npu.EltwiseOp, weights: WeightTable) -> Run:
    kind, out_q = op.kind.data, op.quant
    a_q, b_q = _q(op.lhs), _q(op.rhs)
    if out_q.is_float:
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum,
              "min": np.minimum}[kind]  # fmt: skip
        return lambda a, b: nx.to_float16(fn(a.astype(np.float32), b.astype(np.float32)))
    s_out, zp_out, dtype = out_q.scale, out_q.zero_point, out_q.element
    if kind in ("add", "sub"):
        sign = 1.0 if kind == "add" else -1.0
        (m_a, m_b), shift = nx.shared_shift(np.float64(a_q.scale / s_out),
                                            np.float64(sign * b_q.scale / s_out))  # fmt: skip
        return lambda a, b: qk.eltwise_add(a, a_q.zero_point, int(m_a), b, b_q.zero_point,
                                           int(m_b), int(shift), zp_out, dtype)  # fmt: skip
    if kind == "mul":
        mant, shift = nx.encode_multiplier(a_q.scale * b_q.scale / s_out)
        return lambda a, b: qk.eltwise_mul(a, a_q.zero_point, b, b_q.zero_point, mant, shift,
                                           zp_out, dtype)  # fmt: skip
    to_a, to_b = qk.rescaler(a_q, out_q), qk.rescaler(b_q, out_q)
    pick = np.maximum if kind == "max" else np.minimum
    return lambda a, b: pick(to_a(a), to_b(b))


def build_pool(op: npu.PoolOp, weights: WeightTable) -> Run:
    kernel, strides, pads = npu.ints(op.kernel_shape), npu.ints(op.strides), npu.ints(op.pads)
    in_q, out_q = _q(op.input), op.quant
    storage = nx.STORAGE[out_q.element]
    if op.kind.data == "max":

        def run_max(x: np.ndarray) -> np.ndarray:
            y = KERNELS["MaxPool"](x.astype(np.float64), kernel_shape=kernel, strides=strides,
                                   pads=pads)  # fmt: skip
            y = y[0] if isinstance(y, tuple) else y
            return qk.rescaler(in_q, out_q)(y.astype(nx.STORAGE[in_q.element]))

        return run_max
    include_pad = bool(op.count_include_pad.data)
    if out_q.is_float:
        float_counts = qk.window_counts(npu.in_shape(op.input)[2:], kernel, strides, pads,
                                        include_pad).astype(np.float64)  # fmt: skip

        def run_float(x: np.ndarray) -> np.ndarray:
            # float16 windows sum exactly in float64, so every order (the PPU's) agrees
            sums = _float_window_sums(x.astype(np.float64), kernel, strides, pads)
            return nx.to_float16((sums / np.maximum(float_counts, 1)).astype(np.float32))

        return run_float
    in_hw = npu.in_shape(op.input)[2:]
    counts = qk.window_counts(in_hw, kernel, strides, pads, include_pad)
    mant, shift = nx.encode_multipliers(in_q.scale / (out_q.scale * np.maximum(counts, 1)))

    def run_avg(x: np.ndarray) -> np.ndarray:
        sums = qk.window_sums(x, in_q.zero_point, kernel, strides, pads)
        return nx.requantize(sums, mant, shift, out_q.zero_point, out_q.element).astype(storage)

    return run_avg


def build_lut(op: npu.LutOp, weights: WeightTable) -> Run:
    table = constant_array(op.table, weights)
    in_dtype = _q(op.input).element
    return lambda x, _table: qk.lookup(x, table, in_dtype)


# ---------------------------------------------------------------------- data movement


def build_concat(op: npu.ConcatOp, weights: WeightTable) -> Run:
    rescalers = [qk.rescaler(_q(v), op.quant) for v in op.inputs]
    axis = op.axis.data
    return lambda *xs: np.concatenate([r(x) for r, x in zip(rescalers, xs, strict=True)], axis)


def build_slice(op: npu.SliceOp, weights: WeightTable) -> Run:
    index = tuple(slice(s, e, st) for s, e, st in zip(
        npu.ints(op.starts), npu.ints(op.ends), npu.ints(op.steps), strict=True))  # fmt: skip
    rescale = qk.rescaler(_q(op.input), op.quant)
    return lambda x: rescale(np.ascontiguousarray(x[index]))


def build_reshape(op: npu.ReshapeOp, weights: WeightTable) -> Run:
    shape, rescale = op.shape, qk.rescaler(_q(op.input), op.quant)
    return lambda x: rescale(x.reshape(shape))


def build_transpose(op: npu.TransposeOp, weights: WeightTable) -> Run:
    perm, rescale = npu.ints(op.perm), qk.rescaler(_q(op.input), op.quant)
    return lambda x: rescale(np.ascontiguousarray(np.transpose(x, perm)))


def build_pad(op: npu.PadOp, weights: WeightTable) -> Run:
    pads = npu.ints(op.pads)
    rank = len(pads) // 2
    widths = list(zip(pads[:rank], pads[rank:], strict=True))
    in_q = _q(op.input)
    # the real 0 is the zero point (float16: 0.0)
    fill = 0 if in_q.is_float else in_q.zero_point
    rescale = qk.rescaler(in_q, op.quant)
    return lambda x: rescale(np.pad(x, widths, constant_values=fill))


def build_resize(op: npu.ResizeOp, weights: WeightTable) -> Run:
    in_q, out_q = _q(op.input), op.quant
    sizes = np.array(op.shape, np.int64)
    attrs = {"mode": op.mode.data,
             "coordinate_transformation_mode": op.coordinate_transformation_mode.data,
             "nearest_mode": op.nearest_mode.data}  # fmt: skip
    resize = KERNELS["Resize"]
    if op.mode.data == "nearest":
        rescale = qk.rescaler(in_q, out_q)

        def run_nearest(x: np.ndarray) -> np.ndarray:
            y = resize(x.astype(np.float64), None, None, sizes, **attrs)
            if out_q.is_float:  # float16 on the MAC array: x + 0.0 (a -0.0 comes out +0.0)
                return nx.to_float16(y.astype(np.float32) + np.float32(0.0))
            return rescale(y.astype(x.dtype))

        return run_nearest

    def run_linear(x: np.ndarray) -> np.ndarray:
        # interpolation weights in float64 on the dequantized values, then one quantize
        real = nx.dequantize(x, in_q.params()).astype(np.float64)
        return nx.quantize(resize(real, None, None, sizes, **attrs), out_q.params())

    return run_linear


# ---------------------------------------------------------------------- dtype boundaries


def build_quantize(op: npu.QuantizeOp, weights: WeightTable) -> Run:
    mean, std = npu.floats(op.mean), npu.floats(op.std)
    axis, params = op.channel_axis.data, op.quant.params()

    def run(x: np.ndarray) -> np.ndarray:
        real = np.asarray(x, np.float32)
        if mean:
            shape = qk.channel_shape(real.ndim, axis)
            m = np.asarray(mean, np.float32).reshape(shape)
            s = np.asarray(std, np.float32).reshape(shape)
            real = (real - m) / s
        return nx.quantize(real, params)

    return run


def _float_window_sums(x: np.ndarray, kernel: list[int], strides: list[int],
                       pads: list[int]) -> np.ndarray:  # fmt: skip
    """Σ x over each pooling window of the zero-padded NCHW `x` (float64)."""
    (kh, kw), (sy, sx) = kernel, strides
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh, ow = (padded.shape[2] - kh) // sy + 1, (padded.shape[3] - kw) // sx + 1
    sums = np.zeros((*x.shape[:2], oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            sums += padded[:, :, i : i + (oh - 1) * sy + 1 : sy, j : j + (ow - 1) * sx + 1 : sx]
    return sums


def build_dequantize(op: npu.DequantizeOp, weights: WeightTable) -> Run:
    params = _q(op.input).params()
    return lambda q: nx.dequantize(q, params)


def build_requantize(op: npu.RequantizeOp, weights: WeightTable) -> Run:
    return qk.rescaler(_q(op.input), op.quant)


BUILDERS: dict[type[npu.NpuOp], Callable[..., Run]] = {
    npu.Conv2dOp: build_conv, npu.ConvTransposeOp: build_conv,
    npu.FullyConnectedOp: build_fully_connected, npu.EltwiseOp: build_eltwise,
    npu.PoolOp: build_pool, npu.LutOp: build_lut, npu.ConcatOp: build_concat,
    npu.SliceOp: build_slice, npu.ReshapeOp: build_reshape, npu.TransposeOp: build_transpose,
    npu.PadOp: build_pad, npu.ResizeOp: build_resize, npu.QuantizeOp: build_quantize,
    npu.DequantizeOp: build_dequantize, npu.RequantizeOp: build_requantize,
}  # fmt: skip
