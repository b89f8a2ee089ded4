"""The DPU output stage of a MAC-array op (convolution, fully connected): which registers
carry each term of the numerics contract (`dialects/npu/numerics.py`,
`runtime/kernels/quantized.py` `dpu_output` / `residual_output`), and the per-channel
operand table the DPU's BS read DMA fetches. `runtime/simulator` implements exactly this
reading; where the real hardware's behaviour is unknown (marked [ours]) our simulator
follows the contract and nothing more is claimed.

The contract, per output channel `oc` (acc = the exact integer accumulator):

    acc = Σ (x - zp_in) * w + bias
    plain:     y = sat(clamp(round_shift(acc * (acc < 0 ? Ma[oc] : M[oc]), S[oc]) + zp_out))
    residual:  y = sat(clamp(round_shift(act(acc) * M[oc] + (z - zp_z) * Mz[oc], S[oc]) + zp_out))

(Ma = M unless leaky/prelu; `clamp` is relu / clip in the output domain; the residual's
terms share the shift S.) The input zero point is folded into the bias, as Mesa does
(rkt_coefs.c `calculate_bias_correction`): the MAC array sums raw `x * w`, padding reads
PAD_VALUE = zp_in, so `Σ x * w + bias'` with `bias'[oc] = bias[oc] - zp_in * Σ w[oc]` is the
contract's `acc` exactly.

Stages, in the order the simulator applies them to the integer `v` (int64; a stage whose
BYPASS bit is set is skipped), with the registers and values that carry each term:

- CNA: x - zp_in at the padding. CNA.PAD_CON1.PAD_VALUE = zp_in.
- CORE: acc, not truncated. CORE.CLIP_TRUNCATE.CLIP_TRUNCATE = 0.
- BS ALU: + bias'. DPU.BS_CFG BS_ALU_SRC = 1 (memory), BS_ALU_ALGO = 2 (add);
  DPU_RDMA.RDMA_BRDMA_CFG.BRDMA_DATA_USE and RDMA_BS_BASE_ADDR locate the table; operand:
  the table's `alu` (the tensor path: one int32 per channel).
- BS MUL: x M[oc], or x Ma[oc] where v < 0. DPU.BS_CFG BS_MUL_BYPASS = 0, BS_MUL_PRELU
  (leaky / prelu); DPU.BS_MUL_CFG BS_MUL_SRC = 1: the table's `mul`, and `aux` for v < 0
  under PRELU [ours].
- BS truncate: round_shift(., S[oc]). DPU.BS_MUL_CFG BS_TRUNCATE_SRC = 1: the table's
  `shift` [ours]; on the residual path BS_TRUNCATE_SRC = 0 and BS_MUL_SHIFT_VALUE = 0.
- BS RELU: relu (plain path: after the shift; residual path: the relu before the add).
  DPU.BS_CFG BS_RELU_BYPASS = 0: max(v, 0).
- BN: clip [lo, hi] as v - lo', relu, min(., hi' - lo') with lo' = lo - zp_out,
  hi' = hi - zp_out. DPU.BN_CFG (BN_ALU_ALGO add, BN_RELU_BYPASS 0, BN_RELUX_EN 1),
  DPU.BN_ALU_CFG = -lo', DPU.BN_RELUX_CMP_VALUE = hi' - lo'; OUT_CVT_OFFSET adds lo' back.
- EW: + (z - zp_z) x Mz[oc], then round_shift(., S[oc]). DPU.EW_CFG (EW_BYPASS 0,
  EW_OP_SRC 1 = the ERDMA's operand, EW_ALU_ALGO add, EW_OP_CVT_BYPASS 0, EW_DATA_MODE 1
  per element); DPU.EW_CVT_OFFSET_VALUE = -zp_z; DPU.EW_CVT_SCALE_VALUE = 0 [ours: 0 means
  per channel, the converter's scale is the table's `aux` = Mz, the truncate after the add
  the table's `shift` = S]; DPU_RDMA.RDMA_ERDMA_CFG, RDMA_EW_BASE_ADDR, RDMA_EW_SURF_STRIDE
  read z.
- EW RELU / RELUX: the post-activation's relu, a post clip's upper bound. DPU.EW_CFG
  EW_RELU_BYPASS, EW_RELUX_EN; DPU.EW_RELUX_CMP_VALUE = hi - zp_out.
- OUT_CVT: + zp_out, saturate. DPU.OUT_CVT_OFFSET, OUT_CVT_SCALE, OUT_CVT_SHIFT:
  y = sat(round_shift(v * SCALE, SHIFT) + OFFSET); the per-channel paths write 1, 0,
  zp_out (+ lo' after a BN clip).

Four paths (`OutputStage.path`):

- "tensor": int8, every channel has the same (M, S), activation none or relu, no residual.
  Mesa's reading: the BS stage adds the bias (BRDMA_DATA_USE 1, one int32 per channel),
  BS RELU for relu (max(acc, 0) * M rounds to the same value as clamping after the shift),
  and the per-tensor output converter requantizes: OUT_CVT_SCALE = M (15-bit mantissa),
  OUT_CVT_SHIFT = S, OUT_CVT_OFFSET = zp_out.
- "channel": per-channel multipliers (or leaky/prelu, or clip). Anchors §1.7: the OUT_CVT
  registers are per tensor, so the BS stage scales per channel [ours]: BRDMA_DATA_USE 3
  reads one record (alu, mul, aux, shift) per channel (`backends.registers.values.
  OPERAND_RECORD`); BS ALU adds `alu` = bias', BS MUL multiplies by `mul` = M[oc] (`aux` =
  Ma[oc] for negative values when BS_MUL_PRELU), the BS truncate rounds by `shift` = S[oc]
  (round half away from zero, the contract's `round_shift`), BS RELU for relu, BN for clip,
  OUT_CVT adds the zero point (scale 1, shift 0) and saturates.
- "residual": conv + residual add. BS adds bias', multiplies by M[oc] without shifting and
  applies the pre-add relu (max(acc * M, 0) = max(acc, 0) * M since M > 0); EW adds the
  residual converted per channel, (z - zp_z) * Mz[oc] with Mz = table `aux`, then rounds
  by S[oc] = table `shift`: the shared-shift mantissas of `numerics.shared_shift` are per
  channel and up to 31 bits, which EW_CVT_SCALE_VALUE's 16-bit per-tensor scale cannot
  hold [ours]. A post relu is EW RELU; a post clip's upper bound is EW RELUX; its lower
  bound must be the zero point (clip from 0: EW RELU) or at most the dtype's minimum
  (saturation does it): other lower bounds after a residual add are not supported yet.
- "float": a float16 layer (float16 inputs, weights and output; the MAC array's float32
  accumulators, `numerics.float_accumulator`). The DPU computes in float32 and every 32-bit
  operand is a float32 bit pattern (`values.float32_bits`): BS adds the table's bias
  (BRDMA_DATA_USE 1, one float32 per channel) with the multiplier bypassed and BS RELU for
  relu; a clip is BN ALU max with BN_ALU_CFG = lo, then BN RELUX with the bound hi; a
  residual is EW + the float16 element (EW_OP_CVT_BYPASS 1, EDATA_SIZE 2), then EW RELU /
  RELUX for a post relu or a clip from 0 (other lower bounds: not generated); OUT_CVT:
  FP32TOFP16_EN with OUT_CVT_SCALE 1, shift and offset 0, round to nearest even. Leaky and
  prelu read records instead (BRDMA_DATA_USE 3, each field a float32 bit pattern): BS ALU
  adds `alu` = the bias, BS MUL with BS_MUL_PRELU multiplies by `mul` = 1.0, or by `aux` =
  the slope where the value is negative. The simulator's side:
  `runtime/simulator/dpu_float.py`.

Not known on hardware: the rounding mode of each truncate (we use the contract's, round
half away from zero), whether BS_TRUNCATE_SRC reads a per-channel shift from the BS
operands, the meaning of BS_MUL_PRELU beyond NVDLA's "multiply negatives", the record
layout, and EW_CVT_SCALE_VALUE = 0 as "per channel". Rounding in OUT_CVT on the tensor
path is the contract's `round_shift` as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.codegen.emit import NotGenerated, TaskWords
from backends.registers.values import (
    ALU_ADD,
    ALU_MAX,
    BRDMA_ALU_INT32,
    BRDMA_RECORD,
    EW_DATA_SIZE,
    EW_FLOAT16_DATA_SIZE,
    EW_PER_ELEMENT,
    float32_bits,
    raw32,
)
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu.attributes import QuantAttr

TENSOR, CHANNEL, RESIDUAL, FLOAT = "tensor", "channel", "residual", "float"
INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class OutputStage:
    """What an op's DPU does, for all its (logical) output channels."""

    path: str  # TENSOR | CHANNEL | RESIDUAL | FLOAT
    dtype: str  # output dtype
    bias: np.ndarray  # bias' (zero point folded), int64 per channel; FLOAT: float32
    mul: np.ndarray  # M, int64 per channel
    aux: np.ndarray  # Ma (leaky/prelu) or Mz (residual), int64 per channel; else zeros
    shift: np.ndarray  # S, int64 per channel
    zp_out: int
    relu: bool  # BS RELU
    prelu: bool  # BS_MUL_PRELU (leaky / prelu)
    # (lo', hi') for the BN stage, output units minus zp_out; FLOAT: the real bounds
    clip: tuple[float, float] | None
    residual_zp: int | None  # zp_z (RESIDUAL; FLOAT with a residual: 0)
    residual_dtype: str | None
    post_relu: bool  # EW RELU (RESIDUAL, FLOAT)
    post_max: float | None  # EW RELUX bound hi' (RESIDUAL; FLOAT: the real bound)

    @property
    def channels(self) -> int:
        return int(self.bias.size)

    def table(self, c0: int, count: int) -> bytes:
        """The BS operand table of output channels [c0, c0 + count): channels past the op's
        own are zero (their outputs are the zero point and are never written)."""
        n = max(0, min(count, self.channels - c0))

        def part(values: np.ndarray) -> np.ndarray:
            out = np.zeros(count, np.int64)
            out[:n] = values[c0 : c0 + n]
            return out

        if self.path == FLOAT and not self.prelu:
            bias = np.zeros(count, "<f4")
            bias[:n] = self.bias[c0 : c0 + n]
            return bias.tobytes()
        if self.path == FLOAT:  # records of float32 bit patterns (alu, mul, aux, shift 0)
            fields = [part(_bits(self.bias)), part(self.mul), part(self.aux), part(self.shift)]
            return np.stack(fields, axis=1).astype("<i8").tobytes()
        if self.path == TENSOR:
            return part(self.bias).astype("<i4").tobytes()
        fields = [part(self.bias), part(self.mul), part(self.aux), part(self.shift)]
        return np.stack(fields, axis=1).astype("<i8").tobytes()


