"""The DPU's float path, for a float16 convolution task (DPU.DATA_FORMAT.IN_PRECISION
float16), a float16 DPU-only task (element-wise: the MRDMA's float16 cube instead of the
accumulators) and a conversion between an integer precision and float16
(`run_converting_dpu_task`): the stages of `dpu.py` on float32 values, the reading
`backends/codegen/dpu.py` and `eltwise.py` write down for float16 ops ([ours] throughout:
no public source documents the float DPU of the RK3588):

    BS  (unless BS_BYPASS): ALU add / max / min of the operand table's `alu` (BS_ALU_SRC 1,
        BRDMA_DATA_USE 1: one float32 bit pattern per channel; 3: records of them) or
        BS_ALU_CFG's float32; MUL (unless bypassed) by the records' `mul`, or `aux` where
        the value is negative under BS_MUL_PRELU (leaky / prelu), no truncation; RELU,
        RELUX (BS_RELUX_CMP_VALUE's float32).
    BN  (unless BN_BYPASS): the same with BN_ALU_CFG's float32, no operand table.
    EW  (unless EW_BYPASS): the operand unconverted (EW_OP_CVT_BYPASS 1): the ERDMA's float16
        element or per-channel value (EDATA_SIZE 2), or EW_OP_VALUE_0's float32; combined by
        the ALU (add / max / min, EW_OP_TYPE 0) or multiplied (EW_OP_TYPE 1); RELU, RELUX
        (EW_RELUX_CMP_VALUE's float32).
    OUT_CVT: FP32TOFP16_EN with OUT_CVT_SCALE 1, shift and offset 0 (what public RKNN
        float programs write): the float32 value rounded to float16, nearest even.

Every step is float32 arithmetic on float32 operands, which is what the reference executor
does after its float32 accumulator (`numerics.float_accumulator`).
"""

from __future__ import annotations

import numpy as np

from backends.registers.dpu_values import EW_OP_ALU, EW_OP_MUL
from backends.registers.values import (
    BRDMA_ALU_INT32,
    BRDMA_RECORD,
    PRECISION,
    PRECISION_NAME,
    bits_float32,
)
from backends.targets import Target
from dialects.npu import numerics as nx
from runtime.simulator.cube import Cube, read_cube, write_cube
from runtime.simulator.dpu import OperandTable, alu, output_cube, sdp_stage
from runtime.simulator.dpu_task import cubes, ew_operand
from runtime.simulator.mac import ConvShape
from runtime.simulator.memory import Memory, SimulatorError
from runtime.simulator.registers import RegisterFile


def run_float_dpu(acc: np.ndarray, shape: ConvShape, regs: RegisterFile, memory: Memory,
                  target: Target) -> None:  # fmt: skip
    """The float stages on the float32 accumulators `acc` [K, OH, OW], written as float16."""
    cube, dtype = output_cube(regs, shape)
    formats = regs.fields("DPU", "DATA_FORMAT")
    if dtype != "f16" or {formats["IN_PRECISION"], formats["PROC_PRECISION"]} != {
            PRECISION["f16"]}:  # fmt: skip
        raise SimulatorError(f"a float16 task with DPU precisions {formats} is not simulated")
    if regs.field("DPU", "BS_OW_OP", "OW_OP") or regs.raw("DPU", "BS_OW_CFG"):
        raise SimulatorError("a weight zero point (BS_OW_*) on a float16 task")
    table = OperandTable(regs, memory, cube.channels)
    if table.use not in (0, BRDMA_ALU_INT32, BRDMA_RECORD):
        raise SimulatorError(f"BRDMA_DATA_USE {table.use} on a float16 task")
    v = _stage(acc.astype(np.float32), regs, table, "BS")
    v = _stage(v, regs, table, "BN")
    v = _ew_stage(v, regs, memory, cube, target)
    write_cube(memory, cube, _to_float16(v, regs), target)


