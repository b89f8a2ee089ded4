"""Integer kernels for the quantized (`npu`) ops, following the numerics contract
(`dialects/npu/numerics.py`): exact integer accumulation, then `requantize`.

Sums of products are computed with the float kernels in float64: every partial sum is an
integer below 2**53 (int8: |x*w| < 2**15, so up to 2**38 terms; int16: up to 2**23 terms),
so BLAS's summation order cannot change a bit. Inputs are centred (`q - zero_point`) first,
which makes zero padding exact: a padded zero is the input's zero point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dialects.npu import numerics as nx
from dialects.npu.attributes import QuantAttr
from runtime.kernels.conv import conv, conv_transpose
from runtime.kernels.pooling import average_pool

EXACT_LIMIT = 2.0**53


def centred(q: np.ndarray, zero_point: int) -> np.ndarray:
    """`q - zero_point` as float64 (exact)."""
    return np.asarray(q, np.float64) - float(zero_point)


def exact_int(values: np.ndarray) -> np.ndarray:
    """float64 sums that are integers by construction -> int64 (checked)."""
    if values.size and np.abs(values).max() >= EXACT_LIMIT:
        raise OverflowError("an accumulator left the exact float64 range")
    return np.rint(values).astype(np.int64)


def channel_shape(ndim: int, axis: int = 1) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


# ---------------------------------------------------------------------- MAC array


def conv_accumulate(x: np.ndarray, zp_in: int, w: np.ndarray, bias: np.ndarray, *,
                    strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                    group: int) -> np.ndarray:  # fmt: skip
    """Σ (x - zp_in) * w + bias per output element, int64 (NCHW; bias int32 per channel)."""
    acc = conv(centred(x, zp_in), np.asarray(w, np.float64), None, strides=list(strides),
               pads=list(pads), dilations=list(dilations), group=group)  # fmt: skip
    return exact_int(acc) + np.asarray(bias, np.int64).reshape(channel_shape(acc.ndim))


def conv_transpose_accumulate(x: np.ndarray, zp_in: int, w: np.ndarray, bias: np.ndarray, *,
                              strides: Sequence[int], pads: Sequence[int],
                              dilations: Sequence[int], group: int,
                              output_padding: Sequence[int]) -> np.ndarray:  # fmt: skip
    acc = conv_transpose(centred(x, zp_in), np.asarray(w, np.float64), None,
                         strides=list(strides), pads=list(pads), dilations=list(dilations),
                         group=group, output_padding=list(output_padding))  # fmt: skip
    return exact_int(acc) + np.asarray(bias, np.int64).reshape(channel_shape(acc.ndim))


def fc_accumulate(x: np.ndarray, zp_in: int, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Σ_k (x[..., k] - zp_in) * w[n, k] + bias[n], int64."""
    acc = centred(x, zp_in) @ np.asarray(w, np.float64).T
    return exact_int(acc) + np.asarray(bias, np.int64)


def dpu_output(acc: np.ndarray, mantissa: np.ndarray, shift: np.ndarray, zp_out: int,
               dtype: str, activation: str, alpha_mantissa: np.ndarray | None,
               clamp: tuple[int, int] | None, axis: int = 1) -> np.ndarray:  # fmt: skip
    """The DPU's output stage: requantize per channel of `axis`; leaky/prelu scale the
    negative accumulators by their own multipliers (`alpha_mantissa`, same shifts); relu
    and clip are clamps in the output domain (`clamp`, already quantized bounds)."""
    shape = channel_shape(acc.ndim, axis)
    m, s = mantissa.reshape(shape), shift.reshape(shape)
    if activation in ("leaky", "prelu"):
        m = np.where(acc < 0, alpha_mantissa.reshape(shape), m)
    y = nx.requantize(acc, m, s, zp_out, dtype).astype(np.int64)
    if clamp is not None:
        y = np.clip(y, *clamp)
    return nx.saturate(y, dtype)


def residual_output(acc: np.ndarray, mantissa: np.ndarray, z: np.ndarray, zp_z: int,
                    z_mantissa: np.ndarray, shift: np.ndarray, zp_out: int, dtype: str,
                    relu_first: bool, clamp: tuple[int, int] | None) -> np.ndarray:  # fmt: skip
    """Conv + residual: `round_shift(act(acc) * M + (z - zp_z) * M_z, S) + zp_out` with M,
    M_z sharing the shift S per channel; relu before the add is `max(acc, 0)`."""
    shape = channel_shape(acc.ndim)
    if relu_first:
        acc = np.maximum(acc, 0)
    total = acc * mantissa.reshape(shape) + (np.asarray(z, np.int64) - zp_z) * z_mantissa.reshape(
        shape
    )
    y = nx.round_shift(total, shift.reshape(shape)) + zp_out
    if clamp is not None:
        y = np.clip(y, *clamp)
    return nx.saturate(y, dtype)


