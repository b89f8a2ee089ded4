"""`npu.eltwise` -> DPU-only tasks (`dpu_task.py`): the MRDMA reads the first operand `a`, the
ERDMA the second `b`, the EW stage combines them. The integer arithmetic is the reference
executor's (`runtime/kernels/npu_ops.py` `build_eltwise`, `runtime/kernels/quantized.py`),
term by term; which operand is `a` is free (every formula below is symmetric when the
operands' parameters swap with them), so the operand with the output's shape and layout is
read by the MRDMA and the other, which may broadcast per channel, by the ERDMA.

Per kind, the registers that carry each term (v is the DPU's int64 value; the stages are
`dpu.py`'s and `runtime/simulator/dpu_task.py`'s):

    add/sub  y = sat(round_shift((a - zp_a) * Ma + (b - zp_b) * Mb, S) + zp_out)
             (Ma, Mb, S = numerics.shared_shift(s_a / s_out, ±s_b / s_out); Mb < 0 for sub)
    mul      y = sat(round_shift((a - zp_a) * (b - zp_b) * M, S) + zp_out)
             (M, S = encode_multiplier(s_a * s_b / s_out))
    max/min  y = sat(max(round_shift((a - zp_a) * Ma, Sa), round_shift((b - zp_b) * Mb, Sb))
                 + zp_out)   (each operand rescaled to the output, `_rescaler`; saturation
             is monotone, so saturating after the max is saturating each side before it)

| term        | add / sub                   | mul                   | max / min             |
|-------------|-----------------------------|-----------------------|-----------------------|
| - zp_a      | BS ALU add, BS_ALU_CFG      | same                  | same                  |
|             | = -zp_a                     |                       |                       |
| * Ma        | BS MUL, table `mul`         | BS MUL bypassed       | BS_MUL_CFG: OPERAND   |
|             | (BS_MUL_SRC 1), no shift    |                       | = Ma, SHIFT_VALUE Sa  |
| b - zp_b    | EW_CVT_OFFSET_VALUE = -zp_b | same                  | same                  |
| * Mb        | EW_CVT_SCALE_VALUE 0:       | EW_OP_CVT_SCALE 1,    | EW_OP_CVT_SCALE = Mb, |
|             | table `aux` = Mb            | SHIFT 0               | EW_OP_CVT_SHIFT = Sb  |
| combine     | EW ALU add                  | EW_OP_TYPE 1 (mul)    | EW ALU max / min      |
| shift       | table `shift` = S           | OUT_CVT_SCALE = M,    | none                  |
|             |                             | OUT_CVT_SHIFT = S     |                       |
| + zp_out    | OUT_CVT_OFFSET = zp_out,    | same                  | same                  |
|             | saturate                    |                       |                       |

The table (add/sub) is one `values.OPERAND_RECORD` per channel, (-zp_a, Ma, Mb, S) for
every channel (BRDMA_DATA_USE 3), at RDMA_BS_BASE_ADDR. ERDMA: RDMA_ERDMA_CFG
ERDMA_DATA_SIZE / EW_CFG.EDATA_SIZE (`values.EW_DATA_SIZE`), RDMA_EW_BASE_ADDR = b's band,
ERDMA_DATA_MODE = EW_CFG.EW_DATA_MODE = 1 per element (RDMA_EW_SURF_STRIDE, ERDMA_NONALIGN
for a planar b) or 0 per channel (b of shape [1, C, 1, 1]: one element per channel,
contiguous; `dpu_values.EW_PER_CHANNEL`). EW_OP_SRC 1 (the ERDMA), EW_OP_BYPASS 0,
EW_LUT_BYPASS 1. A one-element b known at compile time (`npu.quantize` of a constant, what
lowering makes of `Mul(x, 0.5)`) is the register operand instead [ours]: EW_OP_SRC 0,
DPU.EW_OP_VALUE_0 = its integer, the ERDMA disabled; the converter and the rest as above.

Not known on hardware [ours] (the simulator implements exactly this): EW_OP_TYPE 1 as
"multiply" (NVDLA's SDP has an ALU and a MUL unit), the per-tensor EW converter as
`round_shift((b + EW_OP_CVT_OFFSET) * EW_OP_CVT_SCALE, EW_OP_CVT_SHIFT)` with EW_TRUNCATE
rounding after the combine, EW_CVT_SCALE_VALUE = 0 as "per channel" (`dpu.py`), the
per-channel ERDMA layout, the register operand, and every rounding being the contract's
(half away from zero).

Activation (the op's `activation`, applied to the output): relu is EW RELU (v >= 0 before
+ zp_out: max(y, zp_out)); a clip's upper bound hi is EW RELUX at hi - zp_out, its lower
bound must be the zero point (EW RELU) or at most the dtype's minimum (`dpu._post_clamp`,
as after a residual add). For mul, v is the product before OUT_CVT's multiplier: relu
commutes with the (odd, monotone) rounding, a clip's upper bound does not (not generated).
Note: the reference executor ignores an eltwise op's activation (no lowering sets one).

float16 (`_float_tasks`): BS and BN bypassed; EW adds (EW_ALU_ALGO add), takes the max /
min, or multiplies (EW_OP_TYPE 1) the float16 operands in float32, with no converter
(EW_OP_CVT_BYPASS); a compile-time scalar is EW_OP_VALUE_0 as the float32 bit pattern of
its float16 value; OUT_CVT rounds to float16 (FP32TOFP16_EN, scale 1). [ours] like the
integer reading; the simulator's side is `runtime/simulator/dpu_float.py`.

Not generated: other broadcasts than [1, C, 1, 1] and compile-time scalars (a scalar
computed at run time, [1, 1, H, W], ...), non-4-D tensors, no operand with the output's
shape and layout (the MRDMA side); float16 sub, activations, and max / min whose main
operand is the op's rhs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from xdsl.ir import SSAValue

from backends.codegen.dpu import _post_clamp
from backends.codegen.dpu_task import (
    Band,
    band_address,
    check_4d,
    emit_bypassed_bn,
    emit_bypassed_bs_bn,
    emit_dpu_task,
    emit_output_converter,
)
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import OpContext
from backends.codegen.tensors import Placed, placed
from backends.codegen.weights import constant
from backends.layout import NC1HWC2, NCHW
from backends.registers.dpu_values import EW_OP_ALU, EW_OP_MUL, EW_PER_CHANNEL
from backends.registers.values import (
    ALU_ADD,
    ALU_MAX,
    ALU_MIN,
    BRDMA_RECORD,
    ELEMENT_BYTES,
    EW_DATA_SIZE,
    EW_ELEMENT_SIZE,
    EW_FLOAT16_DATA_SIZE,
    EW_PER_ELEMENT,
    float32_bits,
    raw32,
)
from dialects.errors import CompilerError
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.attributes import QuantAttr
from dialects.npu.placement import get_tasks
from dialects.onnx import ConstantOp


def eltwise_tasks(op: npu.EltwiseOp, ctx: OpContext) -> Iterator[TaskWords]:
    where = op.describe()
    y = placed(op.output, ctx.func)
    operands = []
    for value in (op.lhs, op.rhs):
        quant = npu.quant_of(value)
        assert quant is not None
        if quant.element != op.quant.element:
            raise NotGenerated(f"{where}: a {quant.element} operand of a {op.quant.element} op")
        scalar = constant_scalar(value, ctx)
        operands.append((scalar if scalar is not None else placed(value, ctx.func), quant))
    tensors = [t for t, _ in operands if isinstance(t, Placed)]
    check_4d(where, y, *tensors)
    for t in tensors:
        if t.layout not in (NC1HWC2, NCHW):
            raise NotGenerated(f"{where}: a {t.layout} operand is not read yet")
    main = [o for o in operands if isinstance(o[0], Placed) and o[0].shape == y.shape
            and o[0].planar == y.planar]  # fmt: skip
    if not main:
        raise NotGenerated(f"{where}: no operand has the output's shape and layout")
    (a, qa), (b, qb) = main[0], operands[1] if main[0] is operands[0] else operands[0]
    assert isinstance(a, Placed)
    if isinstance(b, Placed):
        mode = EW_PER_ELEMENT if b.shape == y.shape else EW_PER_CHANNEL
        if mode == EW_PER_CHANNEL and b.shape != (1, y.shape[1], 1, 1):
            raise NotGenerated(f"{where}: broadcast of {b.shape} to {y.shape} is not generated")
    else:
        mode = EW_PER_CHANNEL  # unused: the operand is EW_OP_VALUE_0
    swapped = main[0] is not operands[0]
    if op.quant.element == "f16":
        yield from _float_tasks(op, a, b, y, mode, swapped, ctx)
        return
    plan = _plan(op, qa, qb, swapped=swapped, where=where)
    table = None
    if plan.records is not None:
        table = ctx.blob.add(np.tile(plan.records, (y.shape[1], 1)).astype("<i8").tobytes())
    tasks = get_tasks(op)
    if not tasks:
        raise CompilerError(f"{where}: no backend.tasks: run tile first")
    for y0, y1, c0, c1 in tasks:
        band = Band(y0, y1, c0, c1)
        w = TaskWords()
        emit_dpu_task(w, a, y, band, ctx.target, where)
        _emit_stages(w, plan, table, mode, register_operand=not isinstance(b, Placed))
        register = 0 if isinstance(b, Placed) else raw32(int(b))
        _emit_operand(w, b, band, mode, register, ctx, where)
        yield w


def _emit_operand(w: TaskWords, b: Placed | int | float, band: Band, mode: int, register: int,
                  ctx: OpContext, where: str) -> None:  # fmt: skip
    """The second operand: the register EW_OP_VALUE_0 (`register`, its raw bits) for a
    compile-time scalar, else the ERDMA's read of `b`."""
    if not isinstance(b, Placed):
        w.write("DPU", "EW_OP_VALUE_0", EW_OPERAND_0=register)
        w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DISABLE=1)
        w.write("DPU_RDMA", "RDMA_EW_BASE_ADDR")
        w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE")
    elif mode == EW_PER_CHANNEL:
        address = (b.buffer, b.offset + band.c0 * ELEMENT_BYTES[b.dtype])
        _emit_erdma(w, b, address, mode, 0)
    else:
        _, _, h, width = b.shape
        _emit_erdma(w, b, band_address(b, band, ctx.target, where), mode, h * width)


