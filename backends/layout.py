"""Tensor layouts in NPU memory: NC1HWC2 (the native one), NCHW, NHWC, UNDEFINED (non-4-D).

NC1HWC2 (sdk_inventory §5.2): a 4-D NCHW tensor of C channels is stored as
(N, C1, H, W, C2) with C1 = ceil(C / C2), C2 innermost; C2 depends on the chip and dtype
(`Target.c2`). Element (n, c, h, w) lives at slot

    ((n * C1 + c // C2) * H * W + h * W + w) * C2 + c % C2

and the channels past C in the last C1 block are padding (zero here).
"""

from __future__ import annotations

import numpy as np

NC1HWC2 = "NC1HWC2"
NCHW = "NCHW"
NHWC = "NHWC"
UNDEFINED = "UNDEFINED"
LAYOUTS = (NC1HWC2, NCHW, NHWC, UNDEFINED)

# bytes per element of our dtype names
ELEMENT_BYTES = {"i4": 1, "i8": 1, "u8": 1, "i16": 2, "f16": 2, "i32": 4, "f32": 4, "i48": 8}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def nc1hwc2_shape(shape: tuple[int, ...], c2: int) -> tuple[int, int, int, int, int]:
    """The (N, C1, H, W, C2) storage shape of an NCHW `shape`."""
    n, c, h, w = shape
    return (n, ceil_div(c, c2), h, w, c2)


def storage_bytes(shape: tuple[int, ...], dtype: str, layout: str, c2: int = 1) -> int:
    """Bytes a tensor of `shape` (NCHW for 4-D) and `dtype` takes in `layout`."""
    elements = int(np.prod(nc1hwc2_shape(shape, c2))) if layout == NC1HWC2 else int(
        np.prod(shape, dtype=np.int64))  # fmt: skip
    return elements * ELEMENT_BYTES[dtype]


def to_nc1hwc2(x: np.ndarray, c2: int) -> np.ndarray:
    """NCHW -> (N, C1, H, W, C2), the padding channels zero."""
    n, c, h, w = x.shape
    c1 = ceil_div(c, c2)
    padded = np.zeros((n, c1 * c2, h, w), x.dtype)
    padded[:, :c] = x
    return np.ascontiguousarray(padded.reshape(n, c1, c2, h, w).transpose(0, 1, 3, 4, 2))


def from_nc1hwc2(x: np.ndarray, channels: int) -> np.ndarray:
    """(N, C1, H, W, C2) -> NCHW with the first `channels` channels."""
    n, c1, h, w, c2 = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(n, c1 * c2, h, w)[:, :channels])