def _stage(v: np.ndarray, regs: RegisterFile, table: OperandTable, prefix: str) -> np.ndarray:
    cfg = regs.fields("DPU", f"{prefix}_CFG")
    if cfg[f"{prefix}_BYPASS"]:
        return v
    if not cfg[f"{prefix}_ALU_BYPASS"]:
        if cfg[f"{prefix}_ALU_SRC"]:
            if prefix != "BS":
                raise SimulatorError(f"{prefix} operands from memory are not simulated")
            operand = bits_float32(table["alu"])
        else:
            operand = bits_float32(regs.raw("DPU", f"{prefix}_ALU_CFG"))
        v = alu(v, operand, cfg[f"{prefix}_ALU_ALGO"], prefix)
    if not cfg[f"{prefix}_MUL_BYPASS"]:
        v = _multiply(v, regs, table, cfg, prefix)
    elif cfg[f"{prefix}_MUL_PRELU"]:
        raise SimulatorError(f"{prefix}_MUL_PRELU with the multiplier bypassed")
    return _relu(v, regs, cfg, prefix, f"{prefix}_RELUX_CMP_VALUE")


def _multiply(v: np.ndarray, regs: RegisterFile, table: OperandTable, cfg: dict[str, int],
              prefix: str) -> np.ndarray:  # fmt: skip
    """The float BS multiplier: the records' `mul` (`aux` where v < 0 under BS_MUL_PRELU),
    float32 bit patterns; no truncation. Register operands are not simulated."""
    mul = regs.fields("DPU", f"{prefix}_MUL_CFG")
    if prefix != "BS" or not mul[f"{prefix}_MUL_SRC"] or mul[f"{prefix}_TRUNCATE_SRC"] or mul[
            f"{prefix}_MUL_SHIFT_VALUE"]:  # fmt: skip
        raise SimulatorError(f"a float {prefix} multiplier other than the records' is not "
                             "simulated")  # fmt: skip
    m = bits_float32(table["mul"])
    if cfg[f"{prefix}_MUL_PRELU"]:
        m = np.where(v < 0, bits_float32(table["aux"]), m)
    return v * m


def _relu(v: np.ndarray, regs: RegisterFile, cfg: dict[str, int], prefix: str,
          bound: str) -> np.ndarray:  # fmt: skip
    if not cfg[f"{prefix}_RELU_BYPASS"]:
        v = np.maximum(v, np.float32(0))
    if cfg[f"{prefix}_RELUX_EN"]:
        v = np.minimum(v, bits_float32(regs.raw("DPU", bound)))
    return v


def _ew_stage(v: np.ndarray, regs: RegisterFile, memory: Memory, out: Cube,
              target: Target) -> np.ndarray:  # fmt: skip
    """EW on float32: the operand (`dpu_task.ew_operand`: the float16 ERDMA cube or per
    channel vector, or EW_OP_VALUE_0's float32), unconverted; + / max / min (EW_OP_TYPE 0)
    or * (1); RELU, RELUX."""
    cfg = regs.fields("DPU", "EW_CFG")
    if cfg["EW_BYPASS"]:
        return v
    wanted = {"EW_OP_BYPASS": 0, "EW_LUT_BYPASS": 1, "EW_MUL_PRELU": 0, "EW_BINARY_EN": 0,
              "EW_EQUAL_EN": 0, "EW_OP_CVT_BYPASS": 1, "EW_CVT_TYPE": 0}  # fmt: skip
    wrong = {k: cfg[k] for k, value in wanted.items() if cfg[k] != value}
    if wrong:
        raise SimulatorError(f"float EW configuration {wrong} is not simulated")
    e = ew_operand(regs, memory, out, target, floating=True).astype(np.float32)
    if cfg["EW_OP_TYPE"] == EW_OP_MUL:
        v = v * e
    elif cfg["EW_OP_TYPE"] == EW_OP_ALU:
        v = alu(v, e, cfg["EW_ALU_ALGO"], "EW")
    else:
        raise SimulatorError(f"EW_OP_TYPE {cfg['EW_OP_TYPE']} is not simulated")
    return _relu(v, regs, cfg, "EW", "EW_RELUX_CMP_VALUE")


