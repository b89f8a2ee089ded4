"""The numerics contract (`dialects/npu/numerics.py`) against hand-worked numbers and
independent numpy / float references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialects.npu import numerics as nx

# ---------------------------------------------------------------------- parameters


def test_asymmetric_rknn_documented_example():
    q = nx.asymmetric_params(0.0, 6.0, "i8")
    assert float(q.scale) == 6 / 255 == 0.023529411764705882
    assert int(q.zero_point) == -128
    assert q.axis is None


def test_asymmetric_symmetric_range_half_rounds_away():
    # scale 2/255; lo/scale = -1 / (2/255) = -127.5 -> -128 (half away) -> zp = -128 + 128 = 0
    q = nx.asymmetric_params(-1.0, 1.0, "i8")
    assert float(q.scale) == pytest.approx(2 / 255, rel=1e-15)
    assert int(q.zero_point) == 0


def test_asymmetric_range_widened_to_hold_zero():
    widened = nx.asymmetric_params(2.0, 6.0, "i8")
    assert float(widened.scale) == 6 / 255
    assert int(widened.zero_point) == -128
    negative = nx.asymmetric_params(-6.0, -2.0, "i8")  # -> [-6, 0]: zp = -128 + 255 = 127
    assert float(negative.scale) == 6 / 255
    assert int(negative.zero_point) == 127


def test_asymmetric_all_zero_gets_scale_one():
    q = nx.asymmetric_params(0.0, 0.0, "i8")
    assert float(q.scale) == 1.0
    assert int(q.zero_point) == -128  # qmin - round(0 / 1)


def test_asymmetric_int16_and_u8():
    q16 = nx.asymmetric_params(0.0, 6.0, "i16")
    assert float(q16.scale) == 6 / 65535
    assert int(q16.zero_point) == -32768
    qu8 = nx.asymmetric_params(-1.0, 1.0, "u8")  # -127.5 -> -128 -> zp 0 + 128 = 128
    assert int(qu8.zero_point) == 128


def test_qranges_int4_and_unknown():
    assert nx.qrange("i4") == (-8, 7)
    assert nx.qrange("i16") == (-32768, 32767)
    with pytest.raises(ValueError, match="not a quantized dtype"):
        nx.qrange("i7")


def test_symmetric_and_weight_params():
    q = nx.symmetric_params(np.array([127.0, 0.0, 1.27]), "i8", axis=0)
    np.testing.assert_array_equal(q.scale, [1.0, 1.0, 0.01])  # an all-zero channel: scale 1
    np.testing.assert_array_equal(q.zero_point, [0, 0, 0])
    w = np.array([[[-2.0, 1.0]], [[0.5, -0.25]]])  # 2 output channels
    per_channel = nx.weight_params(w, "i8", per_channel=True)
    np.testing.assert_allclose(per_channel.scale, [2.0 / 127, 0.5 / 127], rtol=1e-15)
    assert per_channel.axis == 0
    per_tensor = nx.weight_params(w, "i4", per_channel=False)
    assert float(per_tensor.scale) == pytest.approx(2.0 / 7, rel=1e-15)
    assert per_tensor.axis is None


def test_bias_params_width_follows_activations():
    w = nx.QuantParams("i8", np.array([0.5, 0.25]), np.zeros(2, np.int64), 0)
    b8 = nx.bias_params(0.1, w, "i8")
    assert b8.dtype == "i32"
    np.testing.assert_allclose(b8.scale, [0.05, 0.025], rtol=1e-15)
    np.testing.assert_array_equal(b8.zero_point, [0, 0])
    assert b8.axis == 0
    assert nx.bias_params(0.1, w, "i16").dtype == "i48"
    assert nx.qrange("i48") == (-(2**47), 2**47 - 1)


# ---------------------------------------------------------------------- rounding


def test_round_half_away():
    got = nx.round_half_away(np.array([2.5, -2.5, 0.5, -0.5, 1.5, 2.4999, -2.5001, 0.0]))
    np.testing.assert_array_equal(got, [3, -3, 1, -1, 2, 2, -3, 0])
    assert got.dtype == np.int64


def test_round_shift_hand_worked():
    np.testing.assert_array_equal(nx.round_shift(np.array([5, -5, 4, -4]), 1), [3, -3, 2, -2])
    assert int(nx.round_shift(7, 2)) == 2  # 1.75 -> 2
    assert int(nx.round_shift(6, 2)) == 2  # 1.5 -> 2
    assert int(nx.round_shift(-6, 2)) == -2  # -1.5 -> -2
    assert int(nx.round_shift(9, 0)) == 9  # shift 0: unchanged
    # per-channel shifts broadcast
    np.testing.assert_array_equal(
        nx.round_shift(np.array([5, 5, 5]), np.array([0, 1, 2])), [5, 3, 1]
    )


@given(st.integers(-(2**50), 2**50), st.integers(0, 40))
def test_round_shift_matches_exact_fraction(x, s):
    from fractions import Fraction

    value = Fraction(x, 2**s)
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    want = -magnitude if x < 0 else magnitude
    assert int(nx.round_shift(np.int64(x), s)) == want


# ---------------------------------------------------------------------- conversions


def test_quantize_saturates_and_rounds():
    q = nx.QuantParams("i8", np.float64(0.5), np.int64(10))
    x = np.array([1000.0, -1000.0, 0.25, -0.25, 0.0, 1.0])
    # x / 0.5 = [2000, -2000, 0.5, -0.5, 0, 2] -> round half away -> +10 -> clip
    np.testing.assert_array_equal(nx.quantize(x, q), [127, -128, 11, 9, 10, 12])
    assert nx.quantize(x, q).dtype == np.int8
    q4 = nx.QuantParams("i4", np.float64(1.0), np.int64(0))
    np.testing.assert_array_equal(nx.quantize(np.array([-20.0, 3.4, 20.0]), q4), [-8, 3, 7])
    np.testing.assert_array_equal(nx.dequantize(np.array([127, -128], np.int8), q), [58.5, -69.0])


def test_per_channel_quantize_dequantize_against_formula():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5)) * 3
    scale = np.array([0.01, 0.03, 0.1])
    zp = np.array([0, 5, -3])
    q = nx.QuantParams("i8", scale, zp, axis=1)
    s4, z4 = scale.reshape(1, 3, 1, 1), zp.reshape(1, 3, 1, 1)
    r = x / s4
    want = np.clip(np.sign(r) * np.floor(np.abs(r) + 0.5) + z4, -128, 127).astype(np.int8)
    got = nx.quantize(x, q)
    np.testing.assert_array_equal(got, want)
    back = nx.dequantize(got, q)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, ((want.astype(np.int64) - z4) * s4).astype(np.float32))


def test_float16_passthrough():
    q = nx.QuantParams("f16", np.float64(1.0), np.int64(0))
    x = np.array([1.0, 1 / 3, 1000.1])
    got = nx.quantize(x, q)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, x.astype(np.float16))


# ---------------------------------------------------------------------- fixed point


@pytest.mark.parametrize(
    "m, want",
    [
        (0.5, (16384, 15)),  # 16384 / 2**15
        (0.75, (24576, 15)),  # 24576 / 2**15
        (1.0, (16384, 14)),
        (3.0, (24576, 13)),
        (0.0, (0, 0)),
        (2.0**-20, (16384, 34)),
    ],
)
def test_encode_multiplier_hand_worked(m, want):
    assert nx.encode_multiplier(m) == want


def test_encode_multiplier_rounds_up_to_next_power():
    # m just below 1: mantissa rounds to 2**15 and renormalises to (2**14, 14)
    assert nx.encode_multiplier(1.0 - 2.0**-20) == (16384, 14)


@settings(max_examples=300)
@given(st.floats(min_value=2.0**-40, max_value=2.0**14, allow_nan=False, allow_infinity=False))
def test_encode_multiplier_property(m):
    mantissa, shift = nx.encode_multiplier(m)
    assert 2**14 <= mantissa < 2**15
    assert 0 <= shift <= nx.MAX_SHIFT
    assert abs(mantissa * 2.0**-shift - m) / m <= 2.0**-15


@pytest.mark.parametrize("m", [2.0**15, 1e6, -0.5, math.inf, math.nan])
def test_encode_multiplier_rejects(m):
    with pytest.raises(ValueError):
        nx.encode_multiplier(m)


def test_encode_multiplier_below_shift_limit():
    # 2**-60: mantissa would need S = 74 > 63; keeps S = 63, M = round(2**-60 * 2**63) = 8
    assert nx.encode_multiplier(2.0**-60) == (8, 63)


def test_encode_multipliers_shape():
    ms = np.array([[0.5, 1.0], [0.75, 0.0]])
    mant, shift = nx.encode_multipliers(ms)
    np.testing.assert_array_equal(mant, [[16384, 16384], [24576, 0]])
    np.testing.assert_array_equal(shift, [[15, 14], [15, 0]])


def _requantize_reference(acc, mantissa, shift, zp, lo, hi):
    """Independent float reference: acc * M / 2**S, rounded half away, + zp, clipped."""
    real = acc.astype(np.float64) * mantissa / 2.0**shift
    rounded = np.where(real >= 0, np.floor(real + 0.5), -np.floor(-real + 0.5))
    return np.clip(rounded + zp, lo, hi)


@pytest.mark.parametrize("dtype", ["i8", "i16"])
def test_requantize_against_float_reference(dtype):
    rng = np.random.default_rng(3)
    acc = rng.integers(-(2**20), 2**20, size=2000)
    acc[:4] = [0, 1, -1, 2**19]
    mantissa, shift = 24576, 22  # m = 0.75 * 2**-7; products < 2**36: exact in float64
    lo, hi = nx.qrange(dtype)
    want = _requantize_reference(acc, mantissa, shift, 3, lo, hi)
    got = nx.requantize(acc, mantissa, shift, 3, dtype)
    assert got.dtype == nx.STORAGE[dtype]
    np.testing.assert_array_equal(got, want)


def test_requantize_ties_hand_worked():
    # M = 16384, S = 15 (m = 0.5): acc 3 -> 1.5 -> 2; acc -3 -> -1.5 -> -2; 5 -> 2.5 -> 3
    got = nx.requantize(np.array([3, -3, 5, -5, 1000, -1000]), 16384, 15, 0, "i8")
    np.testing.assert_array_equal(got, [2, -2, 3, -3, 127, -128])


def test_requantize_per_channel():
    acc = np.array([[10, 10], [-10, -10]])
    got = nx.requantize(acc, np.array([16384, 24576]), np.array([15, 16]), -1, "i8")
    # channel 0: m = 0.5 -> ±5; channel 1: m = 0.375 -> ±3.75 -> ±4; then -1
    np.testing.assert_array_equal(got, [[4, 3], [-6, -5]])


def test_output_multipliers():
    mant, shift = nx.output_multipliers(0.5, np.array([0.25, 0.5]), 0.25)
    # m = 0.5 * [0.25, 0.5] / 0.25 = [0.5, 1.0]
    np.testing.assert_array_equal(mant, [16384, 16384])
    np.testing.assert_array_equal(shift, [15, 14])


def test_shared_shift_hand_worked():
    (m_a, m_b), s = nx.shared_shift(np.float64(0.5), np.float64(-2.0))
    # smallest |m| = 0.5 -> S = 15; M_a = 0.5 * 2**15, M_b = -2 * 2**15
    assert int(s) == 15
    assert int(m_a) == 16384
    assert int(m_b) == -65536


@settings(max_examples=300)
@given(
    st.floats(min_value=2.0**-30, max_value=2.0**5),
    st.floats(min_value=0.0, max_value=16.0),
    st.booleans(),
)
def test_shared_shift_property(m1, log_ratio, negate):
    m2 = m1 * 2.0**log_ratio * (-1.0 if negate else 1.0)  # within 2**16 of each other
    (big1, big2), shift = nx.shared_shift(np.float64(m1), np.float64(m2))
    for m, big in ((m1, big1), (m2, big2)):
        assert abs(int(big)) <= nx.SHARED_MANTISSA_LIMIT
        assert abs(int(big) * 2.0 ** -int(shift) - m) / abs(m) <= 2.0**-14
    assert (int(big2) < 0) == negate


def test_shared_shift_elementwise_over_channels():
    (ma, mb), s = nx.shared_shift(np.array([0.5, 1.0]), np.array([1.0, 0.25]))
    np.testing.assert_array_equal(s, [15, 16])
    np.testing.assert_array_equal(ma, [16384, 65536])
    np.testing.assert_array_equal(mb, [32768, 16384])


def test_scaled_mantissa():
    got = nx.scaled_mantissa(np.array([0.1, -0.1]), np.array([15, 15]))
    np.testing.assert_array_equal(got, [3277, -3277])  # 0.1 * 32768 = 3276.8
