"""The DPU and its read DMA: the BS, BN and EW stages and the output converter applied to the
CORE's accumulators, then the write DMA. The reading is the one written down in
`backends/codegen/dpu.py` (its stage table); every value is an exact int64 (products are
checked against overflow), truncations are the contract's `round_shift` (round half away
from zero) and the output saturates to the output precision's range.

Per stage X in (BS, BN), unless X_BYPASS:
    ALU (unless X_ALU_BYPASS): v = algo(v, operand); operand = table `alu` (X_ALU_SRC = 1;
        BS only) or X_ALU_CFG (signed 32-bit); algo X_ALU_ALGO: max, min, add.
    MUL (unless X_MUL_BYPASS): v = v * m with m = table `mul` (X_MUL_SRC = 1; BS only) or
        X_MUL_OPERAND (signed 16-bit); with X_MUL_PRELU, m = table `aux` where v < 0; then
        v = round_shift(v, table `shift` (X_TRUNCATE_SRC = 1) or X_MUL_SHIFT_VALUE).
    RELU (unless X_RELU_BYPASS): v = max(v, 0); RELUX (X_RELUX_EN): v = min(v, CMP).
EW (unless EW_BYPASS): e = the ERDMA's element; unless EW_OP_CVT_BYPASS, e = (e +
    EW_OP_CVT_OFFSET) * table `aux` and after the ALU v = round_shift(v, table `shift`)
    (EW_CVT_SCALE_VALUE must be 0: per channel); v = algo(v, e); RELU, RELUX as above.
OUT_CVT: y = saturate(round_shift(v * OUT_CVT_SCALE, OUT_CVT_SHIFT) + OUT_CVT_OFFSET).
"""

from __future__ import annotations

import numpy as np

from backends.registers.values import (
    ALU_ALGOS,
    BRDMA_ALU_INT32,
    BRDMA_RECORD,
    CONV_MODE_DEPTHWISE,
    CONV_MODE_DIRECT,
    DPU_OUTPUT_TO_MEMORY,
    EW_DATA_SIZE_NAME,
    EW_PER_ELEMENT,
    OPERAND_RECORD,
    PRECISION_NAME,
)
from backends.targets import Target
from dialects.npu import numerics as nx
from runtime.simulator.cube import STORAGE, Cube, read_cube, write_cube
from runtime.simulator.mac import ConvShape
from runtime.simulator.memory import Memory, SimulatorError
from runtime.simulator.registers import RegisterFile

INT64_LIMIT = 2**63


class OperandTable:
    """The BS operands of each output channel (DPU_RDMA.RDMA_BRDMA_CFG.BRDMA_DATA_USE)."""

    def __init__(self, regs: RegisterFile, memory: Memory, channels: int) -> None:
        self.use = regs.field("DPU_RDMA", "RDMA_BRDMA_CFG", "BRDMA_DATA_USE")
        address = regs.raw("DPU_RDMA", "RDMA_BS_BASE_ADDR")
        self.fields: dict[str, np.ndarray] = {}
        if self.use == BRDMA_ALU_INT32:
            offsets = np.arange(channels, dtype=np.int64) * 4
            self.fields["alu"] = memory.read_elements(address, offsets, np.dtype(np.int32))
        elif self.use == BRDMA_RECORD:
            offsets = np.arange(channels * len(OPERAND_RECORD), dtype=np.int64) * 8
            records = memory.read_elements(address, offsets, np.dtype(np.int64))
            records = records.reshape(channels, len(OPERAND_RECORD))
            self.fields = {name: records[:, i] for i, name in enumerate(OPERAND_RECORD)}
        elif self.use:
            raise SimulatorError(f"BRDMA_DATA_USE {self.use} is not simulated")

    def __getitem__(self, name: str) -> np.ndarray:
        """Per channel, shaped to broadcast over [K, H, W]."""
        if name not in self.fields:
            raise SimulatorError(
                f"a DPU stage reads operand {name!r}; BRDMA_DATA_USE is {self.use}"
            )
        return self.fields[name][:, None, None]


def multiply(v: np.ndarray, m: np.ndarray | int) -> np.ndarray:
    """`v * m` in int64, an error if any product could overflow."""
    m = np.asarray(m, np.int64)
    bound = float(np.abs(v).max(initial=0)) * float(np.abs(m).max(initial=0))
    if bound >= INT64_LIMIT:
        raise SimulatorError("a DPU product leaves the int64 range")
    return v * m


def alu(v: np.ndarray, operand: np.ndarray | int, algo: int, where: str) -> np.ndarray:
    name = ALU_ALGOS.get(algo)
    if name == "add":
        return v + operand
    if name == "max":
        return np.maximum(v, operand)
    if name == "min":
        return np.minimum(v, operand)
    raise SimulatorError(f"{where}_ALU_ALGO {algo} is not simulated")


