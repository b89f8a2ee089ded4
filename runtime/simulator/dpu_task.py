"""DPU-only tasks (op-enable DPU | DPU_RDMA): the MRDMA reads the main input cube, the BS and
BN stages (`dpu.sdp_stage`), the EW stage with its operand converter, ALU or multiplier and
lookup table, and the output converter run on it, the WDMA writes the result. The reading
is `backends/codegen/dpu_task.py`'s, `eltwise.py`'s and `lut.py`'s module docs (codes in
`backends/registers/dpu_values.py`); every value is an exact int64.

EW (unless EW_BYPASS), extending `dpu.ew_stage`:
    operand (unless EW_OP_BYPASS): EW_OP_SRC 0, the register EW_OP_VALUE_0 (signed 32-bit,
        one for the whole tensor [ours]); EW_OP_SRC 1, the ERDMA: per element (EW_DATA_MODE
        1) a cube like the output's (RDMA_EW_SURF_STRIDE, ERDMA_NONALIGN), or per channel (0)
        one element per channel, contiguous at RDMA_EW_BASE_ADDR.
    converter (unless EW_OP_CVT_BYPASS): e = e + EW_OP_CVT_OFFSET; then EW_CVT_SCALE_VALUE
        0: e * table `aux`, truncate table `shift` after the combine (`dpu.py`); else
        e = round_shift(e * EW_OP_CVT_SCALE, EW_OP_CVT_SHIFT), truncate EW_TRUNCATE.
    combine: EW_OP_TYPE 0 the ALU (EW_ALU_ALGO), 1 v * e; then the truncate.
    LUT (unless EW_LUT_BYPASS): v = LO[(v - LUT_LO_START) >> LUT_LO_INDEX_SELECT], the LO
        table as the LUT_ACCESS_DATA writes stored it (`RegisterFile.lut`), 16-bit signed
        entries; the index must fall in the table with no fraction left, priorities LO.
    RELU, RELUX as `dpu.relu`.
"""

from __future__ import annotations

import numpy as np

from backends.registers.dpu_values import (
    EW_OP_ALU,
    EW_OP_MUL,
    EW_PER_CHANNEL,
    LUT_ENTRIES,
    LUT_PRIORITY_LO,
    LUT_TABLE_LO,
)
from backends.registers.values import (
    CONV_MODE_DIRECT,
    DPU_OUTPUT_TO_MEMORY,
    ELEMENT_BYTES,
    EW_DATA_SIZE_NAME,
    EW_FLOAT16_DATA_SIZE,
    EW_PER_ELEMENT,
    PRECISION_NAME,
    bits_float32,
)
from backends.targets import Target
from dialects.npu import numerics as nx
from runtime.simulator.cube import FLOAT_STORAGE, STORAGE, Cube, read_cube, write_cube
from runtime.simulator.dpu import OperandTable, alu, cube_size, multiply, relu, sdp_stage
from runtime.simulator.memory import Memory, SimulatorError
from runtime.simulator.registers import RegisterFile

DPU_BLOCKS = ("DPU", "DPU_RDMA")


