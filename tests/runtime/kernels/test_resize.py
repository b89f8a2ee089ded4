"""Resize kernel against onnxruntime (opset 21), plus hand-worked examples.

Scales are chosen exactly representable in binary, so that coordinates (and the ties of the
nearest modes) are the same whether computed in float32 (onnxruntime) or float64 (here).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from runtime.kernels.registry import KernelError
from runtime.kernels.resize import resize
from tests.helpers.compare import assert_matches
from tests.helpers.ort import run_node

RNG = np.random.default_rng(17)

COORDINATE_MODES = [
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
SCALES = [[1, 1, 2, 2], [1, 1, 0.5, 0.5], [1, 1, 1.5, 0.75], [1, 1, 3, 0.25]]
SIZES = [[1, 2, 7, 3], [1, 2, 3, 10], [1, 2, 1, 1]]


_check = partial(assert_matches, rtol=1e-5, atol=1e-5)


def _run_both(
    x: np.ndarray,
    attrs: dict[str, Any],
    scales: list[float] | None = None,
    sizes: list[int] | None = None,
    roi: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(this kernel's output, onnxruntime's) for Resize with the given optional inputs."""
    inputs: list[np.ndarray | None] = [x, None if roi is None else np.array(roi, np.float32)]
    if scales is not None:
        inputs.append(np.array(scales, np.float32))
    else:
        inputs += [None, np.array(sizes, np.int64)]
    constant = [i for i in range(1, len(inputs)) if inputs[i] is not None]
    ref = run_node("Resize", inputs, attrs, constant_inputs=constant)[0]
    return resize(*inputs, **attrs), ref


def _image(shape: tuple[int, ...] = (1, 2, 5, 6), dtype: type = np.float32) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("scales", SCALES)
@pytest.mark.parametrize("coordinate_mode", COORDINATE_MODES)
@pytest.mark.parametrize("nearest_mode", NEAREST_MODES)
def test_nearest_scales(scales: list[float], coordinate_mode: str, nearest_mode: str) -> None:
    attrs = {
        "mode": "nearest",
        "coordinate_transformation_mode": coordinate_mode,
        "nearest_mode": nearest_mode,
    }
    _check(*_run_both(_image(), attrs, scales=scales))


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", SCALES)
@pytest.mark.parametrize("coordinate_mode", COORDINATE_MODES)
def test_interpolating_scales(mode: str, scales: list[float], coordinate_mode: str) -> None:
    attrs = {"mode": mode, "coordinate_transformation_mode": coordinate_mode}
    _check(*_run_both(_image(), attrs, scales=scales))


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("coordinate_mode", COORDINATE_MODES)
def test_sizes(mode: str, sizes: list[int], coordinate_mode: str) -> None:
    attrs = {"mode": mode, "coordinate_transformation_mode": coordinate_mode}
    _check(*_run_both(_image(), attrs, sizes=sizes))


@pytest.mark.parametrize(
    "attrs",
    [
        {"mode": "cubic", "cubic_coeff_a": -0.5},
        {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1},
        {"mode": "cubic", "exclude_outside": 1, "coordinate_transformation_mode": "asymmetric"},
        {"mode": "linear", "exclude_outside": 1, "antialias": 1},
    ],
)
@pytest.mark.parametrize("scales", SCALES)
def test_cubic_coefficient_and_exclude_outside(attrs: dict[str, Any], scales: list[float]) -> None:
    _check(*_run_both(_image(), attrs, scales=scales))


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize(
    ("scales", "sizes"),
    [([1, 1, 0.5, 0.25], None), ([1, 1, 0.75, 0.5], None), (None, [1, 2, 4, 3])],
)
@pytest.mark.parametrize("coordinate_mode", ["half_pixel", "align_corners", "asymmetric"])
def test_antialias(
    mode: str, scales: list[float] | None, sizes: list[int] | None, coordinate_mode: str
) -> None:
    attrs = {"mode": mode, "antialias": 1, "coordinate_transformation_mode": coordinate_mode}
    x = _image((1, 2, 9, 11))
    _check(*_run_both(x, attrs, scales=scales, sizes=sizes))


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize(
    ("scales", "sizes", "roi"),
    [
        # roi values exact in float32, so that float32 and float64 coordinates agree
        ([1, 1, 2, 0.5], None, [0, 0, 0.25, 0.125, 1, 1, 0.75, 0.875]),
        (None, [1, 2, 4, 5], [0, 0, -0.25, 0.375, 1, 1, 1.25, 0.625]),
        (None, [1, 2, 1, 3], [0, 0, 0.125, 0.25, 1, 1, 0.625, 0.75]),
    ],
)
@pytest.mark.parametrize("extrapolation_value", [0.0, 10.0])
def test_tf_crop_and_resize(
    mode: str,
    scales: list[float] | None,
    sizes: list[int] | None,
    roi: list[float],
    extrapolation_value: float,
) -> None:
    attrs = {
        "mode": mode,
        "coordinate_transformation_mode": "tf_crop_and_resize",
        "extrapolation_value": extrapolation_value,
    }
    _check(*_run_both(_image(), attrs, scales=scales, sizes=sizes, roi=roi))


