"""Layout / data-movement kernels of runtime.kernels.tensor against onnxruntime (opset 21).

Covers Concat, Split, Slice, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Expand, Tile,
Pad, Shape, Size, ConstantOfShape, Identity, Dropout, DepthToSpace and SpaceToDepth; the
gather/scatter family and the remaining ops live in test_tensor_gather.py / test_tensor_misc.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import numpy_helper

from runtime.kernels.registry import KernelError
from runtime.kernels.tensor import (
    concat,
    constant_of_shape,
    depth_to_space,
    dropout,
    expand,
    flatten,
    identity,
    pad,
    reshape,
    shape,
    size,
    slice_,
    space_to_depth,
    split,
    squeeze,
    tile,
    transpose,
    unsqueeze,
)
from tests.helpers.compare import assert_matches, check_against_ort, random_data
from tests.helpers.ort import run_node

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
DTYPES = [np.float32, np.int64, np.bool_, np.float16]


# ----------------------------------------------------------------------------------- Concat
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_concat(axis: int, dtype: Any) -> None:
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, s in enumerate(shapes):
        s[axis] = i  # sizes 0, 1, 2 along the axis: includes an empty input
    check_against_ort(
        concat, "Concat", [random_data(s, dtype, i) for i, s in enumerate(shapes)], {"axis": axis}
    )


def test_concat_hand() -> None:
    # [[1, 2]] stacked on [[3, 4], [5, 6]] along rows
    out = concat(np.array([[1, 2]]), np.array([[3, 4], [5, 6]]), axis=0)
    np.testing.assert_array_equal(out, [[1, 2], [3, 4], [5, 6]])


def test_concat_errors() -> None:
    with pytest.raises(KernelError, match="axis"):
        concat(np.zeros((2, 2)), np.zeros((2, 2)), axis=2)
    with pytest.raises(KernelError, match="concatenate"):
        concat(np.zeros((2, 2)), np.zeros((3, 3)), axis=0)


# ------------------------------------------------------------------------------------ Split
@pytest.mark.parametrize(
    ("shape_", "sizes", "axis"),
    [
        ((2, 6, 3), [1, 2, 3], 1),
        ((2, 6, 3), [0, 6], 1),  # zero-size part
        ((2, 6, 3), [2, 0, 1], -1),
        ((4, 2), [4], 0),
    ],
)
def test_split_sizes(shape_: tuple[int, ...], sizes: list[int], axis: int) -> None:
    x = random_data(shape_)
    check_against_ort(
        split,
        "Split",
        [x, np.array(sizes, np.int64)],
        {"axis": axis},
        constant_inputs=[1],
        n_outputs=len(sizes),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("dim", "n"), [(6, 3), (7, 3), (5, 2), (1, 1), (8, 3)])
def test_split_num_outputs(dim: int, n: int, dtype: Any) -> None:
    x = random_data((3, dim), dtype)
    check_against_ort(split, "Split", [x], {"axis": 1, "num_outputs": n}, n_outputs=n)


def test_split_hand() -> None:
    # 7 elements into 3: chunk = ceil(7 / 3) = 3 -> [0 1 2] [3 4 5] [6]
    a, b, c = split(np.arange(7), num_outputs=3)
    assert (a.tolist(), b.tolist(), c.tolist()) == ([0, 1, 2], [3, 4, 5], [6])
    # 4 into 3: chunk 2 -> [0 1] [2 3] [] (the spec's "last chunk smaller"; ORT refuses it)
    parts = split(np.arange(4), num_outputs=3)
    assert [p.tolist() for p in parts] == [[0, 1], [2, 3], []]


def test_split_errors() -> None:
    with pytest.raises(KernelError, match="partition"):
        split(np.arange(5), np.array([2, 2]))
    with pytest.raises(KernelError, match="num_outputs"):
        split(np.arange(5))
    with pytest.raises(KernelError, match="cannot be split"):
        split(np.arange(5), num_outputs=4)  # chunk 2: 2 + 2 + 2 > 5


# ------------------------------------------------------------------------------------ Slice
SLICE_CASES = [
    ([1], [3], [0], [1]),
    ([0, 0], [INT64_MAX, -1], [1, 2], [1, 1]),
    ([-1], [INT64_MIN], [0], [-1]),  # full reverse
    ([4], [0], [-1], [-2]),
    ([-100], [100], [1], [2]),  # out-of-range bounds clamp
    ([100], [200], [0], [1]),  # start past the end: empty
    ([10], [-10], [2], [-3]),  # negative step from a clamped start
    ([2, 1], [0, 5], [-2, 0], [-1, 3]),
    ([0], [0], [1], [1]),  # empty
    ([INT64_MAX], [INT64_MIN], [2], [INT64_MIN]),  # huge negative step: a single element
]


@pytest.mark.parametrize(("starts", "ends", "axes", "steps"), SLICE_CASES)
def test_slice(starts: list[int], ends: list[int], axes: list[int], steps: list[int]) -> None:
    x = random_data((5, 6, 7))
    ins = [x, *(np.array(v, np.int64) for v in (starts, ends, axes, steps))]
    check_against_ort(slice_, "Slice", ins, constant_inputs=[1, 2, 3, 4])


@pytest.mark.parametrize("dtype", DTYPES)
def test_slice_default_axes_and_steps(dtype: Any) -> None:
    x = random_data((5, 6), dtype)
    starts, ends = np.array([1, -4]), np.array([3, 5])
    check_against_ort(slice_, "Slice", [x, starts, ends], constant_inputs=[1, 2])
    # steps given, axes absent (None in the middle)
    ins = [x, starts, ends, None, np.array([2, 1])]
    check_against_ort(slice_, "Slice", ins, constant_inputs=[1, 2, 4])


def test_slice_int32_bounds() -> None:
    x = random_data((4, 5))
    ins = [x, np.array([1], np.int32), np.array([-1], np.int32), np.array([1], np.int32)]
    check_against_ort(slice_, "Slice", ins, constant_inputs=[1, 2, 3])


def test_slice_hand() -> None:
    x = np.arange(10)
    one = (np.array([0]),)
    # start 8, end 1, step -3: 8, 5, 2 (the next, -1, is past end 1)
    out = slice_(x, np.array([8]), np.array([1]), *one, np.array([-3]))
    assert out.tolist() == [8, 5, 2]
    # INT_MIN end with step -1 clamps to -1 ("through index 0"): the whole reversal
    out = slice_(x, np.array([-1]), np.array([INT64_MIN]), None, np.array([-1]))
    assert out.tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    # start -3 -> 7, end INT_MAX -> 10: [7, 8, 9]
    assert slice_(x, np.array([-3]), np.array([INT64_MAX])).tolist() == [7, 8, 9]
    # start 20 clamps to 9 for a negative step, end -5 -> 5: 9, 7
    out = slice_(x, np.array([20]), np.array([-5]), *one, np.array([-2]))
    assert out.tolist() == [9, 7]


def test_slice_errors() -> None:
    x = np.zeros((3, 3))
    with pytest.raises(KernelError, match="non-zero"):
        slice_(x, np.array([0]), np.array([2]), np.array([0]), np.array([0]))
    with pytest.raises(KernelError, match="repeated"):
        slice_(x, np.array([0, 0]), np.array([2, 2]), np.array([0, -2]))


# ---------------------------------------------------------------------------------- Reshape
@pytest.mark.parametrize(
    ("in_shape", "target"),
    [
        ((2, 3, 4), [2, 0, -1]),
        ((2, 3, 4), [-1]),
        ((2, 3, 4), [0, 0, 2, 2]),
        ((2, 3, 4), [4, -1]),
        ((2, 3, 4), [-1, 3, 1, 1]),
        ((24,), [2, 3, 4]),
        ((0, 3), [-1, 0]),  # empty tensor, -1 inferred as 0
        ((1,), []),  # to a scalar
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.bool_])
def test_reshape(in_shape: tuple[int, ...], target: list[int], dtype: Any) -> None:
    x = random_data(in_shape, dtype)
    got = check_against_ort(
        reshape, "Reshape", [x, np.array(target, np.int64)], constant_inputs=[1]
    )
    assert np.shares_memory(got[0], x) or x.size == 0


@pytest.mark.parametrize(("in_shape", "target"), [((0, 3), [0, 3]), ((0, 3), [3, 0])])
def test_reshape_allowzero(in_shape: tuple[int, ...], target: list[int]) -> None:
    x = random_data(in_shape)
    check_against_ort(
        reshape,
        "Reshape",
        [x, np.array(target, np.int64)],
        {"allowzero": 1},
        constant_inputs=[1],
    )


def test_reshape_hand() -> None:
    # (2, 3) with shape [0, -1, 1]: 0 copies dim 0 = 2, -1 = 6 / (2 * 1) = 3
    out = reshape(np.arange(6).reshape(2, 3), np.array([0, -1, 1]))
    assert out.shape == (2, 3, 1)
    # allowzero=1: the 0 is a real zero-size dimension
    assert reshape(np.zeros((0, 4)), np.array([2, 0, 2]), allowzero=1).shape == (2, 0, 2)


def test_reshape_errors() -> None:
    with pytest.raises(KernelError, match=r"\(2, 3\).*\[4, 2\]"):
        reshape(np.zeros((2, 3)), np.array([4, 2]))
    with pytest.raises(KernelError, match="infer"):
        reshape(np.zeros((2, 3)), np.array([4, -1]))
    with pytest.raises(KernelError, match="invalid"):
        reshape(np.zeros((2, 3)), np.array([-1, -1]))
    with pytest.raises(KernelError, match="infer"):
        reshape(np.zeros((0, 3)), np.array([0, -1]))


# -------------------------------------------------------------------- Transpose / Flatten
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("perm", [None, [1, 0, 2], [2, 0, 1], [0, 1, 2]])
def test_transpose(perm: list[int] | None, dtype: Any) -> None:
    attrs = {} if perm is None else {"perm": perm}
    check_against_ort(transpose, "Transpose", [random_data((2, 3, 4), dtype)], attrs)


def test_transpose_hand() -> None:
    # default perm reverses the axes: [[1, 2, 3], [4, 5, 6]] -> columns become rows
    out = transpose(np.array([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(out, [[1, 4], [2, 5], [3, 6]])
    with pytest.raises(KernelError, match="permutation"):
        transpose(np.zeros((2, 3)), perm=[0, 0])


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
@pytest.mark.parametrize("in_shape", [(2, 3, 4), (2, 0, 3)])
def test_flatten(axis: int, in_shape: tuple[int, ...]) -> None:
    check_against_ort(flatten, "Flatten", [random_data(in_shape)], {"axis": axis})


def test_flatten_hand() -> None:
    # (2, 3, 4) at axis 2: 2 * 3 = 6 rows of 4; axis 0: 1 row of 24
    assert flatten(np.zeros((2, 3, 4)), axis=2).shape == (6, 4)
    assert flatten(np.zeros((2, 3, 4)), axis=0).shape == (1, 24)
    with pytest.raises(KernelError):
        flatten(np.zeros((2, 3)), axis=3)


# --------------------------------------------------------------------- Squeeze / Unsqueeze
@pytest.mark.parametrize("axes", [None, [], [0], [-1], [0, 2], [2, -3]])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_squeeze(axes: list[int] | None, dtype: Any) -> None:
    x = random_data((1, 3, 1), dtype)
    ins = [x] if axes is None else [x, np.array(axes, np.int64)]
    got = check_against_ort(squeeze, "Squeeze", ins, constant_inputs=[1])
    assert np.shares_memory(got[0], x)


def test_squeeze_hand() -> None:
    # (1, 3, 1, 2) without axes drops both size-1 dims
    assert squeeze(np.zeros((1, 3, 1, 2))).shape == (3, 2)
    assert squeeze(np.zeros((1, 1)), np.array([-1])).shape == (1,)
    with pytest.raises(KernelError, match="size 1"):
        squeeze(np.zeros((1, 3)), np.array([1]))


@pytest.mark.parametrize("axes", [[0], [-1], [1, 3], [-1, 0], [2]])
@pytest.mark.parametrize("dtype", [np.float32, np.bool_])
def test_unsqueeze(axes: list[int], dtype: Any) -> None:
    x = random_data((2, 3), dtype)
    got = check_against_ort(
        unsqueeze, "Unsqueeze", [x, np.array(axes, np.int64)], constant_inputs=[1]
    )
    assert np.shares_memory(got[0], x)


def test_unsqueeze_hand() -> None:
    # output rank 2 + 2 = 4; axes [1, -1] -> 1 and 3: (2, 1, 3, 1)
    assert unsqueeze(np.zeros((2, 3)), np.array([1, -1])).shape == (2, 1, 3, 1)
    assert unsqueeze(np.float32(3.0), np.array([0])).shape == (1,)
    with pytest.raises(KernelError, match="repeated"):
        unsqueeze(np.zeros((2, 3)), np.array([1, 1]))


# ---------------------------------------------------------------------------- Expand / Tile
@pytest.mark.parametrize(
    ("in_shape", "target"),
    [((3, 1), [2, 1, 4]), ((1,), [3]), ((2, 3), [1]), ((2, 3), [2, 1, 1]), ((2, 1), [2, 0])],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_expand(in_shape: tuple[int, ...], target: list[int], dtype: Any) -> None:
    check_against_ort(
        expand,
        "Expand",
        [random_data(in_shape, dtype), np.array(target, np.int64)],
        constant_inputs=[1],
    )


def test_expand_hand() -> None:
    # [[1], [2]] (2, 1) with shape [1, 3] broadcasts bidirectionally to (2, 3)
    out = expand(np.array([[1], [2]]), np.array([1, 3]))
    np.testing.assert_array_equal(out, [[1, 1, 1], [2, 2, 2]])
    with pytest.raises(KernelError, match="broadcast"):
        expand(np.zeros((2, 3)), np.array([4]))


@pytest.mark.parametrize("repeats", [[2, 3], [1, 1], [0, 2], [3, 1]])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tile(repeats: list[int], dtype: Any) -> None:
    check_against_ort(
        tile, "Tile", [random_data((2, 3), dtype), np.array(repeats, np.int64)], constant_inputs=[1]
    )


def test_tile_hand() -> None:
    # [1, 2] tiled twice: [1, 2, 1, 2]
    assert tile(np.array([1, 2]), np.array([2])).tolist() == [1, 2, 1, 2]
    with pytest.raises(KernelError, match="repeats"):
        tile(np.zeros((2, 2)), np.array([2]))


# -------------------------------------------------------------------------------------- Pad
PAD_CASES = [
    [1, 2, 0, 3],
    [0, 0, 0, 0],
    [2, 0, 1, 1],
    [-1, 1, 0, 2],  # crop + pad on one axis
    [1, -2, -1, 2],
    [3, 2, 3, 2],  # reflect limit (dim - 1) on both axes
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PAD_CASES)
def test_pad_modes(mode: str, pads: list[int]) -> None:
    check_against_ort(
        pad,
        "Pad",
        [random_data((4, 5)), np.array(pads, np.int64)],
        {"mode": mode},
        constant_inputs=[1],
    )


@pytest.mark.parametrize("mode", ["constant", "edge", "wrap"])
def test_pad_wider_than_input(mode: str) -> None:
    # pads beyond the dimension: wrap repeats the input (reflect is limited to dim - 1)
    pads = np.array([5, 0, 9, 6], np.int64)
    check_against_ort(pad, "Pad", [random_data((4, 3)), pads], {"mode": mode}, constant_inputs=[1])


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("axes", [[1], [-1], [0, 2], [2, 0]])
def test_pad_axes(mode: str, axes: list[int]) -> None:
    x = random_data((3, 4, 5))
    pads = np.array([1, 2, 2, 1][: 2 * len(axes)], np.int64)
    ins = [x, pads, None, np.array(axes, np.int64)]
    check_against_ort(pad, "Pad", ins, {"mode": mode}, constant_inputs=[1, 3])


@pytest.mark.parametrize(
    ("dtype", "value"),
    [(np.float32, 1.5), (np.int64, -7), (np.float16, 2.0), (np.bool_, True), (np.int32, 3)],
)
def test_pad_constant_value(dtype: Any, value: Any) -> None:
    x = random_data((2, 3), dtype)
    ins = [x, np.array([1, 0, 0, 2], np.int64), np.array(value, dtype)]
    check_against_ort(pad, "Pad", ins, constant_inputs=[1, 2])


def test_pad_empty_tensor_constant() -> None:
    check_against_ort(
        pad, "Pad", [random_data((0, 3)), np.array([1, 1, 0, 0])], constant_inputs=[1]
    )


def test_pad_hand() -> None:
    x = np.array([1, 2, 3])
    two_left = np.array([2, 0])
    # reflect mirrors without repeating the edge: 3 2 | 1 2 3
    assert pad(x, two_left, mode="reflect").tolist() == [3, 2, 1, 2, 3]
    assert pad(x, two_left, mode="edge").tolist() == [1, 1, 1, 2, 3]
    # wrap takes from the other end: 2 3 | 1 2 3
    assert pad(x, two_left, mode="wrap").tolist() == [2, 3, 1, 2, 3]
    assert pad(x, np.array([1, 1]), np.array(9)).tolist() == [9, 1, 2, 3, 9]
    # negative pads crop first: [-1, 2] on [1 2 3] -> [2 3] then wrap 2 -> [2 3 2 3]
    assert pad(x, np.array([-1, 2]), mode="wrap").tolist() == [2, 3, 2, 3]


def test_pad_errors() -> None:
    with pytest.raises(KernelError, match="need 4"):
        pad(np.zeros((2, 2)), np.array([1, 1]))
    with pytest.raises(KernelError, match="crop"):
        pad(np.zeros((2, 2)), np.array([-2, 0, -1, 0]))  # axis 0 loses 2 + 1 > 2
    with pytest.raises(KernelError, match="mode"):
        pad(np.zeros((2, 2)), np.array([1, 1, 1, 1]), mode="symmetric")
    with pytest.raises(KernelError, match="empty"):
        pad(np.zeros((0, 2)), np.array([1, 0, 0, 0]), mode="edge")


# ------------------------------------------------------------ Shape / Size / ConstantOfShape
@pytest.mark.parametrize(
    ("start", "end"), [(0, None), (1, None), (-1, None), (0, -1), (-100, 100), (2, 1), (1, 3)]
)
def test_shape(start: int, end: int | None) -> None:
    attrs = {"start": start} | ({} if end is None else {"end": end})
    check_against_ort(shape, "Shape", [random_data((2, 3, 4, 5))], attrs)


def test_shape_hand() -> None:
    # (2, 3, 4) from -2: the last two dims
    out = shape(np.zeros((2, 3, 4)), start=-2)
    assert out.dtype == np.int64 and out.tolist() == [3, 4]
    assert shape(np.float32(1.0)).shape == (0,)


@pytest.mark.parametrize("in_shape", [(), (0, 3), (2, 3, 4)])
def test_size(in_shape: tuple[int, ...]) -> None:
    check_against_ort(size, "Size", [random_data(in_shape)])
    # hand: 2 * 3 * 4 = 24
    assert size(np.zeros((2, 3, 4))) == 24


@pytest.mark.parametrize(
    "value",
    [
        None,
        np.array([7], np.int64),
        np.array([1.5], np.float16),
        np.array([True]),
        np.array([-2.5]),
    ],
)
@pytest.mark.parametrize("dims", [[2, 3], [], [0, 4]])
def test_constant_of_shape(value: np.ndarray | None, dims: list[int]) -> None:
    shp = np.array(dims, np.int64)
    got = constant_of_shape(shp) if value is None else constant_of_shape(shp, value=value)
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    (want,) = run_node("ConstantOfShape", [shp], attrs, constant_inputs=[0])
    assert_matches(np.asarray(got), want)


def test_constant_of_shape_hand() -> None:
    out = constant_of_shape(np.array([2]))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.0]
    with pytest.raises(KernelError, match="one element"):
        constant_of_shape(np.array([2]), value=np.array([1, 2]))


# -------------------------------------------------------------------- Identity / Dropout
@pytest.mark.parametrize("dtype", DTYPES)
def test_identity(dtype: Any) -> None:
    x = random_data((2, 3), dtype)
    got = check_against_ort(identity, "Identity", [x])
    assert got[0] is x


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_dropout_inference(dtype: Any) -> None:
    x = random_data((2, 3), dtype)
    check_against_ort(dropout, "Dropout", [x], n_outputs=2)
    ratio, off = np.array(0.3, np.float32), np.array(False)
    check_against_ort(dropout, "Dropout", [x, ratio, off], n_outputs=2, constant_inputs=[1, 2])
    # training with ratio 0 drops nothing, so it is deterministic
    zero, on = np.array(0.0, np.float32), np.array(True)
    check_against_ort(dropout, "Dropout", [x, zero, on], n_outputs=2, constant_inputs=[1, 2])


def test_dropout_hand() -> None:
    out, mask = dropout(np.array([1.0, 2.0]))
    assert out.tolist() == [1.0, 2.0] and mask.dtype == np.bool_ and mask.tolist() == [True] * 2
    with pytest.raises(KernelError, match="training_mode"):
        dropout(np.zeros(3), np.array(0.5), np.array(True))
    with pytest.raises(KernelError, match="training_mode"):
        dropout(np.zeros(3), None, np.array(True))  # default ratio 0.5


# ------------------------------------------------------------ DepthToSpace / SpaceToDepth
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize(("channels", "bs"), [(8, 2), (9, 3), (4, 1)])
def test_depth_to_space(mode: str, channels: int, bs: int) -> None:
    x = random_data((2, channels, 3, 2))
    check_against_ort(depth_to_space, "DepthToSpace", [x], {"blocksize": bs, "mode": mode})


def test_depth_to_space_hand() -> None:
    x = np.arange(8).reshape(1, 8, 1, 1)
    # DCR: input channel = (b1 * bs + b2) * C' + c with C' = 2:
    # c=0 -> [[0, 2], [4, 6]], c=1 -> [[1, 3], [5, 7]]
    dcr = depth_to_space(x, blocksize=2)
    np.testing.assert_array_equal(dcr[0], [[[0, 2], [4, 6]], [[1, 3], [5, 7]]])
    # CRD: input channel = c * bs * bs + b1 * bs + b2: c=0 -> [[0, 1], [2, 3]], c=1 -> 4..7
    crd = depth_to_space(x, blocksize=2, mode="CRD")
    np.testing.assert_array_equal(crd[0], [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
    with pytest.raises(KernelError, match="divisible"):
        depth_to_space(np.zeros((1, 6, 1, 1)), blocksize=2)


@pytest.mark.parametrize(("hw", "bs"), [((4, 6), 2), ((3, 6), 3), ((2, 2), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # ORT has no integer kernel
def test_space_to_depth(hw: tuple[int, int], bs: int, dtype: Any) -> None:
    check_against_ort(
        space_to_depth, "SpaceToDepth", [random_data((2, 3, *hw), dtype)], {"blocksize": bs}
    )


def test_space_to_depth_hand() -> None:
    # [[0, 1], [2, 3]] with blocksize 2: output channel (b1 * 2 + b2) holds x[b1, b2]
    out = space_to_depth(np.arange(4).reshape(1, 1, 2, 2), blocksize=2)
    assert out.shape == (1, 4, 1, 1) and out.reshape(-1).tolist() == [0, 1, 2, 3]
    with pytest.raises(KernelError, match="divisible"):
        space_to_depth(np.zeros((1, 1, 3, 2)), blocksize=2)
