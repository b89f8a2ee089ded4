"""Reference kernels for the tensor / data-movement ONNX ops, with ONNX opset-21 semantics.

All kernels follow the calling convention of `runtime.kernels.registry`: inputs positional in
schema order, attributes keyword-only with the ONNX defaults. Shape-like inputs (Reshape's shape,
Slice's starts, Pad's pads, ...) are read with `.tolist()` so bound arithmetic is done on exact
Python ints (INT64_MAX/INT64_MIN bounds must not overflow).

Pure data-movement ops that ONNX lets alias their input (Reshape, Flatten, Squeeze, Unsqueeze,
Identity, Transpose, Slice, Split) return numpy views: the interpreter never mutates a kernel's
inputs in place, so aliasing is safe and saves a copy per op.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from runtime.kernels.registry import KernelError, kernel

# ONNX TensorProto.DataType -> numpy dtype, for the types numpy can represent natively.
_ONNX_TO_NUMPY: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int8),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int16),
    6: np.dtype(np.int32),
    7: np.dtype(np.int64),
    9: np.dtype(np.bool_),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    12: np.dtype(np.uint32),
    13: np.dtype(np.uint64),
    14: np.dtype(np.complex64),
    15: np.dtype(np.complex128),
}
_UNSUPPORTED_TYPES: dict[int, str] = {
    8: "string",
    16: "bfloat16",
    17: "float8e4m3fn",
    18: "float8e4m3fnuz",
    19: "float8e5m2",
    20: "float8e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4e2m1",
}
# The element types numpy computes with natively; ml_dtypes' bfloat16/float8/int4 arrays (which
# onnx hands out) are excluded even when their dtype.kind claims "f".
_PLAIN_DTYPES = frozenset(dt for dt in _ONNX_TO_NUMPY.values() if dt.kind != "c")

# numpy converts float16 with a scalar loop; a 256 KiB lookup over all 2**16 bit patterns is
# about twice as fast for the common float16 -> float32 cast (exact, NaN payloads included).
_F16_TO_F32 = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)

_SCATTER_UFUNCS: dict[str, np.ufunc] = {
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


# --------------------------------------------------------------------------------- helpers
def _axis(axis: int, rank: int, op: str) -> int:
    """Normalize a possibly negative axis into [0, rank)."""
    if not -rank <= axis < rank:
        raise KernelError(f"{op}: axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _axes(axes: Sequence[int], rank: int, op: str) -> list[int]:
    """Normalize a list of axes; ONNX forbids repeats."""
    out = [_axis(int(a), rank, op) for a in axes]
    if len(set(out)) != len(out):
        raise KernelError(f"{op}: repeated axis in {list(axes)}")
    return out


def _ints(tensor: np.ndarray) -> list[int]:
    """A shape-like 0-D/1-D int tensor as exact Python ints."""
    return [int(v) for v in np.asarray(tensor).reshape(-1).tolist()]


def _scalar(tensor: np.ndarray, op: str, name: str) -> np.generic:
    arr = np.asarray(tensor)
    if arr.size != 1:
        raise KernelError(f"{op}: {name} must hold one element, got shape {arr.shape}")
    return arr.reshape(-1)[0]


def _onnx_dtype(to: int, op: str) -> np.dtype:
    if to in _UNSUPPORTED_TYPES:
        raise KernelError(f"{op}: element type {_UNSUPPORTED_TYPES[to]} is not supported")
    if to not in _ONNX_TO_NUMPY:
        raise KernelError(f"{op}: unknown ONNX element type {to}")
    return _ONNX_TO_NUMPY[to]


def _normalized_indices(indices: np.ndarray, dim: int, op: str) -> np.ndarray:
    """Indices in [-dim, dim) mapped to [0, dim); anything else is an error."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise KernelError(f"{op}: indices must be integers, got {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size == 0:
        return idx
    lo, hi = int(idx.min()), int(idx.max())
    if lo < -dim or hi >= dim:
        raise KernelError(f"{op}: index out of range [{-dim}, {dim - 1}] (got {lo}..{hi})")
    # Skip the extra pass in the common all-non-negative case.
    return np.where(idx < 0, idx + dim, idx) if lo < 0 else idx


# ------------------------------------------------------------------ joining and splitting
@kernel("Concat")
def concat(*inputs: np.ndarray, axis: int) -> np.ndarray:
    if not inputs:
        raise KernelError("Concat: needs at least one input")
    axis = _axis(axis, inputs[0].ndim, "Concat")
    try:
        return np.concatenate(inputs, axis=axis)
    except ValueError as e:
        shapes = [x.shape for x in inputs]
        raise KernelError(f"Concat: cannot concatenate {shapes} on axis {axis}: {e}") from e


def _split_sizes(dim: int, split: np.ndarray | None, num_outputs: int | None) -> list[int]:
    if split is not None:
        if num_outputs is not None:
            raise KernelError("Split: give either the split input or num_outputs, not both")
        sizes = _ints(split)
        if sum(sizes) != dim or min(sizes) < 0:
            raise KernelError(f"Split: sizes {sizes} do not partition a dimension of {dim}")
        return sizes
    if num_outputs is None:
        raise KernelError(
            "Split: needs the split input or the num_outputs attribute "
            "(the kernel cannot see how many outputs the node has)"
        )
    if num_outputs < 1:
        raise KernelError(f"Split: num_outputs must be >= 1, got {num_outputs}")
    chunk = -(-dim // num_outputs)
    last = dim - chunk * (num_outputs - 1)
    # The spec only allows the *last* chunk to be short (possibly empty).
    if last < 0:
        raise KernelError(f"Split: a dimension of {dim} cannot be split into {num_outputs} parts")
    return [chunk] * (num_outputs - 1) + [last]


@kernel("Split")
def split(
    input: np.ndarray,
    split: np.ndarray | None = None,
    *,
    axis: int = 0,
    num_outputs: int | None = None,
) -> tuple[np.ndarray, ...]:
    axis = _axis(axis, input.ndim, "Split")
    # Some exporters emit an empty split tensor to mean "absent".
    if split is not None and np.asarray(split).size == 0:
        split = None
    sizes = _split_sizes(input.shape[axis], split, num_outputs)
    index: list[slice] = [slice(None)] * input.ndim
    parts = []
    start = 0
    for size in sizes:
        index[axis] = slice(start, start + size)
        parts.append(input[tuple(index)])
        start += size
    return tuple(parts)


# ---------------------------------------------------------------------------------- Slice
def _slice_for(start: int, end: int, step: int, dim: int) -> slice:
    """One axis of ONNX Slice: negative bounds count from the back, then clamp per spec."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    # end == -1 means "through index 0"; Python would read -1 as the last element.
    return slice(start, None if end < 0 else end, step)


@kernel("Slice")
def slice_(
    data: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    axes: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    start_list, end_list = _ints(starts), _ints(ends)
    n = len(start_list)
    axis_list = list(range(n)) if axes is None else _axes(_ints(axes), data.ndim, "Slice")
    step_list = [1] * n if steps is None else _ints(steps)
    if not len(end_list) == len(axis_list) == len(step_list) == n:
        raise KernelError("Slice: starts, ends, axes and steps must have the same length")
    if 0 in step_list:
        raise KernelError("Slice: steps must be non-zero")
    index: list[slice] = [slice(None)] * data.ndim
    for start, end, axis, step in zip(start_list, end_list, axis_list, step_list, strict=True):
        index[axis] = _slice_for(start, end, step, data.shape[axis])
    return data[tuple(index)]


# ------------------------------------------------------------------------- shape changes
@kernel("Reshape")
def reshape(data: np.ndarray, shape: np.ndarray, *, allowzero: int = 0) -> np.ndarray:
    dims = _ints(shape)
    if not allowzero:
        if len(dims) > data.ndim and 0 in dims[data.ndim :]:
            raise KernelError(f"Reshape: 0 in {dims} copies a dimension {data.shape} lacks")
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise KernelError(f"Reshape: invalid target shape {_ints(shape)}")
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or data.size % known:
            raise KernelError(f"Reshape: cannot infer -1 reshaping {data.shape} to {_ints(shape)}")
        dims[dims.index(-1)] = data.size // known
    if math.prod(dims) != data.size:
        raise KernelError(
            f"Reshape: cannot reshape {data.shape} ({data.size} elements) to {_ints(shape)}"
        )
    return data.reshape(dims)


@kernel("Transpose")
def transpose(data: np.ndarray, *, perm: list[int] | None = None) -> np.ndarray:
    if perm is None:
        return data.transpose()
    if sorted(perm) != list(range(data.ndim)):
        raise KernelError(f"Transpose: perm {perm} is not a permutation of rank {data.ndim}")
    return data.transpose(perm)


@kernel("Flatten")
def flatten(input: np.ndarray, *, axis: int = 1) -> np.ndarray:
    rank = input.ndim
    if not -rank <= axis <= rank:
        raise KernelError(f"Flatten: axis {axis} is out of range for rank {rank}")
    if axis < 0:
        axis += rank
    # Explicit sizes (not -1) so zero-size tensors reshape unambiguously.
    outer = math.prod(input.shape[:axis])
    return input.reshape(outer, math.prod(input.shape[axis:]))


@kernel("Squeeze")
def squeeze(data: np.ndarray, axes: np.ndarray | None = None) -> np.ndarray:
    # An empty axes tensor means "not provided" (onnxruntime agrees): drop every 1.
    if axes is None or np.asarray(axes).size == 0:
        return np.squeeze(data)
    axis_list = _axes(_ints(axes), data.ndim, "Squeeze")
    bad = [a for a in axis_list if data.shape[a] != 1]
    if bad:
        raise KernelError(f"Squeeze: axes {bad} of shape {data.shape} do not have size 1")
    return np.squeeze(data, axis=tuple(axis_list))


@kernel("Unsqueeze")
def unsqueeze(data: np.ndarray, axes: np.ndarray) -> np.ndarray:
    axis_list = _ints(axes)
    rank = data.ndim + len(axis_list)
    # expand_dims (unlike reshape) stays a view even of a non-contiguous input.
    return np.expand_dims(data, tuple(_axes(axis_list, rank, "Unsqueeze")))


@kernel("Expand")
def expand(input: np.ndarray, shape: np.ndarray) -> np.ndarray:
    try:
        out_shape = np.broadcast_shapes(input.shape, tuple(_ints(shape)))
    except ValueError as e:
        raise KernelError(f"Expand: {input.shape} does not broadcast with {_ints(shape)}") from e
    # Materialized: a zero-stride read-only view would surprise consumers that hand the
    # buffer on (e.g. to a device) and it is what onnxruntime does too.
    return np.array(np.broadcast_to(input, out_shape))


@kernel("Tile")
def tile(input: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    reps = _ints(repeats)
    if len(reps) != input.ndim or min(reps, default=0) < 0:
        raise KernelError(f"Tile: repeats {reps} invalid for input of shape {input.shape}")
    return np.tile(input, reps)


# ------------------------------------------------------------------------------------ Pad
def _pad_widths(
    rank: int, pads: np.ndarray, axes: np.ndarray | None
) -> tuple[list[int], list[int]]:
    pad_list = _ints(pads)
    axis_list = list(range(rank)) if axes is None else _axes(_ints(axes), rank, "Pad")
    n = len(axis_list)
    if len(pad_list) != 2 * n:
        raise KernelError(f"Pad: {len(pad_list)} pads given for {n} axes (need {2 * n})")
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axis_list):
        begin[axis], end[axis] = pad_list[i], pad_list[n + i]
    return begin, end


def _crop(data: np.ndarray, begin: list[int], end: list[int]) -> np.ndarray:
    """Apply the negative pads (cropping); onnxruntime crops before padding."""
    index = []
    for dim, b, e in zip(data.shape, begin, end, strict=True):
        lo, hi = max(-b, 0), dim - max(-e, 0)
        if hi < lo:
            raise KernelError(f"Pad: pads ({b}, {e}) crop more than a dimension of {dim}")
        index.append(slice(lo, hi))
    return data[tuple(index)]


def _pad_constant(data: np.ndarray, width: list[tuple[int, int]], value: object) -> np.ndarray:
    # Allocate-and-fill beats np.pad's generic per-axis code path.
    shape = [d + b + e for d, (b, e) in zip(data.shape, width, strict=True)]
    out = np.full(shape, value, dtype=data.dtype)
    out[tuple(slice(b, b + d) for d, (b, _) in zip(data.shape, width, strict=True))] = data
    return out


@kernel("Pad")
def pad(
    data: np.ndarray,
    pads: np.ndarray,
    constant_value: np.ndarray | None = None,
    axes: np.ndarray | None = None,
    *,
    mode: str = "constant",
) -> np.ndarray:
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise KernelError(f"Pad: mode {mode!r} is not supported")
    begin, end = _pad_widths(data.ndim, pads, axes)
    data = _crop(data, begin, end)
    width = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=True)]
    if not any(b or e for b, e in width):
        return data
    if mode == "constant":
        no_value = constant_value is None or np.asarray(constant_value).size == 0
        value = 0 if no_value else _scalar(constant_value, "Pad", "constant_value")
        return _pad_constant(data, width, value)
    empty = [d for d, (b, e) in zip(data.shape, width, strict=True) if d == 0 and (b or e)]
    if empty:
        raise KernelError(f"Pad: mode {mode!r} cannot pad an empty dimension")
    return np.pad(data, width, mode=mode)


# ----------------------------------------------------------------------- gather / scatter
@kernel("Gather")
def gather(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    axis = _axis(axis, data.ndim, "Gather")
    idx = _normalized_indices(indices, data.shape[axis], "Gather")
    return np.take(data, idx, axis=axis)


def _element_index(
    data: np.ndarray, indices: np.ndarray, axis: int, op: str
) -> tuple[np.ndarray, ...]:
    """Fancy index for GatherElements/ScatterElements: indices may be smaller than data on
    the non-axis dimensions, so use open grids over the indices' shape (not take_along_axis,
    which would broadcast them against data)."""
    if indices.ndim != data.ndim:
        raise KernelError(f"{op}: indices rank {indices.ndim} != data rank {data.ndim}")
    axis = _axis(axis, data.ndim, op)
    too_big = [i for i in range(data.ndim) if i != axis and indices.shape[i] > data.shape[i]]
    if too_big:
        raise KernelError(f"{op}: indices shape {indices.shape} exceeds data {data.shape}")
    grid = list(np.ix_(*[np.arange(n) for n in indices.shape]))
    grid[axis] = _normalized_indices(indices, data.shape[axis], op)
    return tuple(grid)


@kernel("GatherElements")
def gather_elements(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    return data[_element_index(data, indices, axis, "GatherElements")]


def _nd_index(data: np.ndarray, indices: np.ndarray, batch_dims: int, op: str) -> list[np.ndarray]:
    """Columns of the last indices axis, each normalized against its data dimension."""
    k = indices.shape[-1] if indices.ndim else 0
    if indices.ndim < 1 or not 1 <= k <= data.ndim - batch_dims:
        raise KernelError(f"{op}: indices shape {indices.shape} invalid for data {data.shape}")
    return [_normalized_indices(indices[..., j], data.shape[batch_dims + j], op) for j in range(k)]


@kernel("GatherND")
def gather_nd(data: np.ndarray, indices: np.ndarray, *, batch_dims: int = 0) -> np.ndarray:
    b = batch_dims
    if b < 0 or b >= min(data.ndim, indices.ndim) or data.shape[:b] != indices.shape[:b]:
        raise KernelError(
            f"GatherND: batch_dims {b} invalid for data {data.shape}, indices {indices.shape}"
        )
    columns = _nd_index(data, indices, b, "GatherND")
    k = len(columns)
    n_batch = math.prod(data.shape[:b])
    n_rows = math.prod(indices.shape[b:-1])
    # Fold the batch dims into one so a single fancy index handles any batch_dims.
    flat = data.reshape((n_batch, *data.shape[b:]))
    cols = [c.reshape(n_batch, n_rows) for c in columns]
    batch = np.arange(n_batch).reshape(n_batch, 1)
    out = flat[(batch, *cols)]
    return out.reshape(data.shape[:b] + indices.shape[b:-1] + data.shape[b + k :])


def _scatter(
    out: np.ndarray, index: tuple[np.ndarray, ...], updates: np.ndarray, reduction: str, op: str
) -> None:
    """Write `updates` into `out` (in place) at `index`, combining with `reduction`."""
    if reduction == "none":
        # Duplicate indices are undefined behaviour in ONNX; numpy keeps the last write.
        out[index] = updates
    elif reduction in _SCATTER_UFUNCS:
        _SCATTER_UFUNCS[reduction].at(out, index, updates)
    else:
        raise KernelError(f"{op}: reduction {reduction!r} is not supported")


@kernel("ScatterElements")
def scatter_elements(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    *,
    axis: int = 0,
    reduction: str = "none",
) -> np.ndarray:
    if updates.shape != indices.shape:
        raise KernelError(
            f"ScatterElements: updates {updates.shape} must match indices {indices.shape}"
        )
    index = _element_index(data, indices, axis, "ScatterElements")
    out = data.copy()
    _scatter(out, index, updates, reduction, "ScatterElements")
    return out


@kernel("ScatterND")
def scatter_nd(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *, reduction: str = "none"
) -> np.ndarray:
    columns = _nd_index(data, indices, 0, "ScatterND")
    expected = indices.shape[:-1] + data.shape[len(columns) :]
    if updates.shape != expected:
        raise KernelError(f"ScatterND: updates shape {updates.shape}, expected {expected}")
    out = data.copy()
    _scatter(out, tuple(columns), updates, reduction, "ScatterND")
    return out


# ----------------------------------------------------------------------- shape-like values
@kernel("Shape")
def shape(data: np.ndarray, *, start: int = 0, end: int | None = None) -> np.ndarray:
    # Python slicing clamps exactly as the spec asks (negatives from the back, then [0, r]).
    return np.array(data.shape[start:end], dtype=np.int64)


@kernel("Size")
def size(data: np.ndarray) -> np.ndarray:
    return np.array(data.size, dtype=np.int64)


@kernel("ConstantOfShape")
def constant_of_shape(input: np.ndarray, *, value: np.ndarray | None = None) -> np.ndarray:
    fill = np.zeros(1, dtype=np.float32) if value is None else np.asarray(value)
    dims = _ints(input)
    if min(dims, default=0) < 0:
        raise KernelError(f"ConstantOfShape: negative dimension in {dims}")
    return np.full(dims, _scalar(fill, "ConstantOfShape", "value"), dtype=fill.dtype)


# ------------------------------------------------------------------------------ type casts
def _cast(x: np.ndarray, dtype: np.dtype, op: str) -> np.ndarray:
    if x.dtype not in _PLAIN_DTYPES:
        raise KernelError(f"{op}: input element type {x.dtype} is not supported")
    if dtype not in _PLAIN_DTYPES:
        raise KernelError(f"{op}: target element type {dtype} is not supported")
    if x.dtype == np.float16 and dtype == np.float32:
        return np.take(_F16_TO_F32, x.view(np.uint16))
    # Float -> int truncates toward zero (astype does); NaN/inf/overflow are undefined in
    # ONNX, so silence numpy's "invalid value" warning instead of failing.
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype, copy=False)


@kernel("Cast")
def cast(input: np.ndarray, *, to: int, saturate: int = 1) -> np.ndarray:
    # `saturate` only affects float8 targets, which are rejected by _onnx_dtype.
    del saturate
    return _cast(input, _onnx_dtype(to, "Cast"), "Cast")


@kernel("CastLike")
def cast_like(input: np.ndarray, target_type: np.ndarray, *, saturate: int = 1) -> np.ndarray:
    del saturate
    return _cast(input, target_type.dtype, "CastLike")


@kernel("Identity")
def identity(input: np.ndarray) -> np.ndarray:
    return input


@kernel("Dropout")
def dropout(
    data: np.ndarray,
    ratio: np.ndarray | None = None,
    training_mode: np.ndarray | None = None,
    *,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    del seed
    training = training_mode is not None and bool(
        _scalar(training_mode, "Dropout", "training_mode")
    )
    # Training with ratio 0 is deterministic (output = input), as the spec and ORT agree.
    drop = 0.5 if ratio is None else float(_scalar(ratio, "Dropout", "ratio"))
    if training and drop != 0.0:
        raise KernelError("Dropout: training_mode=true (random dropout) is not supported")
    # A real array (not a zero-stride broadcast) for the same reason as Expand; bool is cheap.
    return data, np.ones(data.shape, dtype=np.bool_)


# ----------------------------------------------------------------- space <-> depth moves
def _check_nchw(input: np.ndarray, op: str) -> None:
    if input.ndim != 4:
        raise KernelError(f"{op}: input must be 4-D NCHW, got shape {input.shape}")


@kernel("DepthToSpace")
def depth_to_space(input: np.ndarray, *, blocksize: int, mode: str = "DCR") -> np.ndarray:
    _check_nchw(input, "DepthToSpace")
    n, c, h, w = input.shape
    bs = blocksize
    if bs < 1 or c % (bs * bs):
        raise KernelError(f"DepthToSpace: channels {c} not divisible by blocksize^2 ({bs}^2)")
    if mode == "DCR":
        tmp = input.reshape(n, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        tmp = input.reshape(n, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise KernelError(f"DepthToSpace: mode {mode!r} is not supported")
    return tmp.reshape(n, c // (bs * bs), h * bs, w * bs)


@kernel("SpaceToDepth")
def space_to_depth(input: np.ndarray, *, blocksize: int) -> np.ndarray:
    _check_nchw(input, "SpaceToDepth")
    n, c, h, w = input.shape
    bs = blocksize
    if bs < 1 or h % bs or w % bs:
        raise KernelError(f"SpaceToDepth: H, W ({h}, {w}) not divisible by blocksize {bs}")
    tmp = input.reshape(n, c, h // bs, bs, w // bs, bs).transpose(0, 3, 5, 1, 2, 4)
    return tmp.reshape(n, c * bs * bs, h // bs, w // bs)


# ------------------------------------------------------------------------------ generators
@kernel("Range")
def range_(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    dtype = np.asarray(start).dtype
    s, lim, d = (
        _scalar(v, "Range", name)
        for v, name in ((start, "start"), (limit, "limit"), (delta, "delta"))
    )
    if d == 0:
        raise KernelError("Range: delta must be non-zero")
    if dtype.kind in "iu":
        # Exact integer ceil-division: float math loses precision on large int64.
        n = max(-(-(int(lim) - int(s)) // int(d)), 0)
    else:
        n = max(math.ceil((float(lim) - float(s)) / float(d)), 0)
    # The spec defines output[i] = start + i * delta (no accumulation), in the input type.
    return (np.arange(n, dtype=dtype) * d + s).astype(dtype, copy=False)


@kernel("EyeLike")
def eye_like(input: np.ndarray, *, dtype: int | None = None, k: int = 0) -> np.ndarray:
    if input.ndim != 2:
        raise KernelError(f"EyeLike: input must be 2-D, got shape {input.shape}")
    out_dtype = input.dtype if dtype is None else _onnx_dtype(dtype, "EyeLike")
    return np.eye(input.shape[0], input.shape[1], k=k, dtype=out_dtype)


@kernel("OneHot")
def one_hot(
    indices: np.ndarray, depth: np.ndarray, values: np.ndarray, *, axis: int = -1
) -> np.ndarray:
    n = int(_scalar(depth, "OneHot", "depth"))
    if n < 1:
        raise KernelError(f"OneHot: depth must be positive, got {n}")
    vals = np.asarray(values).reshape(-1)
    if vals.size != 2:
        raise KernelError(f"OneHot: values must hold [off, on], got {vals.size} elements")
    rank = indices.ndim + 1
    if not -rank <= axis < rank:
        raise KernelError(f"OneHot: axis {axis} is out of range for output rank {rank}")
    # Non-integer indices truncate toward zero; negatives count from depth; indices outside
    # [-depth, depth) give an all-off row (ORT behaviour, as the spec says).
    idx = indices.astype(np.int64, copy=False)
    idx = np.where(idx < 0, idx + n, idx)
    hot = np.expand_dims(idx, -1) == np.arange(n)
    out = np.where(hot, vals[1], vals[0])
    return np.moveaxis(out, -1, axis if axis >= 0 else axis + rank)


# ------------------------------------------------------------------------------ selections
@kernel("NonZero")
def non_zero(X: np.ndarray) -> np.ndarray:
    # A scalar is treated as a 1-element vector (ORT gives shape (1, nnz)).
    x = X.reshape(1) if X.ndim == 0 else X
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


@kernel("Trilu")
def trilu(input: np.ndarray, k: np.ndarray | None = None, *, upper: int = 1) -> np.ndarray:
    if input.ndim < 2:
        raise KernelError(f"Trilu: input must have rank >= 2, got shape {input.shape}")
    diag = 0 if k is None else int(_scalar(k, "Trilu", "k"))
    return np.triu(input, diag) if upper else np.tril(input, diag)


@kernel("Compress")
def compress(input: np.ndarray, condition: np.ndarray, *, axis: int | None = None) -> np.ndarray:
    cond = np.asarray(condition).reshape(-1).astype(bool, copy=False)
    data = input.reshape(-1) if axis is None else input
    ax = 0 if axis is None else _axis(axis, input.ndim, "Compress")
    # A condition longer than the axis is truncated; a shorter one drops the tail.
    return np.compress(cond[: data.shape[ax]], data, axis=ax)


@kernel("Einsum")
def einsum(*Inputs: np.ndarray, equation: str) -> np.ndarray:
    eq = equation.replace(" ", "")
    odd = [x.dtype for x in Inputs if x.dtype not in _PLAIN_DTYPES]
    if odd:
        raise KernelError(f"Einsum: element type {odd[0]} is not supported")
    try:
        # Path optimisation lets numpy route contractions through BLAS (tensordot).
        out = np.einsum(eq, *Inputs, optimize=len(Inputs) > 1)
    except ValueError as e:
        raise KernelError(f"Einsum: {equation!r}: {e}") from e
    return np.asarray(out)


@kernel("Unique")
def unique(
    X: np.ndarray, *, axis: int | None = None, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ax = None if axis is None else _axis(axis, X.ndim, "Unique")
    y, first, inverse, counts = np.unique(
        X, return_index=True, return_inverse=True, return_counts=True, axis=ax
    )
    inverse = inverse.reshape(-1)
    if not sorted:
        # Reorder the sorted uniques by first occurrence and remap the inverse.
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        y = np.take(y, order, axis=0 if ax is None else ax)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    as_i64 = (np.asarray(a, dtype=np.int64) for a in (first, inverse, counts))
    return (y, *as_i64)


@kernel("ReverseSequence")
def reverse_sequence(
    input: np.ndarray, sequence_lens: np.ndarray, *, batch_axis: int = 1, time_axis: int = 0
) -> np.ndarray:
    if {batch_axis, time_axis} != {0, 1} or input.ndim < 2:
        raise KernelError(
            f"ReverseSequence: batch_axis/time_axis ({batch_axis}, {time_axis}) must be 0 and 1"
        )
    steps, batch = input.shape[time_axis], input.shape[batch_axis]
    lens = np.asarray(sequence_lens, dtype=np.int64).reshape(-1)
    if lens.size != batch or (lens.size and (lens.min() < 0 or lens.max() > steps)):
        raise KernelError(f"ReverseSequence: bad sequence_lens {lens} for shape {input.shape}")
    t = np.arange(steps)[:, None]
    src = np.where(t < lens, lens - 1 - t, t)  # (time, batch): source step of each output
    b = np.arange(batch)[None, :]
    return input[src, b] if time_axis == 0 else input[b.T, src.T]
