"""Elementwise kernels against onnxruntime (opset 21), plus hand-worked values."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from runtime.kernels import elementwise as ew
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(99)

BROADCASTS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((1,), ())]


def _values(shape: tuple[int, ...], dtype: type, low: int = -20, high: int = 20) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (RNG.standard_normal(shape) * 4).astype(dt)
    if dt.kind == "b":
        return RNG.integers(0, 2, shape).astype(dt)
    low = max(low, int(np.iinfo(dt).min))
    return RNG.integers(low, high, shape).astype(dt)


def _nonzero(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    x = _values(shape, dtype, 1, 9)
    if np.dtype(dtype).kind != "u":
        x = x * np.where(RNG.integers(0, 2, shape), 1, -1).astype(dtype)
    return np.asarray(x, dtype)


_check = partial(assert_matches, rtol=1e-6, atol=1e-6)


def _tol(dtype: type) -> dict[str, float]:
    return {"rtol": 1e-3, "atol": 1e-3} if dtype == np.float16 else {}


ARITH = [("Add", ew.add), ("Sub", ew.sub), ("Mul", ew.mul)]
ARITH_TYPES = [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int32, np.int64]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize("dtype", ARITH_TYPES)
@pytest.mark.parametrize(("op", "fn"), ARITH, ids=[a[0] for a in ARITH])
def test_add_sub_mul(op: str, fn: Any, dtype: type, shapes: tuple) -> None:
    a, b = _values(shapes[0], dtype), _values(shapes[1], dtype)
    (ref,) = run_node(op, [a, b])
    _check(fn(a, b), ref, **_tol(dtype))


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int64])
def test_div(dtype: type, shapes: tuple) -> None:
    a, b = _values(shapes[0], dtype), _nonzero(shapes[1], dtype)
    (ref,) = run_node("Div", [a, b])
    _check(ew.div(a, b), ref, **_tol(dtype))


def test_div_hand_worked() -> None:
    # C division truncates toward zero: 7/2 = 3, -7/2 = -3 (numpy's // gives -4), 7/-2 = -3
    a = np.int32([7, -7, 7, -7, 6, -6])
    b = np.int32([2, 2, -2, -2, 3, 3])
    np.testing.assert_array_equal(ew.div(a, b), [3, -3, -3, 3, 2, -2])
    assert ew.div(a, b).dtype == np.int32
    # floats: IEEE, 1/0 = inf
    np.testing.assert_array_equal(
        ew.div(np.float32([1, -1]), np.float32([0, 0])), [np.inf, -np.inf]
    )
    with pytest.raises(KernelError):
        ew.div(np.int32([1]), np.int32([0]))


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8])
def test_mod_integers(dtype: type, fmod: int) -> None:
    a, b = _values((4, 5), dtype), _nonzero((5,), dtype)
    (ref,) = run_node("Mod", [a, b], {"fmod": fmod})
    _check(ew.mod(a, b, fmod=fmod), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_mod_float(dtype: type) -> None:
    a, b = _values((3, 4), dtype), _nonzero((4,), dtype)
    (ref,) = run_node("Mod", [a, b], {"fmod": 1})
    _check(ew.mod(a, b, fmod=1), ref, **_tol(dtype))
    with pytest.raises(KernelError):
        ew.mod(a, b)  # fmod=0 is integer-only in opset 21


def test_mod_hand_worked() -> None:
    a, b = np.int32([7, -7, 7, -7]), np.int32([3, 3, -3, -3])
    # fmod=0 takes the divisor's sign (Python %): 1, 2, -2, -1
    np.testing.assert_array_equal(ew.mod(a, b), [1, 2, -2, -1])
    # fmod=1 takes the dividend's sign (C fmod): 1, -1, 1, -1
    np.testing.assert_array_equal(ew.mod(a, b, fmod=1), [1, -1, 1, -1])


POW_CASES = [
    (np.float32, np.float32),
    (np.float32, np.int64),
    (np.float32, np.int32),
    (np.float16, np.float16),
    (np.float64, np.float32),
    (np.int32, np.int32),
    (np.int64, np.int64),
    (np.int32, np.float32),
    (np.int64, np.float32),
]


@pytest.mark.parametrize(("base", "exponent"), POW_CASES, ids=str)
def test_pow(base: type, exponent: type) -> None:
    x = np.abs(_values((3, 4), base)) if np.dtype(base).kind == "f" else _values((3, 4), base)
    if np.dtype(base).kind == "f":
        x = x + base(0.5)
    if np.dtype(exponent).kind == "f":
        y = (RNG.uniform(-2, 3, (4,))).astype(exponent)
    else:
        y = RNG.integers(0, 4, (4,)).astype(exponent)
    (ref,) = run_node("Pow", [x, y])
    _check(ew.pow_(x, y), ref, rtol=1e-3 if base == np.float16 else 1e-5, atol=1e-5)


def test_pow_hand_worked() -> None:
    # squares take the exact path; 2^-1 on an int32 base truncates 0.5 to 0, 9^0.5 = 3
    np.testing.assert_array_equal(ew.pow_(np.float32([3, -2]), np.array(2, np.int64)), [9, 4])
    out = ew.pow_(np.int32([2, 9, -2]), np.float32([-1, 0.5, 3]))
    np.testing.assert_array_equal(out, [0, 3, -8])
    assert out.dtype == np.int32
    assert ew.pow_(np.float32([2]), np.float64([0.5])).dtype == np.float32


FLOAT_UNARY = {
    "Sqrt": (0.01, 9.0),
    "Exp": (-5.0, 5.0),
    "Log": (0.01, 9.0),
    "Reciprocal": (0.5, 4.0),
    "Floor": (-5.0, 5.0),
    "Ceil": (-5.0, 5.0),
    "Round": (-5.0, 5.0),
    "Sin": (-6.0, 6.0),
    "Cos": (-6.0, 6.0),
    "Tan": (-1.4, 1.4),
    "Asin": (-0.99, 0.99),
    "Acos": (-0.99, 0.99),
    "Atan": (-6.0, 6.0),
    "Sinh": (-4.0, 4.0),
    "Cosh": (-4.0, 4.0),
    "Asinh": (-6.0, 6.0),
    "Acosh": (1.0, 6.0),
    "Atanh": (-0.99, 0.99),
    "Abs": (-5.0, 5.0),
    "Neg": (-5.0, 5.0),
    "Sign": (-2.0, 2.0),
}
FP16_OR_64 = {"Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sin", "Cos", "Abs"}


@pytest.mark.parametrize("op", sorted(FLOAT_UNARY))
def test_unary_float32(op: str) -> None:
    low, high = FLOAT_UNARY[op]
    x = RNG.uniform(low, high, (3, 17)).astype(np.float32)
    x[0, :4] = [low, high, 0.5 if low < 0.5 < high else low, 2.5 if high > 2.5 else high]
    (ref,) = run_node(op, [x])
    _check(ew.UNARY_KERNELS[op](x), ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("op", sorted(FP16_OR_64))
def test_unary_float16_float64(op: str, dtype: type) -> None:
    low, high = FLOAT_UNARY[op]
    x = RNG.uniform(low, high, (2, 9)).astype(dtype)
    (ref,) = run_node(op, [x])
    _check(ew.UNARY_KERNELS[op](x), ref, rtol=1e-3 if dtype == np.float16 else 1e-12, atol=0)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
@pytest.mark.parametrize("op", ["Abs", "Neg", "Sign"])
def test_unary_integers(op: str, dtype: type) -> None:
    x = _values((4, 5), dtype)
    (ref,) = run_node(op, [x])
    _check(ew.UNARY_KERNELS[op](x), ref)


def test_unary_hand_worked() -> None:
    # Round is half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -2.5 -> -2
    out = ew.UNARY_KERNELS["Round"](np.float32([0.5, 1.5, 2.5, -0.5, -2.5, 2.6]))
    np.testing.assert_array_equal(out, [0, 2, 2, -0.0, -2, 3])
    np.testing.assert_array_equal(ew.UNARY_KERNELS["Sign"](np.int32([-7, 0, 3])), [-1, 0, 1])
    np.testing.assert_array_equal(ew.UNARY_KERNELS["Sqrt"](np.float32([4, 2.25])), [2, 1.5])
    with pytest.raises(KernelError):
        ew.UNARY_KERNELS["Sqrt"](np.int32([4]))


VARIADIC = [("Max", ew.max_), ("Min", ew.min_), ("Sum", ew.sum_), ("Mean", ew.mean)]
VARIADIC_SHAPES = [[(3, 4)], [(3, 4), (3, 4)], [(2, 1, 4), (3, 1), (4,)], [(3,), (2, 3), ()]]


@pytest.mark.parametrize("shapes", VARIADIC_SHAPES, ids=str)
@pytest.mark.parametrize(("op", "fn"), VARIADIC, ids=[v[0] for v in VARIADIC])
def test_variadic(op: str, fn: Any, shapes: list) -> None:
    inputs = [_values(s, np.float32) for s in shapes]
    (ref,) = run_node(op, inputs)
    _check(fn(*inputs), ref)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.float16])
@pytest.mark.parametrize(("op", "fn"), VARIADIC[:2], ids=["Max", "Min"])
def test_max_min_types(op: str, fn: Any, dtype: type) -> None:
    inputs = [_values((2, 3), dtype), _values((3,), dtype), _values((2, 1), dtype)]
    (ref,) = run_node(op, inputs)
    _check(fn(*inputs), ref)


def test_variadic_hand_worked() -> None:
    a, b, c = np.float32([1, 5, 2]), np.float32([4, 0, 2]), np.float32([[1], [7]])
    # elementwise over the broadcast (2, 3): max -> [[4, 5, 2], [7, 7, 7]]
    np.testing.assert_array_equal(ew.max_(a, b, c), [[4, 5, 2], [7, 7, 7]])
    # sum -> [[6, 6, 5], [12, 12, 11]]; mean = sum / 3
    np.testing.assert_array_equal(ew.sum_(a, b, c), [[6, 6, 5], [12, 12, 11]])
    np.testing.assert_allclose(ew.mean(a, b, c), [[2, 2, 5 / 3], [4, 4, 11 / 3]], rtol=1e-6)
    # NaN propagates through Max and Min, as in onnxruntime
    nan = ew.max_(np.float32([1, np.nan]), np.float32([np.nan, 2]))
    assert np.isnan(nan).all()
    single = ew.sum_(a)
    assert single is not a
    np.testing.assert_array_equal(single, a)
    with pytest.raises(KernelError):
        ew.max_(np.float32([1]), np.int32([1]))


COMPARE = [
    ("Equal", ew.equal),
    ("Greater", ew.greater),
    ("GreaterOrEqual", ew.greater_or_equal),
    ("Less", ew.less),
    ("LessOrEqual", ew.less_or_equal),
]


@pytest.mark.parametrize("shapes", BROADCASTS[1:3], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int64, np.uint8])
@pytest.mark.parametrize(("op", "fn"), COMPARE, ids=[c[0] for c in COMPARE])
def test_compare(op: str, fn: Any, dtype: type, shapes: tuple) -> None:
    a, b = _values(shapes[0], dtype, -3, 3), _values(shapes[1], dtype, -3, 3)
    if np.dtype(dtype).kind == "f":
        a = np.round(a)  # make equality cases appear
        b = np.round(b)
    (ref,) = run_node(op, [a, b])
    _check(fn(a, b), ref)


def test_equal_bool_and_strings() -> None:
    a, b = np.array([True, False, True]), np.array([True, True, False])
    (ref,) = run_node("Equal", [a, b])
    _check(ew.equal(a, b), ref)
    words = np.array(["relu", "conv", "add"], dtype=object)
    out = ew.equal(words, np.array(["relu"], dtype=object))
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, [True, False, False])
    # NaN compares unequal to everything, itself included
    np.testing.assert_array_equal(ew.equal(np.float32([np.nan]), np.float32([np.nan])), [False])


LOGIC = [("And", ew.and_), ("Or", ew.or_), ("Xor", ew.xor)]


@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
@pytest.mark.parametrize(("op", "fn"), LOGIC, ids=[v[0] for v in LOGIC])
def test_logic(op: str, fn: Any, shapes: tuple) -> None:
    a, b = _values(shapes[0], np.bool_), _values(shapes[1], np.bool_)
    (ref,) = run_node(op, [a, b])
    _check(fn(a, b), ref)


def test_not_and_logic_hand_worked() -> None:
    t, f = np.array([True, True, False, False]), np.array([True, False, True, False])
    np.testing.assert_array_equal(ew.and_(t, f), [True, False, False, False])
    np.testing.assert_array_equal(ew.or_(t, f), [True, True, True, False])
    np.testing.assert_array_equal(ew.xor(t, f), [False, True, True, False])
    np.testing.assert_array_equal(ew.not_(f), [False, True, False, True])
    (ref,) = run_node("Not", [f])
    _check(ew.not_(f), ref)
    with pytest.raises(KernelError):
        ew.and_(np.int32([1]), np.int32([1]))


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64])
def test_bit_shift(dtype: type, direction: str) -> None:
    x = RNG.integers(0, 200, (3, 4)).astype(dtype)
    y = RNG.integers(0, 8, (4,)).astype(dtype)
    (ref,) = run_node("BitShift", [x, y], {"direction": direction})
    _check(ew.bit_shift(x, y, direction=direction), ref)


def test_bit_shift_hand_worked() -> None:
    # 16 << 1 = 32, 4 << 2 = 16, 1 << 3 = 8; 200 << 1 = 400 wraps to 144 in uint8
    x, y = np.uint8([16, 4, 1, 200]), np.uint8([1, 2, 3, 1])
    np.testing.assert_array_equal(ew.bit_shift(x, y, direction="LEFT"), [32, 16, 8, 144])
    np.testing.assert_array_equal(ew.bit_shift(x, y, direction="RIGHT"), [8, 1, 0, 100])
    with pytest.raises(KernelError):
        ew.bit_shift(x, y)
    with pytest.raises(KernelError):
        ew.bit_shift(np.int32([1]), np.int32([1]), direction="LEFT")


WHERE_SHAPES = [((3, 4), (3, 4), (3, 4)), ((4,), (3, 1), ()), ((2, 1, 4), (4,), (3, 1))]


@pytest.mark.parametrize("shapes", WHERE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.uint8])
def test_where(dtype: type, shapes: tuple) -> None:
    cond = _values(shapes[0], np.bool_)
    x, y = _values(shapes[1], dtype), _values(shapes[2], dtype)
    (ref,) = run_node("Where", [cond, x, y])
    _check(ew.where(cond, x, y), ref)


def test_where_hand_worked() -> None:
    cond = np.array([[True, False], [False, True]])
    out = ew.where(cond, np.float32([1, 2]), np.float32(-1))
    np.testing.assert_array_equal(out, [[1, -1], [-1, 2]])
    with pytest.raises(KernelError):
        ew.where(np.int32([1]), np.float32([1]), np.float32([2]))


IS_INF_FLAGS = [(1, 1), (1, 0), (0, 1), (0, 0)]


@pytest.mark.parametrize(("neg", "pos"), IS_INF_FLAGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_is_inf(dtype: type, neg: int, pos: int) -> None:
    x = np.array([1.0, np.inf, -np.inf, np.nan, 0.0, -3.0], dtype)
    attrs = {"detect_negative": neg, "detect_positive": pos}
    (ref,) = run_node("IsInf", [x], attrs)
    _check(ew.is_inf(x, **attrs), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_is_nan(dtype: type) -> None:
    x = np.array([[1.0, np.nan], [-np.inf, np.nan]], dtype)
    (ref,) = run_node("IsNaN", [x])
    _check(ew.is_nan(x), ref)
    np.testing.assert_array_equal(ew.is_nan(x), [[False, True], [False, True]])


def test_scalar_inputs_give_arrays() -> None:
    a, b = np.array(3, np.int32), np.array(-2, np.int32)
    for out, expected in [
        (ew.add(a, b), 1),
        (ew.div(a, b), -1),
        (ew.mod(a, b), -1),
        (ew.sum_(a, b, a), 4),
        (ew.less(a, b), False),
        (ew.pow_(a, np.array(2, np.int32)), 9),
    ]:
        assert isinstance(out, np.ndarray)
        assert out.shape == ()
        assert out == expected
    assert ew.mean(np.float32(1), np.float32(2), np.float32(6)).shape == ()


def test_mismatched_dtypes_raise() -> None:
    with pytest.raises(KernelError):
        ew.add(np.float32([1]), np.float64([1]))
    with pytest.raises(KernelError):
        ew.less(np.int32([1]), np.int64([1]))