# ---------------------------------------------------------------------- planning


def plan_output_stage(*, in_q: QuantAttr, out_q: QuantAttr, weight_scales: np.ndarray,
                      channels: int, folded_bias: np.ndarray, activation: str,
                      act_params: list[float], residual_q: QuantAttr | None = None,
                      post_activation: str = "none", post_params: list[float] | None = None,
                      where: str = "") -> OutputStage:  # fmt: skip
    """The stage for an op with `channels` logical output channels. The multipliers are
    computed exactly as the reference executor computes them (`numerics`)."""
    dtype = out_q.element
    m = (
        in_q.scale
        * np.broadcast_to(np.asarray(weight_scales, np.float64), (channels,))
        / (out_q.scale)
    )
    zp = out_q.zero_point
    bias = np.asarray(folded_bias, np.int64)
    zeros = np.zeros(channels, np.int64)
    if residual_q is not None:
        (mant, z_mant), shift = nx.shared_shift(m, np.full_like(m, residual_q.scale / out_q.scale))
        post_relu, post_max = _post_clamp(post_activation, post_params or [], out_q, where)
        return OutputStage(
            RESIDUAL, dtype, bias, mant.astype(np.int64), z_mant.astype(np.int64),
            shift.astype(np.int64), zp, relu=activation == "relu", prelu=False, clip=None,
            residual_zp=residual_q.zero_point, residual_dtype=residual_q.element,
            post_relu=post_relu, post_max=post_max,
        )  # fmt: skip
    mant, shift = nx.encode_multipliers(m)
    prelu = activation in ("leaky", "prelu")
    aux = zeros
    if prelu:
        alpha = np.full(channels, act_params[0]) if activation == "leaky" else np.asarray(
            act_params, np.float64)  # fmt: skip
        aux = nx.scaled_mantissa(m * alpha, shift).astype(np.int64)
    clip = _clip(act_params, out_q) if activation == "clip" else None
    uniform = bool(np.all(mant == mant[0]) and np.all(shift == shift[0])) if channels else True
    fits = bool(bias.size == 0 or (bias.min() >= INT32[0] and bias.max() <= INT32[1]))
    tensor = dtype == "i8" and activation in ("none", "relu") and uniform and fits
    return OutputStage(
        TENSOR if tensor else CHANNEL, dtype, bias, mant, aux, shift, zp,
        relu=activation == "relu", prelu=prelu, clip=clip, residual_zp=None,
        residual_dtype=None, post_relu=False, post_max=None,
    )  # fmt: skip


