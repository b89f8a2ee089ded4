"""The cycle model: per NPU task, cycles from the task's own register writes; per CPU op, a
time from its tensor sizes. The style is Vela's (research/anchors.md §2.6): each task is a
roofline, `MaxCycles = max(NPUCycles, DDRCycles)`, and tasks run one after the other.

Chip numbers come from `backends.targets` (MAC array, clock, DDR bytes per cycle, C2); the
model's own constants are below, each with where it comes from ("fig 8-3" is the per-layer
table of RKNN's eval_perf in research/sdk_inventory.md §4.1, whose rows give NPUCycles and
DDRCycles per convolution; "ASSUMPTION" is ours, to replace when a board measures it).

**Convolution task** (op-enable CNA | CORE | DPU | DPU_RDMA; fully-connected tasks too), with
the CNA's input channels C (DATAIN_CHANNEL), kernels K, kernel kh x kw, output OH x OW and the
chip's MAC array of atomic C x atomic K channels for the dtype:

    steps      = ceil(K / atomic_K) * max(kh * kw * ceil(C / atomic_C), MIN_STEPS_PER_OUTPUT)
    NPUCycles  = OH * OW * steps * CYCLES_PER_STEP
    depthwise (ASSUMPTION: the K side of the array idles; one step takes one kernel
    position of the depthwise weight atom's channels, 64 for int8 on RK3588: the depthwise
    channel alignment of sdk §5.4 and Mesa's 2 x 32 depthwise weight groups, anchors §1.6):
    steps      = ceil(C / depthwise_atom) * max(kh * kw, MIN_STEPS_PER_OUTPUT)

**DPU-only task** (element-wise, LUT): `NPUCycles = atoms * DPU_CYCLES_PER_ATOM`, an atom
being C2 channels of one pixel. **PPU task** (pooling, copies): `NPUCycles = output atoms *
kh * kw * PPU_CYCLES_PER_TAP`.

**DDR** (every task): `DDRCycles = read_bytes / ddr.read + write_bytes / ddr.write` with the
target's fitted rates (chips.py: fitted to fig 8-3 with read = input + weights + bias,
write = output). Bytes are what the task's DMAs move: the input cube (C2-aligned channels,
or the real channels of a planar NONALIGN read), WEIGHT_BYTES unless the task reuses the
weights its predecessor left in the CBUF (CBUF_CON0.WEIGHT_REUSE), the DPU's per-channel
operand table (BRDMA_DATA_USE), the EW operand cube or vector, the output cube. The
register command words the task fetches (under 1 KiB a task) are not counted.

The error against RKNN's published numbers is measured by tests/benchmarks/perf_zoo.py and
listed in README.md, "Performance model".

**Time**: `MaxCycles / clock_hz` per task, summed: no per-task overhead is modelled (the
hardware chains a job's tasks through PC.BASE_ADDRESS without the CPU).

**CPU op**: `CPU_OP_FIXED_US + elements * CPU_NS_PER_ELEMENT / 1000`, elements = the
largest of its inputs and outputs; a float convolution adds `MACs / CPU_MACS_PER_US`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from backends.registers import CMD, CONV_BLOCKS, RegisterError, decode, unpack
from backends.registers.values import (
    BRDMA_ALU_INT32,
    BRDMA_RECORD,
    ELEMENT_BYTES,
    EW_DATA_SIZE_NAME,
    EW_PER_ELEMENT,
    OPERAND_RECORD_BYTES,
    PRECISION_NAME,
    WeightAtoms,
    weight_atoms,
)
from backends.targets import Target
from runtime.simulator.mac import conv_shape
from runtime.simulator.memory import SimulatorError
from runtime.simulator.registers import RegisterFile

# [DERIVED] fig 8-3, the nine convolution rows (int8; 3x3 and 1x1, C 3..128, K 32..128):
# NPUCycles / (OH * OW) = 2 * ceil(K / 32) * max(kh * kw * ceil(C / 32), 4) on every row,
# exactly, with the target's 32 x 32 int8 array. The 2 says RKNN counts two clock cycles
# per atomic step (equivalently 512 MACs per counted cycle on an array of 1024).
CYCLES_PER_STEP = 2
# [DERIVED] fig 8-3, the four 1x1 rows: 1x1 convolutions with C <= 128 cost as much as
# 4 channel steps (8 cycles per 32 kernels), whatever C is; a pipeline floor per output.
MIN_STEPS_PER_OUTPUT = 4
# ASSUMPTION: the DPU (SDP) streams one C2 atom (16 int8 channels of a pixel) per cycle, and
# the PPU one atom per window tap per cycle. No table of ours gives them; DPU-only tasks
# are DDR-bound under either (16 bytes per cycle > the 7.54 B/cycle DDR read rate).
DPU_CYCLES_PER_ATOM = 1
PPU_CYCLES_PER_TAP = 1
# CPU ops. CPU_OP_FIXED_US: sdk §4.1, RKNN's InputOperator 9 us (fig 8-3) and
# OutputOperator 11 us (MobileNet sample) on RK3588. ASSUMPTION: 1 ns per element for a
# conversion or copy (a Cortex-A76 core converting about 1 G elements/s), and 8000 MACs per
# us for float convolutions on the CPU (one A76 core, fp32 NEON at about half its peak).
CPU_OP_FIXED_US = 10.0
CPU_NS_PER_ELEMENT = 1.0
CPU_MACS_PER_US = 8000.0

CONV, DPU, PPU = "conv", "dpu", "ppu"
DPU_BLOCKS = frozenset({"DPU", "DPU_RDMA"})
PPU_BLOCKS = frozenset({"PPU", "PPU_RDMA"})
BLOCK_ENABLES = ("CNA", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA")
WORD_BYTES = 8


class PerfError(Exception):
    """The container cannot be estimated (one line, naming the task)."""


@dataclass(frozen=True)
class TaskCost:
    """One NPU task as the cycle model sees it."""

    task: int  # index in the container's task table
    op_index: int  # the op table index it belongs to
    kind: str  # CONV, DPU or PPU
    dtype: str  # the input precision
    npu_cycles: int
    read_bytes: int
    write_bytes: int
    ddr_cycles: float
    macs: int  # multiply-accumulates of real channels (0 outside convolutions)
    rows: int  # output rows (the unit a multi-core split divides)

    @property
    def max_cycles(self) -> float:
        return max(self.npu_cycles, self.ddr_cycles)


def read_words(blob: bytes) -> list[int]:
    """The u64 little-endian command words of the `commands` section."""
    return [int.from_bytes(blob[i : i + WORD_BYTES], "little")
            for i in range(0, len(blob) - WORD_BYTES + 1, WORD_BYTES)]  # fmt: skip


def task_costs(words: Sequence[int], tasks: Sequence[Sequence[int]], target: Target
               ) -> list[TaskCost]:  # fmt: skip
    """Every task of the table `tasks` ([op_index, first_word, word_count] each), in order.
    One register file runs through all of them: the hardware keeps a register's value until
    it is written again."""
    regs = RegisterFile()
    costs = []
    for number, (op_index, first, count) in enumerate(tasks):
        if first < 0 or count < 1 or first + count > len(words):
            raise PerfError(f"task {number}: words {first}+{count} are outside the commands")
        blocks = _load_task(words[first : first + count], regs, number)
        try:
            costs.append(_task_cost(number, op_index, blocks, regs, target))
        except (SimulatorError, RegisterError, KeyError) as exc:
            raise PerfError(f"task {number} (op {op_index}): {exc}") from None
    return costs


def _load_task(words: Sequence[int], regs: RegisterFile, number: int) -> frozenset[str]:
    """Write the task's register words; the blocks its op-enable word starts."""
    for word in words:
        try:
            block, register, fields = decode(word)
        except RegisterError as exc:
            raise PerfError(f"task {number}: {exc}") from None
        if block == CMD:
            if register == "OP_ENABLE":
                return frozenset(b for b in BLOCK_ENABLES if fields[f"{b}_OP_EN"])
        elif block != "PC":
            regs.write(block, register, unpack(word)[1])
    raise PerfError(f"task {number}: no op-enable word")


