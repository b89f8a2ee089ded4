"""NC1HWC2 against the worked example of the RKNN SDK guide §5.1 (sdk_inventory §5.2): a
(1, 13, 2, 2) int8 tensor with C2 = 8 is stored as (1, 2, 2, 2, 8), 64 slots."""

from __future__ import annotations

import numpy as np

from backends.layout import NC1HWC2, NCHW, from_nc1hwc2, nc1hwc2_shape, storage_bytes, to_nc1hwc2

# the guide's slots of channels 0, 1, 7, 8, 12 over (h, w) = (0,0), (0,1), (1,0), (1,1)
GUIDE_SLOTS = {0: [0, 8, 16, 24], 1: [1, 9, 17, 25], 7: [7, 15, 23, 31],
               8: [32, 40, 48, 56], 12: [36, 44, 52, 60]}  # fmt: skip
PADDING_SLOTS = [37, 38, 39, 45, 46, 47, 53, 54, 55, 61, 62, 63]


def test_the_guides_example():
    x = np.arange(1, 13 * 4 + 1, dtype=np.int8).reshape(1, 13, 2, 2)
    stored = to_nc1hwc2(x, 8)
    assert stored.shape == nc1hwc2_shape(x.shape, 8) == (1, 2, 2, 2, 8)
    flat = stored.ravel()
    for channel, slots in GUIDE_SLOTS.items():
        assert list(flat[slots]) == list(x[0, channel].ravel())
    assert not flat[PADDING_SLOTS].any()
    np.testing.assert_array_equal(from_nc1hwc2(stored, 13), x)


def test_storage_bytes():
    assert storage_bytes((1, 13, 2, 2), "i8", NC1HWC2, 8) == 64
    assert storage_bytes((1, 13, 2, 2), "f16", NC1HWC2, 8) == 128
    assert storage_bytes((1, 13, 2, 2), "i8", NCHW) == 52
