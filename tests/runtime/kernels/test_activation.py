"""Activation kernels against onnxruntime (opset 21), plus hand-worked values and erf accuracy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from runtime.kernels import activation as act
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(1234)


def _data(shape: tuple[int, ...], dtype: type = np.float32, scale: float = 3.0) -> np.ndarray:
    """Random values plus the edges of the activations' branches (0, +-1, tails)."""
    x = RNG.standard_normal(shape) * scale
    flat = x.reshape(-1)
    special = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 0.5, -0.5, 25.0, -25.0, 90.0, -90.0, 1e-4, -1e-4]
    flat[: len(special)] = special[: flat.size]
    return x.astype(dtype)


def _tolerance(dtype: type) -> tuple[float, float]:
    # onnxruntime evaluates several of these with fast approximations (MLAS), a few ulp off
    return (2e-3, 2e-3) if dtype == np.float16 else (1e-5, 1e-6)


# op type, kernel, attributes
POINTWISE: list[tuple[str, Any, dict[str, Any]]] = [
    ("Relu", act.relu, {}),
    ("LeakyRelu", act.leaky_relu, {}),
    ("LeakyRelu", act.leaky_relu, {"alpha": 0.3}),
    ("LeakyRelu", act.leaky_relu, {"alpha": 1.7}),
    ("LeakyRelu", act.leaky_relu, {"alpha": -0.2}),
    ("Sigmoid", act.sigmoid, {}),
    ("Tanh", act.tanh, {}),
    ("HardSigmoid", act.hard_sigmoid, {}),
    ("HardSigmoid", act.hard_sigmoid, {"alpha": 0.5, "beta": 0.25}),
    ("HardSwish", act.hard_swish, {}),
    ("Elu", act.elu, {}),
    ("Elu", act.elu, {"alpha": 0.4}),
    ("Selu", act.selu, {}),
    ("Selu", act.selu, {"alpha": 2.0, "gamma": 0.5}),
    ("Celu", act.celu, {}),
    ("Celu", act.celu, {"alpha": 2.5}),
    ("ThresholdedRelu", act.thresholded_relu, {}),
    ("ThresholdedRelu", act.thresholded_relu, {"alpha": -0.5}),
    ("Erf", act.erf, {}),
    ("Gelu", act.gelu, {}),
    ("Gelu", act.gelu, {"approximate": "tanh"}),
    ("Softplus", act.softplus, {}),
    ("Softsign", act.softsign, {}),
    ("Mish", act.mish, {}),
    ("Shrink", act.shrink, {}),
    ("Shrink", act.shrink, {"lambd": 1.0, "bias": 0.25}),
]

# onnxruntime 1.31 has float16 CPU kernels for all of these but Celu
FP16 = [case for case in POINTWISE if case[0] != "Celu"]
FP64 = [case for case in POINTWISE if case[0] in ("Relu", "Sigmoid", "Tanh", "Shrink")]


def _ids(cases: list[tuple[str, Any, dict[str, Any]]]) -> list[str]:
    return [f"{op}-{attrs}" for op, _, attrs in cases]


@pytest.mark.parametrize(("op", "fn", "attrs"), POINTWISE, ids=_ids(POINTWISE))
def test_pointwise_float32(op: str, fn: Any, attrs: dict[str, Any]) -> None:
    x = _data((2, 3, 5, 7))
    (ref,) = run_node(op, [x], attrs)
    assert_matches(fn(x, **attrs), ref, *_tolerance(np.float32))


@pytest.mark.parametrize(("op", "fn", "attrs"), FP16, ids=_ids(FP16))
def test_pointwise_float16(op: str, fn: Any, attrs: dict[str, Any]) -> None:
    x = _data((3, 41), np.float16)
    (ref,) = run_node(op, [x], attrs)
    assert_matches(fn(x, **attrs), ref, *_tolerance(np.float16))


@pytest.mark.parametrize(("op", "fn", "attrs"), FP64, ids=_ids(FP64))
def test_pointwise_float64(op: str, fn: Any, attrs: dict[str, Any]) -> None:
    x = _data((4, 9), np.float64)
    (ref,) = run_node(op, [x], attrs)
    # onnxruntime's double Shrink rounds through float32, hence the loose tolerance
    assert_matches(fn(x, **attrs), ref, 1e-7, 1e-12)


@pytest.mark.parametrize("dtype", [np.int8, np.int32])
def test_relu_integers(dtype: type) -> None:
    x = np.array([[-128, -1, 0], [1, 5, 127]]).astype(dtype)
    (ref,) = run_node("Relu", [x])
    assert_matches(act.relu(x), ref, 0, 0)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8])
def test_shrink_integers(dtype: type) -> None:
    x = np.arange(-6, 7).astype(dtype) if dtype != np.uint8 else np.arange(13, dtype=dtype)
    attrs = {"lambd": 1.5, "bias": 1.5}
    (ref,) = run_node("Shrink", [x], attrs)
    assert_matches(act.shrink(x, **attrs), ref, 0, 0)


