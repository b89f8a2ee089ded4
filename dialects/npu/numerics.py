"""The numerics contract (DESIGN.md, "Numerics contract"): the one place where quantization
formulas live. Calibration, lowering, the `npu` reference executor, code generation and the
simulator call these functions; none of them writes a formula of its own.

Real values and integers::

    real = (q - zero_point) * scale                                   (dequantize)
    q    = clamp(round(real / scale) + zero_point, qmin, qmax)        (quantize)

`round` is round half away from zero (RKNN-Toolkit2's "四舍五入", user guide formula 6-1),
everywhere: in quantize and in the fixed-point shift below. numpy's `np.round` rounds half to
even, so it is never used on a quantization path.

Activations are asymmetric per tensor; weights symmetric (zero point 0) per output channel or
per tensor; the bias has `scale = s_in * s_w[oc]`, zero point 0, and is int32 beside int8
activations, 48-bit beside int16 ones (the accumulator widths).

Range -> parameters (RKNN formulas 6-4, 6-5): the range is widened to hold 0 (so that zero
padding and ReLU are exact), `scale = (hi - lo) / (qmax - qmin)`, `zero_point = qmin -
round(lo / scale)`. Hand-worked: int8, [0, 6] -> scale 6/255 = 0.023529411764705882, zero
point -128.

Requantization: an integer accumulator `acc` (exact; int64 here, the hardware's is 34 bits
for int8 and 48 for int16) is brought to the output scale by a real multiplier
`m = s_in * s_w / s_out`, encoded as the DPU's output converter encodes it: a 15-bit
normalised mantissa `M` in [2**14, 2**15) and a right shift `S` with `m ~= M * 2**-S`::

    y = clamp(round_shift(acc * M, S) + zero_point_out, qmin, qmax)
    round_shift(x, S) = sign(x) * ((|x| + 2**(S-1)) >> S)        (S > 0; x when S = 0)

`S` is at most `MAX_SHIFT`; a multiplier too small for it keeps `S = MAX_SHIFT` and loses
mantissa bits (it is then below 2**-49 and the output is the zero point anyway). A multiplier
of 2**15 or more cannot be encoded and is an error (it means an output scale 32768 times
finer than the input's, which no calibration produces).

Several integer terms with their own multipliers (a residual add, an element-wise add) share
one shift: `y = clamp(round_shift(sum_i x_i * M_i, S) + zp, ...)` (`shared_shift`).

float16 tensors: an op computes in float32 and rounds its output to float16 (`to_float16`).
A MAC-array layer's sums are fixed so that any tiling gives the same bits: the products of
float16 inputs and weights are exact in float64 and summed there, the sum is rounded once to
float32 (`float_accumulator`, the MAC array's float32 accumulator), and the DPU then adds the
float32 bias, applies the activation (and a residual add) in float32 and rounds to float16.
Two sums of the same products in another order differ by a float64 rounding at most, which
changes the float16 result only where it lies within that of both a float32 and a float16
rounding boundary (about 2**-40 of the outputs); no zoo model has one. A requantize between
an integer and float16 computes in float32 as well (`float16_from_integer`,
`integer_from_float16`); the model's own input and output conversions on the CPU
(`quantize`, `dequantize`) keep float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MANTISSA_BITS = 15  # M in [2**14, 2**15): OUT_CVT_SCALE, 15-bit mantissa with implicit top bit
MAX_SHIFT = 63  # OUT_CVT_SHIFT and EW_CVT_SCALE_VALUE's SHIFT: 6 significant bits

# dtype name -> (qmin, qmax). int4 is a weight dtype only; its values live in int8 arrays.
QRANGES: dict[str, tuple[int, int]] = {
    "i4": (-8, 7),
    "i8": (-128, 127),
    "u8": (0, 255),
    "i16": (-32768, 32767),
    "i32": (-(2**31), 2**31 - 1),
    "i48": (-(2**47), 2**47 - 1),  # the int16 accumulator (and bias) width
}
INTEGER_DTYPES = tuple(QRANGES)
FLOAT_DTYPES = ("f16", "f32")

# The numpy dtype holding each quantized dtype's values.
STORAGE: dict[str, np.dtype] = {
    "i4": np.dtype(np.int8),
    "i8": np.dtype(np.int8),
    "u8": np.dtype(np.uint8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i48": np.dtype(np.int64),
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
}


def qrange(dtype: str) -> tuple[int, int]:
    try:
        return QRANGES[dtype]
    except KeyError:
        raise ValueError(f"{dtype!r} is not a quantized dtype ({', '.join(QRANGES)})") from None


# ---------------------------------------------------------------------- rounding


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round half away from zero, as int64 (float inputs)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def round_shift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """`x * 2**-shift` rounded half away from zero, in exact int64 arithmetic (`shift`
    broadcasts against `x`: one per channel)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    magnitude = np.right_shift(np.abs(x) + half, shift)
    return np.where(x < 0, -magnitude, magnitude)