def sdp_stage(v: np.ndarray, regs: RegisterFile, table: OperandTable, prefix: str) -> np.ndarray:
    """The BS or BN stage (see the module doc)."""
    cfg = regs.fields("DPU", f"{prefix}_CFG")
    if cfg[f"{prefix}_BYPASS"]:
        return v
    mul = regs.fields("DPU", f"{prefix}_MUL_CFG")
    from_memory = cfg[f"{prefix}_ALU_SRC"] or mul[f"{prefix}_MUL_SRC"] or mul[
        f"{prefix}_TRUNCATE_SRC"]  # fmt: skip
    if prefix == "BN" and from_memory:
        raise SimulatorError("BN operands from memory (NRDMA) are not simulated")
    if not cfg[f"{prefix}_ALU_BYPASS"]:
        operand = (
            table["alu"] if cfg[f"{prefix}_ALU_SRC"] else regs.signed("DPU", f"{prefix}_ALU_CFG")
        )
        v = alu(v, operand, cfg[f"{prefix}_ALU_ALGO"], prefix)
    if not cfg[f"{prefix}_MUL_BYPASS"]:
        if mul[f"{prefix}_MUL_SRC"]:
            m = table["mul"]
        else:
            m = np.int64(np.int16(np.uint16(mul[f"{prefix}_MUL_OPERAND"])))
        if cfg[f"{prefix}_MUL_PRELU"]:
            m = np.where(v < 0, table["aux"], m)
        v = multiply(v, m)
        shift = table["shift"] if mul[f"{prefix}_TRUNCATE_SRC"] else mul[
            f"{prefix}_MUL_SHIFT_VALUE"]  # fmt: skip
        v = nx.round_shift(v, shift)
    elif cfg[f"{prefix}_MUL_PRELU"]:
        raise SimulatorError(f"{prefix}_MUL_PRELU with the multiplier bypassed")
    return relu(v, regs, cfg, prefix, "DPU", f"{prefix}_RELUX_CMP_VALUE")


def relu(v: np.ndarray, regs: RegisterFile, cfg: dict[str, int], prefix: str, block: str,
         bound: str) -> np.ndarray:  # fmt: skip
    if not cfg[f"{prefix}_RELU_BYPASS"]:
        v = np.maximum(v, 0)
    if cfg[f"{prefix}_RELUX_EN"]:
        v = np.minimum(v, regs.signed(block, bound))
    return v


def ew_stage(v: np.ndarray, regs: RegisterFile, memory: Memory, table: OperandTable,
             real: int, target: Target) -> np.ndarray:  # fmt: skip
    cfg = regs.fields("DPU", "EW_CFG")
    erdma = regs.fields("DPU_RDMA", "RDMA_ERDMA_CFG")
    if cfg["EW_BYPASS"]:
        return v
    wanted = {"EW_OP_BYPASS": 0, "EW_OP_SRC": 1, "EW_LUT_BYPASS": 1, "EW_OP_TYPE": 0,
              "EW_MUL_PRELU": 0, "EW_BINARY_EN": 0, "EW_EQUAL_EN": 0,
              "EW_DATA_MODE": EW_PER_ELEMENT}  # fmt: skip
    wrong = {k: cfg[k] for k, value in wanted.items() if cfg[k] != value}
    if wrong or erdma["ERDMA_DISABLE"] or erdma["ERDMA_DATA_MODE"] != EW_PER_ELEMENT:
        raise SimulatorError(f"EW configuration {wrong or erdma} is not simulated")
    dtype = EW_DATA_SIZE_NAME.get(cfg["EDATA_SIZE"])
    if dtype is None or erdma["ERDMA_DATA_SIZE"] != cfg["EDATA_SIZE"]:
        raise SimulatorError(f"EW data size {cfg['EDATA_SIZE']} / {erdma['ERDMA_DATA_SIZE']}")
    channels, height, width = v.shape
    cube = Cube(regs.raw("DPU_RDMA", "RDMA_EW_BASE_ADDR"), dtype, channels, real, height,
                width, width, regs.field("DPU_RDMA", "RDMA_EW_SURF_STRIDE", "EW_SURF_STRIDE"),
                bool(erdma["ERDMA_NONALIGN"]))  # fmt: skip
    e = read_cube(memory, cube, target)
    shift: np.ndarray | int = 0
    if not cfg["EW_OP_CVT_BYPASS"]:
        if regs.raw("DPU", "EW_CVT_SCALE_VALUE"):
            raise SimulatorError("a per-tensor EW converter (EW_CVT_SCALE_VALUE != 0) is not "
                                 "simulated")  # fmt: skip
        e = multiply(e + regs.signed("DPU", "EW_CVT_OFFSET_VALUE"), table["aux"])
        shift = table["shift"]
    v = nx.round_shift(alu(v, e, cfg["EW_ALU_ALGO"], "EW"), shift)
    return relu(v, regs, cfg, "EW", "DPU", "EW_RELUX_CMP_VALUE")