def plan_layer_stage(op: npu.Conv2dOp | npu.ConvTransposeOp | npu.FullyConnectedOp,
                     folded_bias: np.ndarray,
                     residual_q: QuantAttr | None = None) -> OutputStage:  # fmt: skip
    """The stage of a MAC-array op with its bias (the input zero point folded in; a float16
    layer's as it is), one logical output channel per bias entry: the float path for a
    float16 op, the integer contract's otherwise. A residual (conv2d) brings its
    post-activation."""
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    activation, act_params = op.activation.data, npu.floats(op.act_params)
    post, post_params = "none", []
    if residual_q is not None:
        assert isinstance(op, npu.Conv2dOp)
        post, post_params = op.post_activation.data, npu.floats(op.post_act_params)
    if op.quant.element == "f16":
        return plan_float_output_stage(
            bias=folded_bias, activation=activation, act_params=act_params,
            where=op.describe(), residual=residual_q is not None, post_activation=post,
            post_params=post_params,
        )  # fmt: skip
    return plan_output_stage(
        in_q=in_q, out_q=op.quant, weight_scales=op.weight_quant.params().scale,
        channels=folded_bias.size, folded_bias=folded_bias, activation=activation,
        act_params=act_params, residual_q=residual_q, post_activation=post,
        post_params=post_params, where=op.describe(),
    )  # fmt: skip


