"""Resize (ONNX opset 19/21 semantics).

Every resized axis gets a 1-D sampling plan: for each output position, the input indices it
reads and their weights. Resizing is separable, so the plans are applied one axis at a time,
innermost first: nearest as one gather per axis, linear and cubic (N-linear / N-cubic) as a
few gathers and multiply-adds per axis, each vectorized over the whole tensor.

Coordinates follow the spec text, with `length_resized` the integer output length (as
onnxruntime and PyTorch do; the ONNX reference uses scale * length for align_corners and
tf_crop_and_resize, so two of its downscaling align_corners node tests disagree). Filters
read clamped (edge-replicated) indices unless exclude_outside is set, in which case
out-of-range taps get weight 0 and the rest are renormalized. With antialias, linear and
cubic filters are stretched by 1/scale when downscaling and renormalized, as in the ONNX
reference. Interpolated integer tensors are rounded half to even and saturated, like the
ONNX reference (onnxruntime truncates).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runtime.kernels.registry import KernelError, kernel

_COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
)
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@dataclass(frozen=True)
class _Axis:
    """How one axis is resized."""

    axis: int
    in_size: int
    out_size: int
    scale: float
    roi: tuple[float, float]  # normalized start and end, for tf_crop_and_resize


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _present(t: np.ndarray | None) -> np.ndarray | None:
    """An optional input; an empty tensor counts as absent, as exporters use both."""
    return None if t is None or t.size == 0 else np.asarray(t)


def _resized_axes(
    x: np.ndarray,
    roi: np.ndarray | None,
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    axes: Sequence[int] | None,
    keep_aspect_ratio_policy: str,
) -> list[_Axis]:
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    if len(set(axes)) != len(axes) or not all(0 <= a < rank for a in axes):
        raise KernelError(f"Resize: axes {axes} are invalid for rank {rank}")
    if (scales is None) == (sizes is None):
        raise KernelError("Resize: exactly one of scales and sizes must be given")
    given = scales if scales is not None else sizes
    if given.shape != (len(axes),):
        raise KernelError(f"Resize: {given.shape[0]} scales/sizes for {len(axes)} axes")
    if roi is not None and roi.shape != (2 * len(axes),):
        raise KernelError(f"Resize: roi has {roi.size} values, expected {2 * len(axes)}")
    in_sizes = [x.shape[a] for a in axes]
    if scales is not None:
        factors = [float(s) for s in scales]
        if min(factors) <= 0:
            raise KernelError(f"Resize: scales must be positive, got {factors}")
        outs = [math.floor(n * f) for n, f in zip(in_sizes, factors, strict=True)]
    else:
        factors, outs = _sizes_plan(in_sizes, [int(s) for s in sizes], keep_aspect_ratio_policy)
    roi_pairs = [
        (0.0, 1.0) if roi is None else (float(roi[i]), float(roi[i + len(axes)]))
        for i in range(len(axes))
    ]
    return [
        _Axis(a, n, o, f, r)
        for a, n, o, f, r in zip(axes, in_sizes, outs, factors, roi_pairs, strict=True)
    ]


def _sizes_plan(
    in_sizes: Sequence[int], sizes: Sequence[int], policy: str
) -> tuple[list[float], list[int]]:
    """(scales, output sizes) from the `sizes` input under keep_aspect_ratio_policy."""
    if min(sizes) < 0:
        raise KernelError(f"Resize: negative sizes {list(sizes)}")
    ratios = [o / n for o, n in zip(sizes, in_sizes, strict=True)]
    if policy == "stretch":
        return ratios, list(sizes)
    if policy not in ("not_larger", "not_smaller"):
        raise KernelError(f"Resize: keep_aspect_ratio_policy={policy!r} is not supported")
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    # round_int in the spec: nearest integer, halfway cases up
    return [scale] * len(in_sizes), [math.floor(scale * n + 0.5) for n in in_sizes]


def _source_coords(ax: _Axis, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(input coordinate of every output position, mask of positions to extrapolate)."""
    y = np.arange(ax.out_size, dtype=np.float64)
    n, out, scale = ax.in_size, ax.out_size, ax.scale
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        # centres the sampled region when the integer output length rounds scale * n down
        offset = n / 2 * (1 - out / (scale * n))
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "pytorch_half_pixel":
        return ((y + 0.5) / scale - 0.5 if out > 1 else np.zeros_like(y)), None
    if mode == "align_corners":
        return (y * (n - 1) / (out - 1) if out > 1 else np.zeros_like(y)), None
    if mode == "asymmetric":
        return y / scale, None
    start, end = ax.roi
    if out > 1:
        coords = start * (n - 1) + y * (end - start) * (n - 1) / (out - 1)
    else:
        coords = np.full_like(y, 0.5 * (start + end) * (n - 1))
    return coords, (coords < 0) | (coords > n - 1)


