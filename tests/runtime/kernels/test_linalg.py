"""Gemm and MatMul kernels against onnxruntime (opset 21), plus hand-worked examples."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from runtime.kernels.linalg import gemm, matmul
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(3)


_check = partial(assert_matches, rtol=1e-5, atol=1e-5)


M, K, N = 3, 4, 5
C_SHAPES = [None, (M, N), (N,), (1, N), (M, 1), (1, 1), ()]


@pytest.mark.parametrize("c_shape", C_SHAPES)
@pytest.mark.parametrize(("trans_a", "trans_b"), [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (0.5, 2.0), (-1.5, 0.0)])
def test_gemm_matches_onnxruntime(
    c_shape: tuple[int, ...] | None, trans_a: int, trans_b: int, alpha: float, beta: float
) -> None:
    a = RNG.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
    b = RNG.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    inputs = [a, b]
    if c_shape is not None:
        inputs.append(RNG.standard_normal(c_shape).astype(np.float32))
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": alpha, "beta": beta}
    _check(gemm(*inputs, **attrs), run_node("Gemm", inputs, attrs)[0])


def test_gemm_classifier_shape_and_float16() -> None:
    """The zoo's classifier head (1x512 by 1000x512 transposed), and half precision."""
    a = RNG.standard_normal((1, 512)).astype(np.float32)
    b = (RNG.standard_normal((1000, 512)) / 20).astype(np.float32)
    c = RNG.standard_normal(1000).astype(np.float32)
    _check(gemm(a, b, c, transB=1), run_node("Gemm", [a, b, c], {"transB": 1})[0])
    inputs = [x.astype(np.float16) for x in (a[:, :64], b[:10, :64], c[:10])]
    ref = run_node("Gemm", inputs, {"transB": 1})[0]
    _check(gemm(*inputs, transB=1), ref, rtol=1e-2, atol=1e-2)


def test_gemm_hand_worked() -> None:
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[5, 6], [7, 8]], np.float32)
    c = np.array([1, 2], np.float32)
    # A @ B = [[19, 22], [43, 50]]; 2 * that + 0.5 * [1, 2] broadcast over rows
    y = gemm(a, b, c, alpha=2.0, beta=0.5)
    np.testing.assert_array_equal(y, [[38.5, 45], [86.5, 101]])
    # A' @ B' = [[1,3],[2,4]] @ [[5,7],[6,8]] = [[23, 31], [34, 46]]
    np.testing.assert_array_equal(gemm(a, b, transA=1, transB=1), [[23, 31], [34, 46]])


def test_gemm_integer() -> None:
    a = np.array([[1, 2], [3, 4]], np.int32)
    b = np.array([[1, 0], [0, 1]], np.int32)
    c = np.array([[10]], np.int32)
    y = gemm(a, b, c, alpha=3.0)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [[13, 16], [19, 22]])
    with pytest.raises(KernelError, match="alpha"):
        gemm(a, b, alpha=0.5)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 3, 4), (4, 5)), "2-D"),
        (((3, 4), (5, 6)), "inner"),
        (((3, 4), (4, 5), (2, 5)), "broadcast"),
    ],
)
def test_gemm_rejects(shapes: tuple[tuple[int, ...], ...], message: str) -> None:
    inputs = [np.ones(s, np.float32) for s in shapes]
    with pytest.raises(KernelError, match=message):
        gemm(*inputs)


MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((4,), (2, 4, 3)),
    ((2, 1, 2, 3), (5, 3, 4)),
    ((1, 3, 3), (6, 3, 2)),
    ((1, 16, 4, 64), (1, 16, 64, 4)),
]


@pytest.mark.parametrize(("shape_a", "shape_b"), MATMUL_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_matmul_matches_onnxruntime(
    shape_a: tuple[int, ...], shape_b: tuple[int, ...], dtype: type
) -> None:
    if np.dtype(dtype).kind == "f":
        a = RNG.standard_normal(shape_a).astype(dtype)
        b = RNG.standard_normal(shape_b).astype(dtype)
    else:
        a = RNG.integers(-5, 5, shape_a).astype(dtype)
        b = RNG.integers(-5, 5, shape_b).astype(dtype)
    _check(matmul(a, b), run_node("MatMul", [a, b])[0])


def test_matmul_float16() -> None:
    a = RNG.standard_normal((2, 3, 8)).astype(np.float16)
    b = RNG.standard_normal((8, 5)).astype(np.float16)
    _check(matmul(a, b), run_node("MatMul", [a, b])[0], rtol=1e-2, atol=1e-2)


def test_matmul_hand_worked() -> None:
    a = np.array([1, 2, 3], np.float32)
    # vector . vector = 1*4 + 2*5 + 3*6 = 32, a 0-d result
    y = matmul(a, np.array([4, 5, 6], np.float32))
    assert isinstance(y, np.ndarray)
    assert y.shape == ()
    assert y == 32
    # vector @ matrix: [1,2,3] @ [[1,0],[0,1],[1,1]] = [1+3, 2+3]
    np.testing.assert_array_equal(matmul(a, np.array([[1, 0], [0, 1], [1, 1]], np.float32)), [4, 5])


def test_matmul_rejects() -> None:
    with pytest.raises(KernelError, match="do not match"):
        matmul(np.ones((2, 3), np.float32), np.ones((4, 2), np.float32))
    with pytest.raises(KernelError, match="dtypes"):
        matmul(np.ones((2, 3), np.float32), np.ones((3, 2), np.float64))