# float16: the EW ALU (add, max, min) or multiplier on float32 values, OUT_CVT to float16
FLOAT_KINDS = {"add": (EW_OP_ALU, ALU_ADD), "mul": (EW_OP_MUL, ALU_ADD),
               "max": (EW_OP_ALU, ALU_MAX), "min": (EW_OP_ALU, ALU_MIN)}  # fmt: skip


def _float_tasks(op: npu.EltwiseOp, a: Placed, b: Placed | int | float, y: Placed, mode: int,
                 swapped: bool, ctx: OpContext) -> Iterator[TaskWords]:  # fmt: skip
    """A float16 element-wise op (`runtime/simulator/dpu_float.py`): BS and BN bypassed, EW
    combines the float16 operands in float32 (the reference executor's `fn(a, b)`), OUT_CVT
    rounds to float16. Not generated: sub (no float negation mapped yet), an activation,
    and max / min with the operands swapped (for ±0 the hardware's order would decide)."""
    where, kind = op.describe(), op.kind.data
    if kind not in FLOAT_KINDS or op.activation.data != "none":
        raise NotGenerated(f"{where}: a float16 {kind} with activation {op.activation.data} "
                           "has no DPU mapping yet")  # fmt: skip
    if swapped and kind in ("max", "min"):
        raise NotGenerated(f"{where}: a float16 {kind} whose main operand is its rhs")
    op_type, algo = FLOAT_KINDS[kind]
    register = 0 if isinstance(b, Placed) else float32_bits(float(b))
    for y0, y1, c0, c1 in get_tasks(op):
        band = Band(y0, y1, c0, c1)
        w = TaskWords()
        emit_dpu_task(w, a, y, band, ctx.target, where)
        emit_bypassed_bs_bn(w)
        w.write("DPU", "EW_CFG", EW_DATA_MODE=mode, EDATA_SIZE=EW_FLOAT16_DATA_SIZE,
                EW_ALU_ALGO=algo, EW_RELU_BYPASS=1, EW_LUT_BYPASS=1, EW_OP_CVT_BYPASS=1,
                EW_OP_SRC=int(isinstance(b, Placed)), EW_OP_TYPE=op_type)  # fmt: skip
        w.write("DPU", "EW_CVT_OFFSET_VALUE")
        w.write("DPU", "EW_CVT_SCALE_VALUE")
        w.write("DPU", "EW_RELUX_CMP_VALUE")
        w.write("DPU", "OUT_CVT_OFFSET")
        w.write("DPU", "OUT_CVT_SCALE", OUT_CVT_SCALE=1, FP32TOFP16_EN=1)
        w.write("DPU", "OUT_CVT_SHIFT")
        _emit_operand(w, b, band, mode, register, ctx, where)
        yield w