def plan_float_output_stage(*, bias: np.ndarray, activation: str, act_params: list[float],
                            where: str, residual: bool = False, post_activation: str = "none",
                            post_params: list[float] | None = None) -> OutputStage:  # fmt: skip
    """The FLOAT stage of a float16 layer: + bias, relu, clip, leaky or prelu, + residual,
    relu or a clip from 0 (the reference executor's order, in float32)."""
    if activation not in ("none", "relu", "clip", "leaky", "prelu"):
        raise NotGenerated(f"{where}: a float16 {activation} has no DPU mapping yet")
    post_relu, post_max = False, None
    if post_activation == "relu":
        post_relu = True
    elif post_activation == "clip":
        lo, hi = post_params or [0.0, 0.0]
        if lo != 0.0:
            raise NotGenerated(f"{where}: a clip from {lo} after a float16 residual add has "
                               "no DPU mapping yet")  # fmt: skip
        post_relu, post_max = True, hi
    clip = (act_params[0], act_params[1]) if activation == "clip" else None
    zeros = np.zeros(bias.size, np.int64)
    prelu = activation in ("leaky", "prelu")
    # leaky / prelu: BS MUL by the record's `mul` (1.0) or, for negatives, `aux` (the slope)
    slopes = np.broadcast_to(np.asarray(act_params, np.float32), bias.shape) if prelu else None
    ones = np.ones(bias.size, np.float32)
    return OutputStage(
        FLOAT, "f16", np.asarray(bias, np.float32), _bits(ones) if prelu else zeros,
        _bits(slopes) if slopes is not None else zeros, zeros, 0,
        relu=activation == "relu", prelu=prelu, clip=clip,
        residual_zp=0 if residual else None, residual_dtype="f16" if residual else None,
        post_relu=post_relu, post_max=post_max,
    )  # fmt: skip