def cube_size(regs: RegisterFile) -> tuple[int, int, int, int]:
    """The DPU's data cube (channels, real channels, height, width), which the DPU_RDMA's
    must equal."""
    f = regs.field
    width = f("DPU", "DATA_CUBE_WIDTH", "WIDTH") + 1
    height = f("DPU", "DATA_CUBE_HEIGHT", "HEIGHT") + 1
    channels = f("DPU", "DATA_CUBE_CHANNEL", "CHANNEL") + 1
    real = f("DPU", "DATA_CUBE_CHANNEL", "ORIG_CHANNEL") + 1
    rdma = (f("DPU_RDMA", "RDMA_DATA_CUBE_CHANNEL", "CHANNEL") + 1,
            f("DPU_RDMA", "RDMA_DATA_CUBE_HEIGHT", "HEIGHT") + 1,
            f("DPU_RDMA", "RDMA_DATA_CUBE_WIDTH", "WIDTH") + 1)  # fmt: skip
    if rdma != (channels, height, width):
        raise SimulatorError(f"DPU_RDMA cube {rdma} vs DPU cube {(channels, height, width)}")
    return channels, real, height, width


def output_cube(regs: RegisterFile, shape: ConvShape) -> tuple[Cube, str]:
    """Where the WDMA writes, and the output dtype."""
    f = regs.field
    mode = f("DPU", "FEATURE_MODE_CFG", "CONV_MODE")
    expected = CONV_MODE_DEPTHWISE if shape.depthwise else CONV_MODE_DIRECT
    if mode != expected or f("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "CONV_MODE") != expected:
        raise SimulatorError("the DPU's CONV_MODE differs from the CNA's")
    if f("DPU", "FEATURE_MODE_CFG", "OUTPUT_MODE") != DPU_OUTPUT_TO_MEMORY:
        raise SimulatorError("only DPU output to memory is simulated")
    if not f("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "MRDMA_DISABLE"):
        raise SimulatorError("a DPU main-data read (MRDMA) is not simulated")
    channels, real, height, width = cube_size(regs)
    if (channels, height, width) != (shape.out_channels, shape.out_height, shape.out_width):
        core = (shape.out_channels, shape.out_height, shape.out_width)
        raise SimulatorError(f"DPU cube {(channels, height, width)} vs CORE output {core}")
    dtype = PRECISION_NAME.get(f("DPU", "DATA_FORMAT", "OUT_PRECISION"), "?")
    if dtype not in STORAGE:
        raise SimulatorError(f"output precision {dtype} is not simulated")
    cube = Cube(regs.raw("DPU", "DST_BASE_ADDR"), dtype, channels, real, height, width, width,
                f("DPU", "DST_SURF_STRIDE", "DST_SURF_STRIDE"),
                bool(f("DPU", "FEATURE_MODE_CFG", "NONALIGN")))  # fmt: skip
    return cube, dtype


def run_dpu(acc: np.ndarray, shape: ConvShape, regs: RegisterFile, memory: Memory,
            target: Target) -> None:  # fmt: skip
    """The DPU stages on `acc` [K, OH, OW], written by the WDMA."""
    cube, dtype = output_cube(regs, shape)
    if regs.field("DPU", "BS_OW_OP", "OW_OP") or regs.raw("DPU", "BS_OW_CFG"):
        raise SimulatorError("a weight zero point (BS_OW_*) is not simulated")
    table = OperandTable(regs, memory, cube.channels)
    v = sdp_stage(acc, regs, table, "BS")
    v = sdp_stage(v, regs, table, "BN")
    v = ew_stage(v, regs, memory, table, cube.real, target)
    cvt = regs.fields("DPU", "OUT_CVT_SHIFT")
    if cvt["CVT_TYPE"] or cvt["CVT_ROUND"] or cvt["MINUS_EXP"] or regs.field(
            "DPU", "OUT_CVT_SCALE", "FP32TOFP16_EN"):  # fmt: skip
        raise SimulatorError("only the integer output converter is simulated")
    v = multiply(v, regs.field("DPU", "OUT_CVT_SCALE", "OUT_CVT_SCALE"))
    v = nx.round_shift(v, cvt["OUT_CVT_SHIFT"]) + regs.signed("DPU", "OUT_CVT_OFFSET")
    write_cube(memory, cube, nx.saturate(v, dtype).astype(np.int64), target)
