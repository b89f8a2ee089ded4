"""Casts, generators and the remaining tensor kernels of runtime.kernels.tensor against
onnxruntime (opset 21): Cast, CastLike, Range, EyeLike, OneHot, Trilu, Einsum, Unique and
ReverseSequence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import TensorProto

from runtime.kernels.registry import KernelError
from runtime.kernels.tensor import (
    cast,
    cast_like,
    einsum,
    eye_like,
    one_hot,
    range_,
    reverse_sequence,
    trilu,
    unique,
)
from tests.helpers.compare import check_against_ort, random_data

NUMERIC = [
    np.float32,
    np.float16,
    np.float64,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.bool_,
]
ONNX_TYPE = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.uint16): TensorProto.UINT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.uint32): TensorProto.UINT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.uint64): TensorProto.UINT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


# ------------------------------------------------------------------------------------- Cast
def cast_source(src: Any, dst: Any) -> np.ndarray:
    """Values every (src, dst) pair represents: casts of out-of-range values are undefined."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == np.bool_:
        return np.array([True, False, True, True])
    vals = np.array([-100.0, 0.0, -0.0, 1.0, 2.5, 99.75, -1.7, 127.0, 7.25, -0.5])
    if "u" in (src.kind, dst.kind):
        vals = np.abs(vals)
    if src.kind in "iu":
        vals = np.trunc(vals)
    return vals.astype(src)


@pytest.mark.parametrize("src", NUMERIC)
@pytest.mark.parametrize("dst", NUMERIC)
def test_cast(src: Any, dst: Any) -> None:
    check_against_ort(cast, "Cast", [cast_source(src, dst)], {"to": ONNX_TYPE[np.dtype(dst)]})


@pytest.mark.parametrize(
    ("src", "dst"), [(np.float32, np.int64), (np.int32, np.float16), (np.float16, np.bool_)]
)
def test_cast_like(src: Any, dst: Any) -> None:
    check_against_ort(cast_like, "CastLike", [cast_source(src, dst), np.zeros(1, dst)])


def test_cast_hand() -> None:
    # float -> int truncates toward zero: -1.7 -> -1, 2.5 -> 2, -0.5 -> 0
    x = np.array([-1.7, 2.5, -0.5], np.float32)
    out = cast(x, to=TensorProto.INT32)
    assert out.dtype == np.int32 and out.tolist() == [-1, 2, 0]
    # float -> bool: only +-0 is false
    assert cast(np.array([0.0, -0.0, 0.5]), to=TensorProto.BOOL).tolist() == [False, False, True]
    # 1/3 in float16 is 0.333251953125 (11-bit mantissa)
    assert float(cast(np.array([1 / 3]), to=TensorProto.FLOAT16)[0]) == 0.333251953125
    assert cast_like(np.array([True]), np.zeros(1, np.uint8)).tolist() == [1]


def test_cast_float16_to_float32_every_bit_pattern() -> None:
    # the kernel's lookup table must agree with numpy's conversion for all 2**16 halves
    halves = np.arange(2**16, dtype=np.uint16).view(np.float16).reshape(256, 256)
    out = cast(halves, to=TensorProto.FLOAT)
    assert out.dtype == np.float32 and out.shape == (256, 256)
    want = halves.astype(np.float32)
    np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
    # strided input works too
    np.testing.assert_array_equal(cast(halves[:, ::3].T, to=TensorProto.FLOAT), want[:, ::3].T)


@pytest.mark.parametrize(
    "to",
    [
        TensorProto.FLOAT8E4M3FN,
        TensorProto.FLOAT8E5M2,
        TensorProto.INT4,
        TensorProto.UINT4,
        TensorProto.STRING,
        TensorProto.BFLOAT16,
    ],
)
def test_cast_unsupported(to: int) -> None:
    with pytest.raises(KernelError, match="not supported"):
        cast(np.zeros(2, np.float32), to=to, saturate=0)


# ------------------------------------------------------------------------------------ Range
INT_RANGES = [(1, 7, 2), (10, 4, -3), (0, 0, 1), (5, 1, 1), (-3, 3, 1)]
FLOAT_RANGES = [*INT_RANGES, (0.0, 1.0, 0.1), (2.5, -1.0, -0.7), (0.5, 0.5, 0.25)]