def _bits(values: np.ndarray) -> np.ndarray:
    """float32 values as their bit patterns, int64 (the record's FLOAT fields)."""
    return np.asarray(values, np.float32).view(np.uint32).astype(np.int64)


def _bounds(params: list[float], out_q: QuantAttr) -> tuple[int, int]:
    """A clip's [lo, hi] quantized to the output (the reference executor's `_clamp`)."""
    lo, hi = nx.quantize(np.array(params, np.float64), out_q.params()).astype(np.int64)
    return int(lo), int(hi)


def _clip(params: list[float], out_q: QuantAttr) -> tuple[int, int]:
    lo, hi = _bounds(params, out_q)
    return lo - out_q.zero_point, hi - out_q.zero_point


def _post_clamp(kind: str, params: list[float], out_q: QuantAttr,
                where: str) -> tuple[bool, int | None]:  # fmt: skip
    """(EW RELU, EW RELUX bound) for the post-activation of a residual add."""
    zp = out_q.zero_point
    qmin, qmax = nx.qrange(out_q.element)
    if kind == "none":
        return False, None
    if kind == "relu":
        return True, None
    lo, hi = _bounds(params, out_q)
    if lo != zp and lo > qmin:
        raise NotGenerated(
            f"{where}: a clip after a residual add with a lower bound other than 0 "
            f"({lo} vs zero point {zp}) has no DPU mapping yet"
        )
    return lo == zp, (hi - zp if hi < qmax else None)


# ---------------------------------------------------------------------- registers


@dataclass(frozen=True)
class ResidualRead:
    """Where the ERDMA reads the residual band: (buffer, offset), surface stride in atoms,
    planar layout."""

    address: tuple[int, int]
    surf_stride: int
    planar: bool


def emit_output_stage(w: TaskWords, stage: OutputStage, table: tuple[int, int]) -> None:
    """The DPU's BS, BN, EW and OUT_CVT registers (see the module doc)."""
    if stage.path == FLOAT:
        _emit_float_stage(w, stage, table)
        return
    channel = stage.path != TENSOR
    w.write("DPU", "BS_CFG", BS_ALU_ALGO=ALU_ADD, BS_ALU_SRC=1,
            BS_RELU_BYPASS=int(not stage.relu), BS_MUL_PRELU=int(stage.prelu),
            BS_MUL_BYPASS=int(not channel))  # fmt: skip
    w.write("DPU", "BS_ALU_CFG")
    w.write("DPU", "BS_MUL_CFG", BS_MUL_SRC=int(channel),
            BS_TRUNCATE_SRC=int(stage.path == CHANNEL))  # fmt: skip
    w.write("DPU", "BS_RELUX_CMP_VALUE")
    w.write("DPU", "BS_OW_CFG")
    w.write("DPU", "BS_OW_OP")
    _emit_bn(w, stage.clip)
    _emit_ew(w, stage)
    if stage.path == TENSOR:
        offset, scale, shift = stage.zp_out, int(stage.mul[0]), int(stage.shift[0])
    else:
        offset = stage.zp_out + (stage.clip[0] if stage.clip else 0)
        scale, shift = 1, 0
    w.write("DPU", "OUT_CVT_OFFSET", OUT_CVT_OFFSET=offset)
    w.write("DPU", "OUT_CVT_SCALE", OUT_CVT_SCALE=scale)
    w.write("DPU", "OUT_CVT_SHIFT", OUT_CVT_SHIFT=shift)
    use = BRDMA_RECORD if channel else BRDMA_ALU_INT32
    w.write("DPU_RDMA", "RDMA_BRDMA_CFG", BRDMA_DATA_USE=use)
    w.address("DPU_RDMA", "RDMA_BS_BASE_ADDR", *table)
    w.write("DPU_RDMA", "RDMA_NRDMA_CFG")
    w.write("DPU_RDMA", "RDMA_BN_BASE_ADDR")


