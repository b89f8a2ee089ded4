"""A global average pooling wider than the PPU's window (16 x 16: 4-bit kernel fields), in
two PPU passes with the contract's arithmetic kept exact:

1. partial sums: windows of kh1 x kw1 at stride kh1 x kw1 over the int8 input, `sum(x -
   zp_in)` each (the PPU's average with M = 1, S = 0, zero point 0; the bottom / right
   padding reads zp_in, adding 0), written as int16 into a scratch tensor of h2 x w2 per
   channel. A window holds at most PARTIAL_ELEMENTS elements, so a partial sum fits int16:
   |x - zp_in| <= 255 and 128 * 255 = 32640.
2. the pooling of the partial sums over their whole h2 x w2 plane (<= 16 x 16), zero point
   0, with the contract's (M, S) for `s_in / (s_out * h * w)`: `round_shift(sum * M, S) +
   zp_out`, the very sum and multiplier of the one-pass form (`runtime/kernels/quantized.py`
   `window_sums`), so the result is the reference's bit for bit.

plan-memory reserves the scratch tensor in the arena (live during the op only); code
generation emits the two tasks per tile of channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backends.layout import storage_bytes
from backends.registers.ppu_values import PAD_MAX
from backends.targets import Target
from dialects.npu import ops as npu
from dialects.npu.limits import MAX_POOL_KERNEL

PARTIAL_DTYPE = "i16"
PARTIAL_ELEMENTS = 128  # elements per partial window (the int16 bound above)


@dataclass(frozen=True)
class PoolSplit:
    window: tuple[int, int]  # kh1, kw1 (also the stride)
    partial: tuple[int, int]  # h2, w2: the partial sums' plane
    pads: tuple[int, int]  # bottom, right: what the last windows read past the input


def _axis(size: int) -> tuple[int, int, int] | None:
    """(window, count, pad) along one axis: count <= 16 windows, pad <= PAD_MAX."""
    for window in range(math.ceil(size / MAX_POOL_KERNEL), MAX_POOL_KERNEL + 1):
        count = math.ceil(size / window)
        if count <= MAX_POOL_KERNEL and window * count - size <= PAD_MAX:
            return window, count, window * count - size
    return None


def global_pool_split(height: int, width: int) -> PoolSplit | None:
    """The two-pass form of a global pooling of `height` x `width`, or None when one pass
    does (both within 16) or no split fits (a partial window over PARTIAL_ELEMENTS)."""
    if max(height, width) <= MAX_POOL_KERNEL:
        return None
    rows, cols = _axis(height), _axis(width)
    if rows is None or cols is None or rows[0] * cols[0] > PARTIAL_ELEMENTS:
        return None
    return PoolSplit((rows[0], cols[0]), (rows[1], cols[1]), (rows[2], cols[2]))


def split_of(op: npu.PoolOp) -> PoolSplit | None:
    """The split `op` is generated with: an int8 global average pooling too wide for one
    pass (int16 inputs would need int32 partial sums, which the PPU does not write)."""
    in_q = npu.quant_of(op.input)
    if not op.global_pool.data or op.kind.data != "avg" or in_q is None or in_q.element != "i8":
        return None
    _, _, height, width = npu.in_shape(op.input)
    return global_pool_split(height, width)


def scratch_bytes(op: npu.PoolOp, target: Target) -> int:
    """Bytes of `op`'s partial sums (NC1HWC2 int16), 0 when it needs none."""
    split = split_of(op)
    if split is None:
        return 0
    channels = npu.in_shape(op.input)[1]
    return storage_bytes((1, channels, *split.partial), PARTIAL_DTYPE, "NC1HWC2",
                         target.c2(PARTIAL_DTYPE))  # fmt: skip
