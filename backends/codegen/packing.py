"""Weight packing: how the CNA's weight DMA finds the weights (anchors §1.6, Mesa
rkt_coefs.c `rkt_fill_weights`). The atom sizes come from `backends.registers.values.
weight_atoms` (int8: 32 x 32, depthwise 64).

Direct convolution, weights [K, C, Kh, Kw] (output channel, input channel, row, column):

    [K1 = ceil(K / cout2)][C1 = ceil(C / cin2)][Kh][Kw][cout2][cin2]

element (k, c, y, x) at flat index
`((((k // cout2) * C1 + c // cin2) * Kh + y) * Kw + x) * cout2 * cin2 + (k % cout2) * cin2
+ c % cin2`; the channels past K and C are zero. (Mesa's loops read TFLite's OHWI weights
with `x` over dims[1], which is the kernel's height: the same order.) Mesa packs only 16
lanes of a last input group of at most 16 channels; we always pack whole `cin2` groups.

Depthwise, weights [C, Kh, Kw] (one kernel per channel; Mesa: WEIGHT_KERNELS 1 and the
channels on the input-channel axis in groups of 2 x 32):

    [C1 = ceil(C / group)][Kh][Kw][group]

Values are stored as the layer's integers (int8, int16 little-endian), not shifted by
0x80: our activations and weights are signed already (Mesa converts TFLite's uint8); a
float16 layer's as IEEE half floats (`STORAGE`).
"""

from __future__ import annotations

import numpy as np

STORAGE = {"i8": np.dtype(np.int8), "i16": np.dtype(np.int16), "f16": np.dtype(np.float16)}


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pack_conv_weights(w: np.ndarray, cout2: int, cin2: int) -> np.ndarray:
    """[K, C, Kh, Kw] -> the flat packed array (see the module doc), zero padded."""
    k, c, kh, kw = w.shape
    k1, c1 = ceil_div(k, cout2), ceil_div(c, cin2)
    padded = np.zeros((k1 * cout2, c1 * cin2, kh, kw), w.dtype)
    padded[:k, :c] = w
    blocks = padded.reshape(k1, cout2, c1, cin2, kh, kw)
    return np.ascontiguousarray(blocks.transpose(0, 2, 4, 5, 1, 3)).reshape(-1)


def pack_depthwise_weights(w: np.ndarray, group: int) -> np.ndarray:
    """[C, Kh, Kw] -> the flat packed array `[C1][Kh][Kw][group]`, zero padded."""
    c, kh, kw = w.shape
    c1 = ceil_div(c, group)
    padded = np.zeros((c1 * group, kh, kw), w.dtype)
    padded[:c] = w
    return np.ascontiguousarray(padded.reshape(c1, group, kh, kw).transpose(0, 2, 3, 1)).reshape(-1)


def little_endian(values: np.ndarray) -> bytes:
    """The array's bytes, little-endian whatever the host."""
    return np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def window(w: np.ndarray, rows: tuple[int, int], columns: tuple[int, int]) -> np.ndarray:
    """`w[r0:r1, c0:c1, ...]`, zero-extended where the window passes `w`'s edges."""
    (r0, r1), (c0, c1) = rows, columns
    out = np.zeros((r1 - r0, c1 - c0, *w.shape[2:]), w.dtype)
    part = w[r0:r1, c0:c1]
    out[: part.shape[0], : part.shape[1]] = part
    return out


def block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped convolution's weights [K, C / groups, Kh, Kw] as the dense [K, C, Kh, Kw]
    that computes the same thing (zero outside each group's block)."""
    k, per_group, kh, kw = w.shape
    dense = np.zeros((k, per_group * groups, kh, kw), w.dtype)
    out_per_group = k // groups
    for g in range(groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        dense[rows, g * per_group : (g + 1) * per_group] = w[rows]
    return dense