def _nearest_index(coords: np.ndarray, nearest_mode: str, in_size: int) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        index = np.ceil(coords - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        index = np.floor(coords + 0.5)
    elif nearest_mode == "floor":
        index = np.floor(coords)
    else:
        index = np.ceil(coords)
    return np.clip(index, 0, in_size - 1).astype(np.intp)


def _filter(distance: np.ndarray, mode: str, cubic_a: float) -> np.ndarray:
    """Interpolation kernel value at `distance` (in input pixels, already scaled)."""
    d = np.abs(distance)
    if mode == "linear":
        return np.maximum(0.0, 1.0 - d)
    a = cubic_a
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _taps(
    coords: np.ndarray,
    in_size: int,
    scale: float,
    mode: str,
    cubic_a: float,
    antialias: bool,
    exclude_outside: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(input indices, weights), both (out, taps), of a linear or cubic filter."""
    support = 1.0 if mode == "linear" else 2.0
    # antialiasing widens the filter by 1/scale when downscaling, so that every input
    # pixel contributes
    stretch = min(scale, 1.0) if antialias else 1.0
    reach = math.ceil(support / stretch)
    base = np.floor(coords).astype(np.intp)
    index = base[:, None] + np.arange(1 - reach, reach + 1)
    weights = _filter((index - coords[:, None]) * stretch, mode, cubic_a)
    if antialias:
        weights /= weights.sum(axis=1, keepdims=True)
    if exclude_outside:
        weights[(index < 0) | (index >= in_size)] = 0.0
        total = weights.sum(axis=1, keepdims=True)
        weights /= np.where(total == 0, 1.0, total)
    return np.clip(index, 0, in_size - 1), weights


def _along(shape_len: int, axis: int, values: np.ndarray) -> np.ndarray:
    """`values` (1-D) shaped to broadcast along `axis` of a rank-`shape_len` tensor."""
    shape = [1] * shape_len
    shape[axis] = values.size
    return values.reshape(shape)


def _nearest(
    x: np.ndarray, plan: list[_Axis], coordinate_mode: str, nearest_mode: str, extrapolation: float
) -> np.ndarray:
    index: list[np.ndarray | slice] = [slice(None)] * x.ndim
    masks = []
    for ax in plan:
        coords, outside = _source_coords(ax, coordinate_mode)
        index[ax.axis] = _nearest_index(coords, nearest_mode, ax.in_size)
        if outside is not None and outside.any():
            masks.append(_along(x.ndim, ax.axis, outside))
    y = x
    # innermost axis first: its element gather then runs on the smallest array, and the
    # later, outer takes copy whole contiguous rows
    for ax in sorted(plan, key=lambda a: -a.axis):
        y = np.take(y, index[ax.axis], axis=ax.axis)
    if masks:
        y = np.where(functools.reduce(np.logical_or, masks), extrapolation, y)
    return y.astype(x.dtype, copy=False)


def _interpolate(
    x: np.ndarray,
    plan: list[_Axis],
    coordinate_mode: str,
    mode: str,
    cubic_a: float,
    antialias: bool,
    exclude_outside: bool,
    extrapolation: float,
) -> np.ndarray:
    compute = np.float64 if x.dtype == np.float64 else np.float32
    y = x.astype(compute, copy=False)
    for ax in sorted(plan, key=lambda a: -a.axis):  # innermost first, as in _nearest
        coords, outside = _source_coords(ax, coordinate_mode)
        index, weights = _taps(
            coords, ax.in_size, ax.scale, mode, cubic_a, antialias, exclude_outside
        )
        weights = weights.astype(compute)
        acc = None
        for t in range(index.shape[1]):
            term = np.take(y, index[:, t], axis=ax.axis)
            term *= _along(y.ndim, ax.axis, weights[:, t])
            acc = term if acc is None else np.add(acc, term, out=acc)
        y = acc
        if outside is not None and outside.any():
            y = np.where(_along(y.ndim, ax.axis, outside), compute(extrapolation), y)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        y = np.clip(np.round(y), info.min, info.max)
    return y.astype(x.dtype, copy=False)


def _is_identity(ax: _Axis, coordinate_mode: str) -> bool:
    """Whether resizing this axis copies it unchanged."""
    if ax.out_size != ax.in_size or ax.scale != 1.0:
        return False
    return coordinate_mode != "tf_crop_and_resize" or ax.roi == (0.0, 1.0)


@kernel("Resize")
def resize(
    x: np.ndarray,
    roi: np.ndarray | None = None,
    scales: np.ndarray | None = None,
    sizes: np.ndarray | None = None,
    *,
    antialias: int = 0,
    axes: list[int] | None = None,
    coordinate_transformation_mode: str = "half_pixel",
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch",
    mode: str = "nearest",
    nearest_mode: str = "round_prefer_floor",
) -> np.ndarray:
    mode, coordinate_mode = _text(mode), _text(coordinate_transformation_mode)
    nearest_mode = _text(nearest_mode)
    if mode not in ("nearest", "linear", "cubic"):
        raise KernelError(f"Resize: mode={mode!r} is not supported")
    if coordinate_mode not in _COORDINATE_MODES:
        raise KernelError(f"Resize: coordinate_transformation_mode={coordinate_mode!r} unknown")
    if nearest_mode not in _NEAREST_MODES:
        raise KernelError(f"Resize: nearest_mode={nearest_mode!r} is not supported")
    if x.dtype.kind not in "fiu":
        raise KernelError(f"Resize: dtype {x.dtype} is not supported")
    roi = _present(roi) if coordinate_mode == "tf_crop_and_resize" else None
    plan = _resized_axes(
        x, roi, _present(scales), _present(sizes), axes, _text(keep_aspect_ratio_policy)
    )
    if any(ax.out_size == 0 for ax in plan):
        shape = list(x.shape)
        for ax in plan:
            shape[ax.axis] = ax.out_size
        return np.empty(shape, x.dtype)
    plan = [ax for ax in plan if not _is_identity(ax, coordinate_mode)]
    if not plan:
        return x.copy()
    if mode == "nearest":
        return _nearest(x, plan, coordinate_mode, nearest_mode, extrapolation_value)
    return _interpolate(
        x,
        plan,
        coordinate_mode,
        mode,
        cubic_coeff_a,
        bool(antialias),
        bool(exclude_outside),
        extrapolation_value,
    )