def constant_scalar(value: SSAValue, ctx: OpContext) -> int | float | None:
    """The integer (float16: the half-precision number) of a one-element operand known at
    compile time: an `npu.quantize` of a constant (what lowering makes of `Add(x, 0.5)`),
    quantized as the reference executor's `build_quantize` does. None for anything else."""
    owner = value.owner
    if not (isinstance(owner, npu.QuantizeOp) and isinstance(owner.input.owner, ConstantOp)):
        return None
    if math.prod(npu.in_shape(value)) != 1 or npu.floats(owner.mean):
        return None
    real = np.asarray(constant(owner.input, ctx.weights, owner), np.float32)
    return nx.quantize(real, owner.quant.params()).reshape(-1)[0].item()


@dataclass(frozen=True)
class _Plan:
    """The numbers of one eltwise op's stages (see the module doc)."""

    kind: str
    dtype: str
    zp_a: int
    zp_b: int
    zp_out: int
    bs_mul: int | None  # BS_MUL_OPERAND (max/min)
    bs_shift: int
    records: np.ndarray | None  # (alu, mul, aux, shift), add/sub
    cvt: tuple[int, int] | None  # per-tensor EW converter (scale, shift); None: per channel
    out_cvt: tuple[int, int]  # OUT_CVT (scale, shift)
    relu: bool
    relux: int | None


