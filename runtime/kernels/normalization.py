"""Normalization ops (ONNX opset 21): BatchNormalization, InstanceNormalization,
LayerNormalization, GroupNormalization and LpNormalization.

Statistics are computed in float32 at least (float64 stays float64), as `stash_type=1`
prescribes for LayerNormalization and GroupNormalization; the variance is the mean of squared
deviations (two passes), which unlike E[x^2] - E[x]^2 does not cancel catastrophically.
"""

from __future__ import annotations

import numpy as np

from runtime.kernels.registry import KernelError, kernel

_STASH_FLOAT = 1  # TensorProto.FLOAT, the only stash_type numpy can honour exactly


def _float_input(x: np.ndarray, op: str) -> np.dtype:
    """The dtype statistics of `x` are computed in."""
    if x.dtype.kind != "f":
        raise KernelError(f"{op}: dtype {x.dtype} is not supported (float types only)")
    return np.dtype(np.float32) if x.dtype.itemsize < 4 else x.dtype


def _check_stash(stash_type: int, op: str) -> None:
    if stash_type != _STASH_FLOAT:
        raise KernelError(f"{op}: stash_type={stash_type} is not supported (only 1, float32)")


def _channel_shape(x: np.ndarray) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel (axis 1) vector against x."""
    return (x.shape[1],) + (1,) * (x.ndim - 2)


def _standardize(
    x: np.ndarray, axes: tuple[int, ...], epsilon: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((x - mean) * inv_std, mean, inv_std) over `axes`, statistics kept with keepdims."""
    mean = np.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = np.mean(np.square(centered), axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + x.dtype.type(epsilon))
    centered *= inv_std
    return centered, mean, inv_std


@kernel("BatchNormalization")
def batch_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray,
    input_mean: np.ndarray,
    input_var: np.ndarray,
    *,
    epsilon: float = 1e-5,
    momentum: float = 0.9,
    training_mode: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inference mode normalizes with the running statistics and returns them unchanged as
    outputs 2 and 3; training mode normalizes with the batch statistics (population
    variance) and returns the updated running statistics, as the spec defines."""
    if x.ndim < 2:
        raise KernelError(f"BatchNormalization needs an input of rank >= 2, got {x.shape}")
    dtype = _float_input(x, "BatchNormalization")
    mean, var = input_mean.astype(np.float64), input_var.astype(np.float64)
    if training_mode:
        axes = (0, *range(2, x.ndim))
        batch_mean = x.mean(axis=axes, dtype=np.float64)
        batch_var = x.var(axis=axes, dtype=np.float64)
        running_mean = (mean * momentum + batch_mean * (1 - momentum)).astype(input_mean.dtype)
        running_var = (var * momentum + batch_var * (1 - momentum)).astype(input_var.dtype)
        mean, var = batch_mean, batch_var
    else:
        running_mean, running_var = input_mean, input_var
    # y = x * factor + shift: two passes over x instead of four
    factor = scale.astype(np.float64) / np.sqrt(var + epsilon)
    shift = b.astype(np.float64) - mean * factor
    shape = _channel_shape(x)
    y = x.astype(dtype, copy=False) * factor.astype(dtype).reshape(shape)
    y += shift.astype(dtype).reshape(shape)
    return y.astype(x.dtype, copy=False), running_mean, running_var


@kernel("InstanceNormalization")
def instance_normalization(
    x: np.ndarray, scale: np.ndarray, b: np.ndarray, *, epsilon: float = 1e-5
) -> np.ndarray:
    if x.ndim < 3:
        raise KernelError(f"InstanceNormalization needs an input of rank >= 3, got {x.shape}")
    dtype = _float_input(x, "InstanceNormalization")
    axes = tuple(range(2, x.ndim))
    y, _, _ = _standardize(x.astype(dtype, copy=False), axes, epsilon)
    shape = _channel_shape(x)
    y *= scale.astype(dtype).reshape(shape)
    y += b.astype(dtype).reshape(shape)
    return y.astype(x.dtype, copy=False)


@kernel("LayerNormalization")
def layer_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray | None = None,
    *,
    axis: int = -1,
    epsilon: float = 1e-5,
    stash_type: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_stash(stash_type, "LayerNormalization")
    _float_input(x, "LayerNormalization")
    if not -x.ndim <= axis < x.ndim:
        raise KernelError(f"LayerNormalization: axis {axis} out of range for rank {x.ndim}")
    axes = tuple(range(axis % x.ndim, x.ndim))
    normalized, mean, inv_std = _standardize(x.astype(np.float32), axes, epsilon)
    # the second stage (scale and shift) runs in the input type, per the function body
    y = normalized.astype(x.dtype, copy=False) * scale
    if b is not None:
        y += b
    return y.astype(x.dtype, copy=False), mean, inv_std


@kernel("GroupNormalization")
def group_normalization(
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    *,
    epsilon: float = 1e-5,
    num_groups: int | None = None,
    stash_type: int = 1,
) -> np.ndarray:
    _check_stash(stash_type, "GroupNormalization")
    _float_input(x, "GroupNormalization")
    if num_groups is None:
        raise KernelError("GroupNormalization: attribute num_groups is required")
    if x.ndim < 2 or num_groups < 1 or x.shape[1] % num_groups:
        raise KernelError(f"GroupNormalization: num_groups={num_groups} does not divide {x.shape}")
    if scale.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
        raise KernelError(
            f"GroupNormalization: scale {scale.shape} and bias {bias.shape} must have one "
            f"value per channel (opset 21)"
        )
    grouped = x.astype(np.float32).reshape(x.shape[0], num_groups, -1)
    normalized, _, _ = _standardize(grouped, (2,), epsilon)
    y = normalized.reshape(x.shape).astype(x.dtype, copy=False)
    shape = _channel_shape(x)
    return y * scale.reshape(shape) + bias.reshape(shape)


@kernel("LpNormalization")
def lp_normalization(x: np.ndarray, *, axis: int = -1, p: int = 2) -> np.ndarray:
    dtype = _float_input(x, "LpNormalization")
    if p not in (1, 2):
        raise KernelError(f"LpNormalization: p={p} is not supported (1 or 2)")
    if not -x.ndim <= axis < x.ndim:
        raise KernelError(f"LpNormalization: axis {axis} out of range for rank {x.ndim}")
    xc = x.astype(dtype, copy=False)
    if p == 1:
        norm = np.sum(np.abs(xc), axis=axis, keepdims=True)
    else:
        norm = np.sqrt(np.sum(np.square(xc), axis=axis, keepdims=True))
    # a zero norm (all-zero slice) gives a zero output, as the spec defines
    y = np.divide(xc, norm, out=np.zeros_like(xc), where=norm != 0)
    return y.astype(x.dtype, copy=False)