def saturate(x: np.ndarray, dtype: str) -> np.ndarray:
    """Clamp to `dtype`'s range and store in its numpy dtype."""
    lo, hi = qrange(dtype)
    return np.clip(x, lo, hi).astype(STORAGE[dtype])


# ---------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class QuantParams:
    """Scale(s) and zero point(s) of a quantized tensor; one per channel of `axis` when
    `axis` is not None."""

    dtype: str
    scale: np.ndarray  # float64, shape () or (C,)
    zero_point: np.ndarray  # int64, same shape
    axis: int | None = None

    def per_channel_shape(self, ndim: int) -> tuple[int, ...]:
        """The shape that broadcasts the parameters over a tensor of rank `ndim`."""
        if self.axis is None:
            return ()
        shape = [1] * ndim
        shape[self.axis] = self.scale.size
        return tuple(shape)


def asymmetric_params(lo: float, hi: float, dtype: str) -> QuantParams:
    """Per-tensor asymmetric parameters for the float range [lo, hi] (widened to hold 0)."""
    qmin, qmax = qrange(dtype)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if scale == 0.0 or not math.isfinite(scale):
        scale = 1.0  # an all-zero tensor: any scale represents it exactly
    zero_point = int(np.clip(qmin - round_half_away(lo / scale), qmin, qmax))
    return QuantParams(dtype, np.float64(scale), np.int64(zero_point))


def symmetric_params(
    absmax: np.ndarray | float, dtype: str, axis: int | None = None
) -> QuantParams:
    """Symmetric parameters (zero point 0) for |x| <= absmax, one per channel when `absmax`
    is a vector: `scale = absmax / qmax`."""
    _, qmax = qrange(dtype)
    absmax = np.asarray(absmax, dtype=np.float64)
    scale = np.where(absmax > 0, absmax / qmax, 1.0)
    return QuantParams(dtype, scale, np.zeros(scale.shape, np.int64), axis)


def weight_params(weights: np.ndarray, dtype: str, per_channel: bool) -> QuantParams:
    """Symmetric weight parameters: per output channel (axis 0) or per tensor."""
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if not per_channel:
        return symmetric_params(w.max(initial=0.0), dtype)
    return symmetric_params(w.reshape(w.shape[0], -1).max(axis=1, initial=0.0), dtype, axis=0)


# ---------------------------------------------------------------------- conversions


def quantize(x: np.ndarray, q: QuantParams) -> np.ndarray:
    """Real values -> `q.dtype` integers (or float16 for "f16")."""
    x = np.asarray(x)
    if q.dtype in FLOAT_DTYPES:
        return x.astype(STORAGE[q.dtype])
    shape = q.per_channel_shape(x.ndim)
    scale = q.scale.reshape(shape)
    zp = q.zero_point.reshape(shape)
    return saturate(round_half_away(x.astype(np.float64) / scale) + zp, q.dtype)


def dequantize(q_values: np.ndarray, q: QuantParams) -> np.ndarray:
    """`q.dtype` values -> float32 reals: `(q - zero_point) * scale`."""
    if q.dtype in FLOAT_DTYPES:
        return np.asarray(q_values, dtype=np.float32)
    shape = q.per_channel_shape(np.ndim(q_values))
    centred = np.asarray(q_values, np.int64) - q.zero_point.reshape(shape)
    return (centred * q.scale.reshape(shape)).astype(np.float32)