# ---------------------------------------------------------------------- element-wise


def eltwise_add(a: np.ndarray, zp_a: int, m_a: int, b: np.ndarray, zp_b: int, m_b: int,
                shift: int, zp_out: int, dtype: str) -> np.ndarray:  # fmt: skip
    """`round_shift((a - zp_a) * M_a + (b - zp_b) * M_b, S) + zp_out` (sub: M_b < 0)."""
    total = (np.asarray(a, np.int64) - zp_a) * m_a + (np.asarray(b, np.int64) - zp_b) * m_b
    return nx.saturate(nx.round_shift(total, shift) + zp_out, dtype)


def eltwise_mul(a: np.ndarray, zp_a: int, b: np.ndarray, zp_b: int, mantissa: int,
                shift: int, zp_out: int, dtype: str) -> np.ndarray:  # fmt: skip
    product = (np.asarray(a, np.int64) - zp_a) * (np.asarray(b, np.int64) - zp_b)
    return nx.requantize(product, mantissa, shift, zp_out, dtype)


def rescale(q: np.ndarray, zp_in: int, mantissa: int, shift: int, zp_out: int,
            dtype: str) -> np.ndarray:  # fmt: skip
    """One integer quantization to another: `round_shift((q - zp_in) * M, S) + zp_out`."""
    return nx.requantize(np.asarray(q, np.int64) - zp_in, mantissa, shift, zp_out, dtype)


# ---------------------------------------------------------------------- pooling


def window_sums(x: np.ndarray, zp_in: int, kernel: Sequence[int], strides: Sequence[int],
                pads: Sequence[int]) -> np.ndarray:  # fmt: skip
    """Σ (x - zp_in) over each pooling window (padding adds 0), int64. Global windows sum
    directly; others take the float average over the whole padded window (count_include_pad)
    times its size, exact because the sums are integers far below 2**52."""
    xc = centred(x, zp_in)
    if tuple(kernel) == x.shape[2:] and not any(pads):
        return exact_int(xc.sum(axis=(2, 3), keepdims=True))
    mean = average_pool(xc, kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                        count_include_pad=1)  # fmt: skip
    return exact_int(mean * float(np.prod(kernel)))


def window_counts(in_hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                  pads: Sequence[int], include_pad: bool) -> np.ndarray:  # fmt: skip
    """How many elements each window averages, [OH, OW]."""
    plane = np.ones((1, 1, *in_hw), np.float64)
    if include_pad:
        padded = [in_hw[0] + pads[0] + pads[2], in_hw[1] + pads[1] + pads[3]]
        plane = np.ones((1, 1, *padded), np.float64)
        pads = [0, 0, 0, 0]
    counts = conv(plane, np.ones((1, 1, *kernel), np.float64), None, strides=list(strides),
                  pads=list(pads))  # fmt: skip
    return exact_int(counts)[0, 0]


def lookup(q: np.ndarray, table: np.ndarray, in_dtype: str) -> np.ndarray:
    """`table[q - qmin]`."""
    qmin, _ = nx.qrange(in_dtype)
    return table[np.asarray(q, np.int64) - qmin]


def rescaler(in_q: QuantAttr, out_q: QuantAttr) -> Callable[[np.ndarray], np.ndarray]:
    """In one quantization -> another (the identity when they are equal): integer to integer
    by the contract's mantissa and shift, through the reals when one side is float."""
    if in_q == out_q:
        return lambda q: np.asarray(q).astype(nx.STORAGE[out_q.element])
    if out_q.element == "f16" and not in_q.is_float:
        return lambda q: nx.float16_from_integer(q, in_q.params())
    if in_q.element == "f16" and not out_q.is_float:
        return lambda q: nx.integer_from_float16(q, out_q.params())
    if in_q.is_float or out_q.is_float:
        return lambda q: nx.quantize(nx.dequantize(q, in_q.params()), out_q.params())
    mant, shift = nx.encode_multiplier(in_q.scale / out_q.scale)
    return lambda q: rescale(q, in_q.zero_point, mant, shift, out_q.zero_point, out_q.element)
