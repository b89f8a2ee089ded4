"""Pooling ops (ONNX opset 21): MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool.

The padded input is split into stride-phase planes (see `conv.PhaseLayout`), in which every
window tap is one contiguous slice across all (image, channel) rows. Max and sum over a box
window are separable, so the ops reduce one spatial axis at a time: a k x k window costs 2k
long vector ops instead of k*k. MaxPool's Indices are found afterwards as the first tap, in
row-major window order, equal to the maximum (onnxruntime's choice).

Geometry follows the opset-19+ rules: floor or ceil output sizes, with a ceil-mode window
that would start in the end padding dropped; positions past the explicit padding (added only
so that ceil-mode windows fit) never count, not even with count_include_pad=1.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from runtime.kernels.conv import (
    PhaseLayout,
    check_auto_pad,
    crop_planes,
    phase_layout,
    phase_planes,
    resolve_padding,
    spatial_ints,
)
from runtime.kernels.registry import KernelError, first_output_kernel, kernel


@dataclass(frozen=True)
class _Window:
    """Sliding-window geometry over the spatial axes of an input."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begin: list[int]  # explicit or automatic padding (negative: cropped)
    end: list[int]
    out: list[int]


def _window(
    x: np.ndarray,
    kernel_shape: Sequence[int] | None,
    strides: Sequence[int] | None,
    dilations: Sequence[int] | None,
    pads: Sequence[int] | None,
    auto_pad: str,
    ceil_mode: int,
) -> _Window:
    nd = x.ndim - 2
    if nd < 1:
        raise KernelError(f"pooling needs an input of rank >= 3, got shape {x.shape}")
    if not kernel_shape or len(kernel_shape) != nd:
        raise KernelError(f"kernel_shape {kernel_shape} does not match {nd} spatial axes")
    k = tuple(int(v) for v in kernel_shape)
    s = spatial_ints("strides", strides, nd, 1)
    d = spatial_ints("dilations", dilations, nd, 1)
    sizes = x.shape[2:]
    if ceil_mode and check_auto_pad(auto_pad) == "NOTSET":
        begin, end, out = _ceil_geometry(sizes, k, s, d, pads)
    else:
        begin, end, out = resolve_padding(auto_pad, sizes, k, s, d, pads, crop_same=True)
    return _Window(k, s, d, begin, end, out)


