"""Normalization kernels against onnxruntime (opset 21), plus hand-worked examples."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from runtime.kernels.normalization import (
    batch_normalization,
    group_normalization,
    instance_normalization,
    layer_normalization,
    lp_normalization,
)
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(23)


_check = partial(assert_matches, rtol=1e-5, atol=1e-5)


def _data(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """Off-centre, scaled data, so that mean and variance both matter."""
    return (RNG.standard_normal(shape) * 3 + 1.5).astype(dtype)


def _channel_params(c: int, dtype: type = np.float32) -> list[np.ndarray]:
    """scale, bias, mean, var (var > 0)."""
    return [
        RNG.standard_normal(c).astype(dtype),
        RNG.standard_normal(c).astype(dtype),
        RNG.standard_normal(c).astype(dtype),
        RNG.uniform(0.1, 2.0, c).astype(dtype),
    ]


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 7), (2, 3, 5, 4), (1, 2, 3, 4, 5), (1, 1, 1, 1)])
@pytest.mark.parametrize("epsilon", [1e-5, 1e-2])
def test_batch_normalization_matches_onnxruntime(shape: tuple[int, ...], epsilon: float) -> None:
    inputs = [_data(shape), *_channel_params(shape[1])]
    y, mean, var = batch_normalization(*inputs, epsilon=epsilon)
    _check(y, run_node("BatchNormalization", inputs, {"epsilon": epsilon})[0])
    # inference mode leaves the running statistics as they were
    np.testing.assert_array_equal(mean, inputs[3])
    np.testing.assert_array_equal(var, inputs[4])


def test_batch_normalization_float16() -> None:
    inputs = [_data((1, 4, 3, 3), np.float16), *_channel_params(4, np.float16)]
    y, _, _ = batch_normalization(*inputs)
    _check(y, run_node("BatchNormalization", inputs)[0], rtol=1e-2, atol=1e-2)


def test_batch_normalization_hand_worked() -> None:
    x = np.array([1, 3], np.float32).reshape(1, 2, 1, 1)
    scale, bias = np.array([2, 1], np.float32), np.array([0, 1], np.float32)
    mean, var = np.array([0, 1], np.float32), np.array([1, 4], np.float32)
    # channel 0: 2 * (1 - 0) / sqrt(1) + 0 = 2; channel 1: 1 * (3 - 1) / sqrt(4) + 1 = 2
    y, _, _ = batch_normalization(x, scale, bias, mean, var, epsilon=0.0)
    np.testing.assert_array_equal(y.ravel(), [2, 2])


def test_batch_normalization_training_mode_hand_worked() -> None:
    # one channel, batch values 1 and 3: batch mean 2, population variance 1
    x = np.array([1, 3], np.float32).reshape(2, 1)
    scale, bias = np.array([2], np.float32), np.array([1], np.float32)
    mean, var = np.array([0], np.float32), np.array([5], np.float32)
    y, running_mean, running_var = batch_normalization(
        x, scale, bias, mean, var, epsilon=0.0, momentum=0.75, training_mode=1
    )
    # y = 2 * (x - 2) / 1 + 1 = [-1, 3]
    np.testing.assert_array_equal(y.ravel(), [-1, 3])
    # running = 0.75 * old + 0.25 * batch: mean 0.5, var 0.75 * 5 + 0.25 * 1 = 4
    np.testing.assert_allclose(running_mean, [0.5])
    np.testing.assert_allclose(running_var, [4.0])
    assert running_mean.dtype == np.float32 and y.dtype == np.float32


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 5, 4), (1, 2, 3, 4, 5), (1, 4, 1, 1)])
def test_instance_normalization_matches_onnxruntime(shape: tuple[int, ...]) -> None:
    x = _data(shape)
    scale, bias = _channel_params(shape[1])[:2]
    ref = run_node("InstanceNormalization", [x, scale, bias], {"epsilon": 1e-3})[0]
    _check(instance_normalization(x, scale, bias, epsilon=1e-3), ref)


def test_instance_normalization_hand_worked() -> None:
    x = np.array([1, 3], np.float32).reshape(1, 1, 2)
    # mean 2, variance 1: normalized [-1, 1], times 2 plus 1
    y = instance_normalization(x, np.array([2], np.float32), np.array([1], np.float32), epsilon=0)
    np.testing.assert_array_equal(y.ravel(), [-1, 3])


@pytest.mark.parametrize("axis", [-1, -2, 0, 1, 2, 3])
@pytest.mark.parametrize("with_bias", [False, True])
def test_layer_normalization_matches_onnxruntime(axis: int, with_bias: bool) -> None:
    x = _data((2, 3, 4, 5))
    normalized_shape = x.shape[axis % x.ndim :]
    inputs = [x, RNG.standard_normal(normalized_shape).astype(np.float32)]
    if with_bias:
        inputs.append(RNG.standard_normal(normalized_shape).astype(np.float32))
    attrs = {"axis": axis, "epsilon": 1e-4}
    refs = run_node("LayerNormalization", inputs, attrs, n_outputs=3)
    for got, ref in zip(layer_normalization(*inputs, **attrs), refs, strict=True):
        _check(got, ref)


def test_layer_normalization_broadcast_scale_and_float16() -> None:
    x = _data((2, 6, 8))
    scale = RNG.standard_normal((1, 8)).astype(np.float32)  # unidirectional broadcast
    refs = run_node("LayerNormalization", [x, scale], {}, n_outputs=3)
    for got, ref in zip(layer_normalization(x, scale), refs, strict=True):
        _check(got, ref)
    x16, scale16 = x.astype(np.float16), scale.astype(np.float16)
    refs = run_node("LayerNormalization", [x16, scale16], {}, n_outputs=3)
    y, mean, inv_std = layer_normalization(x16, scale16)
    _check(y, refs[0], rtol=1e-2, atol=1e-2)
    # statistics are computed and returned in float32 (stash_type=1)
    _check(mean, refs[1], rtol=1e-3, atol=1e-3)
    _check(inv_std, refs[2], rtol=1e-3, atol=1e-3)


def test_layer_normalization_hand_worked() -> None:
    x = np.array([[1, 3], [0, 4]], np.float32)
    y, mean, inv_std = layer_normalization(
        x, np.array([1, 2], np.float32), np.array([0, 1], np.float32), epsilon=0.0
    )
    # row 0: mean 2, variance 1; row 1: mean 2, variance 4 (1/std = 0.5); both normalize to
    # [-1, 1], then * [1, 2] + [0, 1] = [-1, 3]
    np.testing.assert_array_equal(y, [[-1, 3], [-1, 3]])
    np.testing.assert_array_equal(mean, [[2], [2]])
    np.testing.assert_array_equal(inv_std, [[1], [0.5]])


def test_layer_normalization_rejects() -> None:
    x = _data((2, 4))
    with pytest.raises(KernelError, match="stash_type"):
        layer_normalization(x, np.ones(4, np.float32), stash_type=11)
    with pytest.raises(KernelError, match="axis"):
        layer_normalization(x, np.ones(4, np.float32), axis=2)


@pytest.mark.parametrize("num_groups", [1, 2, 3, 6])
@pytest.mark.parametrize("shape", [(2, 6, 5), (1, 6, 4, 3), (2, 6, 2, 3, 2)])
def test_group_normalization_matches_onnxruntime(shape: tuple[int, ...], num_groups: int) -> None:
    x = _data(shape)
    scale, bias = _channel_params(shape[1])[:2]
    attrs = {"num_groups": num_groups, "epsilon": 1e-3}
    ref = run_node("GroupNormalization", [x, scale, bias], attrs)[0]
    _check(group_normalization(x, scale, bias, **attrs), ref)


def test_group_normalization_hand_worked() -> None:
    x = np.array([[1, 3], [5, 7]], np.float32).reshape(1, 2, 2)
    scale, bias = np.array([1, 2], np.float32), np.array([0, 1], np.float32)
    # one group: mean 4, variance (9+1+1+9)/4 = 5; channel 1 is scaled by 2 and shifted by 1
    y = group_normalization(x, scale, bias, num_groups=1, epsilon=0.0)
    root5 = np.sqrt(5.0)
    expected = [[-3 / root5, -1 / root5], [2 / root5 + 1, 6 / root5 + 1]]
    np.testing.assert_allclose(y[0], expected, rtol=1e-6)
    # two groups (= instance normalization): each channel becomes [-1, 1]
    y = group_normalization(x, scale, bias, num_groups=2, epsilon=0.0)
    np.testing.assert_allclose(y[0], [[-1, 1], [-1, 3]], rtol=1e-6)


def test_group_normalization_rejects() -> None:
    x = _data((1, 6, 3))
    ones = np.ones(6, np.float32)
    with pytest.raises(KernelError, match="num_groups"):
        group_normalization(x, ones, ones, num_groups=4)
    with pytest.raises(KernelError, match="num_groups"):
        group_normalization(x, ones, ones)
    with pytest.raises(KernelError, match="per channel"):
        group_normalization(x, np.ones(3, np.float32), np.ones(3, np.float32), num_groups=3)


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_matches_onnxruntime(axis: int, p: int) -> None:
    x = _data((3, 4, 5))
    x[0, 0, :] = 0  # an all-zero slice along the last axis
    _check(
        lp_normalization(x, axis=axis, p=p),
        run_node("LpNormalization", [x], {"axis": axis, "p": p})[0],
    )


def test_lp_normalization_hand_worked() -> None:
    x = np.array([[3, 4], [0, 0]], np.float32)
    # L2 of [3, 4] is 5; L1 is 7; an all-zero row stays zero instead of 0/0
    np.testing.assert_allclose(lp_normalization(x), [[0.6, 0.8], [0, 0]])
    np.testing.assert_allclose(lp_normalization(x, p=1), [[3 / 7, 4 / 7], [0, 0]])
    with pytest.raises(KernelError, match="p=3"):
        lp_normalization(x, p=3)