def _task_cost(number: int, op_index: int, blocks: frozenset[str], regs: RegisterFile,
               target: Target) -> TaskCost:  # fmt: skip
    if blocks == frozenset(CONV_BLOCKS):
        return _conv_cost(number, op_index, regs, target)
    if blocks == DPU_BLOCKS:
        return _dpu_cost(number, op_index, regs, target)
    if blocks == PPU_BLOCKS:
        return _ppu_cost(number, op_index, regs, target)
    raise PerfError(f"task {number}: op-enable of {', '.join(sorted(blocks)) or 'no block'} "
                    "is not a task kind the model knows")  # fmt: skip


def ddr_cycles(read_bytes: int, write_bytes: int, target: Target) -> float:
    rate = target.ddr_bytes_per_cycle
    return read_bytes / rate.read + write_bytes / rate.write


def cube_bytes(channels: int, height: int, width: int, dtype: str, planar: bool,
               target: Target) -> int:  # fmt: skip
    """Bytes a DMA moves for a cube: whole C2 atoms in NC1HWC2, the channels as they are in
    a planar (NONALIGN) layout."""
    stored = channels if planar else math.ceil(channels / target.c2(dtype)) * target.c2(dtype)
    return stored * height * width * ELEMENT_BYTES[dtype]


def conv_npu_cycles(channels: int, kernels: int, kernel: tuple[int, int], out_pixels: int,
                    depthwise: bool, atoms: WeightAtoms) -> int:  # fmt: skip
    """NPUCycles of one convolution task (the module doc's formula); `atoms` holds the MAC
    array's atomic C (`cin2`) and K (`cout2`) and the depthwise channel group."""
    taps = kernel[0] * kernel[1]
    if depthwise:
        steps = math.ceil(channels / atoms.depthwise) * max(taps, MIN_STEPS_PER_OUTPUT)
    else:
        inner = max(taps * math.ceil(channels / atoms.cin2), MIN_STEPS_PER_OUTPUT)
        steps = math.ceil(kernels / atoms.cout2) * inner
    return out_pixels * steps * CYCLES_PER_STEP


