"""The PPU and its read DMA (op-enable PPU | PPU_RDMA): pooling, and copies (a 1 x 1 max
pooling), on NC1HWC2 cubes. The register reading is `backends/registers/ppu_values.py`:
PPU_RDMA reads the input cube, the PPU pads it with PAD_VALUE_0, slides the window and
writes max / min / the contract's average (`round_shift(sum(x - PAD_VALUE_0) * M, S) + zp`
with M = RECIP_KERNEL_WIDTH, S = RECIP_KERNEL_HEIGHT, zp = DATA_FORMAT.INDEX_ADD),
saturated to the output precision; NC1HWC2 output, or row-major (C2 = 1) with
MISC_CTRL.NONALIGN. The input's precision is PPU_RDMA.RDMA_DATA_FORMAT.IN_PRECISION, the
output's PPU.DATA_FORMAT.PROC_PRECISION [ours]: they differ in the two-pass global pooling
(int8 -> int16 partial sums -> int8). A float16 task (both precisions float16) pools float16
values, PAD_VALUE_0 holding the padding's float16 bit pattern [ours]: max / min, or the
average as the window's sum (float64, exact) divided by its size, rounded to float32."""

from __future__ import annotations

import numpy as np

from backends.registers.ppu_values import (
    POOL_AVERAGE,
    POOL_MAX,
    POOL_METHODS,
    POOL_MIN,
    ZERO_POINT_BITS,
    from_field,
)
from backends.registers.values import PRECISION_NAME
from backends.targets import Target
from dialects.npu import numerics as nx
from runtime.simulator.cube import FLOAT_STORAGE, STORAGE, Cube, read_cube, write_cube
from runtime.simulator.memory import Memory, SimulatorError
from runtime.simulator.registers import RegisterFile

PPU_BLOCKS = ("PPU", "PPU_RDMA")


def run_ppu(regs: RegisterFile, memory: Memory, target: Target) -> None:
    def f(block: str, register: str, name: str) -> int:
        return regs.field(block, register, name)

    in_dtype = PRECISION_NAME.get(f("PPU_RDMA", "RDMA_DATA_FORMAT", "IN_PRECISION"))
    dtype = PRECISION_NAME.get(f("PPU", "DATA_FORMAT", "PROC_PRECISION"))
    floating = {in_dtype, dtype} & set(FLOAT_STORAGE)
    if {in_dtype, dtype} - set(STORAGE) or (floating and {in_dtype, dtype} != floating):
        raise SimulatorError(f"PPU precisions {in_dtype} -> {dtype} are not simulated")
    size = tuple(f("PPU_RDMA", f"RDMA_CUBE_IN_{d}", f"CUBE_IN_{d}") + 1
                 for d in ("CHANNEL", "HEIGHT", "WIDTH"))  # fmt: skip
    ppu_size = tuple(f("PPU", f"DATA_CUBE_IN_{d}", f"CUBE_IN_{d}") + 1
                     for d in ("CHANNEL", "HEIGHT", "WIDTH"))  # fmt: skip
    if size != ppu_size:
        raise SimulatorError(f"PPU_RDMA reads a {size} cube, the PPU expects {ppu_size}")
    channels, height, width = size
    line = f("PPU_RDMA", "RDMA_SRC_LINE_STRIDE", "SRC_LINE_STRIDE")
    surface = f("PPU_RDMA", "RDMA_SRC_SURF_STRIDE", "SRC_SURF_STRIDE")
    source = Cube(regs.raw("PPU_RDMA", "RDMA_SRC_BASE_ADDR"), in_dtype, channels, channels,
                  height, width, line, surface, planar=False)  # fmt: skip
    x = read_cube(memory, source, target)
    mode = regs.fields("PPU", "OPERATION_MODE_CFG")
    method = mode["POOLING_METHOD"]
    if method not in POOL_METHODS or not mode["FLYING_MODE"]:
        raise SimulatorError(f"PPU pooling method {method}, flying mode "
                             f"{mode['FLYING_MODE']} is not simulated")  # fmt: skip
    k = regs.fields("PPU", "POOLING_KERNEL_CFG")
    kh, kw = k["KERNEL_HEIGHT"] + 1, k["KERNEL_WIDTH"] + 1
    sy, sx = k["KERNEL_STRIDE_HEIGHT"] + 1, k["KERNEL_STRIDE_WIDTH"] + 1
    p = regs.fields("PPU", "POOLING_PADDING_CFG")
    pad_value: float = regs.signed("PPU", "PADDING_VALUE_1_CFG")
    if floating:  # [ours] the padding's float16 bit pattern; only max / min pool floats
        pad_value = float(np.uint16(pad_value & 0xFFFF).view(np.float16))
    padded = np.pad(x, ((0, 0), (p["PAD_TOP"], p["PAD_BOTTOM"]), (p["PAD_LEFT"], p["PAD_RIGHT"])),
                    constant_values=pad_value)  # fmt: skip
    oc = f("PPU", "DATA_CUBE_OUT_CHANNEL", "CUBE_OUT_CHANNEL") + 1
    oh = f("PPU", "DATA_CUBE_OUT_HEIGHT", "CUBE_OUT_HEIGHT") + 1
    ow = f("PPU", "DATA_CUBE_OUT_WIDTH", "CUBE_OUT_WIDTH") + 1
    if oc != channels:
        raise SimulatorError(f"the PPU pools {channels} channels into {oc}")
    if (oh - 1) * sy + kh > padded.shape[1] or (ow - 1) * sx + kw > padded.shape[2]:
        raise SimulatorError(f"a {oh} x {ow} output of {kh} x {kw} windows (strides {sy}, "
                             f"{sx}) leaves the padded {padded.shape[1:]} input")  # fmt: skip
    windows = np.stack([padded[:, i : i + (oh - 1) * sy + 1 : sy, j : j + (ow - 1) * sx + 1 : sx]
                        for i in range(kh) for j in range(kw)])  # fmt: skip
    if floating and method == POOL_AVERAGE:  # [ours] exact sum / window size, float32
        y = (windows.sum(axis=0) / (kh * kw)).astype(np.float32)
    elif method == POOL_MAX:
        y = windows.max(axis=0)
    elif method == POOL_MIN:
        y = windows.min(axis=0)
    else:
        assert method == POOL_AVERAGE
        total = (windows - pad_value).sum(axis=0)
        mantissa = f("PPU", "RECIP_KERNEL_WIDTH", "RECIP_KERNEL_WIDTH")
        shift = f("PPU", "RECIP_KERNEL_HEIGHT", "RECIP_KERNEL_HEIGHT")
        zero_point = from_field(f("PPU", "DATA_FORMAT", "INDEX_ADD"), ZERO_POINT_BITS)
        y = nx.round_shift(total * mantissa, shift) + zero_point
    planar = bool(f("PPU", "MISC_CTRL", "NONALIGN"))
    out = Cube(regs.raw("PPU", "DST_BASE_ADDR"), dtype, oc, oc, oh, ow, ow,
               f("PPU", "DST_SURF_STRIDE", "DST_SURF_STRIDE"), planar=planar)  # fmt: skip
    if floating:
        write_cube(memory, out, y, target)
        return
    lo, hi = nx.qrange(dtype)
    write_cube(memory, out, np.clip(y, lo, hi), target)
