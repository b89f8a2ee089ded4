"""Reference kernels for QuantizeLinear and DequantizeLinear (opset 21).

Scale and zero point are per-tensor (scalar or one-element 1-D), per-axis (1-D along `axis`)
or blocked (`block_size` > 0: same rank as x, `ceil(x.shape[axis] / block_size)` entries along
`axis`, each covering `block_size` consecutive elements).

Quantization computes x / scale in float32 (float64 for float64 or int32 inputs), rounds half
to even, adds the zero point and saturates to the integer range, matching onnxruntime's MLAS
kernel. Supported quantized types: int8, uint8, int16, uint16, plus int32 for
DequantizeLinear. The float8 and 4-bit types (which numpy cannot hold) raise KernelError; the
`saturate` attribute only concerns float8 and is accepted but has no effect on integer types,
which always saturate.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from runtime.kernels.elementwise import array_kernel
from runtime.kernels.registry import KernelError

_QUANT_TYPES: dict[int, np.dtype] = {
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.INT16: np.dtype(np.int16),
}
_DEQUANT_TYPES = (*_QUANT_TYPES.values(), np.dtype(np.int32))


def _axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise KernelError(f"{op}: axis {axis} is out of range for a rank-{ndim} input")
    return axis % ndim


def _expand(
    op: str, name: str, p: np.ndarray, x: np.ndarray, axis: int, block_size: int
) -> np.ndarray:
    """`p` (a scale or zero point) shaped to broadcast against `x`."""
    if block_size < 0:
        raise KernelError(f"{op}: block_size must be >= 0, got {block_size}")
    if block_size > 0:
        return _expand_blocked(op, name, p, x, _axis(op, axis, x.ndim), block_size)
    if p.size == 1 and p.ndim <= 1:
        return p.reshape(())
    if p.ndim == 1:
        ax = _axis(op, axis, x.ndim)
        if p.shape[0] != x.shape[ax]:
            raise KernelError(
                f"{op}: per-axis {name} has {p.shape[0]} entries, axis {ax} has {x.shape[ax]}"
            )
        return p.reshape([-1 if i == ax else 1 for i in range(x.ndim)])
    raise KernelError(f"{op}: {name} of shape {p.shape} needs block_size > 0 (blocked)")


def _expand_blocked(
    op: str, name: str, p: np.ndarray, x: np.ndarray, ax: int, block_size: int
) -> np.ndarray:
    blocks = -(-x.shape[ax] // block_size)
    expected = tuple(blocks if i == ax else d for i, d in enumerate(x.shape))
    if p.shape != expected:
        raise KernelError(
            f"{op}: blocked {name} has shape {p.shape}, expected {expected} "
            f"for input {x.shape}, axis {ax}, block_size {block_size}"
        )
    # the last block may be partial: repeat every entry, then cut to the input's extent
    full = np.repeat(p, block_size, axis=ax)
    return full[(slice(None),) * ax + (slice(0, x.shape[ax]),)]


def _quantized_dtype(zero_point: np.ndarray | None, output_dtype: int) -> np.dtype:
    if output_dtype and output_dtype not in _QUANT_TYPES:
        known = output_dtype in TensorProto.DataType.values()
        name = TensorProto.DataType.Name(output_dtype) if known else str(output_dtype)
        raise KernelError(f"QuantizeLinear: output_dtype {name} is not supported")
    if zero_point is None:
        return _QUANT_TYPES[output_dtype] if output_dtype else np.dtype(np.uint8)
    if zero_point.dtype not in _QUANT_TYPES.values():
        raise KernelError(f"QuantizeLinear: zero point dtype {zero_point.dtype} is not supported")
    if output_dtype and _QUANT_TYPES[output_dtype] != zero_point.dtype:
        raise KernelError(
            f"QuantizeLinear: output_dtype {_QUANT_TYPES[output_dtype]} "
            f"contradicts the zero point's dtype {zero_point.dtype}"
        )
    return zero_point.dtype


@array_kernel("QuantizeLinear")
def quantize_linear(
    x: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
    saturate: int = 1,
) -> np.ndarray:
    if x.dtype.kind != "f" and x.dtype != np.int32:
        raise KernelError(f"QuantizeLinear: input dtype {x.dtype} is not supported")
    out_dtype = _quantized_dtype(y_zero_point, output_dtype)
    work = np.float32 if x.dtype in (np.float16, np.float32) else np.float64
    scale = _expand("QuantizeLinear", "y_scale", y_scale, x, axis, block_size)
    q = np.divide(x, scale, dtype=work)
    np.rint(q, out=q)  # half to even
    if y_zero_point is not None:
        q += _expand("QuantizeLinear", "y_zero_point", y_zero_point, x, axis, block_size)
    info = np.iinfo(out_dtype)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(out_dtype)


@array_kernel("DequantizeLinear")
def dequantize_linear(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
) -> np.ndarray:
    if x.dtype not in _DEQUANT_TYPES:
        raise KernelError(
            f"DequantizeLinear: input dtype {x.dtype} is not supported "
            "(int8, uint8, int16, uint16, int32; no float8/int4)"
        )
    if x_scale.dtype.kind != "f":
        raise KernelError(f"DequantizeLinear: scale dtype {x_scale.dtype} is not supported")
    work = np.float64 if x_scale.dtype == np.float64 else np.float32
    scale = _expand("DequantizeLinear", "x_scale", x_scale, x, axis, block_size)
    if x_zero_point is None:
        y = x.astype(work)
    else:
        if x_zero_point.dtype != x.dtype:
            raise KernelError(
                f"DequantizeLinear: zero point dtype {x_zero_point.dtype} differs from {x.dtype}"
            )
        zp = _expand("DequantizeLinear", "x_zero_point", x_zero_point, x, axis, block_size)
        if x.dtype == np.int32:
            # int32 - zp may not fit in int32 (nor be exact in float32): subtract in int64
            y = np.subtract(x, zp, dtype=np.int64).astype(work)
        else:
            y = x.astype(work)
            y -= zp  # exact: 16-bit operands are exact in float32
    y *= scale
    return y.astype(x_scale.dtype, copy=False)