def _plan(op: npu.EltwiseOp, qa: QuantAttr, qb: QuantAttr, swapped: bool, where: str) -> _Plan:
    """`qa` the MRDMA's operand, `qb` the ERDMA's; `swapped`: `a` is the op's rhs."""
    kind, out_q = op.kind.data, op.quant
    s_out = out_q.scale
    common = {"kind": kind, "dtype": out_q.element, "zp_a": qa.zero_point,
              "zp_b": qb.zero_point, "zp_out": out_q.zero_point, "bs_mul": None,
              "bs_shift": 0, "records": None, "cvt": None, "out_cvt": (1, 0)}  # fmt: skip
    activation = op.activation.data
    try:
        relu, relux = _post_clamp(activation, npu.floats(op.act_params), out_q, where)
    except NotGenerated:
        raise NotGenerated(
            f"{where}: a clip whose lower bound is neither the zero point nor "
            "below the dtype's range has no DPU mapping yet"
        ) from None
    if kind == "mul" and relux is not None:
        raise NotGenerated(f"{where}: a clip's upper bound after a multiply has no DPU mapping")
    if kind in ("add", "sub"):
        sign = 1.0 if kind == "add" else -1.0  # on the op's rhs
        sign_a, sign_b = (sign, 1.0) if swapped else (1.0, sign)
        (m_a, m_b), shift = nx.shared_shift(np.float64(sign_a * qa.scale / s_out),
                                            np.float64(sign_b * qb.scale / s_out))  # fmt: skip
        record = np.array([-qa.zero_point, int(m_a), int(m_b), int(shift)], np.int64)
        return _Plan(**{**common, "records": record[None, :]}, relu=relu, relux=relux)
    if kind == "mul":
        mant, shift = nx.encode_multiplier(qa.scale * qb.scale / s_out)
        return _Plan(**{**common, "cvt": (1, 0), "out_cvt": (mant, shift)}, relu=relu,
                     relux=None)  # fmt: skip
    m_a, s_a = nx.encode_multiplier(qa.scale / s_out)
    m_b, s_b = nx.encode_multiplier(qb.scale / s_out)
    return _Plan(**{**common, "bs_mul": m_a, "bs_shift": s_a, "cvt": (m_b, s_b)}, relu=relu,
                 relux=relux)  # fmt: skip