def _emit_float_stage(w: TaskWords, stage: OutputStage, table: tuple[int, int]) -> None:
    """FLOAT (runtime/simulator/dpu_float.py): BS adds the table's float32 bias and applies
    relu; BN clips with float32 bounds (ALU max, RELUX min); EW adds the float16 residual;
    OUT_CVT rounds to float16 (FP32TOFP16_EN, scale 1: what public RKNN float programs
    write)."""
    w.write("DPU", "BS_CFG", BS_ALU_ALGO=ALU_ADD, BS_ALU_SRC=1,
            BS_RELU_BYPASS=int(not stage.relu), BS_MUL_BYPASS=int(not stage.prelu),
            BS_MUL_PRELU=int(stage.prelu))  # fmt: skip
    w.write("DPU", "BS_MUL_CFG", BS_MUL_SRC=int(stage.prelu))
    for register in ("BS_ALU_CFG", "BS_RELUX_CMP_VALUE", "BS_OW_CFG", "BS_OW_OP"):
        w.write("DPU", register)
    if stage.clip is None:
        _emit_bn(w, None)
    else:
        lo, hi = stage.clip
        w.write("DPU", "BN_CFG", BN_ALU_ALGO=ALU_MAX, BN_RELUX_EN=1, BN_MUL_BYPASS=1,
                BN_RELU_BYPASS=1)  # fmt: skip
        w.write("DPU", "BN_ALU_CFG", BN_ALU_OPERAND=float32_bits(lo))
        w.write("DPU", "BN_RELUX_CMP_VALUE", BN_RELUX_CMP_DAT=float32_bits(hi))
        w.write("DPU", "BN_MUL_CFG")
    if stage.residual_dtype is None:
        _emit_ew(w, stage)
    else:
        w.write("DPU", "EW_CFG", EW_DATA_MODE=EW_PER_ELEMENT, EDATA_SIZE=EW_FLOAT16_DATA_SIZE,
                EW_ALU_ALGO=ALU_ADD, EW_RELUX_EN=int(stage.post_max is not None),
                EW_RELU_BYPASS=int(not stage.post_relu), EW_LUT_BYPASS=1, EW_OP_SRC=1,
                EW_OP_CVT_BYPASS=1)  # fmt: skip
        w.write("DPU", "EW_CVT_OFFSET_VALUE")
        w.write("DPU", "EW_CVT_SCALE_VALUE")
        bound = 0 if stage.post_max is None else float32_bits(stage.post_max)
        w.write("DPU", "EW_RELUX_CMP_VALUE", EW_RELUX_CMP_DAT=bound)
    w.write("DPU", "OUT_CVT_OFFSET")
    w.write("DPU", "OUT_CVT_SCALE", OUT_CVT_SCALE=1, FP32TOFP16_EN=1)
    w.write("DPU", "OUT_CVT_SHIFT")
    use = BRDMA_RECORD if stage.prelu else BRDMA_ALU_INT32
    w.write("DPU_RDMA", "RDMA_BRDMA_CFG", BRDMA_DATA_USE=use)
    w.address("DPU_RDMA", "RDMA_BS_BASE_ADDR", *table)
    w.write("DPU_RDMA", "RDMA_NRDMA_CFG")
    w.write("DPU_RDMA", "RDMA_BN_BASE_ADDR")


