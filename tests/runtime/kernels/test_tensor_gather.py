"""Indexing kernels of runtime.kernels.tensor against onnxruntime (opset 21): Gather,
GatherElements, GatherND, ScatterElements, ScatterND, Compress and NonZero."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from runtime.kernels.registry import KernelError
from runtime.kernels.tensor import (
    compress,
    gather,
    gather_elements,
    gather_nd,
    non_zero,
    scatter_elements,
    scatter_nd,
)
from tests.helpers.compare import check_against_ort, random_data

DTYPES = [np.float32, np.int64, np.bool_, np.float16]
REDUCTIONS = ["none", "add", "mul", "max", "min"]


def indices(shape: Sequence[int], dim: int, seed: int = 1, dtype: Any = np.int64) -> np.ndarray:
    """Random indices in [-dim, dim): negatives included on purpose."""
    return np.random.default_rng(seed).integers(-dim, dim, size=shape).astype(dtype)


# ----------------------------------------------------------------------------------- Gather
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("idx_shape", [(), (4,), (2, 3), (0,)])
def test_gather(axis: int, idx_shape: tuple[int, ...], dtype: Any) -> None:
    x = random_data((3, 4, 5), dtype)
    check_against_ort(gather, "Gather", [x, indices(idx_shape, x.shape[axis])], {"axis": axis})


def test_gather_int32_indices() -> None:
    x = random_data((5, 2))
    check_against_ort(gather, "Gather", [x, indices((3,), 5, dtype=np.int32)])


def test_gather_hand() -> None:
    x = np.array([[1, 2], [3, 4], [5, 6]])
    # rows -1 (the last) and 0
    np.testing.assert_array_equal(gather(x, np.array([-1, 0])), [[5, 6], [1, 2]])
    # scalar index on axis 1 drops that axis: column 1 = [2, 4, 6]
    assert gather(x, np.array(1), axis=1).tolist() == [2, 4, 6]
    with pytest.raises(KernelError, match="out of range"):
        gather(x, np.array([3]))


# --------------------------------------------------------------------------- GatherElements
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis: int, dtype: Any) -> None:
    x = random_data((3, 4), dtype)
    idx_shape = [2, 3]  # smaller than data on the non-axis dims too
    idx_shape[axis] = 5
    check_against_ort(
        gather_elements, "GatherElements", [x, indices(idx_shape, x.shape[axis])], {"axis": axis}
    )


def test_gather_elements_hand() -> None:
    # spec example: out[i][j] = data[i][idx[i][j]] -> [[1, 1], [4, 3]]
    out = gather_elements(np.array([[1, 2], [3, 4]]), np.array([[0, 0], [1, 0]]), axis=1)
    np.testing.assert_array_equal(out, [[1, 1], [4, 3]])
    # axis 0 with a negative index: out[0][j] = data[idx][j]; -1 -> row 1
    out = gather_elements(np.array([[1, 2], [3, 4]]), np.array([[-1, 0]]))
    np.testing.assert_array_equal(out, [[3, 2]])
    with pytest.raises(KernelError, match="rank"):
        gather_elements(np.zeros((2, 2)), np.zeros(2, np.int64))


# --------------------------------------------------------------------------------- GatherND
@pytest.mark.parametrize(
    ("data_shape", "idx_shape", "batch_dims"),
    [
        ((4, 5, 6), (3, 1), 0),
        ((4, 5, 6), (3, 2), 0),
        ((4, 5, 6), (2, 2, 3), 0),
        ((4, 5, 6), (4, 2, 1), 1),
        ((4, 5, 6), (4, 2), 1),
        ((4, 5, 6), (4, 5, 1), 2),
        ((2, 3, 4, 5), (2, 3, 7, 2), 2),
        ((4, 5, 6), (0, 2), 0),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_gather_nd(
    data_shape: tuple[int, ...], idx_shape: tuple[int, ...], batch_dims: int, dtype: Any
) -> None:
    x = random_data(data_shape, dtype)
    k = idx_shape[-1]
    cols = [indices((*idx_shape[:-1], 1), data_shape[batch_dims + j], seed=j) for j in range(k)]
    idx = np.concatenate(cols, axis=-1)
    check_against_ort(gather_nd, "GatherND", [x, idx], {"batch_dims": batch_dims})


def test_gather_nd_hand() -> None:
    x = np.array([[0, 1], [2, 3]])
    # full index tuples (0, 0) and (1, 1): [0, 3]
    assert gather_nd(x, np.array([[0, 0], [1, 1]])).tolist() == [0, 3]
    # partial index: rows 1 and 0
    np.testing.assert_array_equal(gather_nd(x, np.array([[1], [0]])), [[2, 3], [0, 1]])
    # batch_dims=1: batch 0 takes its element -1 (= 1), batch 1 takes element 0 (= 2)
    assert gather_nd(x, np.array([[-1], [0]]), batch_dims=1).tolist() == [1, 2]
    with pytest.raises(KernelError, match="indices shape"):
        gather_nd(x, np.zeros((1, 3), np.int64))
    with pytest.raises(KernelError, match="batch_dims"):
        gather_nd(x, np.zeros((3, 1), np.int64), batch_dims=1)


# -------------------------------------------------------------------------- ScatterElements
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_scatter_elements(reduction: str, axis: int, dtype: Any) -> None:
    x = random_data((4, 5), dtype)
    upd_shape = [3, 4]
    upd_shape[axis] = 3
    if reduction == "none":
        # distinct targets per line (duplicates make "none" order-dependent): the first
        # entries of a random permutation along the axis, odd ones in negative form
        full = list(upd_shape)
        full[axis] = x.shape[axis]
        perm = np.argsort(np.random.default_rng(3).random(full), axis=axis)
        idx = np.take(perm, np.arange(upd_shape[axis]), axis=axis)
        idx[idx % 2 == 1] -= x.shape[axis]
    else:
        idx = indices(upd_shape, x.shape[axis])
    upd = random_data(upd_shape, dtype, seed=7)
    attrs = {"axis": axis, "reduction": reduction}
    check_against_ort(scatter_elements, "ScatterElements", [x, idx, upd], attrs, rtol=1e-6)


def test_scatter_elements_hand() -> None:
    # spec example: row 0, columns 1 and 3 get 1.1 and 2.1
    out = scatter_elements(
        np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]), np.array([[1, 3]]), np.array([[1.1, 2.1]]), axis=1
    )
    np.testing.assert_allclose(out, [[1.0, 1.1, 3.0, 2.1, 5.0]])
    x = np.array([1, 2, 3, 4, 5])
    # duplicates accumulate: add -> 2 + 10 + 20 = 32; mul -> 2 * 10 * 20 = 400
    idx, upd = np.array([1, -4]), np.array([10, 20])  # -4 is index 1 again
    assert scatter_elements(x, idx, upd, reduction="add").tolist() == [1, 32, 3, 4, 5]
    assert scatter_elements(x, idx, upd, reduction="mul").tolist() == [1, 400, 3, 4, 5]
    # max: position 0 keeps max(1, 0) = 1, position 4 gets max(5, 9) = 9
    out = scatter_elements(x, np.array([0, 4]), np.array([0, 9]), reduction="max")
    assert out.tolist() == [1, 2, 3, 4, 9]
    assert x.tolist() == [1, 2, 3, 4, 5]  # the input is not modified
    with pytest.raises(KernelError, match="reduction"):
        scatter_elements(x, idx, upd, reduction="mean")
    with pytest.raises(KernelError, match="out of range"):
        scatter_elements(x, np.array([5]), np.array([1]))


# ------------------------------------------------------------------------------- ScatterND
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_scatter_nd(reduction: str, k: int, dtype: Any) -> None:
    x = random_data((4, 4, 4), dtype)
    if reduction == "none":
        # distinct index tuples: pick 3 different flat positions of the first k dims
        flat = np.random.default_rng(5).permutation(4**k)[:3]
        idx = np.stack(np.unravel_index(flat, (4,) * k), axis=-1).astype(np.int64)
        idx[0] -= 4  # negative form of the same position
    else:
        idx = indices((3, k), 4)
    upd = random_data((3,) + (4,) * (3 - k), dtype, seed=9)
    check_against_ort(scatter_nd, "ScatterND", [x, idx, upd], {"reduction": reduction}, rtol=1e-6)


def test_scatter_nd_hand() -> None:
    # spec example: positions 4, 3, 1, 7 of [1..8] get 9, 10, 11, 12
    x = np.arange(1, 9)
    out = scatter_nd(x, np.array([[4], [3], [1], [7]]), np.array([9, 10, 11, 12]))
    assert out.tolist() == [1, 11, 3, 10, 9, 6, 7, 12]
    # add with a duplicate: position 0 gets 1 + 5 + 6 = 12
    out = scatter_nd(x, np.array([[0], [0]]), np.array([5, 6]), reduction="add")
    assert out.tolist() == [12, 2, 3, 4, 5, 6, 7, 8]
    # min: position 2 keeps min(3, 7) = 3; position 5 gets min(6, -1) = -1
    out = scatter_nd(x, np.array([[2], [5]]), np.array([7, -1]), reduction="min")
    assert out.tolist() == [1, 2, 3, 4, 5, -1, 7, 8]
    with pytest.raises(KernelError, match="updates shape"):
        scatter_nd(x, np.array([[0]]), np.array([1, 2]))


# ---------------------------------------------------------------------- Compress / NonZero
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("cond_len", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_compress(axis: int | None, cond_len: int, dtype: Any) -> None:
    x = random_data((3, 4), dtype)
    cond = np.random.default_rng(2).random(cond_len) > 0.4
    check_against_ort(compress, "Compress", [x, cond], {} if axis is None else {"axis": axis})


def test_compress_hand() -> None:
    x = np.array([[1, 2], [3, 4], [5, 6]])
    # rows 1 and 2 kept
    np.testing.assert_array_equal(compress(x, np.array([False, True, True]), axis=0), x[1:])
    # no axis: flattened [1..6], a short condition keeps index 0 and 2 -> [1, 3]
    assert compress(x, np.array([True, False, True])).tolist() == [1, 3]
    # a longer condition is truncated to the axis
    assert compress(x, np.array([1, 0, 0, 1], bool), axis=1).tolist() == [[1], [3], [5]]


@pytest.mark.parametrize("in_shape", [(), (5,), (3, 4), (2, 3, 2), (0, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_non_zero(in_shape: tuple[int, ...], dtype: Any) -> None:
    x = random_data(in_shape, dtype)
    if dtype != np.bool_:
        x = x * (np.abs(x) > (0.5 if dtype == np.float32 else 20))  # plenty of zeros
    check_against_ort(non_zero, "NonZero", [x.astype(dtype)])


def test_non_zero_hand() -> None:
    # [[1, 0], [1, 1]]: nonzeros at (0,0), (1,0), (1,1) -> rows [0, 1, 1], cols [0, 0, 1]
    out = non_zero(np.array([[1, 0], [1, 1]]))
    assert out.dtype == np.int64 and out.tolist() == [[0, 1, 1], [0, 0, 1]]
    # a scalar counts as a 1-element vector
    assert non_zero(np.array(3.0)).shape == (1, 1)
    assert non_zero(np.array(0.0)).shape == (1, 0)