def float16_from_integer(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """An integer tensor converted to float16 (the DPU's integer -> float16 requantize):
    `q - zp` exactly as float32, times float32(scale) in float32, rounded to float16."""
    centred = (np.asarray(q, np.int64) - params.zero_point).astype(np.float32)
    return (centred * np.float32(params.scale)).astype(np.float16)


def integer_from_float16(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """A float16 tensor converted to integers (the DPU's float16 -> integer requantize):
    float32(x) times float32(1 / scale) in float32, rounded half away from zero, + zp,
    saturated."""
    scaled = np.asarray(x, np.float32) * np.float32(1.0 / float(params.scale))
    rounded = round_half_away(scaled.astype(np.float64))
    return saturate(rounded + params.zero_point, params.dtype).astype(STORAGE[params.dtype])


def float_accumulator(sums: np.ndarray) -> np.ndarray:
    """A float16 layer's accumulators from its float64 sums of exact products: float32."""
    return np.asarray(sums, dtype=np.float64).astype(np.float32)


def to_float16(x: np.ndarray) -> np.ndarray:
    """A float16 op's output: computed in float32, rounded to float16 (kept as float16)."""
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def bias_params(input_scale: float, weight: QuantParams, activation_dtype: str) -> QuantParams:
    """Bias parameters: `scale = s_in * s_w[oc]`, zero point 0; int32 beside int8
    activations, 48-bit beside int16 ones (at int16 scales an int32 bias overflows from
    about 5.0 on)."""
    scale = float(input_scale) * weight.scale
    dtype = "i48" if activation_dtype == "i16" else "i32"
    return QuantParams(dtype, scale, np.zeros(scale.shape, np.int64), weight.axis)


# ---------------------------------------------------------------------- fixed point


def encode_multiplier(m: float) -> tuple[int, int]:
    """Real multiplier `m` >= 0 -> (M, S) with M in [2**14, 2**15) and m ~= M * 2**-S
    (see the module doc for the limits)."""
    if not (math.isfinite(m) and m >= 0.0):
        raise ValueError(f"multiplier {m!r} is not a finite non-negative number")
    if m == 0.0:
        return 0, 0
    fraction, exponent = math.frexp(m)  # m = fraction * 2**exponent, fraction in [0.5, 1)
    mantissa = int(round_half_away(fraction * 2**MANTISSA_BITS))
    if mantissa == 2**MANTISSA_BITS:
        mantissa, exponent = mantissa // 2, exponent + 1
    shift = MANTISSA_BITS - exponent
    if shift < 0:
        raise ValueError(f"multiplier {m!r} is too large for the output converter (>= 2**15)")
    if shift > MAX_SHIFT:
        return int(round_half_away(m * 2.0**MAX_SHIFT)), MAX_SHIFT
    return mantissa, shift


def encode_multipliers(ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`encode_multiplier` element-wise: (M, S) int64 arrays of the shape of `ms`."""
    flat = np.asarray(ms, dtype=np.float64).reshape(-1)
    pairs = [encode_multiplier(float(m)) for m in flat]
    mantissas = np.array([p[0] for p in pairs], np.int64).reshape(np.shape(ms))
    shifts = np.array([p[1] for p in pairs], np.int64).reshape(np.shape(ms))
    return mantissas, shifts


SHARED_MANTISSA_LIMIT = 2**31 - 1  # the multipliers of a shared shift are at most 32-bit


def shared_shift(*ms: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Multipliers whose products add into one accumulator before one shift (a residual or
    element-wise add; element-wise over channels). The shift is the one the smallest
    multiplier needs for its 15-bit mantissa, so every term keeps at least 15 bits; the
    larger ones get wider mantissas `M_i = round(m_i * 2**S)` (a negative m_i, for a
    subtraction, gives a negative M_i), at most `SHARED_MANTISSA_LIMIT`: past that the shift
    drops and the smallest term loses bits. (A conv's accumulator multiplier is often 1000x
    below its residual's: sharing the larger one's shift would leave the conv 5 bits.)"""
    arrays = np.stack(np.broadcast_arrays(*[np.asarray(m, np.float64) for m in ms]))
    magnitudes = np.abs(arrays)
    nonzero = np.where(magnitudes > 0, magnitudes, np.inf).min(axis=0)
    smallest = np.where(np.isfinite(nonzero), nonzero, 0.0)
    _, shifts = encode_multipliers(smallest)
    largest = magnitudes.max(axis=0) * np.exp2(shifts)
    excess = np.ceil(np.log2(np.maximum(largest, 1.0) / SHARED_MANTISSA_LIMIT))
    shifts = shifts - np.maximum(excess, 0).astype(np.int64)
    if np.any(shifts < 0):
        raise ValueError("multipliers too far apart for one shift")
    return [round_half_away(m * np.exp2(shifts)) for m in arrays], shifts


def scaled_mantissa(m: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """`round(m * 2**S)` for a multiplier that reuses another's shift `S` (a leaky or PRelu
    slope applied to the same accumulator: |m| below the main multiplier's)."""
    return round_half_away(np.asarray(m, np.float64) * np.exp2(np.asarray(shift, np.float64)))


def decoded(mantissa: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """The real multiplier an (M, S) pair stands for."""
    return np.asarray(mantissa, np.float64) * np.exp2(-np.asarray(shift, np.float64))


def requantize(acc: np.ndarray, mantissa: np.ndarray | int, shift: np.ndarray | int,
               zero_point: int, dtype: str) -> np.ndarray:  # fmt: skip
    """`clamp(round_shift(acc * M, S) + zero_point)` in `dtype` (M, S broadcast against
    `acc`: per channel)."""
    product = np.asarray(acc, np.int64) * np.asarray(mantissa, np.int64)
    return saturate(round_shift(product, shift) + int(zero_point), dtype)


def output_multipliers(input_scale: float, weight_scales: np.ndarray,
                       output_scale: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(M, S) per output channel of a MAC-array op: `m = s_in * s_w[oc] / s_out`."""
    ms = float(input_scale) * np.atleast_1d(np.asarray(weight_scales, np.float64))
    return encode_multipliers(ms / float(output_scale))
