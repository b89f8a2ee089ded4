"""Reference kernels for ONNX reductions (opset 18+ form: `axes` is an optional int64 input,
with the keepdims and noop_with_empty_axes attributes), ArgMax/ArgMin, TopK and CumSum.

Empty `axes` reduces over every axis, or over none when noop_with_empty_axes=1; reducing over
no axis still applies the op's elementwise part (ReduceSumSquare squares, ReduceL1 takes abs),
which is what onnxruntime and ONNX's reference implementation do. Reductions over an empty set
of values give the identity the spec names: 0 for sums and norms, 1 for ReduceProd, -inf
(or the type's minimum) for ReduceMax and the log reductions, +inf (or the maximum) for
ReduceMin; the spec leaves ReduceMean undefined there and this gives NaN (0 for integers).

float16 is accumulated in float32 and rounded once; integer reductions accumulate in their own
type (and so wrap), as onnxruntime does, except where noted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runtime.kernels.elementwise import array_kernel
from runtime.kernels.registry import Kernel, KernelError

Axes = tuple[int, ...]
Reducer = Callable[[np.ndarray, Axes, bool], np.ndarray]


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _normalize_axes(op: str, axes: np.ndarray, ndim: int) -> Axes:
    if axes.dtype.kind not in "iu":
        raise KernelError(f"{op}: axes must be integers, got {axes.dtype}")
    out = []
    for a in axes.reshape(-1).tolist():
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise KernelError(f"{op}: axis {a} is out of range for a rank-{ndim} input")
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise KernelError(f"{op}: axes {axes.tolist()} repeat an axis")
    return tuple(sorted(out)) if ndim else ()


def _one_axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise KernelError(f"{op}: axis {axis} is out of range for a rank-{ndim} input")
    return axis % ndim


def _reduce_axes(op: str, data: np.ndarray, axes: np.ndarray | None, noop: int) -> Axes:
    if axes is None or axes.size == 0:
        return () if noop else tuple(range(data.ndim))
    return _normalize_axes(op, axes, data.ndim)


def _is_empty_set(data: np.ndarray, axes: Axes) -> bool:
    return any(data.shape[a] == 0 for a in axes)


def _count(data: np.ndarray, axes: Axes) -> int:
    return int(np.prod([data.shape[a] for a in axes], dtype=np.int64))


def _int_wide(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.uint64 if dtype.kind == "u" else np.int64)


def _make_reduce(op: str, reducer: Reducer, kinds: str = "iuf") -> Kernel:
    @array_kernel(op)
    def run(
        data: np.ndarray,
        axes: np.ndarray | None = None,
        *,
        keepdims: int = 1,
        noop_with_empty_axes: int = 0,
    ) -> np.ndarray:
        if data.dtype.kind not in kinds:
            raise KernelError(f"{op}: input dtype {data.dtype} is not supported")
        ax = _reduce_axes(op, data, axes, noop_with_empty_axes)
        return reducer(data, ax, bool(keepdims)).astype(data.dtype, copy=False)

    run.__name__ = run.__qualname__ = op.lower()
    return run


# --------------------------------------------------------------------------------- reducers


def _sum(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    return np.sum(x, axis=ax, keepdims=kd, dtype=_acc_dtype(x.dtype))


def _mean(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    if x.dtype.kind == "f":
        if _is_empty_set(x, ax):  # 0 / 0, without numpy's "Mean of empty slice" warning
            return np.full(_reduced_shape(x.shape, ax, kd), np.nan, x.dtype)
        return np.mean(x, axis=ax, keepdims=kd, dtype=_acc_dtype(x.dtype))
    # Integer mean: sum (in 64 bits, so it cannot wrap) divided by the count, truncated toward
    # zero like onnxruntime's integer division.
    total = np.sum(x, axis=ax, keepdims=kd, dtype=_int_wide(x.dtype))
    n = _count(x, ax)
    if n == 0:
        return np.zeros_like(total)
    q = np.floor_divide(total, n)
    if x.dtype.kind == "i":
        q += (np.remainder(total, n) != 0) & (total < 0)
    return q


def _max(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    if not _is_empty_set(x, ax) and x.size:
        return np.max(x, axis=ax, keepdims=kd)  # NaN propagates, as in the Max op
    return np.max(x, axis=ax, keepdims=kd, initial=_lowest(x.dtype))


def _min(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    if not _is_empty_set(x, ax) and x.size:
        return np.min(x, axis=ax, keepdims=kd)
    return np.min(x, axis=ax, keepdims=kd, initial=_highest(x.dtype))


def _lowest(dtype: np.dtype) -> bool | int | float:
    if dtype == np.bool_:
        return False
    return int(np.iinfo(dtype).min) if dtype.kind in "iu" else -np.inf


def _highest(dtype: np.dtype) -> bool | int | float:
    if dtype == np.bool_:
        return True
    return int(np.iinfo(dtype).max) if dtype.kind in "iu" else np.inf


def _prod(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    return np.prod(x, axis=ax, keepdims=kd, dtype=_acc_dtype(x.dtype))


def _l1(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    return np.sum(np.abs(x), axis=ax, keepdims=kd, dtype=_acc_dtype(x.dtype))


def _sum_square(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    acc = _acc_dtype(x.dtype)
    return np.sum(np.square(x, dtype=acc), axis=ax, keepdims=kd, dtype=acc)


def _l2(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    if x.dtype.kind == "f":
        return np.sqrt(_sum_square(x, ax, kd))
    # integers: exact sum of squares, square root in float64, truncated back by the caller
    wide = _int_wide(x.dtype)
    return np.sqrt(np.sum(np.square(x, dtype=wide), axis=ax, keepdims=kd, dtype=wide))


def _log_sum(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    total = _sum(x, ax, kd) if x.dtype.kind == "f" else np.sum(x, ax, np.float64, keepdims=kd)
    return np.log(total)


def _log_sum_exp(x: np.ndarray, ax: Axes, kd: bool) -> np.ndarray:
    # Integers are computed exactly in float64 and truncated toward zero; onnxruntime instead
    # accumulates the exp terms in the integer type, so its results can be lower.
    work = _acc_dtype(x.dtype) if x.dtype.kind == "f" else np.dtype(np.float64)
    if _is_empty_set(x, ax) or x.size == 0:
        return np.full(_reduced_shape(x.shape, ax, kd), _lowest(x.dtype), dtype=work)
    # log(sum(exp(x - m))) + m with m the max: no overflow. An infinite or NaN max is replaced
    # by 0 so that inf - inf does not turn an all-(-inf) or +inf slice into NaN.
    m = np.asarray(np.max(x, axis=ax, keepdims=True), dtype=work)
    m[~np.isfinite(m)] = 0
    shifted = np.subtract(x, m, dtype=work, out=np.empty(x.shape, work))  # an array if 0-d
    np.exp(shifted, out=shifted)
    out = np.log(np.sum(shifted, axis=ax, keepdims=True))
    out += m
    return out if kd else np.squeeze(out, axis=ax)


def _reduced_shape(shape: tuple[int, ...], ax: Axes, kd: bool) -> tuple[int, ...]:
    if kd:
        return tuple(1 if i in ax else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in ax)


reduce_sum = _make_reduce("ReduceSum", _sum)
reduce_mean = _make_reduce("ReduceMean", _mean)
reduce_max = _make_reduce("ReduceMax", _max, kinds="iufb")
reduce_min = _make_reduce("ReduceMin", _min, kinds="iufb")
reduce_prod = _make_reduce("ReduceProd", _prod)
reduce_l1 = _make_reduce("ReduceL1", _l1)
reduce_l2 = _make_reduce("ReduceL2", _l2)
reduce_sum_square = _make_reduce("ReduceSumSquare", _sum_square)
reduce_log_sum = _make_reduce("ReduceLogSum", _log_sum)
reduce_log_sum_exp = _make_reduce("ReduceLogSumExp", _log_sum_exp)


# ----------------------------------------------------------------------------- ArgMax, ArgMin


def _arg_reduce(
    op: str,
    fn: Callable[..., np.ndarray],
    data: np.ndarray,
    axis: int,
    keepdims: int,
    select_last_index: int,
) -> np.ndarray:
    if data.dtype.kind not in "iuf":
        raise KernelError(f"{op}: input dtype {data.dtype} is not supported")
    axis = _one_axis(op, axis, data.ndim)
    n = data.shape[axis]
    if n == 0:
        raise KernelError(f"{op}: cannot reduce the empty axis {axis}")
    if select_last_index:
        # the first hit in the reversed axis is the last one in the original order
        idx = (n - 1) - fn(np.flip(data, axis), axis=axis, keepdims=bool(keepdims))
    else:
        idx = fn(data, axis=axis, keepdims=bool(keepdims))
    return idx.astype(np.int64, copy=False)


@array_kernel("ArgMax")
def arg_max(
    data: np.ndarray, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
) -> np.ndarray:
    return _arg_reduce("ArgMax", np.argmax, data, axis, keepdims, select_last_index)


@array_kernel("ArgMin")
def arg_min(
    data: np.ndarray, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
) -> np.ndarray:
    return _arg_reduce("ArgMin", np.argmin, data, axis, keepdims, select_last_index)


# ------------------------------------------------------------------------------ TopK, CumSum


def _scalar_int(op: str, name: str, value: np.ndarray) -> int:
    value = np.asarray(value)
    if value.size != 1 or value.dtype.kind not in "iu":
        raise KernelError(f"{op}: {name} must be a single integer, got {value!r}")
    return int(value.reshape(-1)[0])


def _sorted_order(rows: np.ndarray, largest: int) -> np.ndarray:
    """Per-row argsort, ties in increasing index order (ONNX's tie-break), descending for
    `largest`: a stable sort of the reversed rows, read backwards, keeps equal values in
    increasing original index too (and needs no negation, which unsigned types lack)."""
    if not largest:
        return np.argsort(rows, axis=1, kind="stable")
    n = rows.shape[1]
    return (n - 1) - np.argsort(rows[:, ::-1], axis=1, kind="stable")[:, ::-1]


def _top_k_rows(rows: np.ndarray, k: int, largest: int) -> np.ndarray:
    """Indices of the top k of each row of a 2-D array, in output order."""
    n = rows.shape[1]
    nan = rows.dtype.kind == "f" and np.isnan(rows).any()
    if 4 * k >= n or nan:
        # NaN breaks the == test below; numpy sorts it above every number, as onnxruntime
        # does for largest=1.
        return _sorted_order(rows, largest)[:, :k]
    # Select with a linear-time partition, then sort only the k winners (by index first, so
    # the stable sort by value breaks ties by index). The partition picks arbitrary copies of
    # a tied k-th value; rows with more ties than places are redone with a full sort.
    pos = n - k if largest else k - 1
    part = np.argpartition(rows, pos, axis=1)
    picked = part[:, n - k :] if largest else part[:, :k]
    kth = np.take_along_axis(rows, part[:, pos : pos + 1], axis=1)
    in_or_tied = rows >= kth if largest else rows <= kth
    ambiguous = np.count_nonzero(in_or_tied, axis=1) > k
    if ambiguous.any():
        picked[ambiguous] = _sorted_order(rows[ambiguous], largest)[:, :k]
    picked.sort(axis=1)
    order = _sorted_order(np.take_along_axis(rows, picked, axis=1), largest)
    return np.take_along_axis(picked, order, axis=1)


@array_kernel("TopK")
def top_k(
    x: np.ndarray, k: np.ndarray, *, axis: int = -1, largest: int = 1, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "iuf":
        raise KernelError(f"TopK: input dtype {x.dtype} is not supported")
    axis = _one_axis("TopK", axis, x.ndim)
    count = _scalar_int("TopK", "K", k)
    n = x.shape[axis]
    if not 0 <= count <= n:
        raise KernelError(f"TopK: K={count} is outside [0, {n}] for axis {axis}")
    # Always sorted: `sorted=0` allows any order, so the sorted one is valid too.
    moved = np.moveaxis(x, axis, -1)
    rows = moved.reshape(-1, n)
    if count == 0 or rows.shape[0] == 0:
        picked = np.zeros((rows.shape[0], count), np.int64)
    else:
        picked = _top_k_rows(rows, count, largest).astype(np.int64, copy=False)
    values = np.take_along_axis(rows, picked, axis=1)
    shape = (*moved.shape[:-1], count)
    return (
        np.moveaxis(values.reshape(shape), -1, axis),
        np.moveaxis(picked.reshape(shape), -1, axis),
    )


def _cum_sum_steps(src: np.ndarray, out: np.ndarray, exclusive: int, reverse: int) -> None:
    """Cumulative sum along axis 0, one vectorized add per step: with a wide enough slice per
    step this beats np.cumsum, whose accumulate loop is slow on non-contiguous axes (up to 20x
    on NCHW maps)."""
    n = src.shape[0]
    steps = range(n - 1, -1, -1) if reverse else range(n)
    prev = -1
    for i in steps:
        if prev < 0:
            out[i] = 0 if exclusive else src[i]
        else:
            np.add(out[prev], src[prev] if exclusive else src[i], out=out[i])
        prev = i


@array_kernel("CumSum")
def cum_sum(x: np.ndarray, axis: np.ndarray, *, exclusive: int = 0, reverse: int = 0) -> np.ndarray:
    if x.dtype.kind not in "iuf":
        raise KernelError(f"CumSum: input dtype {x.dtype} is not supported")
    ax = _one_axis("CumSum", _scalar_int("CumSum", "axis", axis), x.ndim)
    acc = _acc_dtype(x.dtype)  # explicit: numpy would widen small integer types to int64
    n = x.shape[ax]
    if n and x.size // n >= 200:  # measured break-even of the two paths
        src = np.moveaxis(x, ax, 0)
        out = np.empty(src.shape, acc)
        _cum_sum_steps(src, out, exclusive, reverse)
        return np.moveaxis(out, 0, ax).astype(x.dtype)  # contiguous again
    src = np.flip(x, ax) if reverse else x
    out = np.cumsum(src, axis=ax, dtype=acc)
    if exclusive:
        shifted = np.zeros_like(out)
        dst = (slice(None),) * ax + (slice(1, None),)
        head = (slice(None),) * ax + (slice(0, -1),)
        shifted[dst] = out[head]
        out = shifted
    if reverse:
        out = np.flip(out, ax)
    return out.astype(x.dtype)  # also turns a flipped view into a fresh contiguous array