def _conv_cost(number: int, op_index: int, regs: RegisterFile, target: Target) -> TaskCost:
    shape = conv_shape(regs)
    pixels = shape.out_height * shape.out_width
    cube = shape.input
    npu = conv_npu_cycles(cube.channels, shape.kernels, shape.kernel, pixels, shape.depthwise,
                          weight_atoms(target, shape.dtype))  # fmt: skip
    per_output = shape.kernel[0] * shape.kernel[1] * (1 if shape.depthwise else cube.real)
    macs = pixels * per_output * (cube.real if shape.depthwise else shape.kernels)
    read = cube_bytes(cube.channels if not cube.planar else cube.real, cube.height, cube.width,
                      shape.dtype, cube.planar, target)  # fmt: skip
    if not regs.field("CNA", "CBUF_CON0", "WEIGHT_REUSE"):
        read += regs.field("CNA", "WEIGHT_SIZE0", "WEIGHT_BYTES")
    read += _dpu_side_reads(regs, target, shape.out_height, shape.out_width)
    write = _output_bytes(regs, target)
    return TaskCost(number, op_index, CONV, shape.dtype, npu, read, write,
                    ddr_cycles(read, write, target), macs, shape.out_height)  # fmt: skip


def _dpu_cube(regs: RegisterFile) -> tuple[int, int, int, int]:
    """(channels, real channels, height, width) of the DPU's data cube."""
    f = regs.field
    return (f("DPU", "DATA_CUBE_CHANNEL", "CHANNEL") + 1,
            f("DPU", "DATA_CUBE_CHANNEL", "ORIG_CHANNEL") + 1,
            f("DPU", "DATA_CUBE_HEIGHT", "HEIGHT") + 1,
            f("DPU", "DATA_CUBE_WIDTH", "WIDTH") + 1)  # fmt: skip


def _precision(code: int, where: str) -> str:
    dtype = PRECISION_NAME.get(code)
    if dtype is None or dtype not in ELEMENT_BYTES:
        raise PerfError(f"{where}: unknown precision code {code}")
    return dtype


def _output_bytes(regs: RegisterFile, target: Target) -> int:
    channels, real, height, width = _dpu_cube(regs)
    dtype = _precision(regs.field("DPU", "DATA_FORMAT", "OUT_PRECISION"), "DPU.DATA_FORMAT")
    planar = bool(regs.field("DPU", "FEATURE_MODE_CFG", "NONALIGN"))
    return cube_bytes(real if planar else channels, height, width, dtype, planar, target)