def test_pointwise_empty_and_scalar() -> None:
    for _, fn, attrs in POINTWISE:
        empty = np.zeros((0, 3), np.float32)
        assert fn(empty, **attrs).shape == (0, 3)
        scalar = fn(np.array(-2.0, np.float32), **attrs)
        assert isinstance(scalar, np.ndarray)
        assert scalar.shape == ()
        assert scalar.dtype == np.float32


def test_hand_worked_values() -> None:
    x = np.array([-2.0, -1.0, 0.0, 1.0, 3.0], np.float32)
    # Relu: negatives to 0
    np.testing.assert_array_equal(act.relu(x), [0, 0, 0, 1, 3])
    # LeakyRelu alpha=0.1: -2 * 0.1 = -0.2, -1 * 0.1 = -0.1
    np.testing.assert_allclose(act.leaky_relu(x, alpha=0.1), [-0.2, -0.1, 0, 1, 3], rtol=1e-6)
    # HardSigmoid (0.2x + 0.5, clamped): -2 -> 0.1, -1 -> 0.3, 0 -> 0.5, 1 -> 0.7, 3 -> 1.0
    np.testing.assert_allclose(act.hard_sigmoid(x), [0.1, 0.3, 0.5, 0.7, 1.0], rtol=1e-6)
    # HardSwish x * clamp(x/6 + 0.5): -2 * 1/6, -1 * 1/3, 0, 1 * 2/3, 3 * 1
    np.testing.assert_allclose(act.hard_swish(x), [-1 / 3, -1 / 3, 0, 2 / 3, 3], rtol=1e-6)
    # Sigmoid(0) = 1/2, Sigmoid(ln 3) = 1 / (1 + 1/3) = 3/4
    np.testing.assert_allclose(act.sigmoid(np.float32([0, math.log(3)])), [0.5, 0.75], 1e-6)
    # Elu alpha=1: -1 -> e^-1 - 1 = -0.6321206
    np.testing.assert_allclose(act.elu(np.float32([-1.0, 2.0])), [-0.6321206, 2.0], rtol=1e-6)
    # Softplus(0) = ln 2; Softsign(3) = 3 / 4
    np.testing.assert_allclose(act.softplus(np.float32([0.0])), [0.6931472], rtol=1e-6)
    np.testing.assert_allclose(act.softsign(np.float32([3.0, -1.0])), [0.75, -0.5], rtol=1e-6)
    # Shrink lambd=0.5 bias=0.5: -1 -> -1 + 0.5, 0.2 -> 0 (inside the band), 2 -> 2 - 0.5
    np.testing.assert_allclose(act.shrink(np.float32([-1, 0.2, 2]), bias=0.5), [-0.5, 0, 1.5])
    # ThresholdedRelu alpha=1: only values > 1 survive
    np.testing.assert_array_equal(act.thresholded_relu(x), [0, 0, 0, 0, 3])
    # Gelu(1) = 0.5 * (1 + erf(1/sqrt 2)) = 0.5 * 1.6826895 = 0.8413447
    np.testing.assert_allclose(act.gelu(np.float32([1.0, 0.0])), [0.8413447, 0.0], rtol=1e-6)