def _emit_bn(w: TaskWords, clip: tuple[float, float] | None) -> None:
    if clip is None:
        w.write("DPU", "BN_CFG", BN_RELU_BYPASS=1, BN_MUL_BYPASS=1, BN_ALU_BYPASS=1,
                BN_BYPASS=1)  # fmt: skip
        w.write("DPU", "BN_ALU_CFG")
        w.write("DPU", "BN_RELUX_CMP_VALUE")
    else:
        lo, hi = int(clip[0]), int(clip[1])
        w.write("DPU", "BN_CFG", BN_ALU_ALGO=ALU_ADD, BN_RELUX_EN=1, BN_MUL_BYPASS=1)
        w.write("DPU", "BN_ALU_CFG", BN_ALU_OPERAND=raw32(-lo))
        w.write("DPU", "BN_RELUX_CMP_VALUE", BN_RELUX_CMP_DAT=raw32(hi - lo))
    w.write("DPU", "BN_MUL_CFG")


def _emit_ew(w: TaskWords, stage: OutputStage) -> None:
    if stage.path != RESIDUAL:
        w.write("DPU", "EW_CFG", EW_RELU_BYPASS=1, EW_OP_CVT_BYPASS=1, EW_LUT_BYPASS=1,
                EW_OP_BYPASS=1, EW_BYPASS=1)  # fmt: skip
        w.write("DPU", "EW_CVT_OFFSET_VALUE")
        w.write("DPU", "EW_CVT_SCALE_VALUE")
        w.write("DPU", "EW_RELUX_CMP_VALUE")
        return
    assert stage.residual_dtype is not None and stage.residual_zp is not None
    size = EW_DATA_SIZE[stage.residual_dtype]
    w.write("DPU", "EW_CFG", EW_DATA_MODE=EW_PER_ELEMENT, EDATA_SIZE=size,
            EW_ALU_ALGO=ALU_ADD, EW_RELUX_EN=int(stage.post_max is not None),
            EW_RELU_BYPASS=int(not stage.post_relu), EW_LUT_BYPASS=1, EW_OP_SRC=1)  # fmt: skip
    w.write("DPU", "EW_CVT_OFFSET_VALUE", EW_OP_CVT_OFFSET=-stage.residual_zp)
    w.write("DPU", "EW_CVT_SCALE_VALUE")  # 0: scale and truncate per channel (module doc)
    bound = 0 if stage.post_max is None else raw32(int(stage.post_max))
    w.write("DPU", "EW_RELUX_CMP_VALUE", EW_RELUX_CMP_DAT=bound)


def emit_residual_read(w: TaskWords, stage: OutputStage, read: ResidualRead | None) -> None:
    """DPU_RDMA's ERDMA: the residual band (RESIDUAL), or disabled."""
    if read is None:
        w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DISABLE=1)
        w.write("DPU_RDMA", "RDMA_EW_BASE_ADDR")
        w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE")
        return
    assert stage.residual_dtype is not None
    size = (EW_FLOAT16_DATA_SIZE if stage.residual_dtype == "f16"
            else EW_DATA_SIZE[stage.residual_dtype])  # fmt: skip
    w.write("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DATA_MODE=EW_PER_ELEMENT,
            ERDMA_NONALIGN=int(read.planar), ERDMA_DATA_SIZE=size)  # fmt: skip
    w.address("DPU_RDMA", "RDMA_EW_BASE_ADDR", *read.address)
    w.write("DPU_RDMA", "RDMA_EW_SURF_STRIDE", EW_SURF_STRIDE=read.surf_stride)
