"""A tensor between numpy (NCHW) and simulated memory in its placed layout (NC1HWC2, NHWC
or row-major), little-endian: what the session writes for the NPU and reads back, and what
the tests write from the reference executor."""

from __future__ import annotations

import numpy as np

from backends.codegen.tensors import Placed
from backends.layout import NC1HWC2, NHWC, ceil_div, from_nc1hwc2, to_nc1hwc2
from runtime.simulator.memory import Memory

STORAGE = {"i8": np.int8, "i16": np.int16, "f16": np.float16}


def tensor_bytes(array: np.ndarray, where: Placed) -> bytes:
    """`array` (NCHW for 4-D) as `where` stores it."""
    data = np.asarray(array).astype(np.dtype(STORAGE[where.dtype]).newbyteorder("<"))
    if where.layout == NC1HWC2:
        data = to_nc1hwc2(data, where.c2)
    elif where.layout == NHWC:
        data = data.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data).tobytes()


def write_tensor(memory: Memory, where: Placed, array: np.ndarray) -> None:
    memory.write(memory.base(where.buffer) + where.offset, tensor_bytes(array, where))


def read_tensor(memory: Memory, where: Placed) -> np.ndarray:
    """The tensor at `where`, back in NCHW (4-D) or its row-major shape."""
    dtype = np.dtype(STORAGE[where.dtype]).newbyteorder("<")
    shape: tuple[int, ...] = where.shape
    if where.layout == NC1HWC2:
        n, c, h, w = where.shape
        shape = (n, ceil_div(c, where.c2), h, w, where.c2)
    elif where.layout == NHWC:
        n, c, h, w = where.shape
        shape = (n, h, w, c)
    raw = memory.read(
        memory.base(where.buffer) + where.offset, int(np.prod(shape)) * dtype.itemsize
    )
    data = np.frombuffer(raw, dtype).reshape(shape)
    if where.layout == NC1HWC2:
        return from_nc1hwc2(data, where.shape[1])
    if where.layout == NHWC:
        return np.ascontiguousarray(data.transpose(0, 3, 1, 2))
    return data.astype(dtype.newbyteorder("="))
