"""Integer kernels of the `npu` ops against direct loop / numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from dialects.npu import numerics as nx
from runtime.kernels import quantized as qk


def conv_reference(x, zp, w, bias, strides, pads, dilations, group):
    """Direct loops: Σ (x - zp) * w over each window, zero (= zp) padding, plus bias."""
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilations
    top, left, bottom, right = pads
    xc = np.zeros((n, c, h + top + bottom, wd + left + right), np.int64)
    xc[:, :, top : top + h, left : left + wd] = x.astype(np.int64) - zp
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, oc, oh, ow), np.int64)
    ocg = oc // group
    for b in range(n):
        for o in range(oc):
            g = o // ocg
            for i in range(oh):
                for j in range(ow):
                    total = 0
                    for ci in range(icg):
                        for a in range(kh):
                            for e in range(kw):
                                total += int(
                                    xc[b, g * icg + ci, i * sh + a * dh, j * sw + e * dw]
                                ) * int(w[o, ci, a, e])
                    out[b, o, i, j] = total + int(bias[o])
    return out


CONV_CASES = [
    dict(c=3, oc=4, k=(3, 3), strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1),
    dict(c=3, oc=4, k=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), group=1),
    dict(c=2, oc=2, k=(3, 2), strides=(1, 2), pads=(2, 0, 1, 1), dilations=(2, 2), group=1),
    dict(c=4, oc=6, k=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), group=2),
    dict(c=4, oc=4, k=(3, 3), strides=(2, 1), pads=(1, 2, 0, 1), dilations=(1, 1), group=4),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c))
def test_conv_accumulate_vs_loops(case):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(2, case["c"], 7, 6)).astype(np.int8)
    w = rng.integers(-127, 128, size=(case["oc"], case["c"] // case["group"], *case["k"]))
    w = w.astype(np.int8)
    bias = rng.integers(-(2**20), 2**20, size=case["oc"]).astype(np.int32)
    zp = -17
    args = dict(strides=case["strides"], pads=case["pads"], dilations=case["dilations"],
                group=case["group"])  # fmt: skip
    got = qk.conv_accumulate(x, zp, w, bias, **args)
    want = conv_reference(x, zp, w, bias, case["strides"], case["pads"], case["dilations"],
                          case["group"])  # fmt: skip
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_conv_accumulate_int16_extremes_exact():
    # int16 extremes: every product is ±2**30; sums must stay exact
    x = np.full((1, 8, 3, 3), -32768, np.int16)
    w = np.full((2, 8, 3, 3), -32768, np.int16)
    bias = np.array([1, -1], np.int64)
    got = qk.conv_accumulate(x, 0, w, bias, strides=(1, 1), pads=(0, 0, 0, 0),
                             dilations=(1, 1), group=1)  # fmt: skip
    np.testing.assert_array_equal(got.reshape(-1), [72 * 2**30 + 1, 72 * 2**30 - 1])


def test_fc_accumulate_vs_numpy():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, size=(3, 50)).astype(np.int8)
    w = rng.integers(-127, 128, size=(7, 50)).astype(np.int8)
    bias = rng.integers(-1000, 1000, size=7).astype(np.int32)
    want = (x.astype(np.int64) - 5) @ w.astype(np.int64).T + bias.astype(np.int64)
    got = qk.fc_accumulate(x, 5, w, bias)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def window_reference(x, zp, kernel, strides, pads, include_pad):
    n, c, h, wd = x.shape
    kh, kw = kernel
    top, left, bottom, right = pads
    oh = (h + top + bottom - kh) // strides[0] + 1
    ow = (wd + left + right - kw) // strides[1] + 1
    sums = np.zeros((n, c, oh, ow), np.int64)
    counts = np.zeros((oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * strides[0] - top, j * strides[1] - left
            inside = 0
            for a in range(kh):
                for e in range(kw):
                    r, q = r0 + a, c0 + e
                    if 0 <= r < h and 0 <= q < wd:
                        inside += 1
                        sums[:, :, i, j] += x[:, :, r, q].astype(np.int64) - zp
            counts[i, j] = kh * kw if include_pad else inside
    return sums, counts


@pytest.mark.parametrize(
    "kernel, strides, pads",
    [
        ((2, 2), (2, 2), (0, 0, 0, 0)),
        ((3, 3), (1, 1), (1, 1, 1, 1)),
        ((3, 2), (2, 1), (1, 0, 2, 1)),
        ((5, 6), (1, 1), (0, 0, 0, 0)),  # global window
        ((5, 6), (1, 1), (1, 1, 1, 1)),  # the whole plane plus padding
    ],
)
@pytest.mark.parametrize("include_pad", [False, True])
def test_window_sums_and_counts(kernel, strides, pads, include_pad):
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, size=(2, 3, 5, 6)).astype(np.int8)
    want_sums, want_counts = window_reference(x, 9, kernel, strides, pads, include_pad)
    got_sums = qk.window_sums(x, 9, kernel, strides, pads)
    np.testing.assert_array_equal(got_sums, want_sums)
    got_counts = qk.window_counts((5, 6), kernel, strides, pads, include_pad)
    np.testing.assert_array_equal(got_counts, want_counts)


def _round_half_away_float(v):
    return np.where(v >= 0, np.floor(v + 0.5), -np.floor(-v + 0.5))


def test_eltwise_add_and_sub_vs_formula():
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, size=(2, 3, 4)).astype(np.int8)
    b = rng.integers(-128, 128, size=(2, 3, 4)).astype(np.int8)
    for m_b in (12000, -12000):
        got = qk.eltwise_add(a, 3, 20000, b, -7, m_b, 16, -2, "i8")
        total = (a.astype(np.float64) - 3) * 20000 + (b.astype(np.float64) + 7) * m_b
        want = np.clip(_round_half_away_float(total / 2**16) - 2, -128, 127)
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got, want)


def test_eltwise_add_hand_worked():
    # (1 - 0) * 1 + (2 - 0) * 1 = 3; 3 / 2 = 1.5 -> 2; negatives: -3 / 2 -> -2
    got = qk.eltwise_add(np.array([1, -1]), 0, 1, np.array([2, -2]), 0, 1, 1, 0, "i8")
    np.testing.assert_array_equal(got, [2, -2])


def test_eltwise_mul_vs_formula():
    rng = np.random.default_rng(5)
    a = rng.integers(-32768, 32768, size=50).astype(np.int16)
    b = rng.integers(-32768, 32768, size=50).astype(np.int16)
    got = qk.eltwise_mul(a, 100, b, -100, 17000, 30, 4, "i16")
    product = (a.astype(np.float64) - 100) * (b.astype(np.float64) + 100)  # < 2**32: exact
    want = np.clip(_round_half_away_float(product * 17000 / 2**30) + 4, -32768, 32767)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, want)


def test_rescale_vs_formula():
    q = np.arange(-128, 128).astype(np.int8)
    got = qk.rescale(q, -10, 24576, 16, 5, "i8")  # m = 0.375
    want = np.clip(_round_half_away_float((q.astype(np.float64) + 10) * 0.375) + 5, -128, 127)
    np.testing.assert_array_equal(got, want)


def test_lookup():
    table = (np.arange(256) * 3 % 251 - 125).astype(np.int8)
    q = np.array([[-128, 0], [127, -1]], np.int8)
    got = qk.lookup(q, table, "i8")
    np.testing.assert_array_equal(got, [[table[0], table[128]], [table[255], table[127]]])
    table_u8 = np.arange(256)[::-1].copy()
    np.testing.assert_array_equal(qk.lookup(np.array([0, 255], np.uint8), table_u8, "u8"), [255, 0])


def test_dpu_output_relu_and_leaky():
    acc = np.array([[[[-100]], [[100]]]])  # N=1, C=2, 1x1
    mant = np.array([16384, 16384])
    shift = np.array([15, 16])  # m = 0.5 and 0.25
    # relu in the output domain: clamp below at zp_out = 3
    got = qk.dpu_output(acc, mant, shift, 3, "i8", "relu", None, (3, 127))
    np.testing.assert_array_equal(got.reshape(-1), [3, 28])  # -50+3 -> 3; 25+3
    # leaky: negative accumulators use alpha mantissa (alpha 0.1 of m: 1638)
    alpha = np.array([1638, 1638])
    got = qk.dpu_output(-acc, mant, shift, 0, "i8", "leaky", alpha, None)
    # ch0: 100 * 16384 / 2**15 = 50; ch1: -100 * 1638 / 2**16 = -2.499... -> -2
    np.testing.assert_array_equal(got.reshape(-1), [50, -2])
    assert nx.STORAGE["i8"] == got.dtype
