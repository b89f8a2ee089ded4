"""Reference kernels for ONNX activation ops (opset 21): the pointwise nonlinearities, Erf and
Gelu, and the softmax family (Softmax, LogSoftmax, Hardmax along one axis, opset-13 style).

Multi-step formulas on float16 are evaluated in float32 and rounded once at the end, as
onnxruntime's CPU kernels do, instead of rounding after every step. Float32 and float64 stay
in their own type; the steps run in place on one fresh buffer to keep large feature maps cheap.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from runtime.kernels.elementwise import array_kernel, require_float
from runtime.kernels.registry import Kernel, KernelError


def _pointwise(fn: Kernel) -> Kernel:
    """Run a one-input elementwise kernel on a 0-d input as a 1-element vector: numpy returns
    scalars, not arrays, for 0-d operands, and the kernels' in-place steps need arrays."""

    @functools.wraps(fn)
    def run(x: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        if x.ndim == 0:
            return fn(x.reshape(1), *args, **kwargs).reshape(())
        return fn(x, *args, **kwargs)

    return run


def _work_dtype(x: np.ndarray) -> np.dtype:
    return np.dtype(np.float32) if x.dtype == np.float16 else x.dtype


def _axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise KernelError(f"{op}: axis {axis} is out of range for a rank-{ndim} input")
    return axis % ndim


def _scalar_bound(bound: np.ndarray | None, dtype: np.dtype) -> np.ndarray | None:
    if bound is None or bound.size == 0:
        return None
    if bound.size != 1:
        raise KernelError(f"Clip: min/max must be scalars, got shape {bound.shape}")
    return bound.astype(dtype, copy=False).reshape(())


# ------------------------------------------------------------------------------ piecewise-linear


def _limits(dtype: np.dtype) -> tuple[float | int, float | int]:
    """The lowest and highest values of a float or integer dtype."""
    if dtype.kind == "f":
        return -np.inf, np.inf
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return int(info.min), int(info.max)
    raise KernelError(f"input dtype {dtype} is not supported (numeric types only)")


# np.clip with two bounds has a fast SIMD loop; np.maximum(x, scalar) is ~3x slower in numpy 2,
# so one-sided clamps below pass the type's extreme as the missing bound. NaN propagates.


@array_kernel("Relu")
def relu(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, _limits(x.dtype)[1])


@array_kernel("Clip")
def clip(
    x: np.ndarray, min_value: np.ndarray | None = None, max_value: np.ndarray | None = None
) -> np.ndarray:
    low, high = _limits(x.dtype)
    lo, hi = _scalar_bound(min_value, x.dtype), _scalar_bound(max_value, x.dtype)
    # clip is max(x, lo) then min(., hi): when lo > hi every output is hi, as in onnxruntime
    return np.clip(x, low if lo is None else lo, high if hi is None else hi)


@array_kernel("LeakyRelu")
@_pointwise
def leaky_relu(x: np.ndarray, *, alpha: float = 0.01) -> np.ndarray:
    require_float("LeakyRelu", x)
    out = np.multiply(x, alpha, dtype=_work_dtype(x))
    if 0.0 <= alpha <= 1.0:
        np.maximum(out, x, out=out)  # max(x, alpha*x) needs no mask for such alpha
    else:
        np.copyto(out, x, where=~(x < 0))
    return out.astype(x.dtype, copy=False)


@array_kernel("PRelu")
@_pointwise
def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "iuf" or slope.dtype != x.dtype:
        raise KernelError(f"PRelu: dtypes {x.dtype}, {slope.dtype} are not supported")
    try:
        unidirectional = np.broadcast_shapes(x.shape, slope.shape) == x.shape
    except ValueError:
        unidirectional = False
    if not unidirectional:
        raise KernelError(f"PRelu: slope shape {slope.shape} does not broadcast to {x.shape}")
    # min(x, 0) * slope + max(x, 0): two cheap clips instead of a (slow) masked select
    low, high = _limits(x.dtype)
    out = np.clip(x, low, 0) * slope
    out += np.clip(x, 0, high)
    return out


@array_kernel("ThresholdedRelu")
@_pointwise
def thresholded_relu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    require_float("ThresholdedRelu", x)
    return np.where(x > alpha, x, x.dtype.type(0))


@array_kernel("HardSigmoid")
@_pointwise
def hard_sigmoid(x: np.ndarray, *, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    require_float("HardSigmoid", x)
    out = np.multiply(x, alpha, dtype=_work_dtype(x))
    out += beta
    np.clip(out, 0, 1, out=out)
    return out.astype(x.dtype, copy=False)


@array_kernel("HardSwish")
@_pointwise
def hard_swish(x: np.ndarray) -> np.ndarray:
    require_float("HardSwish", x)
    out = np.multiply(x, 1.0 / 6.0, dtype=_work_dtype(x))
    out += 0.5
    np.clip(out, 0, 1, out=out)
    out *= x
    return out.astype(x.dtype, copy=False)


@array_kernel("Shrink")
@_pointwise
def shrink(x: np.ndarray, *, bias: float = 0.0, lambd: float = 0.5) -> np.ndarray:
    if x.dtype.kind not in "iuf":
        raise KernelError(f"Shrink: input dtype {x.dtype} is not supported")
    # Integer inputs are shifted by the float bias in float64 and truncated back, as
    # onnxruntime's static_cast does.
    out = np.zeros(x.shape, _work_dtype(x) if x.dtype.kind == "f" else np.float64)
    np.add(x, bias, out=out, where=x < -lambd, dtype=out.dtype)
    np.subtract(x, bias, out=out, where=x > lambd, dtype=out.dtype)
    return out.astype(x.dtype, copy=False)


# -------------------------------------------------------------------------------- exponential


@array_kernel("Sigmoid")
@_pointwise
def sigmoid(x: np.ndarray) -> np.ndarray:
    require_float("Sigmoid", x)
    # 1 / (1 + exp(-x)): exp overflows to inf for very negative x, giving the correct 0, and
    # the result keeps full relative precision in both tails (0.5 + 0.5*tanh(x/2) does not).
    out = np.negative(x, dtype=_work_dtype(x))
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    return out.astype(x.dtype, copy=False)


@array_kernel("Tanh")
def tanh(x: np.ndarray) -> np.ndarray:
    require_float("Tanh", x)
    return np.tanh(x)


def _exp_linear(x: np.ndarray, alpha: float, scale: float = 1.0) -> np.ndarray:
    """scale * (x if x > 0 else alpha * (exp(x) - 1)). Clamping at 0 first keeps exp from
    overflowing on the positive side. exp(x) - 1 rather than expm1, which numpy does not
    vectorize (5x slower): the same formula as onnxruntime, within an ulp of 1 absolute."""
    out = np.clip(x, _limits(x.dtype)[0], 0, dtype=_work_dtype(x))
    np.exp(out, out=out)
    out -= 1
    out *= alpha
    out += np.clip(x, 0, np.inf)
    if scale != 1.0:
        out *= scale
    return out.astype(x.dtype, copy=False)


@array_kernel("Elu")
@_pointwise
def elu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    require_float("Elu", x)
    return _exp_linear(x, alpha)


@array_kernel("Selu")
@_pointwise
def selu(
    x: np.ndarray,
    *,
    alpha: float = 1.67326319217681884765625,  # the float32 values of the ONNX defaults
    gamma: float = 1.05070102214813232421875,
) -> np.ndarray:
    require_float("Selu", x)
    return _exp_linear(x, alpha, gamma)


@array_kernel("Celu")
@_pointwise
def celu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    require_float("Celu", x)
    if alpha == 0:
        raise KernelError("Celu: alpha must be non-zero")
    # max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), literally, so a negative alpha works too
    out = np.divide(x, alpha, dtype=_work_dtype(x))
    np.exp(out, out=out)
    out -= 1
    out *= alpha
    np.clip(out, -np.inf, 0, out=out)
    out += np.clip(x, 0, np.inf)
    return out.astype(x.dtype, copy=False)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) as max(x, 0) + log(1 + exp(-|x|)): exp cannot overflow. This is
    onnxruntime's formulation; numpy's logaddexp/log1p are not vectorized (6x slower)."""
    out = np.abs(x, dtype=_work_dtype(x))
    np.negative(out, out=out)
    np.exp(out, out=out)
    out += 1
    np.log(out, out=out)
    out += np.clip(x, 0, np.inf)
    return out


@array_kernel("Softplus")
@_pointwise
def softplus(x: np.ndarray) -> np.ndarray:
    require_float("Softplus", x)
    return _softplus(x).astype(x.dtype, copy=False)


@array_kernel("Softsign")
@_pointwise
def softsign(x: np.ndarray) -> np.ndarray:
    require_float("Softsign", x)
    out = np.abs(x, dtype=_work_dtype(x))
    out += 1
    np.divide(x, out, out=out)
    return out.astype(x.dtype, copy=False)


@array_kernel("Mish")
@_pointwise
def mish(x: np.ndarray) -> np.ndarray:
    require_float("Mish", x)
    out = _softplus(x)
    np.tanh(out, out=out)
    out *= x
    return out.astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------------- erf, gelu

# erf(x) ~= x * P(x^2) / Q(x^2) on |x| <= 4.5, and +-1 beyond (1 - erf(4.5) = 2e-10).
# Coefficients fitted for this module against math.erf by iteratively reweighted least squares
# (P's constant term pinned to 2/sqrt(pi), so small arguments keep full relative precision).
# Max abs error of the approximation: 4.5e-9 when evaluated in float64, so float32 results are
# within half an ulp (+4.5e-9) of the exact erf. The denominator has no roots on the interval.
_ERF_CLAMP = 4.5
_ERF_P = (
    1.1283791670955126,
    0.18638874955508594,
    0.05445136562453562,
    0.003895964886989298,
    0.0003796331965042915,
    4.653995637146413e-06,
    -1.3119570092914327e-08,
)
_ERF_Q = (
    1.0,
    0.4985159865136622,
    0.11442841354531898,
    0.01555362986579288,
    0.0013171861176458808,
    6.28373894856092e-05,
)


# float64 elements per chunk: the erf scratch buffers (4 x 256 KiB) then stay in L2 cache,
# which makes the ~25 passes of the rational evaluation about twice as fast as whole-array ones.
_CHUNK = 32768


def _horner_into(coeffs: tuple[float, ...], z: np.ndarray, acc: np.ndarray) -> np.ndarray:
    np.multiply(z, coeffs[-1], out=acc)
    acc += coeffs[-2]
    for c in coeffs[-3::-1]:
        acc *= z
        acc += c
    return acc


def _erf_chunks(x: np.ndarray, gelu: bool) -> np.ndarray:
    """erf(x), or with `gelu` 0.5 * x * (1 + erf(x / sqrt(2))), in x's dtype. Evaluated in
    float64, where the rational approximation's rounding error stays far below a float32 ulp
    (in float32 arithmetic it reaches 3 ulp near |x| = 4). NaN stays NaN."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, x.dtype)
    n = min(_CHUNK, flat.size)
    t, z, num, den = (np.empty(n) for _ in range(4))
    beyond = np.empty(n, np.bool_)
    for start in range(0, flat.size, _CHUNK):
        src = flat[start : start + _CHUNK]
        k = src.size
        tk, zk, numk, denk, bk = t[:k], z[:k], num[:k], den[:k], beyond[:k]
        if gelu:  # dtype: a float32 src would otherwise select the float32 loop
            np.multiply(src, math.sqrt(0.5), out=tk, dtype=np.float64)
        else:
            tk[...] = src
        np.clip(tk, -_ERF_CLAMP, _ERF_CLAMP, out=tk)
        np.multiply(tk, tk, out=zk)
        _horner_into(_ERF_P, zk, numk)
        numk /= _horner_into(_ERF_Q, zk, denk)
        numk *= tk
        np.clip(numk, -1.0, 1.0, out=numk)  # the fit overshoots 1 by up to 4.5e-9 near 4.5
        # exactly +-1 past the clamp (the fit gives 1 - 4.5e-9 there; float64 would show it)
        np.greater_equal(np.abs(tk, out=zk), _ERF_CLAMP, out=bk)
        np.copysign(1.0, tk, out=numk, where=bk)
        if gelu:
            numk += 1
            numk *= src
            numk *= 0.5
        out[start : start + k] = numk
    return out.reshape(x.shape)


@array_kernel("Erf")
@_pointwise
def erf(x: np.ndarray) -> np.ndarray:
    require_float("Erf", x)
    return _erf_chunks(x, gelu=False)


@array_kernel("Gelu")
@_pointwise
def gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    require_float("Gelu", x)
    if approximate == "none":
        return _erf_chunks(x, gelu=True)
    if approximate != "tanh":
        raise KernelError(f"Gelu: approximate={approximate!r} is not supported (none, tanh)")
    # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
    out = np.square(x, dtype=_work_dtype(x))
    out *= 0.044715
    out += 1
    out *= x
    out *= math.sqrt(2.0 / math.pi)
    np.tanh(out, out=out)
    out += 1
    out *= x
    out *= 0.5
    return out.astype(x.dtype, copy=False)


# ---------------------------------------------------------------------------- softmax family


@array_kernel("Softmax")
def softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    require_float("Softmax", x)
    axis = _axis("Softmax", axis, x.ndim)
    if x.size == 0:
        return x.copy()
    # subtracting the max keeps exp from overflowing and leaves the result unchanged
    out = np.subtract(x, np.max(x, axis=axis, keepdims=True), dtype=_work_dtype(x))
    np.exp(out, out=out)
    out /= np.sum(out, axis=axis, keepdims=True)
    return out.astype(x.dtype, copy=False)


@array_kernel("LogSoftmax")
def log_softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    require_float("LogSoftmax", x)
    axis = _axis("LogSoftmax", axis, x.ndim)
    if x.size == 0:
        return x.copy()
    out = np.subtract(x, np.max(x, axis=axis, keepdims=True), dtype=_work_dtype(x))
    out -= np.log(np.sum(np.exp(out), axis=axis, keepdims=True))
    return out.astype(x.dtype, copy=False)


@array_kernel("Hardmax")
def hardmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    require_float("Hardmax", x)
    axis = _axis("Hardmax", axis, x.ndim)
    out = np.zeros_like(x)
    if x.size == 0:
        return out
    # argmax returns the first maximum, the tie-break ONNX specifies
    first = np.argmax(x, axis=axis, keepdims=True)
    np.put_along_axis(out, first, 1, axis=axis)
    return out
