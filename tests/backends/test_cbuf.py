"""CBUF arithmetic (`backends/cbuf.py`): bank split, row bands and the task search, with
numbers worked by hand for RK3588 (12 banks x 32 KiB, int8 C2 = 16), and a property test over
random convolutions against an independent re-derivation of what a task needs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.cbuf import (
    FIELD_LIMITS,
    BankSplit,
    Cbuf,
    Feature,
    TileProblem,
    TilingError,
    conv_input_rows,
    group_input_channels,
    group_sizes,
    over_limit,
    resize_input_rows,
    rows_that_fit,
    tile,
    transposed_input_rows,
)
from backends.targets import get_target

RK3588 = Cbuf(banks=12, bank_bytes=32 * 1024)
KIB = 1024


def test_rk3588_cbuf_from_target():
    target = get_target("rk3588")
    assert Cbuf(target.cbuf_banks, target.cbuf_bank_bytes) == RK3588
    assert RK3588.bytes == 384 * KIB


def test_field_limits_come_from_the_register_map():
    assert FIELD_LIMITS["input rows"] == FIELD_LIMITS["input width"] == 2047  # 11 bits
    assert FIELD_LIMITS["output atomics"] == 2**22 - 1
    assert FIELD_LIMITS["kernels"] == 2**14 - 1
    assert FIELD_LIMITS["cube"] == 2**13 - 1
    assert over_limit(input_rows=2047, cube=8191) is None
    assert over_limit(input_rows=2048) == "input rows 2048 exceeds the register field's 2047"


def test_bank_split_weights_first():
    assert RK3588.split(None) == BankSplit(12, 0)  # no weights: every bank holds data
    assert RK3588.split(0) == BankSplit(11, 1)  # weights get at least one bank
    assert RK3588.split(32 * KIB) == BankSplit(11, 1)
    assert RK3588.split(32 * KIB + 1) == BankSplit(10, 2)
    assert RK3588.split(11 * 32 * KIB) == BankSplit(1, 11)
    assert RK3588.split(11 * 32 * KIB + 1) is None  # no bank left for data


def test_feature_rows_hold_whole_c2_blocks():
    x = Feature(rows=10, width=7, channels=20, c2=16)
    assert x.row_bytes() == 7 * 32  # 20 channels -> 2 blocks of 16
    assert x.row_bytes(0, 16) == 7 * 16
    assert x.row_bytes(8, 24) == 7 * 32  # straddles two blocks
    assert x.row_bytes(16, 20) == 7 * 16
    assert Feature(4, 5, 3, 8, element_bytes=2, batch=2).row_bytes() == 5 * 8 * 2 * 2
    assert x.band_bytes((2, 5)) == 3 * 7 * 32
    assert x.band_bytes((5, 5)) == 0


def test_input_rows_of_a_band():
    # 3x3, stride 1, pad 1 on 56 rows: output rows [0, 10) read input rows [-1, 11) -> [0, 11)
    assert conv_input_rows(0, 10, 1, 1, 3, 1, 56) == (0, 11)
    assert conv_input_rows(10, 20, 1, 1, 3, 1, 56) == (9, 21)
    assert conv_input_rows(50, 56, 1, 1, 3, 1, 56) == (49, 56)
    # stride 2, kernel 3, dilation 2, no pad: rows y*2 .. y*2 + 4
    assert conv_input_rows(3, 5, 2, 0, 3, 2, 100) == (6, 13)
    # transposed, stride 2, kernel 3, pad 1: input i reaches outputs 2i-1 .. 2i+1
    assert transposed_input_rows(0, 1, 2, 1, 3, 1, 8) == (0, 1)
    assert transposed_input_rows(1, 2, 2, 1, 3, 1, 8) == (0, 2)
    assert transposed_input_rows(14, 15, 2, 1, 3, 1, 8) == (7, 8)
    # resize x2 (half_pixel): output rows 4..7 sample input 1.75 .. 3.25 -> margin of one row
    assert resize_input_rows(4, 8, 8, 16, "half_pixel") == (0, 6)
    assert resize_input_rows(0, 16, 8, 16, "align_corners") == (0, 8)


def test_group_input_channels():
    assert group_input_channels(0, 64, 64, 32, 1) == (0, 32)  # group 1: all inputs
    assert group_input_channels(16, 32, 64, 64, 64) == (16, 32)  # depthwise: its own
    assert group_input_channels(10, 20, 32, 16, 4) == (4, 12)  # groups 1..2 of 8 -> 4


# ---------------------------------------------------------------------- hand-worked convs


def conv3x3(channels_in: int, channels_out: int, size: int, groups: int = 1) -> TileProblem:
    """3x3, stride 1, pad 1, int8, C2 16, size x size."""
    x = Feature(size, size, channels_in, 16)

    def data(y0: int, y1: int, c0: int, c1: int) -> int:
        band = conv_input_rows(y0, y1, 1, 1, 3, 1, size)
        return x.band_bytes(band, *group_input_channels(c0, c1, channels_out, channels_in, groups))

    def weights(c0: int, c1: int) -> int:
        return (c1 - c0) * (channels_in // groups) * 9

    return TileProblem(size, channels_out, 16, data, weights)


def test_conv_64_to_64_on_56x56_fits_in_one_task():
    # weights 64*64*9 = 36,864 B -> 2 banks; data 10 banks = 327,680 B;
    # an input row is 56 * 64 = 3,584 B -> 91 rows fit, the whole 56-row input (200,704 B) fits
    assert 64 * 64 * 9 == 36_864 and RK3588.split(36_864) == BankSplit(10, 2)
    assert rows_that_fit(10 * 32 * KIB, 56 * 64) == 91
    assert tile(conv3x3(64, 64, 56), RK3588) == [(0, 56, 0, 64)]


def test_conv_64_to_64_on_224x224_splits_rows():
    # data 327,680 B, an input row 224 * 64 = 14,336 B -> 22 input rows per task; the first
    # band has no row above (padding): 21 output rows; then 20 (20 + 2 kernel rows); the
    # last band is what is left: 224 = 21 + 10 * 20 + 3
    assert rows_that_fit(327_680, 14_336) == 22
    expected = [(0, 21, 0, 64)] + [(21 + 20 * i, 41 + 20 * i, 0, 64) for i in range(10)]
    expected.append((221, 224, 0, 64))
    assert tile(conv3x3(64, 64, 224), RK3588) == expected


def test_conv_512_to_512_splits_output_channels_for_the_weights():
    # weights 512*512*9 = 2,359,296 B = 72 banks. The fewest balanced groups whose weights
    # leave a data bank: 7 groups of 80 (align(74, 16)) need 368,640 B = 12 banks, too many;
    # 8 groups of 64 need 294,912 B = 9 banks exactly -> 3 data banks = 98,304 B. An input
    # row is 14 * 512 = 7,168 B -> 13 rows: output rows [0, 12) (input [0, 13)), then [12, 14)
    assert RK3588.split(80 * 512 * 9) is None
    assert RK3588.split(64 * 512 * 9) == BankSplit(3, 9)
    assert rows_that_fit(98_304, 7_168) == 13
    expected = [(y0, y1, c, c + 64) for c in range(0, 512, 64) for y0, y1 in [(0, 12), (12, 14)]]
    assert tile(conv3x3(512, 512, 14), RK3588) == expected


def test_depthwise_splits_channels_when_a_row_does_not_fit():
    # depthwise 3x3 on 256 x 8 x 512: weights 2,304 B -> 1 bank, data 11 banks = 360,448 B.
    # One output row inside reads 3 input rows of 512 * 256 = 131,072 B = 393,216 B: too big.
    # Two groups of 128 channels: a row is 65,536 B -> 5 input rows: output rows [0, 4) (input
    # rows 0..4, the padding above), then [4, 8) (input rows 3..7, the padding below)
    x = Feature(8, 512, 256, 16)

    def data(y0: int, y1: int, c0: int, c1: int) -> int:
        return x.band_bytes(conv_input_rows(y0, y1, 1, 1, 3, 1, 8), c0, c1)

    problem = TileProblem(8, 256, 16, data, lambda c0, c1: (c1 - c0) * 9)
    bands = [(0, 4), (4, 8)]
    expected = [(y0, y1, c, c + 128) for c in (0, 128) for y0, y1 in bands]
    assert tile(problem, RK3588) == expected


def test_streaming_op_uses_every_bank():
    # an element-wise op on 1 x 64 x 100 x 100 int8: input + output row 2 * 6,400 B;
    # 12 banks = 393,216 B -> 30 rows per task
    x = Feature(100, 100, 64, 16)
    problem = TileProblem(100, 64, 16, lambda y0, y1, c0, c1: 2 * x.band_bytes((y0, y1), c0, c1))
    tasks = tile(problem, RK3588)
    assert [t[:2] for t in tasks] == [(0, 30), (30, 60), (60, 90), (90, 100)]


def test_field_limits_cut_bands():
    # 10,000 tiny rows: the CBUF holds them all, the 13-bit cube height does not
    def cube(y0: int, y1: int, c0: int, c1: int) -> str | None:
        return over_limit(cube=y1 - y0)

    problem = TileProblem(10_000, 8, 16, lambda *t: 0, None, cube)
    assert tile(problem, RK3588) == [(0, 8191, 0, 8), (8191, 10_000, 0, 8)]


def test_untileable_reasons():
    too_wide = TileProblem(4, 16, 16, lambda *t: 1, None, lambda *t: over_limit(cube=9000))
    with pytest.raises(TilingError, match="cube 9000 exceeds"):
        tile(too_wide, RK3588)
    big_row = TileProblem(4, 16, 16, lambda *t: 400 * KIB, lambda c0, c1: 10)
    with pytest.raises(TilingError, match=r"output row 0 of channels \[0, 16\) needs 409600 B"):
        tile(big_row, RK3588)
    heavy = TileProblem(4, 16, 16, lambda *t: 1, lambda c0, c1: (c1 - c0) * 32 * KIB)
    with pytest.raises(TilingError, match="weights of output channels"):
        tile(heavy, RK3588)


def test_empty_output_has_no_tasks():
    assert tile(TileProblem(0, 16, 16, lambda *t: 0), RK3588) == []


def test_group_sizes_fewest_groups_first_balanced():
    assert list(group_sizes(512, 16))[:8] == [512, 256, 176, 128, 112, 96, 80, 64]
    assert list(group_sizes(10, 16)) == [10]
    assert list(group_sizes(40, 16)) == [40, 32, 16]


# ---------------------------------------------------------------------- property


@st.composite
def convs(draw):
    kind = draw(st.sampled_from(["dense", "depthwise", "grouped"]))
    groups = 1
    cin = draw(st.integers(1, 80))
    cout = draw(st.integers(1, 80))
    if kind == "depthwise":
        groups = cout = cin
    elif kind == "grouped":
        groups = draw(st.sampled_from([2, 4]))
        cin, cout = groups * draw(st.integers(1, 20)), groups * draw(st.integers(1, 20))
    k = draw(st.integers(1, 5))
    dil = draw(st.integers(1, 2))
    h = draw(st.integers(1, 40))
    return dict(
        cin=cin,
        cout=cout,
        groups=groups,
        h=max(h, (k - 1) * dil + 1),
        w=draw(st.integers(1, 40)),
        k=k,
        stride=draw(st.integers(1, 3)),
        pad=draw(st.integers(0, k - 1)),
        dil=dil,
        c2=draw(st.sampled_from([8, 16])),
        bits=draw(st.sampled_from([4, 8, 16])),
        cbuf=Cbuf(draw(st.integers(2, 12)), draw(st.sampled_from([256, 1024, 4096, 32768]))),
    )


class Reference:
    """What a conv task needs, derived again from the definitions (not from backends.cbuf)."""

    def __init__(self, p: dict):
        self.p = p
        self.out_h = (p["h"] + 2 * p["pad"] - p["dil"] * (p["k"] - 1) - 1) // p["stride"] + 1
        self.ebytes = max(1, p["bits"] // 8)

    def data(self, y0: int, y1: int, c0: int, c1: int) -> int:
        p = self.p
        top = max(0, y0 * p["stride"] - p["pad"])
        bottom = min(p["h"], (y1 - 1) * p["stride"] - p["pad"] + (p["k"] - 1) * p["dil"] + 1)
        per_in, per_out = p["cin"] // p["groups"], p["cout"] // p["groups"]
        first, last = (c0 // per_out) * per_in, -(-c1 // per_out) * per_in  # input channels
        blocks = -(-last // p["c2"]) - first // p["c2"]
        return max(0, bottom - top) * p["w"] * blocks * p["c2"] * self.ebytes

    def weights(self, c0: int, c1: int) -> int:
        p = self.p
        return -(-(c1 - c0) * (p["cin"] // p["groups"]) * p["k"] ** 2 * p["bits"] // 8)

    def capacity(self, c0: int, c1: int) -> int | None:
        cbuf = self.p["cbuf"]
        weight_banks = max(1, -(-self.weights(c0, c1) // cbuf.bank_bytes))
        return None if weight_banks >= cbuf.banks else (cbuf.banks - weight_banks) * cbuf.bank_bytes

    def feasible(self, size: int) -> bool:
        """Every channel group of `size` has a bank for data and every single row fits."""
        for c0 in range(0, self.p["cout"], size):
            c1 = min(c0 + size, self.p["cout"])
            room = self.capacity(c0, c1)
            if room is None or any(self.data(y, y + 1, c0, c1) > room for y in range(self.out_h)):
                return False
        return True


def problem_of(ref: Reference) -> TileProblem:
    p = ref.p
    x = Feature(p["h"], p["w"], p["cin"], p["c2"], ref.ebytes)

    def data(y0: int, y1: int, c0: int, c1: int) -> int:
        band = conv_input_rows(y0, y1, p["stride"], p["pad"], p["k"], p["dil"], p["h"])
        return x.band_bytes(band, *group_input_channels(c0, c1, p["cout"], p["cin"], p["groups"]))

    return TileProblem(ref.out_h, p["cout"], p["c2"], data, ref.weights)


@settings(max_examples=300, deadline=None)
@given(convs())
def test_tasks_partition_the_output_and_fit(p):
    ref = Reference(p)
    try:
        tasks = tile(problem_of(ref), p["cbuf"])
    except TilingError:
        assert not ref.feasible(p["c2"]), "tiling failed although c2-wide groups fit"
        return
    covered = np.zeros((ref.out_h, p["cout"]), np.int64)
    for y0, y1, c0, c1 in tasks:
        assert 0 <= y0 < y1 <= ref.out_h and 0 <= c0 < c1 <= p["cout"]
        assert c0 % p["c2"] == 0  # no two tasks write one C2 block
        covered[y0:y1, c0:c1] += 1
        room = ref.capacity(c0, c1)
        assert room is not None and ref.data(y0, y1, c0, c1) <= room
        # bands are as tall as they can be: one more row would not fit
        if y1 < ref.out_h:
            assert ref.data(y0, y1 + 1, c0, c1) > room
    assert (covered == 1).all()
    # output channels are split only when one group cannot hold all of them
    if {t[2:] for t in tasks} != {(0, p["cout"])}:
        assert not ref.feasible(p["cout"])
