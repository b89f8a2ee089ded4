"""Conv and ConvTranspose kernels against onnxruntime (opset 21), plus hand-worked examples."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from runtime.kernels.conv import conv, conv_transpose
from runtime.kernels.registry import KernelError
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(11)


def _inputs(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], bias: int | None, dtype: type = np.float32
) -> list[np.ndarray]:
    """Input, weight scaled by 1/sqrt(fan-in) (so outputs stay O(1) and float32 sums
    keep a 1e-5 agreement), and an optional bias of length `bias`."""
    x = RNG.uniform(-1, 1, x_shape).astype(dtype)
    w = (RNG.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(dtype)
    return [x, w] if bias is None else [x, w, RNG.standard_normal(bias).astype(dtype)]


_check = partial(assert_matches, rtol=1e-5, atol=1e-5)


# (input shape, weight shape, attributes); bias is added for every case in a second variant
CONV_CASES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((1, 3, 9, 9), (4, 3, 3, 3), {}),
    ((2, 3, 8, 11), (5, 3, 3, 2), {"pads": [1, 0, 2, 1]}),  # batch 2, asymmetric pads
    ((1, 2, 9, 9), (3, 2, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 10, 7), (3, 2, 2, 2), {"strides": [3, 3]}),  # stride > kernel
    ((1, 2, 11, 11), (3, 2, 3, 3), {"dilations": [2, 3], "pads": [2, 1, 0, 3]}),
    ((1, 1, 7, 5), (1, 1, 3, 3), {"pads": [1, 1, 1, 1]}),  # one channel in and out
    ((1, 1, 7, 5), (6, 1, 3, 3), {"group": 1}),
    ((1, 6, 8, 8), (4, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((1, 6, 8, 8), (6, 2, 3, 1), {"group": 3, "strides": [2, 1]}),
    ((2, 5, 9, 8), (5, 1, 3, 3), {"group": 5, "pads": [1, 1, 1, 1]}),  # depthwise
    ((1, 4, 10, 9), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "pads": [1, 0, 1, 2]}),
    ((1, 3, 12, 12), (3, 1, 3, 3), {"group": 3, "dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((1, 3, 9, 9), (6, 1, 3, 3), {"group": 3, "strides": [2, 2]}),  # channel multiplier 2
    ((1, 4, 6, 6), (4, 1, 5, 5), {"group": 4, "auto_pad": "SAME_UPPER"}),
    ((1, 8, 7, 7), (5, 8, 1, 1), {}),  # pointwise
    ((1, 8, 7, 9), (5, 8, 1, 1), {"strides": [2, 2]}),
    ((1, 4, 4, 4), (2, 2, 1, 1), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((1, 2, 7, 8), (3, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 3]}),
    ((1, 2, 7, 8), (3, 2, 2, 4), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 2, 7, 8), (3, 2, 3, 3), {"auto_pad": "VALID", "strides": [2, 1]}),
    ((1, 2, 7, 8), (3, 2, 3, 3), {"kernel_shape": [3, 3], "auto_pad": "NOTSET"}),
    ((2, 3, 17), (4, 3, 5), {"strides": [2], "pads": [2, 1], "dilations": [2]}),  # 1-D
    ((1, 4, 15), (4, 1, 3), {"group": 4, "strides": [2], "pads": [1, 1]}),  # 1-D depthwise
    ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), {"pads": [1, 0, 1, 1, 1, 0], "strides": [1, 2, 2]}),
    ((1, 3, 5, 6, 7), (3, 1, 3, 3, 3), {"group": 3, "strides": [2, 1, 2]}),  # 3-D depthwise
]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize(("x_shape", "w_shape", "attrs"), CONV_CASES)
def test_conv_matches_onnxruntime(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], attrs: dict[str, Any], with_bias: bool
) -> None:
    inputs = _inputs(x_shape, w_shape, w_shape[0] if with_bias else None)
    _check(conv(*inputs, **attrs), run_node("Conv", inputs, attrs)[0])


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "attrs"),
    [  # real layer shapes of the zoo models (resnet18, mobilenetv2, yolov8n)
        ((1, 3, 64, 64), (16, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
        ((1, 64, 14, 14), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((1, 96, 28, 28), (96, 1, 3, 3), {"group": 96, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((1, 16, 4, 2100), (1, 16, 1, 1), {}),
    ],
)
def test_conv_zoo_shapes(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], attrs: dict[str, Any]
) -> None:
    inputs = _inputs(x_shape, w_shape, w_shape[0])
    _check(conv(*inputs, **attrs), run_node("Conv", inputs, attrs)[0])


def test_conv_float16_keeps_dtype() -> None:
    inputs = _inputs((1, 4, 6, 6), (4, 2, 3, 3), 4, np.float16)
    attrs = {"group": 2, "pads": [1, 1, 1, 1]}
    _check(conv(*inputs, **attrs), run_node("Conv", inputs, attrs)[0], rtol=1e-2, atol=1e-2)


def test_conv_hand_worked() -> None:
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    w = np.ones((1, 1, 2, 2), np.float32)
    # 2x2 box sums: 1+2+4+5=12, 2+3+5+6=16, 4+5+7+8=24, 5+6+8+9=28
    np.testing.assert_array_equal(conv(x, w)[0, 0], [[12, 16], [24, 28]])
    # padded by 1, stride 2: windows see x[0,0]=1 | x[0,1]+x[0,2]=5 | x[1,0]+x[2,0]=11 |
    # x[1,1]+x[1,2]+x[2,1]+x[2,2]=28; bias 0.5 added to each
    y = conv(x, w, np.array([0.5], np.float32), pads=[1, 1, 1, 1], strides=[2, 2])
    np.testing.assert_array_equal(y[0, 0], [[1.5, 5.5], [11.5, 28.5]])


def test_conv_same_with_dilation_hand_worked() -> None:
    """Spec formula (onnxruntime refuses dilated SAME): span (2-1)*2+1 = 3, output 6,
    total pad (6-1)+3-6 = 2, split 1|1."""
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 6)
    w = np.ones((1, 1, 2), np.float32)
    # padded [0,1,2,3,4,5,6,0]; y[o] = p[o] + p[o+2]
    y = conv(x, w, dilations=[2], auto_pad="SAME_UPPER")
    np.testing.assert_array_equal(y[0, 0], [2, 4, 6, 8, 10, 5])


def test_depthwise_hand_worked() -> None:
    x = np.array([[[1, 2, 3, 4]], [[10, 20, 30, 40]]], np.float32).reshape(1, 2, 1, 4)
    w = np.array([[[[1, -1]]], [[[0.5, 2]]]], np.float32)  # channel 0: x[i]-x[i+1]
    y = conv(x, w, group=2)
    # channel 0: 1-2, 2-3, 3-4 = -1 each; channel 1: 0.5*10+2*20=45, 0.5*20+2*30=70, 95
    np.testing.assert_array_equal(y[0, :, 0], [[-1, -1, -1], [45, 70, 95]])


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "attrs", "message"),
    [
        ((1, 4, 5, 5), (2, 3, 3, 3), {"group": 1}, "group"),
        ((1, 4, 5, 5), (3, 2, 3, 3), {"group": 2}, "group"),
        ((1, 2, 5, 5), (2, 2, 3, 3), {"auto_pad": "SAME"}, "auto_pad"),
        ((1, 2, 5, 5), (2, 2, 3, 3), {"kernel_shape": [2, 2]}, "kernel_shape"),
        ((1, 2, 5, 5), (2, 2, 3, 3), {"strides": [1]}, "strides"),
        ((1, 2, 2, 2), (2, 2, 3, 3), {}, "window"),
    ],
)
def test_conv_rejects(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], attrs: dict[str, Any], message: str
) -> None:
    with pytest.raises(KernelError, match=message):
        conv(*_inputs(x_shape, w_shape, None), **attrs)


def test_conv_rejects_bias_of_wrong_length() -> None:
    with pytest.raises(KernelError, match="bias"):
        conv(*_inputs((1, 2, 5, 5), (3, 2, 3, 3), 2))


def test_conv_rejects_integer_input() -> None:
    with pytest.raises(KernelError, match="dtype"):
        conv(np.ones((1, 1, 3, 3), np.int32), np.ones((1, 1, 1, 1), np.int32))


TRANSPOSE_CASES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((1, 2, 3, 3), (2, 3, 3, 3), {}),
    ((2, 3, 4, 5), (3, 2, 3, 3), {"strides": [2, 2]}),
    ((1, 2, 4, 4), (2, 2, 3, 3), {"strides": [2, 3], "pads": [1, 0, 1, 2]}),
    ((1, 2, 4, 4), (2, 2, 3, 3), {"strides": [2, 2], "output_padding": [1, 1]}),
    ((1, 2, 4, 4), (2, 1, 2, 2), {"strides": [2, 2]}),  # non-overlapping (U-Net upsampling)
    ((1, 2, 3, 5), (2, 2, 3, 2), {"dilations": [2, 2], "pads": [1, 1, 0, 0]}),
    ((1, 4, 3, 3), (4, 2, 3, 3), {"group": 2, "strides": [2, 2]}),
    ((1, 6, 3, 4), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
    ((1, 1, 3, 3), (1, 1, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    ((1, 2, 3, 3), (2, 1, 3, 3), {"strides": [2, 2], "output_shape": [6, 5]}),
    ((1, 2, 3, 4), (2, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 3, 4), (2, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 3, 4), (2, 2, 2, 4), {"strides": [1, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 3, 4), (2, 2, 3, 3), {"strides": [2, 1], "auto_pad": "VALID"}),
    ((2, 3, 5), (3, 2, 4), {"strides": [3], "pads": [1, 2], "output_padding": [2]}),  # 1-D
    ((1, 2, 2, 3, 3), (2, 2, 2, 3, 2), {"strides": [2, 1, 2], "pads": [0, 1, 0, 0, 1, 1]}),
]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize(("x_shape", "w_shape", "attrs"), TRANSPOSE_CASES)
def test_conv_transpose_matches_onnxruntime(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], attrs: dict[str, Any], with_bias: bool
) -> None:
    group = attrs.get("group", 1)
    inputs = _inputs(x_shape, w_shape, w_shape[1] * group if with_bias else None)
    _check(conv_transpose(*inputs, **attrs), run_node("ConvTranspose", inputs, attrs)[0])


def test_conv_transpose_full_rank_output_shape() -> None:
    """output_shape may also list N and C (onnxruntime only accepts the spatial sizes)."""
    inputs = _inputs((1, 2, 3, 3), (2, 1, 3, 3), 1)
    spatial = conv_transpose(*inputs, strides=[2, 2], output_shape=[6, 5])
    full = conv_transpose(*inputs, strides=[2, 2], output_shape=[1, 2, 6, 5])
    np.testing.assert_array_equal(spatial, full)


def test_conv_transpose_hand_worked() -> None:
    x = np.array([1, 2], np.float32).reshape(1, 1, 2)
    w = np.array([1, 10, 100], np.float32).reshape(1, 1, 3)
    # x0 spreads to [1, 10, 100] at 0..2 and x1 to [2, 20, 200] at 2..4 (stride 2)
    np.testing.assert_array_equal(conv_transpose(x, w, strides=[2])[0, 0], [1, 10, 102, 20, 200])
    # pads [1, 2] crop one element at the start and two at the end
    y = conv_transpose(x, w, strides=[2], pads=[1, 2])
    np.testing.assert_array_equal(y[0, 0], [10, 102])


def test_conv_transpose_same_beyond_natural_size() -> None:
    """SAME with kernel < stride: the spec's output size in*stride exceeds the scattered extent
    (onnxruntime clamps instead); the extension is zero, split as the spec splits pads."""
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 5)
    w = np.full((1, 1, 1), 2.0, np.float32)
    # natural extent 3*4+1 = 13 holds 2,4,..,10 at multiples of 3; output 15 adds one zero
    # in front (total pad -2, start pad -1) and one at the end
    expected = [0, 2, 0, 0, 4, 0, 0, 6, 0, 0, 8, 0, 0, 10, 0]
    for mode in ("SAME_UPPER", "SAME_LOWER"):
        np.testing.assert_array_equal(
            conv_transpose(x, w, strides=[3], auto_pad=mode)[0, 0], expected
        )


def test_conv_transpose_odd_same_padding_split() -> None:
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 4)
    w = np.array([1, 10], np.float32).reshape(1, 1, 2)
    # full result [1, 12, 23, 34, 40]; one element too many: SAME_UPPER drops it at the end,
    # SAME_LOWER at the start
    y_upper = conv_transpose(x, w, auto_pad="SAME_UPPER")
    y_lower = conv_transpose(x, w, auto_pad="SAME_LOWER")
    np.testing.assert_array_equal(y_upper[0, 0], [1, 12, 23, 34])
    np.testing.assert_array_equal(y_lower[0, 0], [12, 23, 34, 40])


def test_conv_transpose_rejects_group_mismatch() -> None:
    with pytest.raises(KernelError, match="group"):
        conv_transpose(*_inputs((1, 3, 4, 4), (3, 2, 3, 3), None), group=2)