def test_softmax_hand_worked() -> None:
    # exp(0) : exp(ln 3) = 1 : 3, so 1/4 and 3/4; log of those for LogSoftmax
    x = np.float32([[0.0, math.log(3.0)]])
    np.testing.assert_allclose(act.softmax(x), [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(act.log_softmax(x), [[math.log(0.25), math.log(0.75)]], 1e-6)
    # Hardmax: the first of two equal maxima wins
    np.testing.assert_array_equal(act.hardmax(np.float32([[1, 5, 5, 2]])), [[0, 1, 0, 0]])


@pytest.mark.parametrize("axis", [-1, 0, 1, 2, -3])
@pytest.mark.parametrize(
    ("op", "fn"),
    [("Softmax", act.softmax), ("LogSoftmax", act.log_softmax), ("Hardmax", act.hardmax)],
)
def test_softmax_family(op: str, fn: Any, axis: int) -> None:
    x = _data((3, 4, 5), scale=4.0)
    x[0, 0, :] = 1000.0  # overflows exp without the max shift
    x[1, :, 1] = 7.0  # ties for Hardmax
    (ref,) = run_node(op, [x], {"axis": axis})
    assert_matches(fn(x, axis=axis), ref, 1e-5, 1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_float16(op: str) -> None:
    fn = {"Softmax": act.softmax, "LogSoftmax": act.log_softmax, "Hardmax": act.hardmax}[op]
    x = _data((4, 6), np.float16)
    (ref,) = run_node(op, [x], {"axis": 1})
    assert_matches(fn(x, axis=1), ref, 2e-3, 2e-3)


def test_softmax_default_axis_is_last() -> None:
    x = _data((2, 3, 4))
    np.testing.assert_allclose(act.softmax(x), act.softmax(x, axis=2))
    with pytest.raises(KernelError):
        act.softmax(x, axis=3)


CLIP_CASES = [
    ("both", 0.0, 6.0),
    ("min only", -1.0, None),
    ("max only", None, 2.5),
    ("none", None, None),
    ("min > max", 3.0, 1.0),
]


@pytest.mark.parametrize(("name", "lo", "hi"), CLIP_CASES, ids=[c[0] for c in CLIP_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.int32, np.int64, np.uint8])
def test_clip(name: str, lo: float | None, hi: float | None, dtype: type) -> None:
    x = _data((3, 7), np.float32)
    x = x.astype(dtype) if np.dtype(dtype).kind == "f" else (x * 10).astype(np.int64).astype(dtype)
    if np.dtype(dtype).kind == "u":
        lo = None if lo is None else abs(lo)
    bounds = [None if v is None else np.array(v).astype(dtype) for v in (lo, hi)]
    inputs = [x, *bounds]
    while inputs[-1] is None:
        inputs.pop()
    (ref,) = run_node("Clip", inputs)
    assert_matches(act.clip(*inputs), ref, 0, 0)


def test_clip_nan_propagates() -> None:
    x = np.float32([np.nan, -5, 5])
    out = act.clip(x, np.float32(0), np.float32(1))
    np.testing.assert_array_equal(out, [np.nan, 0, 1])


PRELU_SLOPES = [(1,), (4, 1, 1), (5,), (2, 4, 3, 5), (1, 4, 1, 1), ()]


@pytest.mark.parametrize("slope_shape", PRELU_SLOPES, ids=str)
def test_prelu_broadcast(slope_shape: tuple[int, ...]) -> None:
    x = _data((2, 4, 3, 5))
    slope = (RNG.standard_normal(slope_shape) * 0.5).astype(np.float32)
    (ref,) = run_node("PRelu", [x, slope])
    assert_matches(act.prelu(x, slope), ref, 1e-6, 1e-7)


def test_prelu_float16_and_bad_broadcast() -> None:
    x = _data((3, 4), np.float16)
    slope = np.float16([0.1, 0.2, -0.3, 2.0])
    (ref,) = run_node("PRelu", [x, slope])
    assert_matches(act.prelu(x, slope), ref, 1e-3, 1e-3)
    # slope must broadcast to x without growing it (unidirectional)
    with pytest.raises(KernelError):
        act.prelu(np.zeros((4,), np.float32), np.zeros((3, 4), np.float32))


def test_prelu_int32_hand_worked() -> None:
    # -4 * 3 = -12, -1 * -2 = 2, positives unchanged
    x = np.int32([[-4, 5], [-1, 7]])
    slope = np.int32([[3], [-2]])
    np.testing.assert_array_equal(act.prelu(x, slope), [[-12, 5], [2, 7]])


def test_erf_accuracy_dense_grid() -> None:
    grid = np.linspace(-6.0, 6.0, 240_001)
    exact = np.array([math.erf(v) for v in grid])
    err = np.abs(act.erf(grid) - exact).max()
    assert err <= 1e-8, err  # the fit's bound is 4.5e-9
    g32 = grid.astype(np.float32)
    exact32 = np.array([math.erf(float(v)) for v in g32])
    err32 = np.abs(act.erf(g32).astype(np.float64) - exact32).max()
    assert err32 <= 3.5e-8, err32  # half a float32 ulp below 1 (2.98e-8) plus the fit's error


def test_erf_special_values() -> None:
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 40.0])
    out = act.erf(x)
    np.testing.assert_array_equal(out[:5], [0.0, 0.0, 1.0, -1.0, np.nan])
    # small arguments keep their relative precision: erf(x) ~ 2x / sqrt(pi)
    np.testing.assert_allclose(out[5:7], [1.1283791670955126e-30, -1.1283791670955126e-30])
    assert out[7] == 1.0
    grid = np.linspace(0, 5, 1001)
    np.testing.assert_array_equal(act.erf(-grid), -act.erf(grid))  # odd, bit for bit
    assert act.erf(np.float16([0.5])).dtype == np.float16


def test_large_arguments_stay_finite() -> None:
    x = np.float32([-1e4, -200, 200, 1e4])
    np.testing.assert_array_equal(act.sigmoid(x), [0, 0, 1, 1])
    np.testing.assert_array_equal(act.softplus(x), [0, 0, 200, 1e4])
    np.testing.assert_array_equal(act.elu(x), [-1, -1, 200, 1e4])
    np.testing.assert_array_equal(act.mish(x), [-0.0, -0.0, 200, 1e4])


def test_unsupported_inputs_raise() -> None:
    with pytest.raises(KernelError):
        act.sigmoid(np.array([1, 2], np.int32))
    with pytest.raises(KernelError):
        act.gelu(np.float32([1.0]), approximate="erf")
    with pytest.raises(KernelError):
        act.clip(np.float32([1.0]), np.float32([0.0, 1.0]))
    with pytest.raises(KernelError):
        act.celu(np.float32([1.0]), alpha=0.0)