def run_float_dpu_task(regs: RegisterFile, memory: Memory, target: Target) -> None:
    """A float16 DPU-only task (element-wise): the MRDMA's float16 cube through the float
    stages, written as float16."""
    source, out = cubes(regs, float_in=True, float_out=True)
    if regs.field("DPU", "BS_OW_OP", "OW_OP") or regs.raw("DPU", "BS_OW_CFG"):
        raise SimulatorError("a weight zero point (BS_OW_*) on a float16 task")
    table = OperandTable(regs, memory, out.channels)
    v = read_cube(memory, source, target).astype(np.float32)
    v = _stage(_stage(v, regs, table, "BS"), regs, table, "BN")
    v = _ew_stage(v, regs, memory, out, target)
    write_cube(memory, out, _to_float16(v, regs), target)


def run_converting_dpu_task(regs: RegisterFile, memory: Memory, target: Target) -> None:
    """A DPU-only task between an integer and a float16 precision [ours]: integer -> float16
    runs the integer BS / BN stages (the exact `q - zp_in`), converts to float32 (exact below
    2**24), then the float EW (a multiply by EW_OP_VALUE_0's float32, the scale) and OUT_CVT
    to float16; float16 -> integer runs the float stages and OUT_CVT rounds the float32
    value half away from zero (OUT_CVT_SCALE 1, shift 0), adds OUT_CVT_OFFSET and saturates
    to the output precision (`numerics.float16_from_integer` / `integer_from_float16`)."""
    in_code = regs.field("DPU_RDMA", "RDMA_FEATURE_MODE_CFG", "IN_PRECISION")
    float_in = PRECISION_NAME.get(in_code) == "f16"
    source, out = cubes(regs, float_in=float_in, float_out=not float_in)
    table = OperandTable(regs, memory, out.channels)
    x = read_cube(memory, source, target)
    if float_in:
        v = _stage(_stage(x.astype(np.float32), regs, table, "BS"), regs, table, "BN")
        v = _ew_stage(v, regs, memory, out, target)
        write_cube(memory, out, _to_integer(v, regs, out.dtype), target)
        return
    v = sdp_stage(sdp_stage(x, regs, table, "BS"), regs, table, "BN")
    if v.size and np.abs(v).max() >= 2**24:
        raise SimulatorError("an integer beyond 2**24 does not convert to float32 exactly")
    v = _ew_stage(v.astype(np.float32), regs, memory, out, target)
    write_cube(memory, out, _to_float16(v, regs), target)


def _to_integer(v: np.ndarray, regs: RegisterFile, dtype: str) -> np.ndarray:
    cvt = regs.fields("DPU", "OUT_CVT_SHIFT")
    scale = regs.fields("DPU", "OUT_CVT_SCALE")
    if scale["FP32TOFP16_EN"] or scale["OUT_CVT_SCALE"] != 1 or any(cvt.values()):
        raise SimulatorError("a float -> integer output converter must have scale 1, shift 0")
    rounded = nx.round_half_away(v.astype(np.float64))
    return nx.saturate(rounded + regs.signed("DPU", "OUT_CVT_OFFSET"), dtype).astype(np.int64)


def _to_float16(v: np.ndarray, regs: RegisterFile) -> np.ndarray:
    cvt = regs.fields("DPU", "OUT_CVT_SHIFT")
    scale = regs.fields("DPU", "OUT_CVT_SCALE")
    if (not scale["FP32TOFP16_EN"] or scale["OUT_CVT_SCALE"] != 1 or any(cvt.values())
            or regs.raw("DPU", "OUT_CVT_OFFSET")):  # fmt: skip
        raise SimulatorError("a float16 task's output converter must be FP32TOFP16_EN with "
                             "scale 1, shift 0 and offset 0")  # fmt: skip
    return v.astype(np.float16)
