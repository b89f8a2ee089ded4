"""Pooling kernels against onnxruntime (opset 21), plus hand-worked examples."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from runtime.kernels.pooling import (
    average_pool,
    global_average_pool,
    global_max_pool,
    lp_pool,
    max_pool,
    max_pool_values,
)
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(5)


_check = partial(assert_matches, rtol=1e-5, atol=1e-5)


# (input shape, attributes) shared by the three windowed pools
WINDOW_CASES: list[tuple[tuple[int, ...], dict[str, Any]]] = [
    ((1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 2, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 7, 9), {"kernel_shape": [3, 2], "pads": [1, 0, 2, 1]}),  # asymmetric pads
    ((1, 2, 10, 7), {"kernel_shape": [2, 2], "strides": [3, 3]}),  # stride > kernel
    ((1, 1, 9, 8), {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2, 1, 2, 1]}),
    ((1, 2, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        (1, 2, 7, 6),
        {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [1, 1, 0, 1], "ceil_mode": 1},
    ),
    (
        (1, 2, 9, 9),
        {"kernel_shape": [2, 2], "strides": [2, 2], "dilations": [2, 1], "ceil_mode": 1},
    ),
    ((1, 2, 7, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 7, 8), {"kernel_shape": [2, 4], "strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 7, 8), {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 2, 6, 7), {"kernel_shape": [1, 2], "strides": [3, 3], "auto_pad": "SAME_UPPER"}),
    ((1, 128, 10, 10), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]}),  # yolov8 SPPF
    ((2, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 2]}),  # 1-D
    ((1, 2, 12), {"kernel_shape": [2], "strides": [2], "dilations": [3], "ceil_mode": 1}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [1] * 6}),
    ((1, 1, 5, 6, 7), {"kernel_shape": [2, 2, 3], "strides": [2, 2, 2], "ceil_mode": 1}),
]


@pytest.mark.parametrize(("shape", "attrs"), WINDOW_CASES)
def test_max_pool_matches_onnxruntime(shape: tuple[int, ...], attrs: dict[str, Any]) -> None:
    x = RNG.standard_normal(shape).astype(np.float32)
    y, indices = max_pool(x, **attrs)
    ref_y, ref_indices = run_node("MaxPool", [x], attrs, n_outputs=2)
    _check(y, ref_y)
    _check(indices, ref_indices)


@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel_shape": [2, 2], "strides": [1, 1], "storage_order": 1},
        {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 1, 1, 0], "storage_order": 1},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8])
def test_max_pool_ties_and_storage_order(attrs: dict[str, Any], dtype: type) -> None:
    """Few distinct values: many windows hold their maximum more than once, and the index
    must be the first one in row-major window order."""
    x = RNG.integers(0, 3, (2, 2, 6, 5)).astype(dtype)
    y, indices = max_pool(x, **attrs)
    ref_y, ref_indices = run_node("MaxPool", [x], attrs, n_outputs=2)
    _check(y, ref_y)
    _check(indices, ref_indices)


@pytest.mark.parametrize(("shape", "attrs"), WINDOW_CASES)
def test_max_pool_values_kernel_equals_first_output(
    shape: tuple[int, ...], attrs: dict[str, Any]
) -> None:
    x = RNG.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(max_pool_values(x, **attrs), max_pool(x, **attrs)[0])


def test_max_pool_float16() -> None:
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float16)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    y, indices = max_pool(x, **attrs)
    ref_y, ref_indices = run_node("MaxPool", [x], attrs, n_outputs=2)
    _check(y, ref_y)
    _check(indices, ref_indices)


def test_max_pool_hand_worked() -> None:
    x = np.array([[1, 5, 2, 0], [3, 4, 9, 9], [0, 0, 1, 2], [7, 0, 3, 2]], np.float32)
    y, indices = max_pool(x.reshape(1, 1, 4, 4), kernel_shape=[2, 2], strides=[2, 2])
    # windows {1,5,3,4} {2,0,9,9} {0,0,7,0} {1,2,3,2}; the first 9 is at row 1, col 2 -> 6
    np.testing.assert_array_equal(y[0, 0], [[5, 9], [7, 3]])
    np.testing.assert_array_equal(indices[0, 0], [[1, 6], [12, 14]])
    # column-major indices: (row, col) -> col * 4 + row
    _, col_major = max_pool(
        x.reshape(1, 1, 4, 4), kernel_shape=[2, 2], strides=[2, 2], storage_order=1
    )
    np.testing.assert_array_equal(col_major[0, 0], [[4, 9], [3, 11]])


def test_max_pool_indices_count_batch_and_channel() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    _, indices = max_pool(x, kernel_shape=[4])
    # each (n, c) row is increasing: the max is its last element, flat index (n*3+c)*4+3
    np.testing.assert_array_equal(indices[:, :, 0], [[3, 7, 11], [15, 19, 23]])


def test_max_pool_same_with_dilation_hand_worked() -> None:
    """Spec formula (onnxruntime ignores the dilation when padding): span 3, output 6,
    total pad 5+3-6 = 2, split 1|1."""
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 6)
    y, _ = max_pool(x, kernel_shape=[2], dilations=[2], auto_pad="SAME_UPPER")
    # padded [-inf,0,1,2,3,4,5,-inf]; y[o] = max(p[o], p[o+2])
    np.testing.assert_array_equal(y[0, 0], [1, 2, 3, 4, 5, 4])


def test_pool_ceil_mode_hand_worked() -> None:
    x = np.array([1, 2, 3, 4, 5], np.float32).reshape(1, 1, 5)
    attrs = {"kernel_shape": [2], "strides": [2], "ceil_mode": 1}
    # ceil((5-2)/2)+1 = 3 windows: [1,2] [3,4] [5]; the last one has a single element
    np.testing.assert_array_equal(max_pool(x, **attrs)[0][0, 0], [2, 4, 5])
    np.testing.assert_array_equal(average_pool(x, **attrs)[0, 0], [1.5, 3.5, 5])
    # ceil-mode overhang is not padding: count_include_pad does not count it either
    y = average_pool(x, count_include_pad=1, **attrs)
    np.testing.assert_array_equal(y[0, 0], [1.5, 3.5, 5])
    # with pads [1, 0]: ceil(6-2)/2)+1 = 3 windows [pad,1] [2,3] [4,5]
    y = average_pool(x, kernel_shape=[2], strides=[2], pads=[1, 0], ceil_mode=1)
    np.testing.assert_array_equal(y[0, 0], [1, 2.5, 4.5])


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize(("shape", "attrs"), WINDOW_CASES)
def test_average_pool_matches_onnxruntime(
    shape: tuple[int, ...], attrs: dict[str, Any], count_include_pad: int
) -> None:
    x = RNG.standard_normal(shape).astype(np.float32)
    attrs = {**attrs, "count_include_pad": count_include_pad}
    _check(average_pool(x, **attrs), run_node("AveragePool", [x], attrs)[0])


def test_average_pool_float16() -> None:
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float16)
    attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    _check(average_pool(x, **attrs), run_node("AveragePool", [x], attrs)[0], rtol=1e-3, atol=1e-3)


def test_average_pool_hand_worked() -> None:
    x = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 1, 2, 2)
    attrs = {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}
    # 3x3 windows over the zero-padded 4x4: sums [[1,3,2],[4,10,6],[3,7,4]], real elements
    # per window [[1,2,1],[2,4,2],[1,2,1]]
    expected = [[1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]]
    np.testing.assert_array_equal(average_pool(x, **attrs)[0, 0], expected)
    # count_include_pad: always divided by 4
    expected = [[0.25, 0.75, 0.5], [1, 2.5, 1.5], [0.75, 1.75, 1]]
    np.testing.assert_array_equal(average_pool(x, count_include_pad=1, **attrs)[0, 0], expected)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize(("shape", "attrs"), WINDOW_CASES[:12] + WINDOW_CASES[13:])
def test_lp_pool_matches_onnxruntime(shape: tuple[int, ...], attrs: dict[str, Any], p: int) -> None:
    x = RNG.standard_normal(shape).astype(np.float32)
    attrs = {**attrs, "p": p}
    _check(lp_pool(x, **attrs), run_node("LpPool", [x], attrs)[0])


def test_lp_pool_hand_worked() -> None:
    x = np.array([3, -4, 0, 12], np.float32).reshape(1, 1, 4)
    # windows [3,-4] [0,12]: L2 sqrt(9+16) = 5, 12; L1 7, 12
    np.testing.assert_allclose(lp_pool(x, kernel_shape=[2], strides=[2])[0, 0], [5, 12])
    np.testing.assert_allclose(lp_pool(x, kernel_shape=[2], strides=[2], p=1)[0, 0], [7, 12])


@pytest.mark.parametrize("shape", [(1, 512, 7, 7), (2, 3, 5), (1, 2, 3, 4, 5), (2, 1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_global_pools_match_onnxruntime(shape: tuple[int, ...], dtype: type) -> None:
    x = RNG.standard_normal(shape).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-3
    _check(global_average_pool(x), run_node("GlobalAveragePool", [x])[0], rtol=tol, atol=tol)
    _check(global_max_pool(x), run_node("GlobalMaxPool", [x])[0])


def test_global_pools_hand_worked() -> None:
    x = np.array([[[1, 2], [3, 6]], [[-1, -2], [-3, -4]]], np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(global_average_pool(x).ravel(), [3, -2.5])
    np.testing.assert_array_equal(global_max_pool(x).ravel(), [6, -1])
    assert global_average_pool(x).shape == (1, 2, 1, 1)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({}, "kernel_shape"),
        ({"kernel_shape": [2]}, "kernel_shape"),
        ({"kernel_shape": [2, 2], "auto_pad": "FULL"}, "auto_pad"),
        ({"kernel_shape": [2, 2], "pads": [1, 1]}, "pads"),
        ({"kernel_shape": [9, 2]}, "window"),
        ({"kernel_shape": [2, 2], "storage_order": 2}, "storage_order"),
    ],
)
def test_max_pool_rejects(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(KernelError, match=message):
        max_pool(np.zeros((1, 1, 4, 4), np.float32), **attrs)


def test_average_pool_rejects_integers() -> None:
    with pytest.raises(KernelError, match="dtype"):
        average_pool(np.zeros((1, 1, 4, 4), np.int32), kernel_shape=[2, 2])