def cubes(regs: RegisterFile, float_in: bool = False,
          float_out: bool = False) -> tuple[Cube, Cube]:  # fmt: skip
    """The MRDMA's input cube and the WDMA's output cube (each float16 when asked)."""
    f = regs.field
    if f("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "MRDMA_DISABLE"):
        raise SimulatorError("a DPU-only task needs the MRDMA (MRDMA_DISABLE is set)")
    for block, register in (("DPU", "FEATURE_MODE_CFG"), ("DPU_RDMA", "RDMA_FEATURE_MODE_CFG")):
        if f(block, register, "CONV_MODE") != CONV_MODE_DIRECT:
            raise SimulatorError(f"{block}.{register}.CONV_MODE of a DPU-only task is not 0")
    if f("DPU", "FEATURE_MODE_CFG", "OUTPUT_MODE") != DPU_OUTPUT_TO_MEMORY:
        raise SimulatorError("only DPU output to memory is simulated")
    channels, real, height, width = cube_size(regs)
    in_dtype = PRECISION_NAME.get(f("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "IN_PRECISION"), "?")
    out_dtype = PRECISION_NAME.get(f("DPU", "DATA_FORMAT", "OUT_PRECISION"), "?")
    integers = set(STORAGE) - set(FLOAT_STORAGE)
    wanted = (FLOAT_STORAGE if float_in else integers, FLOAT_STORAGE if float_out else integers)
    if in_dtype not in wanted[0] or out_dtype not in wanted[1]:
        raise SimulatorError(f"precisions {in_dtype} -> {out_dtype} are not simulated")
    surf = f("DPU", "DST_SURF_STRIDE", "DST_SURF_STRIDE")
    planar = bool(f("DPU", "FEATURE_MODE_CFG", "NONALIGN"))
    source = Cube(regs.raw("DPU_RDMA", "RDMA_SRC_BASE_ADDR"), in_dtype, channels, real, height,
                  width, width, surf, planar)  # fmt: skip
    output = Cube(regs.raw("DPU", "DST_BASE_ADDR"), out_dtype, channels, real, height, width,
                  width, surf, planar)  # fmt: skip
    return source, output


def ew_operand(regs: RegisterFile, memory: Memory, out: Cube, target: Target,
               floating: bool = False) -> np.ndarray:  # fmt: skip
    """The EW operand (module doc); in a task that computes in float (`floating`) the
    register holds a float32 bit pattern and the ERDMA reads float16 elements (EDATA_SIZE
    2)."""
    cfg = regs.fields("DPU", "EW_CFG")
    erdma = regs.fields("DPU_RDMA", "RDMA_ERDMA_CFG")
    mode = cfg["EW_DATA_MODE"]
    if not cfg["EW_OP_SRC"]:
        if floating:
            return np.full((out.channels, 1, 1), bits_float32(regs.raw("DPU", "EW_OP_VALUE_0")))
        return np.full((out.channels, 1, 1), regs.signed("DPU", "EW_OP_VALUE_0"), np.int64)
    if erdma["ERDMA_DISABLE"] or erdma["ERDMA_DATA_MODE"] != mode:
        raise SimulatorError(f"EW operand {cfg} / ERDMA {erdma} is not simulated")
    names = {EW_FLOAT16_DATA_SIZE: "f16"} if floating else EW_DATA_SIZE_NAME
    dtype = names.get(cfg["EDATA_SIZE"])
    if dtype is None or erdma["ERDMA_DATA_SIZE"] != cfg["EDATA_SIZE"]:
        raise SimulatorError(f"EW data size {cfg['EDATA_SIZE']} / {erdma['ERDMA_DATA_SIZE']}")
    address = regs.raw("DPU_RDMA", "RDMA_EW_BASE_ADDR")
    if mode == EW_PER_CHANNEL:
        offsets = np.arange(out.real, dtype=np.int64) * ELEMENT_BYTES[dtype]
        e = np.zeros((out.channels, 1, 1), np.float64 if floating else np.int64)
        e[: out.real, 0, 0] = memory.read_elements(address, offsets, STORAGE[dtype])
        return e
    if mode != EW_PER_ELEMENT:
        raise SimulatorError(f"EW_DATA_MODE {mode} is not simulated")
    cube = Cube(address, dtype, out.channels, out.real, out.height, out.width, out.width,
                regs.field("DPU_RDMA", "RDMA_EW_SURF_STRIDE", "EW_SURF_STRIDE"),
                bool(erdma["ERDMA_NONALIGN"]))  # fmt: skip
    return read_cube(memory, cube, target)


def lut(v: np.ndarray, regs: RegisterFile) -> np.ndarray:
    cfg = regs.fields("DPU", "LUT_CFG")
    if any(cfg[f"LUT_{k}_PRIORITY"] != LUT_PRIORITY_LO for k in ("HYBRID", "OFLOW", "UFLOW")):
        raise SimulatorError("only the LO table's lookup is simulated (LUT_CFG priorities)")
    if cfg["LUT_EXPAND_EN"] or cfg["LUT_ROAD_SEL"] or cfg["LUT_LO_LE_MUX"] or cfg["LUT_CAL_SEL"]:
        raise SimulatorError(f"LUT_CFG {cfg} is not simulated")
    for register in ("LUT_LO_SLOPE_SCALE", "LUT_LO_SLOPE_SHIFT"):
        if regs.raw("DPU", register):
            raise SimulatorError(f"DPU.{register}: LO under/overflow slopes are not simulated")
    start = regs.signed("DPU", "LUT_LO_START")
    end = regs.signed("DPU", "LUT_LO_END")
    select = regs.field("DPU", "LUT_INFO", "LUT_LO_INDEX_SELECT")
    if select:
        raise SimulatorError("an interpolated LO table (LUT_LO_INDEX_SELECT > 0) is not simulated")
    if v.size and (v.min() < start or v.max() > end):
        raise SimulatorError(f"LUT input in [{v.min()}, {v.max()}] leaves [{start}, {end}]")
    index = v - start
    table = regs.lut_table(LUT_TABLE_LO, LUT_ENTRIES[LUT_TABLE_LO])
    if index.size and index.max() >= table.size:
        raise SimulatorError(f"LUT index {index.max()} past the LO table")
    return table[index]


def ew_stage(v: np.ndarray, regs: RegisterFile, memory: Memory, table: OperandTable,
             out: Cube, target: Target) -> np.ndarray:  # fmt: skip
    cfg = regs.fields("DPU", "EW_CFG")
    if cfg["EW_BYPASS"]:
        return v
    if cfg["EW_MUL_PRELU"] or cfg["EW_BINARY_EN"] or cfg["EW_EQUAL_EN"] or cfg["EW_CVT_TYPE"]:
        raise SimulatorError(f"EW configuration {cfg} is not simulated")
    if not cfg["EW_OP_BYPASS"]:
        e = ew_operand(regs, memory, out, target)
        truncate: np.ndarray | int = 0
        if not cfg["EW_OP_CVT_BYPASS"]:
            e = e + regs.signed("DPU", "EW_CVT_OFFSET_VALUE")
            scale = regs.fields("DPU", "EW_CVT_SCALE_VALUE")
            if regs.raw("DPU", "EW_CVT_SCALE_VALUE") == 0:
                e, truncate = multiply(e, table["aux"]), table["shift"]
            else:
                e = nx.round_shift(multiply(e, scale["EW_OP_CVT_SCALE"]),
                                   scale["EW_OP_CVT_SHIFT"])  # fmt: skip
                truncate = scale["EW_TRUNCATE"]
        if cfg["EW_OP_TYPE"] == EW_OP_MUL:
            v = multiply(v, e)
        elif cfg["EW_OP_TYPE"] == EW_OP_ALU:
            v = alu(v, e, cfg["EW_ALU_ALGO"], "EW")
        v = nx.round_shift(v, truncate)
    if not cfg["EW_LUT_BYPASS"]:
        v = lut(v, regs)
    return relu(v, regs, cfg, "EW", "DPU", "EW_RELUX_CMP_VALUE")


def run_dpu_task(regs: RegisterFile, memory: Memory, target: Target) -> None:
    source, out = cubes(regs)
    if regs.field("DPU", "BS_OW_OP", "OW_OP") or regs.raw("DPU", "BS_OW_CFG"):
        raise SimulatorError("a weight zero point (BS_OW_*) is not simulated")
    table = OperandTable(regs, memory, out.channels)
    v = read_cube(memory, source, target)
    v = sdp_stage(v, regs, table, "BS")
    v = sdp_stage(v, regs, table, "BN")
    v = ew_stage(v, regs, memory, table, out, target)
    cvt = regs.fields("DPU", "OUT_CVT_SHIFT")
    if cvt["CVT_TYPE"] or cvt["CVT_ROUND"] or cvt["MINUS_EXP"] or regs.field(
            "DPU", "OUT_CVT_SCALE", "FP32TOFP16_EN"):  # fmt: skip
        raise SimulatorError("only the integer output converter is simulated")
    v = multiply(v, regs.field("DPU", "OUT_CVT_SCALE", "OUT_CVT_SCALE"))
    v = nx.round_shift(v, cvt["OUT_CVT_SHIFT"]) + regs.signed("DPU", "OUT_CVT_OFFSET")
    write_cube(memory, out, nx.saturate(v, out.dtype).astype(np.int64), target)
