"""Feature cubes in memory: element (c, h, w) of a cube whose first byte is at `address`
lives at

    address + ((c // C2) * surf_stride + h * line_stride + w) * atom + (c % C2) * element

with the strides in atoms of C2 elements (`backends.registers.values.feature_atom`: the
chip's C2 for NC1HWC2, 1 for a planar tensor). Only the first `real` channels exist in
memory: reads give 0 for the others, writes leave them alone. float16 cubes read as float64
and are written rounded to float16 (nearest even)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from backends.registers.values import ELEMENT_BYTES, feature_atom
from backends.targets import Target
from runtime.simulator.memory import Memory, SimulatorError

FLOAT_STORAGE = ("f16",)
STORAGE = {"i8": np.dtype(np.int8), "i16": np.dtype(np.int16), "f16": np.dtype(np.float16)}


@dataclass(frozen=True)
class Cube:
    address: int
    dtype: str
    channels: int
    real: int
    height: int
    width: int
    line_stride: int
    surf_stride: int
    planar: bool

    def offsets(self, target: Target) -> np.ndarray:
        """Byte offsets of the real channels' elements, shape (real, height, width)."""
        if self.dtype not in STORAGE:
            raise SimulatorError(f"{self.dtype} feature data is not simulated")
        return _offsets(self.dtype, self.real, self.height, self.width, self.line_stride,
                        self.surf_stride, self.planar, target)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _offsets(dtype: str, real: int, height: int, width: int, line_stride: int,
             surf_stride: int, planar: bool, target: Target) -> np.ndarray:  # fmt: skip
    """Cube.offsets, computed once per geometry (a model's cubes repeat every run); the
    array is read-only so that no caller changes the cached one."""
    c2, atom = feature_atom(target, dtype, planar)
    c = np.arange(real, dtype=np.int64)[:, None, None]
    h = np.arange(height, dtype=np.int64)[None, :, None]
    w = np.arange(width, dtype=np.int64)[None, None, :]
    atoms = (c // c2) * surf_stride + h * line_stride + w
    offsets = atoms * atom + (c % c2) * ELEMENT_BYTES[dtype]
    offsets.flags.writeable = False
    return offsets


def read_cube(memory: Memory, cube: Cube, target: Target) -> np.ndarray:
    """(channels, height, width) int64 (float64 for float16); channels past `real` are 0."""
    if not 0 < cube.real <= cube.channels:
        raise SimulatorError(f"{cube.real} real channels of {cube.channels}")
    kind = np.float64 if cube.dtype in FLOAT_STORAGE else np.int64
    out = np.zeros((cube.channels, cube.height, cube.width), kind)
    out[: cube.real] = memory.read_elements(cube.address, cube.offsets(target), STORAGE[cube.dtype])
    return out


def write_cube(memory: Memory, cube: Cube, values: np.ndarray, target: Target) -> None:
    """Write the first `real` channels of `values` (channels, height, width)."""
    memory.write_elements(cube.address, cube.offsets(target), values[: cube.real],
                          STORAGE[cube.dtype])  # fmt: skip