@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [-1], [1]])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_axes(axes: list[int], mode: str) -> None:
    factors = {2: 2.0, 3: 0.5, -1: 1.5, 1: 2.0}
    attrs = {"mode": mode, "axes": axes}
    _check(*_run_both(_image(), attrs, scales=[factors[a] for a in axes]))
    sizes = {2: 3, 3: 9, -1: 4, 1: 3}
    _check(*_run_both(_image(), attrs, sizes=[sizes[a] for a in axes]))


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("sizes", [[7, 7], [3, 10], [10, 4]])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_keep_aspect_ratio_policy(policy: str, sizes: list[int], mode: str) -> None:
    attrs = {"mode": mode, "axes": [2, 3], "keep_aspect_ratio_policy": policy}
    _check(*_run_both(_image(), attrs, sizes=sizes))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_integer_inputs_nearest(dtype: type) -> None:
    _check(*_run_both(_image(dtype=dtype), {"mode": "nearest"}, scales=[1, 1, 2, 1.5]))


def test_integer_inputs_interpolated_are_rounded() -> None:
    """Interpolated integers are rounded to nearest (even) and saturated, as the ONNX reference
    does; onnxruntime truncates instead."""
    x = np.array([0, 3], np.uint8)
    # half_pixel x2: coordinates -0.25, 0.25, 0.75, 1.25 -> 0, 0.75, 2.25, 3
    np.testing.assert_array_equal(
        resize(x, None, np.array([2], np.float32), mode="linear"), [0, 1, 2, 3]
    )
    # cubic overshoot near a step saturates at the type bounds instead of wrapping around
    step = np.array([0, 0, 255, 255], np.uint8)
    y = resize(step, None, np.array([2], np.float32), mode="cubic")
    assert y.dtype == np.uint8
    assert y.min() == 0 and y.max() == 255


def test_yolo_upsample_and_float16() -> None:
    """The zoo's YOLOv8 neck: nearest x2, asymmetric, floor; and half precision."""
    attrs = {
        "mode": "nearest",
        "coordinate_transformation_mode": "asymmetric",
        "nearest_mode": "floor",
    }
    _check(*_run_both(_image((1, 256, 10, 10)), attrs, scales=[1, 1, 2, 2]))
    got, ref = _run_both(_image(dtype=np.float16), {"mode": "linear"}, scales=[1, 1, 2, 0.5])
    _check(got, ref, rtol=1e-3, atol=1e-3)


def test_nearest_hand_worked() -> None:
    x = np.array([1, 2, 3], np.float32).reshape(1, 3)
    attrs = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    y = resize(x, None, np.array([1, 2], np.float32), **attrs)
    np.testing.assert_array_equal(y, [[1, 1, 2, 2, 3, 3]])
    # half_pixel, scale 0.5 on 4 elements: coordinates (y+0.5)*2-0.5 = 0.5, 2.5, exact ties
    x4 = np.array([10, 20, 30, 40], np.float32)
    down = np.array([0.5], np.float32)
    np.testing.assert_array_equal(resize(x4, None, down), [10, 30])  # round_prefer_floor
    np.testing.assert_array_equal(
        resize(x4, None, down, nearest_mode="round_prefer_ceil"), [20, 40]
    )


def test_linear_hand_worked() -> None:
    x = np.array([0, 10], np.float32)
    # half_pixel x2: coordinates -0.25, 0.25, 0.75, 1.25; the outer two clamp to the edges
    np.testing.assert_allclose(
        resize(x, None, np.array([2], np.float32), mode="linear"), [0, 2.5, 7.5, 10]
    )
    # align_corners to 5: coordinates 0, 0.25, 0.5, 0.75, 1
    y = resize(
        x, None, None, np.array([5]), mode="linear", coordinate_transformation_mode="align_corners"
    )
    np.testing.assert_allclose(y, [0, 2.5, 5, 7.5, 10])