@pytest.mark.parametrize(
    ("bounds", "dtype"),
    [(b, dt) for b in INT_RANGES for dt in (np.int16, np.int32, np.int64)]
    + [(b, dt) for b in FLOAT_RANGES for dt in (np.float32, np.float64)],
)
def test_range(bounds: tuple[float, float, float], dtype: Any) -> None:
    ins = [np.array(v, dtype) for v in bounds]
    check_against_ort(range_, "Range", ins, rtol=1e-5, atol=1e-6)


def test_range_hand() -> None:
    # 1, 3, 5 (7 is the exclusive limit)
    assert range_(np.array(1), np.array(7), np.array(2)).tolist() == [1, 3, 5]
    # ceil((4 - 10) / -3) = 2 elements: 10, 7
    assert range_(np.array(10), np.array(4), np.array(-3)).tolist() == [10, 7]
    # int64 bounds near 2**62 stay exact
    big = np.array(2**62 + 1, np.int64)
    assert range_(big, big + 3, np.array(2, np.int64)).tolist() == [2**62 + 1, 2**62 + 3]
    with pytest.raises(KernelError, match="non-zero"):
        range_(np.array(0), np.array(3), np.array(0))


# ---------------------------------------------------------------------------------- EyeLike
@pytest.mark.parametrize("in_shape", [(3, 3), (2, 4), (4, 2)])
@pytest.mark.parametrize("k", [-1, 0, 2, 5])
@pytest.mark.parametrize("dtype", [None, TensorProto.INT64, TensorProto.DOUBLE, TensorProto.INT32])
def test_eye_like(in_shape: tuple[int, int], k: int, dtype: int | None) -> None:
    attrs: dict[str, Any] = {"k": k} | ({} if dtype is None else {"dtype": dtype})
    check_against_ort(eye_like, "EyeLike", [random_data(in_shape, np.int32)], attrs)


def test_eye_like_hand() -> None:
    # 2x3, k=1: ones at (0, 1) and (1, 2)
    out = eye_like(np.zeros((2, 3), np.float32), k=1)
    assert out.dtype == np.float32 and out.tolist() == [[0, 1, 0], [0, 0, 1]]
    # ORT has no float16/bool EyeLike: checked here instead; k=-1 puts the ones at (1, 0)
    out = eye_like(np.zeros((2, 2), np.int8), dtype=TensorProto.FLOAT16, k=-1)
    assert out.dtype == np.float16 and out.tolist() == [[0, 0], [1, 0]]
    out = eye_like(np.zeros((2, 2), np.bool_))
    assert out.dtype == np.bool_ and out.tolist() == [[True, False], [False, True]]
    with pytest.raises(KernelError, match="2-D"):
        eye_like(np.zeros(3))


# ----------------------------------------------------------------------------------- OneHot
@pytest.mark.parametrize("axis", [-1, 0, 1, -2, 2])
@pytest.mark.parametrize(
    ("idx_dtype", "depth_dtype", "val_dtype"),
    [(np.int64, np.int64, np.float32), (np.int32, np.float32, np.float32)],
)
def test_one_hot(axis: int, idx_dtype: Any, depth_dtype: Any, val_dtype: Any) -> None:
    # includes negatives (count from depth) and out-of-range values (all-off rows)
    idx = np.array([[0, 3, -1], [-4, 5, -6]], idx_dtype)
    ins = [idx, np.array(4, depth_dtype), np.array([-1, 2], val_dtype)]
    check_against_ort(one_hot, "OneHot", ins, {"axis": axis})


def test_one_hot_hand() -> None:
    # depth 3, [off, on] = [0, 5]: -1 is index 2; 3 is out of range -> all off
    out = one_hot(np.array([0, 2, -1, 3]), np.array(3), np.array([0, 5]))
    assert out.tolist() == [[5, 0, 0], [0, 0, 5], [0, 0, 5], [0, 0, 0]]
    # axis 0 puts the depth first: the transpose of the above
    out = one_hot(np.array([0, 2]), np.array(3), np.array([0, 1]), axis=0)
    assert out.tolist() == [[1, 0], [0, 0], [0, 1]]


# ------------------------------------------------------------------------------------ Trilu
@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, -1, 0, 1, 5, -5])
@pytest.mark.parametrize("in_shape", [(4, 5), (2, 3, 3), (0, 3)])
def test_trilu(upper: int, k: int | None, in_shape: tuple[int, ...]) -> None:
    x = random_data(in_shape, np.float32)
    ins = [x] if k is None else [x, np.array(k, np.int64)]
    check_against_ort(trilu, "Trilu", ins, {"upper": upper})


