"""Gemm and MatMul (ONNX opset 21) on numpy's BLAS-backed matmul."""

from __future__ import annotations

import numpy as np

from runtime.kernels.registry import KernelError, kernel


def _compute_dtype(*arrays: np.ndarray) -> np.dtype:
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise KernelError(f"inputs have different dtypes {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    if dtype.kind not in "fiu":
        raise KernelError(f"dtype {dtype} is not supported")
    # numpy has no BLAS for float16: such products are computed in float32
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize < 4 else dtype


def _scalar(value: float, dtype: np.dtype, name: str) -> np.generic:
    """`value` as a scalar of `dtype`; integer dtypes need an integral value."""
    if dtype.kind in "iu" and not float(value).is_integer():
        raise KernelError(f"{name}={value} is not supported for integer dtype {dtype}")
    return dtype.type(value)


@kernel("Gemm")
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
) -> np.ndarray:
    if a.ndim != 2 or b.ndim != 2:
        raise KernelError(f"Gemm needs 2-D A and B, got shapes {a.shape} and {b.shape}")
    dtype = _compute_dtype(a, b, *([] if c is None else [c]))
    a2 = (a.T if transA else a).astype(dtype, copy=False)
    b2 = (b.T if transB else b).astype(dtype, copy=False)
    if a2.shape[1] != b2.shape[0]:
        raise KernelError(f"Gemm inner dimensions differ: A' {a2.shape}, B' {b2.shape}")
    y = np.matmul(a2, b2)
    if alpha != 1.0:
        y *= _scalar(alpha, dtype, "alpha")
    if c is not None and beta != 0.0:
        try:
            bias = np.broadcast_to(c.astype(dtype, copy=False), y.shape)
        except ValueError as e:
            raise KernelError(f"C of shape {c.shape} does not broadcast to {y.shape}") from e
        if beta != 1.0:
            bias = bias * _scalar(beta, dtype, "beta")
        y += bias
    return y.astype(a.dtype, copy=False)


@kernel("MatMul")
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dtype = _compute_dtype(a, b)
    try:
        y = np.matmul(a.astype(dtype, copy=False), b.astype(dtype, copy=False))
    except ValueError as e:
        raise KernelError(f"MatMul shapes {a.shape} and {b.shape} do not match") from e
    return np.asarray(y).astype(a.dtype, copy=False)