def test_cubic_hand_worked() -> None:
    """Keys kernel with A=-0.75: W(0.5) = 0.5 - 0.125A = 0.59375, W(1.5) = 0.125A = -0.09375."""
    x = np.array([0, 0, 1, 0, 0], np.float32)
    attrs = {"mode": "cubic", "coordinate_transformation_mode": "asymmetric"}
    y = resize(x, None, np.array([2], np.float32), **attrs)
    # output 3 -> 1.5, 4 -> 2, 5 -> 2.5, 7 -> 3.5 (x[2] is 1.5 away)
    np.testing.assert_allclose(y[[3, 4, 5, 6, 7]], [0.59375, 1, 0.59375, 0, -0.09375], atol=1e-7)


def test_antialias_hand_worked() -> None:
    """Linear antialias at scale 0.5 stretches the triangle to half-width 2: taps at distances
    0.75, 0.25, 0.25, 0.75 get 0.25, 0.75, 0.75, 0.25, normalized to 1/8, 3/8, 3/8, 1/8."""
    x = np.array([0, 4, 8, 12], np.float32)
    y = resize(x, None, np.array([0.5], np.float32), mode="linear", antialias=1)
    # centre 0.5: taps -1(->0), 0, 1, 2 read 0, 0, 4, 8 -> 1.5 + 1 = 2.5
    # centre 2.5: taps 1, 2, 3, 4(->3) read 4, 8, 12, 12 -> 0.5 + 3 + 4.5 + 1.5 = 9.5
    np.testing.assert_allclose(y, [2.5, 9.5])


def test_tf_crop_and_resize_hand_worked() -> None:
    x = np.array([0, 10, 20, 30, 40], np.float32)
    attrs = {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}
    # roi [0.25, 0.75] of length-5 axis: coordinates 0.25*4 + y*0.5*4/2 = 1, 2, 3
    y = resize(x, np.array([0.25, 0.75], np.float32), None, np.array([3]), **attrs)
    np.testing.assert_allclose(y, [10, 20, 30])
    # roi [-0.5, 0.5]: coordinates -2, 0, 2; -2 is outside the input -> extrapolation_value
    roi = np.array([-0.5, 0.5], np.float32)
    y = resize(x, roi, None, np.array([3]), extrapolation_value=99.0, **attrs)
    np.testing.assert_allclose(y, [99, 0, 20])


def test_keep_aspect_ratio_hand_worked() -> None:
    x = np.zeros((4, 6), np.float32)
    sizes = np.array([6, 6])
    # scales 6/4 and 6/6: not_larger takes 1 (4x6), not_smaller takes 1.5 (6x9)
    assert resize(x, None, None, sizes, keep_aspect_ratio_policy="not_larger").shape == (4, 6)
    assert resize(x, None, None, sizes, keep_aspect_ratio_policy="not_smaller").shape == (6, 9)


def test_half_pixel_symmetric_hand_worked() -> None:
    """Scale 0.6 on 4 elements: floor(2.4) = 2 outputs, so the sampled region is re-centred by
    offset = (4/2) * (1 - 2/2.4) = 1/3; coordinates 1/3 + (y+0.5)/0.6 - 0.5 = 2/3 and 7/3."""
    x = np.array([0, 1, 2, 3], np.float32)  # x[i] = i: linear output = coordinate
    attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}
    y = resize(x, None, np.array([0.6], np.float32), **attrs)
    np.testing.assert_allclose(y, [2 / 3, 7 / 3], rtol=1e-6)


def test_empty_output() -> None:
    y = resize(np.ones((2, 3), np.float32), None, np.array([1, 0.25], np.float32))
    assert y.shape == (2, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "area"}, "mode"),
        ({"coordinate_transformation_mode": "corners"}, "coordinate"),
        ({"nearest_mode": "round"}, "nearest_mode"),
        ({"keep_aspect_ratio_policy": "fit", "sizes": [2, 2], "scales": None}, "keep_aspect"),
        ({"sizes": [2, 2]}, "exactly one"),
        ({"scales": [2.0]}, "scales"),
        ({"axes": [0, 0], "scales": [2.0, 2.0]}, "axes"),
    ],
)
def test_resize_rejects(kwargs: dict[str, Any], message: str) -> None:
    x = np.ones((2, 3), np.float32)
    scales = kwargs.pop("scales", [2.0, 2.0])
    sizes = kwargs.pop("sizes", None)
    with pytest.raises(KernelError, match=message):
        resize(
            x,
            None,
            None if scales is None else np.array(scales, np.float32),
            None if sizes is None else np.array(sizes, np.int64),
            **kwargs,
        )