def test_trilu_hand() -> None:
    x = np.array([[1, 2, 3], [4, 5, 6]])
    # upper, k=1: keep j - i >= 1 -> (0,1), (0,2), (1,2)
    assert trilu(x, np.array(1)).tolist() == [[0, 2, 3], [0, 0, 6]]
    # lower, k=0: keep j <= i
    assert trilu(x, upper=0).tolist() == [[1, 0, 0], [4, 5, 0]]


# ----------------------------------------------------------------------------------- Einsum
@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("ij,jk->ik", [(3, 4), (4, 5)]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("ii->i", [(4, 4)]),
        ("ij->ji", [(3, 4)]),
        ("i,i->", [(5,), (5,)]),
        ("ij->", [(3, 4)]),
        ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 2)]),
        ("ij,jk", [(3, 4), (4, 5)]),  # implicit output: alphabetical free indices
        ("i,j->ij", [(3,), (4,)]),
        ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_einsum(equation: str, shapes: list[tuple[int, ...]], dtype: Any) -> None:
    ins = [random_data(s, dtype, i) for i, s in enumerate(shapes)]
    check_against_ort(einsum, "Einsum", ins, {"equation": equation}, rtol=1e-5, atol=1e-6)


def test_einsum_hand() -> None:
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    # trace: 1 + 4 = 5
    assert einsum(m, equation="ii->") == 5.0
    # spaces are allowed: m @ m = [[7, 10], [15, 22]]
    assert einsum(m, m, equation="ij, jk -> ik").tolist() == [[7, 10], [15, 22]]
    with pytest.raises(KernelError, match="Einsum"):
        einsum(m, equation="ijk->i")


# ----------------------------------------------------------------------------------- Unique
@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_unique(sorted_: int, axis: int | None, dtype: Any) -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, size=(6, 4)).astype(dtype)
    x[3] = x[1]  # a repeated row
    x[:, 2] = x[:, 0]  # a repeated column
    attrs = {"sorted": sorted_} | ({} if axis is None else {"axis": axis})
    check_against_ort(unique, "Unique", [x], attrs, n_outputs=4)


def test_unique_hand() -> None:
    x = np.array([2, 1, 1, 3, 4, 3])
    # spec example, first-occurrence order: Y [2 1 3 4] first at [0 1 3 4]
    y, first, inverse, counts = unique(x, sorted=0)
    assert y.tolist() == [2, 1, 3, 4] and first.tolist() == [0, 1, 3, 4]
    assert inverse.tolist() == [0, 1, 1, 2, 3, 2] and counts.tolist() == [1, 2, 2, 1]
    # sorted: Y [1 2 3 4], first at [1 0 3 4], x = Y[[1 0 0 2 3 2]]
    y, first, inverse, counts = unique(x)
    assert y.tolist() == [1, 2, 3, 4] and first.tolist() == [1, 0, 3, 4]
    assert inverse.tolist() == [1, 0, 0, 2, 3, 2] and counts.tolist() == [2, 1, 2, 1]
    assert first.dtype == inverse.dtype == counts.dtype == np.int64


# -------------------------------------------------------------------------- ReverseSequence
@pytest.mark.parametrize(("batch_axis", "time_axis"), [(1, 0), (0, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_reverse_sequence(batch_axis: int, time_axis: int, dtype: Any) -> None:
    in_shape = [0, 0, 3]
    in_shape[time_axis], in_shape[batch_axis] = 5, 4
    lens = np.array([5, 0, 1, 3], np.int64)
    attrs = {"batch_axis": batch_axis, "time_axis": time_axis}
    check_against_ort(
        reverse_sequence, "ReverseSequence", [random_data(in_shape, dtype), lens], attrs
    )


def test_reverse_sequence_hand() -> None:
    # spec example, time_axis=0: column b reverses its first lens[b] entries
    x = np.array([[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]])
    out = reverse_sequence(x, np.array([4, 3, 2, 1]))
    assert out.tolist() == [[3, 6, 9, 12], [2, 5, 8, 13], [1, 4, 10, 14], [0, 7, 11, 15]]
    with pytest.raises(KernelError, match="sequence_lens"):
        reverse_sequence(x, np.array([5, 1, 1, 1]))
