"""Reduction, ArgMax/ArgMin, TopK and CumSum kernels against onnxruntime (opset 21), plus
hand-worked values and the spec's empty-set results."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from runtime.kernels import reduce as red
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(7)

REDUCE = {
    "ReduceSum": red.reduce_sum,
    "ReduceMean": red.reduce_mean,
    "ReduceMax": red.reduce_max,
    "ReduceMin": red.reduce_min,
    "ReduceProd": red.reduce_prod,
    "ReduceL1": red.reduce_l1,
    "ReduceL2": red.reduce_l2,
    "ReduceSumSquare": red.reduce_sum_square,
    "ReduceLogSum": red.reduce_log_sum,
    "ReduceLogSumExp": red.reduce_log_sum_exp,
}
AXES = [None, [], [0], [-1], [1], [0, 2], [2, -3], [0, 1, 2]]


def _data(op: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        low = 1 if op in ("ReduceLogSum", "ReduceProd") else -4
        return RNG.integers(low, 4, shape).astype(dtype)
    x = RNG.uniform(0.5, 1.5, shape) if op in ("ReduceLogSum", "ReduceProd") else None
    if x is None:
        x = RNG.standard_normal(shape) * 2
    return x.astype(dtype)


_check = partial(assert_matches, rtol=1e-5, atol=1e-6)


def _ort_reduce(op: str, x: np.ndarray, axes: list[int] | None, attrs: dict) -> np.ndarray:
    if axes is None:
        return run_node(op, [x], attrs)[0]
    return run_node(op, [x, np.array(axes, np.int64)], attrs, constant_inputs=[1])[0]


def _mine(op: str, x: np.ndarray, axes: list[int] | None, attrs: dict) -> np.ndarray:
    fn = REDUCE[op]
    return fn(x, **attrs) if axes is None else fn(x, np.array(axes, np.int64), **attrs)


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("axes", AXES, ids=str)
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_float32(op: str, axes: list[int] | None, keepdims: int) -> None:
    x = _data(op, (3, 4, 5))
    attrs = {"keepdims": keepdims}
    _check(_mine(op, x, axes, attrs), _ort_reduce(op, x, axes, attrs))


@pytest.mark.parametrize("axes", [None, []], ids=str)
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_noop_with_empty_axes(op: str, axes: list[int] | None) -> None:
    # no reduction, but the elementwise part (square, abs, log, ...) still applies
    x = _data(op, (2, 3))
    attrs = {"noop_with_empty_axes": 1, "keepdims": 0}
    _check(_mine(op, x, axes, attrs), _ort_reduce(op, x, axes, attrs))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.float64])
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_other_types(op: str, dtype: type) -> None:
    if op == "ReduceLogSumExp" and dtype in (np.int32, np.int64):
        pytest.skip("onnxruntime accumulates exp() in the int type; see test_log_sum_exp_integers")
    x = _data(op, (4, 6), dtype)
    attrs = {"keepdims": 0}
    tol = {"rtol": 2e-3, "atol": 2e-3} if dtype == np.float16 else {}
    _check(_mine(op, x, [1], attrs), _ort_reduce(op, x, [1], attrs), **tol)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.bool_])
@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_max_min_small_types(op: str, dtype: type) -> None:
    x = RNG.integers(0, 2 if dtype == np.bool_ else 100, (3, 5)).astype(dtype)
    _check(_mine(op, x, [0], {}), _ort_reduce(op, x, [0], {}))


# the spec's value for a reduction over an empty set; ReduceMean is undefined (NaN here)
EMPTY_SET = {
    "ReduceSum": 0.0,
    "ReduceMean": np.nan,
    "ReduceMax": -np.inf,
    "ReduceMin": np.inf,
    "ReduceProd": 1.0,
    "ReduceL1": 0.0,
    "ReduceL2": 0.0,
    "ReduceSumSquare": 0.0,
    "ReduceLogSum": -np.inf,
    "ReduceLogSumExp": -np.inf,
}


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_empty_set(op: str, keepdims: int) -> None:
    x = np.zeros((2, 0, 4), np.float32)
    out = _mine(op, x, [1], {"keepdims": keepdims})
    assert out.dtype == np.float32
    assert out.shape == ((2, 1, 4) if keepdims else (2, 4))
    np.testing.assert_array_equal(out, np.full(out.shape, EMPTY_SET[op], np.float32))
    # reducing a non-empty axis of an empty tensor gives an empty result
    assert _mine(op, x, [2], {"keepdims": keepdims}).shape == ((2, 0, 1) if keepdims else (2, 0))


def test_reduce_empty_set_integer_and_bool_extremes() -> None:
    empty = np.zeros((0, 3), np.int32)
    np.testing.assert_array_equal(red.reduce_max(empty, np.array([0])), [[-(2**31)] * 3])
    np.testing.assert_array_equal(red.reduce_min(empty, np.array([0])), [[2**31 - 1] * 3])
    np.testing.assert_array_equal(red.reduce_prod(empty, np.array([0]), keepdims=0), [1, 1, 1])
    np.testing.assert_array_equal(red.reduce_max(np.zeros((0,), np.bool_)), [False])
    np.testing.assert_array_equal(red.reduce_min(np.zeros((0,), np.bool_)), [True])


def test_reduce_hand_worked() -> None:
    x = np.float32([[1, -2, 3], [-4, 5, -6]])
    # rows: sum 2 and -5; L1 6 and 15; sum of squares 14 and 77; L2 sqrt(14), sqrt(77)
    np.testing.assert_array_equal(red.reduce_sum(x, np.array([1]), keepdims=0), [2, -5])
    np.testing.assert_array_equal(red.reduce_l1(x, np.array([1]), keepdims=0), [6, 15])
    np.testing.assert_array_equal(red.reduce_sum_square(x, np.array([-1]), keepdims=0), [14, 77])
    np.testing.assert_allclose(red.reduce_l2(x, np.array([1]), keepdims=0), [3.7416575, 8.774964])
    # columns: max [1, 5, 3], prod [-4, -10, -18]
    np.testing.assert_array_equal(red.reduce_max(x, np.array([0])), [[1, 5, 3]])
    np.testing.assert_array_equal(red.reduce_prod(x, np.array([0])), [[-4, -10, -18]])
    # no axes: everything; mean of all six = -3 / 6
    np.testing.assert_array_equal(red.reduce_mean(x, keepdims=0), np.float32(-0.5))
    # integer mean truncates toward zero like onnxruntime: -3 / 2 -> -1, 12 / 2 -> 6
    ints = np.int64([[-1, -2], [5, 7]])
    np.testing.assert_array_equal(red.reduce_mean(ints, np.array([1]), keepdims=0), [-1, 6])
    # log-sum-exp of [1000, 1000] = 1000 + ln 2 (no overflow); of [-inf, -inf] = -inf
    lse = red.reduce_log_sum_exp(np.float32([[1000, 1000], [-np.inf, -np.inf]]), np.array([1]))
    np.testing.assert_allclose(lse, [[1000.6931472], [-np.inf]])


def test_log_sum_exp_integers() -> None:
    # log(e^3 + e^3 + e^-4) = 3 + log(2 + e^-7) = 3.6940 -> 3; log(e^-2 + 5 e^-4) = -1.4832 -> -1
    # (onnxruntime gives 3 and -2: it accumulates the exp() terms in int32, truncating them)
    x = np.int32([[3, 3, -4, -4, -4, -4], [-4, -4, -4, -2, -4, -4]])
    out = red.reduce_log_sum_exp(x, np.array([1]), keepdims=0)
    np.testing.assert_array_equal(out, [3, -1])
    assert out.dtype == np.int32


def test_reduce_nan_propagates_and_scalars() -> None:
    # numpy semantics: NaN wins in ReduceMax/ReduceMin (onnxruntime may skip it)
    assert np.isnan(red.reduce_max(np.float32([1, np.nan, 3]))).all()
    scalar = red.reduce_sum_square(np.array(3.0, np.float32))
    assert isinstance(scalar, np.ndarray)
    assert scalar.shape == ()
    assert scalar == 9
    assert red.reduce_log_sum_exp(np.array(2.0, np.float32), keepdims=0) == np.float32(2.0)


def test_reduce_bad_axes_raise() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(KernelError):
        red.reduce_sum(x, np.array([2]))
    with pytest.raises(KernelError):
        red.reduce_sum(x, np.array([1, -1]))


ARG = [("ArgMax", red.arg_max), ("ArgMin", red.arg_min)]


@pytest.mark.parametrize("select_last_index", [0, 1])
@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("axis", [0, 1, -1, -3])
@pytest.mark.parametrize(("op", "fn"), ARG, ids=["ArgMax", "ArgMin"])
def test_arg_reduce(op: str, fn: Any, axis: int, keepdims: int, select_last_index: int) -> None:
    x = RNG.integers(-2, 3, (3, 4, 5)).astype(np.float32)  # many ties
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": select_last_index}
    (ref,) = run_node(op, [x], attrs)
    _check(fn(x, **attrs), ref)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int8, np.int32, np.int64, np.uint8])
@pytest.mark.parametrize(("op", "fn"), ARG, ids=["ArgMax", "ArgMin"])
def test_arg_reduce_types(op: str, fn: Any, dtype: type) -> None:
    x = RNG.integers(0, 6, (4, 7)).astype(dtype)
    (ref,) = run_node(op, [x], {"axis": 1})
    _check(fn(x, axis=1), ref)


def test_arg_reduce_hand_worked() -> None:
    x = np.float32([3, 9, 1, 9, 1])
    # max 9 at indices 1 and 3, min 1 at indices 2 and 4
    assert red.arg_max(x).tolist() == [1]
    assert red.arg_max(x, select_last_index=1).tolist() == [3]
    assert red.arg_min(x, keepdims=0).tolist() == 2
    assert red.arg_min(x, select_last_index=1, keepdims=0).tolist() == 4
    assert red.arg_max(x).dtype == np.int64
    with pytest.raises(KernelError):
        red.arg_max(np.zeros((2, 0), np.float32), axis=1)


def _topk_input(shape: tuple[int, ...], dtype: type, distinct: int) -> np.ndarray:
    return RNG.integers(0, distinct, shape).astype(dtype)


TOPK_CASES = [
    # shape, axis, k, distinct values (few -> many ties); n >= 4k takes the partition path
    ((3, 10), -1, 3, 4),
    ((3, 10), 1, 10, 4),
    ((3, 10), 0, 2, 3),
    ((2, 7, 3), 1, 0, 5),
    ((4, 300), 1, 5, 30),
    ((4, 300), 1, 5, 1000),
    ((300, 2), 0, 12, 3),
    ((2, 3, 257), 2, 64, 9),
]


@pytest.mark.parametrize("largest", [1, 0])
@pytest.mark.parametrize(("shape", "axis", "k", "distinct"), TOPK_CASES, ids=str)
def test_top_k(shape: tuple, axis: int, k: int, distinct: int, largest: int) -> None:
    x = _topk_input(shape, np.float32, distinct)
    attrs = {"axis": axis, "largest": largest}
    values, indices = run_node(
        "TopK", [x, np.array([k], np.int64)], attrs, n_outputs=2, constant_inputs=[1]
    )
    got_values, got_indices = red.top_k(x, np.array([k], np.int64), **attrs)
    _check(got_values, values)
    _check(got_indices, indices)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int8, np.int32, np.int64, np.uint8])
def test_top_k_types(dtype: type) -> None:
    x = _topk_input((3, 40), dtype, 7)
    for largest in (0, 1):
        refs = run_node(
            "TopK",
            [x, np.array([6], np.int64)],
            {"largest": largest},
            n_outputs=2,
            constant_inputs=[1],
        )
        for got, ref in zip(red.top_k(x, np.array([6]), largest=largest), refs, strict=True):
            _check(got, ref)


def test_top_k_hand_worked() -> None:
    x = np.float32([[2, 7, 7, 1, 7, 2]])
    # largest 4: the three 7s in index order (1, 2, 4), then the first 2 (index 0)
    values, indices = red.top_k(x, np.array([4]))
    np.testing.assert_array_equal(values, [[7, 7, 7, 2]])
    np.testing.assert_array_equal(indices, [[1, 2, 4, 0]])
    # smallest 3: 1 (index 3), then the 2s at 0 and 5
    values, indices = red.top_k(x, np.array([3]), largest=0, sorted=0)
    np.testing.assert_array_equal(values, [[1, 2, 2]])
    np.testing.assert_array_equal(indices, [[3, 0, 5]])
    assert indices.dtype == np.int64
    with pytest.raises(KernelError):
        red.top_k(x, np.array([7]))


CUMSUM_CASES = [
    ((5,), 0),
    ((3, 4), 1),
    ((3, 4), -2),
    ((2, 70, 3), 1),
    ((100, 80), 0),
    ((30, 300), 0),  # >= 200 values per step: the step-wise path
    ((2, 20, 150), 1),
    ((2, 3, 4), 2),
]


@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize(("shape", "axis"), CUMSUM_CASES, ids=str)
def test_cum_sum(shape: tuple, axis: int, exclusive: int, reverse: int) -> None:
    x = RNG.standard_normal(shape).astype(np.float32)
    attrs = {"exclusive": exclusive, "reverse": reverse}
    (ref,) = run_node("CumSum", [x, np.array(axis, np.int64)], attrs, constant_inputs=[1])
    _check(red.cum_sum(x, np.array(axis, np.int64), **attrs), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.float16])
@pytest.mark.parametrize("axis_dtype", [np.int32, np.int64])
def test_cum_sum_types(dtype: type, axis_dtype: type) -> None:
    x = RNG.integers(-5, 5, (70, 3)).astype(dtype)
    for axis in (0, 1):
        axis_t = np.array([axis], axis_dtype)
        (ref,) = run_node("CumSum", [x, axis_t], {"reverse": 1}, constant_inputs=[1])
        _check(red.cum_sum(x, axis_t, reverse=1), ref)


def test_cum_sum_hand_worked() -> None:
    x = np.int32([1, 2, 3, 4])
    axis = np.array(0)
    np.testing.assert_array_equal(red.cum_sum(x, axis), [1, 3, 6, 10])
    np.testing.assert_array_equal(red.cum_sum(x, axis, exclusive=1), [0, 1, 3, 6])
    np.testing.assert_array_equal(red.cum_sum(x, axis, reverse=1), [10, 9, 7, 4])
    np.testing.assert_array_equal(red.cum_sum(x, axis, exclusive=1, reverse=1), [9, 7, 4, 0])
    assert red.cum_sum(x, axis).dtype == np.int32
    # the step-wise path (>= 200 values per step) must agree with the same sums
    wide = np.repeat(x[:, None], 256, axis=1)
    np.testing.assert_array_equal(
        red.cum_sum(wide, axis, exclusive=1, reverse=1)[:, 5], [9, 7, 4, 0]
    )