def _ceil_geometry(
    sizes: Sequence[int],
    k: Sequence[int],
    s: Sequence[int],
    d: Sequence[int],
    pads: Sequence[int] | None,
) -> tuple[list[int], list[int], list[int]]:
    nd = len(sizes)
    p = spatial_ints("pads", pads, 2 * nd, 0)
    if min(p) < 0:
        raise KernelError(f"negative pads {list(p)} are not supported")
    begin, end, out = list(p[:nd]), list(p[nd:]), []
    for n, kk, st, dd, b, e in zip(sizes, k, s, d, begin, end, strict=True):
        o = -(-(n + b + e - (kk - 1) * dd - 1) // st) + 1
        if (o - 1) * st >= n + b:  # the last window would start in the end padding
            o -= 1
        out.append(o)
    if min(out) < 1:
        raise KernelError(f"window larger than padded input: output spatial shape {out}")
    return begin, end, out


def _pad_value(dtype: np.dtype) -> float | int:
    """The identity of max for `dtype`: padding that never wins."""
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind in "iu":
        return int(np.iinfo(dtype).min)
    raise KernelError(f"dtype {dtype} is not supported")


def _reduce_windows(
    x: np.ndarray, win: _Window, op: Callable[..., np.ndarray], fill: float | int
) -> tuple[np.ndarray, PhaseLayout, np.ndarray]:
    """Reduce every window with the binary ufunc `op` (max or add), separably.

    Returns (result in plane layout, flat N*C*plane; the layout; the phase planes). Axes are
    reduced last to first; reducing axis j combines, for every phase of the axes before it,
    k_j shifted slices of the previous result, so a k x k window costs 2k long vector ops.
    """
    layout = phase_layout(win.kernel, win.strides, win.dilations, win.out)
    flat = phase_planes(x, win.begin, layout, win.strides, fill)
    length = x.shape[0] * x.shape[1] * layout.plane
    state = flat.reshape(*win.strides, -1)
    for axis in reversed(range(len(win.kernel))):
        k, s, d = win.kernel[axis], win.strides[axis], win.dilations[axis]
        if k == 1:
            state = state[..., 0, :]
            continue
        # the result keeps a tail of `fill` so that the next axis may read past its end too
        reduced = np.empty((*state.shape[:-2], length + layout.tail), x.dtype)
        reduced[..., length:] = fill
        acc = reduced[..., :length]
        for t in range(k):
            offset = t * d // s * layout.q_strides[axis]
            view = state[..., t * d % s, offset : offset + length]
            if t == 0:
                np.copyto(acc, view)
            else:
                op(acc, view, out=acc)
        state = reduced
    return state[:length], layout, flat


@kernel("MaxPool")
def max_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    storage_order: int = 0,
    strides: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    if storage_order not in (0, 1):
        raise KernelError(f"storage_order={storage_order} is not supported (0 or 1)")
    win = _window(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    y, layout, flat = _reduce_windows(x, win, np.maximum, _pad_value(x.dtype))
    first = _first_max_tap(flat, y, layout)
    indices = _flat_indices(first, layout, win, x.shape, storage_order)
    return np.ascontiguousarray(crop_planes(y, x.shape[:2], layout, win.out)), indices


@first_output_kernel("MaxPool")
def max_pool_values(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    storage_order: int = 0,
    strides: list[int] | None = None,
) -> np.ndarray:
    """MaxPool without Indices, which cost more than the maxima themselves."""
    win = _window(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    y, layout, _ = _reduce_windows(x, win, np.maximum, _pad_value(x.dtype))
    return np.ascontiguousarray(crop_planes(y, x.shape[:2], layout, win.out))


def _first_max_tap(flat: np.ndarray, y: np.ndarray, layout: PhaseLayout) -> np.ndarray:
    """Per output (plane layout): the first tap, in row-major window order, equal to the max."""
    n_taps = len(layout.taps)
    # score = K - tap where the tap holds the maximum: the running max of scores is the first
    # such tap, kept in small unsigned ints that are cheap to compare
    code_type = np.uint8 if n_taps < 2**8 else np.uint32
    best = np.zeros(y.shape, code_type)
    score = np.empty(y.shape, code_type)
    equal = np.empty(y.shape, bool)
    for i, (phase, offset) in enumerate(layout.taps):
        np.equal(flat[phase, offset : offset + y.size], y, out=equal)
        np.multiply(equal, code_type(n_taps - i), out=score)
        np.maximum(best, score, out=best)
    return np.subtract(n_taps, best, dtype=np.intp)


def _flat_indices(
    first: np.ndarray,
    layout: PhaseLayout,
    win: _Window,
    in_shape: Sequence[int],
    storage_order: int,
) -> np.ndarray:
    """Flat input index (N, C, *out) of tap `first` (plane layout) of every window."""
    spatial = list(in_shape[2:])
    nd = len(spatial)
    # input strides (in elements) of the spatial axes: row-major, or column-major if asked
    if storage_order == 0:
        steps = [int(np.prod(spatial[i + 1 :])) for i in range(nd)]
    else:
        steps = [int(np.prod(spatial[:i])) for i in range(nd)]
    taps = itertools.product(*(range(k) for k in win.kernel))
    offsets = np.array(
        [
            sum(t * d * st for t, d, st in zip(tap, win.dilations, steps, strict=True))
            for tap in taps
        ],
        np.int64,
    )
    # index = offset of the winning tap + window origin + base of the (image, channel) plane
    base = np.arange(in_shape[0] * in_shape[1], dtype=np.int64) * int(np.prod(spatial))
    base = base.reshape(in_shape[0], in_shape[1], *([1] * nd))
    for axis, (o, s, b, st) in enumerate(zip(win.out, win.strides, win.begin, steps, strict=True)):
        shape = [1] * (nd + 2)
        shape[axis + 2] = o
        base = base + ((np.arange(o) * s - b) * st).reshape(shape)
    # a NaN maximum equals no tap; clipping maps it to the last tap instead of failing
    tap_offsets = np.take(offsets, first, mode="clip")
    return crop_planes(tap_offsets, in_shape[:2], layout, win.out) + base


def _window_counts(win: _Window, sizes: Sequence[int], include_pad: bool) -> np.ndarray:
    """Number of taps of each window that count for the average (a box, so per-axis products)."""
    counts = np.ones((), np.int64)
    for n, k, s, d, b, e, o in zip(
        sizes, win.kernel, win.strides, win.dilations, win.begin, win.end, win.out, strict=True
    ):
        lo, hi = (0, b + n + e) if include_pad else (b, b + n)
        pos = (np.arange(o) * s)[:, None] + np.arange(k) * d
        axis_counts = ((pos >= lo) & (pos < hi)).sum(axis=1)
        counts = np.multiply.outer(counts, axis_counts)
    return counts


def _float_dtype(x: np.ndarray) -> np.dtype:
    if x.dtype.kind != "f":
        raise KernelError(f"dtype {x.dtype} is not supported (float types only)")
    # float16 sums lose too much precision over large windows
    return np.dtype(np.float32) if x.dtype.itemsize < 4 else x.dtype


@kernel("AveragePool")
def average_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    count_include_pad: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    win = _window(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    dtype = _float_dtype(x)
    y, layout, _ = _reduce_windows(x.astype(dtype, copy=False), win, np.add, 0.0)
    counts = _window_counts(win, x.shape[2:], bool(count_include_pad))
    # a window entirely in the padding has no element to average; it yields 0, not NaN
    y = crop_planes(y, x.shape[:2], layout, win.out) / np.maximum(counts, 1).astype(dtype)
    return y.astype(x.dtype, copy=False)


@kernel("LpPool")
def lp_pool(
    x: np.ndarray,
    *,
    auto_pad: str = "NOTSET",
    ceil_mode: int = 0,
    dilations: list[int] | None = None,
    kernel_shape: list[int] | None = None,
    p: int = 2,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    if p <= 0:
        raise KernelError(f"LpPool p={p} is not supported (p must be positive)")
    win = _window(x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    dtype = _float_dtype(x)
    y, layout, _ = _reduce_windows(_lp_power(x.astype(dtype, copy=False), p), win, np.add, 0.0)
    y = np.ascontiguousarray(crop_planes(y, x.shape[:2], layout, win.out))
    return _lp_root(y, p).astype(x.dtype, copy=False)


def _lp_power(x: np.ndarray, p: int) -> np.ndarray:
    if p == 1:
        return np.abs(x)
    if p == 2:
        return np.square(x)
    return np.abs(x) ** p


def _lp_root(y: np.ndarray, p: int) -> np.ndarray:
    if p == 1:
        return y
    if p == 2:
        return np.sqrt(y, out=y)
    return y ** (1.0 / p)


def _spatial_axes(x: np.ndarray) -> tuple[int, ...]:
    if x.ndim < 3:
        raise KernelError(f"global pooling needs an input of rank >= 3, got shape {x.shape}")
    return tuple(range(2, x.ndim))


@kernel("GlobalAveragePool")
def global_average_pool(x: np.ndarray) -> np.ndarray:
    dtype = _float_dtype(x)
    y = np.mean(x, axis=_spatial_axes(x), keepdims=True, dtype=dtype)
    return y.astype(x.dtype, copy=False)


@kernel("GlobalMaxPool")
def global_max_pool(x: np.ndarray) -> np.ndarray:
    return np.max(x, axis=_spatial_axes(x), keepdims=True)
