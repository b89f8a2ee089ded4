"""QuantizeLinear / DequantizeLinear kernels against onnxruntime (opset 21), plus
hand-worked values: rounding, saturation, per-axis and blocked parameters."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto

from runtime.kernels.quantize import dequantize_linear, quantize_linear
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(2024)

QTYPES = [np.int8, np.uint8, np.int16, np.uint16]


def _zero_point(dtype: type, shape: tuple[int, ...] = ()) -> np.ndarray:
    info = np.iinfo(dtype)
    return RNG.integers(max(info.min, -20), min(info.max, 20) + 1, shape).astype(dtype)


def _run_q(inputs: list, attrs: dict | None = None) -> None:
    attrs = attrs or {}
    (ref,) = run_node("QuantizeLinear", inputs, attrs)
    assert_matches(quantize_linear(*inputs, **attrs), ref)


def _run_dq(inputs: list, attrs: dict | None = None) -> None:
    attrs = attrs or {}
    (ref,) = run_node("DequantizeLinear", inputs, attrs)
    tol = {} if ref.dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-7}
    assert_matches(dequantize_linear(*inputs, **attrs), ref, **tol)


@pytest.mark.parametrize("dtype", QTYPES)
def test_quantize_per_tensor(dtype: type) -> None:
    # wide range: exercises saturation at both ends of every type
    x = (RNG.standard_normal((2, 3, 4, 5)) * 400).astype(np.float32)
    x.reshape(-1)[:6] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5]  # ties, rounded to even
    _run_q([x, np.float32(1.0), _zero_point(dtype)])
    _run_q([x, np.float32(3.7), _zero_point(dtype)])


def test_quantize_default_uint8_and_output_dtype() -> None:
    x = (RNG.standard_normal((3, 8)) * 100).astype(np.float32)
    _run_q([x, np.float32(0.75)])  # no zero point: uint8
    for output_dtype in (TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16):
        _run_q([x, np.float32(0.75)], {"output_dtype": output_dtype})
    # a one-element 1-D scale is per-tensor too
    _run_q([x, np.float32([0.5]), np.int8([3])])


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_quantize_per_axis(dtype: type, axis: int) -> None:
    x = (RNG.standard_normal((3, 4, 5)) * 60).astype(np.float32)
    n = x.shape[axis]
    scale = RNG.uniform(0.1, 2.0, n).astype(np.float32)
    _run_q([x, scale, _zero_point(dtype, (n,))], {"axis": axis})


@pytest.mark.parametrize(("shape", "axis", "block_size"), [((4, 6), 1, 2), ((6, 5), 0, 4)])
def test_quantize_blocked(shape: tuple[int, int], axis: int, block_size: int) -> None:
    x = (RNG.standard_normal(shape) * 50).astype(np.float32)
    params = list(shape)
    params[axis] = -(-shape[axis] // block_size)  # the last block may be partial
    scale = RNG.uniform(0.2, 1.5, params).astype(np.float32)
    zp = _zero_point(np.int8, tuple(params))
    _run_q([x, scale, zp], {"axis": axis, "block_size": block_size})


def test_quantize_float16() -> None:
    x = (RNG.standard_normal((4, 7)) * 30).astype(np.float16)
    _run_q([x, np.float16(0.25), np.int8(-3)])


def test_quantize_hand_worked() -> None:
    x = np.float32([0.5, 1.5, 2.5, -0.5, -1.5, 1000.0, -1000.0, 0.74])
    # half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2; saturate at +-127/-128;
    # 0.74 / 0.5 = 1.48 -> 1
    q = quantize_linear(x, np.float32(1.0), np.int8(0))
    np.testing.assert_array_equal(q[:7], [0, 2, 2, 0, -2, 127, -128])
    assert q.dtype == np.int8
    assert quantize_linear(np.float32([0.74]), np.float32(0.5), np.int8(0)).tolist() == [1]
    # uint8 with zero point 128: x / 0.5 + 128 -> 1 + 128 = 129; -1000 saturates to 0
    u = quantize_linear(np.float32([0.5, -1000.0]), np.float32(0.5), np.uint8(128))
    np.testing.assert_array_equal(u, [129, 0])
    # per-axis over axis 1: column scales 1 and 10 -> [[3, 0], [-4, 2]] after rounding
    per_axis = quantize_linear(
        np.float32([[3.2, 4.9], [-4.4, 15.0]]), np.float32([1.0, 10.0]), np.int8([0, 0])
    )
    np.testing.assert_array_equal(per_axis, [[3, 0], [-4, 2]])
    # blocked (block 2 along axis 1): the first two columns use 1.0, the third uses 4.0
    blocked = quantize_linear(
        np.float32([[1.0, 2.0, 8.0]]), np.float32([[1.0, 4.0]]), np.int8([[0, 1]]), block_size=2
    )
    np.testing.assert_array_equal(blocked, [[1, 2, 3]])


@pytest.mark.parametrize("dtype", [*QTYPES, np.int32])
def test_dequantize_per_tensor(dtype: type) -> None:
    info = np.iinfo(dtype)
    low, high = max(info.min, -(2**20)), min(info.max, 2**20)
    x = RNG.integers(low, high, (2, 3, 4), endpoint=True).astype(dtype)
    x.reshape(-1)[:2] = [info.min, info.max]
    zp = np.array(0, dtype) if dtype == np.int32 else _zero_point(dtype)
    _run_dq([x, np.float32(0.0625), zp])
    _run_dq([x, np.float32(0.3)])


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16])
def test_dequantize_per_axis(dtype: type, axis: int) -> None:
    x = _zero_point(dtype, (3, 4, 5))
    n = x.shape[axis]
    scale = RNG.uniform(0.01, 2.0, n).astype(np.float32)
    _run_dq([x, scale, _zero_point(dtype, (n,))], {"axis": axis})


@pytest.mark.parametrize(("shape", "axis", "block_size"), [((4, 6), 1, 3), ((5, 3), 0, 2)])
def test_dequantize_blocked(shape: tuple[int, int], axis: int, block_size: int) -> None:
    x = _zero_point(np.int8, shape)
    params = list(shape)
    params[axis] = -(-shape[axis] // block_size)
    scale = RNG.uniform(0.1, 1.0, params).astype(np.float32)
    _run_dq(
        [x, scale, _zero_point(np.int8, tuple(params))], {"axis": axis, "block_size": block_size}
    )


def test_dequantize_float16_scale() -> None:
    x = _zero_point(np.int8, (3, 6))
    _run_dq([x, np.float16(0.125), np.int8(2)])
    out = dequantize_linear(x, np.float16([0.5, 0.25, 2.0]), axis=0)
    assert out.dtype == np.float16


def test_dequantize_hand_worked() -> None:
    # (x - zp) * scale: (130 - 128) * 0.5 = 1, (0 - 128) * 0.5 = -64, (255 - 128) * 0.5 = 63.5
    out = dequantize_linear(np.uint8([130, 0, 255]), np.float32(0.5), np.uint8(128))
    np.testing.assert_array_equal(out, [1.0, -64.0, 63.5])
    assert out.dtype == np.float32
    # int32 (bias-like) values with no zero point: 1000 * 0.001 = 1
    np.testing.assert_allclose(dequantize_linear(np.int32([1000]), np.float32(0.001)), [1.0])
    # round trip: dequantize(quantize(x)) is within half a step of x inside the range
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    scale, zp = np.float32(2 / 255), np.uint8(128)
    back = dequantize_linear(quantize_linear(x, scale, zp), scale, zp)
    assert np.abs(back - x).max() <= scale / 2 + 1e-7


def test_unsupported_raise() -> None:
    x = np.float32([1.0, 2.0])
    with pytest.raises(KernelError, match="FLOAT8E4M3FN"):
        quantize_linear(x, np.float32(1.0), output_dtype=TensorProto.FLOAT8E4M3FN)
    with pytest.raises(KernelError, match="INT4"):
        quantize_linear(x, np.float32(1.0), output_dtype=TensorProto.INT4)
    with pytest.raises(KernelError):  # output_dtype contradicts the zero point
        quantize_linear(x, np.float32(1.0), np.int8(0), output_dtype=TensorProto.UINT8)
    with pytest.raises(KernelError):  # per-axis scale of the wrong length
        quantize_linear(np.zeros((2, 3), np.float32), np.float32([1, 2]), axis=1)
    with pytest.raises(KernelError):  # blocked scale of the wrong shape
        quantize_linear(np.zeros((2, 4), np.float32), np.ones((2, 3), np.float32), block_size=2)
    with pytest.raises(KernelError):
        dequantize_linear(np.float32([1.0]), np.float32(1.0))
    with pytest.raises(KernelError):
        dequantize_linear(np.int8([1]), np.float32(1.0), np.uint8(0))