def _dpu_side_reads(regs: RegisterFile, target: Target, height: int, width: int) -> int:
    """The DPU_RDMA's reads beside the main data: the BS operand table and the EW operand."""
    channels, real, _, _ = _dpu_cube(regs)
    use = regs.field("DPU_RDMA", "RDMA_BRDMA_CFG", "BRDMA_DATA_USE")
    table = {BRDMA_ALU_INT32: 4, BRDMA_RECORD: OPERAND_RECORD_BYTES}.get(use, 0) * channels
    if regs.field("DPU_RDMA", "RDMA_ERDMA_CFG", "ERDMA_DISABLE"):
        return table
    size = regs.field("DPU_RDMA", "RDMA_ERDMA_CFG", "ERDMA_DATA_SIZE")
    dtype = EW_DATA_SIZE_NAME.get(size)
    if dtype is None:
        raise PerfError(f"DPU_RDMA.RDMA_ERDMA_CFG.ERDMA_DATA_SIZE {size} is not known")
    if regs.field("DPU_RDMA", "RDMA_ERDMA_CFG", "ERDMA_DATA_MODE") != EW_PER_ELEMENT:
        return table + channels * ELEMENT_BYTES[dtype]
    planar = bool(regs.field("DPU_RDMA", "RDMA_ERDMA_CFG", "ERDMA_NONALIGN"))
    return table + cube_bytes(real if planar else channels, height, width, dtype, planar, target)


def _dpu_cost(number: int, op_index: int, regs: RegisterFile, target: Target) -> TaskCost:
    channels, real, height, width = _dpu_cube(regs)
    field = regs.field("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "IN_PRECISION")
    dtype = _precision(field, "DPU_RDMA.RDMA_FEATURE_MODE_CFG")
    planar = bool(regs.field("DPU", "FEATURE_MODE_CFG", "NONALIGN"))
    read = cube_bytes(real if planar else channels, height, width, dtype, planar, target)
    read += _dpu_side_reads(regs, target, height, width)
    write = _output_bytes(regs, target)
    atoms = math.ceil(channels / target.c2(dtype)) * height * width
    return TaskCost(number, op_index, DPU, dtype, atoms * DPU_CYCLES_PER_ATOM, read, write,
                    ddr_cycles(read, write, target), 0, height)  # fmt: skip


def _ppu_cost(number: int, op_index: int, regs: RegisterFile, target: Target) -> TaskCost:
    def size(block: str, prefix: str, suffix: str, dim: str) -> int:
        return regs.field(block, f"{prefix}{dim}", f"{suffix}{dim}") + 1

    dims = ("CHANNEL", "HEIGHT", "WIDTH")
    c, h, w = (size("PPU_RDMA", "RDMA_CUBE_IN_", "CUBE_IN_", d) for d in dims)
    oc, oh, ow = (size("PPU", "DATA_CUBE_OUT_", "CUBE_OUT_", d) for d in dims)
    dtype = _precision(regs.field("PPU_RDMA", "RDMA_DATA_FORMAT", "IN_PRECISION"),
                       "PPU_RDMA.RDMA_DATA_FORMAT")  # fmt: skip
    out_dtype = _precision(regs.field("PPU", "DATA_FORMAT", "PROC_PRECISION"),
                           "PPU.DATA_FORMAT")  # fmt: skip
    kernel = regs.fields("PPU", "POOLING_KERNEL_CFG")
    taps = (kernel["KERNEL_HEIGHT"] + 1) * (kernel["KERNEL_WIDTH"] + 1)
    planar_out = bool(regs.field("PPU", "MISC_CTRL", "NONALIGN"))
    read = cube_bytes(c, h, w, dtype, False, target)
    write = cube_bytes(oc, oh, ow, out_dtype, planar_out, target)
    atoms = math.ceil(oc / target.c2(out_dtype)) * oh * ow
    return TaskCost(number, op_index, PPU, dtype, atoms * taps * PPU_CYCLES_PER_TAP, read, write,
                    ddr_cycles(read, write, target), 0, oh)  # fmt: skip


def cpu_op_us(elements: int, macs: int = 0) -> float:
    """Time of one CPU op (the module doc's model)."""
    return CPU_OP_FIXED_US + elements * CPU_NS_PER_ELEMENT / 1000 + macs / CPU_MACS_PER_US