def _emit_stages(w: TaskWords, p: _Plan, table: tuple[int, int] | None, mode: int,
                 register_operand: bool) -> None:  # fmt: skip
    mul = p.kind in ("add", "sub") or p.bs_mul is not None
    w.write("DPU", "BS_CFG", BS_ALU_ALGO=ALU_ADD, BS_RELU_BYPASS=1, BS_MUL_BYPASS=int(not mul))
    w.write("DPU", "BS_ALU_CFG", BS_ALU_OPERAND=raw32(-p.zp_a))
    if p.records is not None:
        w.write("DPU", "BS_MUL_CFG", BS_MUL_SRC=1)
    else:
        w.write("DPU", "BS_MUL_CFG", BS_MUL_OPERAND=p.bs_mul or 0, BS_MUL_SHIFT_VALUE=p.bs_shift)
    w.write("DPU", "BS_RELUX_CMP_VALUE")
    emit_bypassed_bn(w)
    algo = {"add": ALU_ADD, "sub": ALU_ADD, "mul": ALU_ADD, "max": ALU_MAX, "min": ALU_MIN}
    w.write("DPU", "EW_CFG", EW_DATA_MODE=mode, EDATA_SIZE=EW_DATA_SIZE[p.dtype],
            EW_ALU_ALGO=algo[p.kind],
            EW_RELUX_EN=int(p.relux is not None), EW_RELU_BYPASS=int(not p.relu),
            EW_LUT_BYPASS=1, EW_OP_SRC=int(not register_operand),
            EW_OP_TYPE=EW_OP_MUL if p.kind == "mul" else EW_OP_ALU)  # fmt: skip
    w.write("DPU", "EW_CVT_OFFSET_VALUE", EW_OP_CVT_OFFSET=-p.zp_b)
    if p.cvt is None:
        w.write("DPU", "EW_CVT_SCALE_VALUE")  # 0: the table's aux and shift (dpu.py)
    else:
        w.write("DPU", "EW_CVT_SCALE_VALUE", EW_OP_CVT_SCALE=p.cvt[0], EW_OP_CVT_SHIFT=p.cvt[1])
    bound = 0 if p.relux is None else raw32(p.relux)
    w.write("DPU", "EW_RELUX_CMP_VALUE", EW_RELUX_CMP_DAT=bound)
    emit_output_converter(w, p.zp_out, *p.out_cvt)
    if table is None:
        w.write("DPU_RDMA", "RDMA_BRDMA_CFG")
        w.write("DPU_RDMA", "RDMA_BS_BASE_ADDR")
    else:
        w.write("DPU_RDMA", "RDMA_BRDMA_CFG", BRDMA_DATA_USE=BRDMA_RECORD)
        w.address("DPU_RDMA", "RDMA_BS_BASE_ADDR", *table)


def _emit_erdma(w: TaskWords, b: Placed, address: tuple[int, int], mode: int,
                surf_stride: int) -> None:  # fmt: skip
    w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DATA_MODE=mode, ERDMA_NONALIGN=int(b.planar),
            ERDMA_DATA_SIZE=EW_ELEMENT_SIZE[b.dtype])  # fmt: skip
    w.address("DPU_RDMA", "RDMA_EW_BASE_ADDR", *address)
    w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE", EW_SURF_STRIDE=surf_stride)
