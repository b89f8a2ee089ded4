"""The RK3588 NPU register map, as data (one core; the three cores are identical).

Source, unless a register's doc says otherwise: Mesa rocket's rules-ng database
`src/gallium/drivers/rocket/registers.xml`, read at bminor/mesa-mesa@5b829658f74f (the
version anchors.md §1 cites; upcliujie/mesa@ee0ff128 has the same fields). Offsets, field
names and bit positions are registers.xml's, including its RESERVED_n fields, so every
register below covers all 32 bits. What Mesa writes where (rkt_regcmd.c
`fill_first_regcmd`, sailfishos-mirror/mesa@72fd7032) is quoted in field docs as
"Mesa: ...". Other sources, each marked where used:

- [fork] iav/mesa@b79779ac registers.xml, a fork that adds CNA.CONV_CON4 and
  CNA.DMA_CON0.FETCH_PIXEL_LEN (bits upstream calls reserved). The same fork also moves
  DPU.FEATURE_MODE_CFG's fields, citing the RK3568 TRM; that is NOT taken here (upstream's
  layout is the one Mesa's working driver writes), see FEATURE_MODE_CFG's doc.
- [mesa-raw] registers Mesa writes by number with `emit_raw` and no definition
  (0x3030, 0x40C4): one raw 32-bit field each, meaning unknown.
- [vendor] Rockchip's rknpu kernel driver (via mtx512/rk3588-npu include/rknpu-ioctl.h and
  anchors §1.4): the DDMA bandwidth counters 0x8034/0x8038/0x803C.

Signed fields (`signed=True`) are our interpretation, not registers.xml's (which types every
field `uint`): the fields Mesa fills with values that go negative, written as two's
complement (zero-point offsets), see each field's doc.
"""

from __future__ import annotations

from backends.registers.database import Block, Field, Register, RegisterDatabase

# registers.xml <enum name="target">: the block ids (anchors §1.3).
TARGETS = {
    "PC": 0x100,
    "CNA": 0x200,
    "CORE": 0x800,
    "DPU": 0x1000,
    "DPU_RDMA": 0x2000,
    "PPU": 0x4000,
    "PPU_RDMA": 0x8000,
    "DDMA": 0x10000,
    "SDMA": 0x20000,
    "GLOBAL": 0x40000,
}

RegSpec = tuple[int, str, tuple[Field, ...], str]


def f(name: str, high: int, low: int | None = None, *, signed: bool = False,
      doc: str = "") -> Field:  # fmt: skip
    """A field as registers.xml writes it: `high`..`low`, or one bit `high`."""
    low = high if low is None else low
    return Field(name, low, high - low + 1, signed=signed, doc=doc)


def r(offset: int, name: str, *fields: Field, doc: str = "") -> RegSpec:
    return (offset, name, fields, doc)


def raw(offset: int, name: str, field_name: str | None = None, *, doc: str = "") -> RegSpec:
    """A register that is one 32-bit field (an address, a count, or unknown bits)."""
    return r(offset, name, f(field_name or name, 31, 0), doc=doc)


def block(name: str, base: int, specs: list[RegSpec], doc: str) -> Block:
    regs = tuple(Register(name, rname, off, fields, doc=rdoc) for off, rname, fields, rdoc in specs)
    return Block(name, TARGETS[name], base, regs, doc=doc)


# ----------------------------------------------------------- shapes several blocks share


def s_status(offset: int, name: str = "S_STATUS") -> RegSpec:
    return r(offset, name, f("RESERVED_0", 31, 18), f("STATUS_1", 17, 16),
             f("RESERVED_1", 15, 2), f("STATUS_0", 1, 0))  # fmt: skip


def s_pointer(offset: int, name: str = "S_POINTER") -> RegSpec:
    """Ping-pong register-group pointer (anchors §1.3): Mesa sets POINTER_PP_MODE,
    EXECUTER_PP_EN, POINTER_PP_EN on DPU and DPU_RDMA; the kernel sets CNA's and CORE's."""
    return r(offset, name, f("RESERVED_0", 31, 17), f("EXECUTER", 16), f("RESERVED_1", 15, 6),
             f("EXECUTER_PP_CLEAR", 5), f("POINTER_PP_CLEAR", 4), f("POINTER_PP_MODE", 3),
             f("EXECUTER_PP_EN", 2), f("POINTER_PP_EN", 1), f("POINTER", 0))  # fmt: skip


def op_enable(offset: int, name: str = "OPERATION_ENABLE") -> RegSpec:
    return r(offset, name, f("RESERVED_0", 31, 1), f("OP_EN", 0))


def interrupt_bits(offset: int, name: str) -> RegSpec:
    return r(offset, name, f("RESERVED_0", 31, 14), f("DMA_WRITE_ERROR", 13),
             f("DMA_READ_ERROR", 12), f("PPU_1", 11), f("PPU_0", 10), f("DPU_1", 9),
             f("DPU_0", 8), f("CORE_1", 7), f("CORE_0", 6), f("CNA_CSC_1", 5),
             f("CNA_CSC_0", 4), f("CNA_WEIGHT_1", 3), f("CNA_WEIGHT_0", 2),
             f("CNA_FEATURE_1", 1), f("CNA_FEATURE_0", 0))  # fmt: skip


def cube(offset: int, name: str, field_name: str) -> RegSpec:
    """A 13-bit data-cube dimension (PPU, PPU_RDMA)."""
    return r(offset, name, f("RESERVED_0", 31, 13), f(field_name, 12, 0))


def stride4(offset: int, name: str, field_name: str) -> RegSpec:
    """An address or stride in units of 16 bytes: bits 4-31, bits 0-3 reserved."""
    return r(offset, name, f(field_name, 31, 4), f("RESERVED_0", 3, 0))


def alu_cfg(offset: int, name: str, p: str) -> RegSpec:
    """DPU BS_CFG / BN_CFG (the two ALU/MUL/ReLU stages, prefix `p`)."""
    return r(offset, name, f("RESERVED_0", 31, 20), f(f"{p}_ALU_ALGO", 19, 16),
             f("RESERVED_1", 15, 9), f(f"{p}_ALU_SRC", 8), f(f"{p}_RELUX_EN", 7),
             f(f"{p}_RELU_BYPASS", 6), f(f"{p}_MUL_PRELU", 5), f(f"{p}_MUL_BYPASS", 4),
             f("RESERVED_2", 3, 2), f(f"{p}_ALU_BYPASS", 1), f(f"{p}_BYPASS", 0))  # fmt: skip


def mul_cfg(offset: int, name: str, p: str) -> RegSpec:
    return r(offset, name, f(f"{p}_MUL_OPERAND", 31, 16), f("RESERVED_0", 15, 14),
             f(f"{p}_MUL_SHIFT_VALUE", 13, 8), f("RESERVED_1", 7, 2),
             f(f"{p}_TRUNCATE_SRC", 1), f(f"{p}_MUL_SRC", 0))  # fmt: skip


def lut_slope(offset: int, name: str, p: str, kind: str) -> RegSpec:
    if kind == "SCALE":
        return r(offset, name, f(f"LUT_{p}_SLOPE_OFLOW_SCALE", 31, 16),
                 f(f"LUT_{p}_SLOPE_UFLOW_SCALE", 15, 0))  # fmt: skip
    return r(offset, name, f("RESERVED_0", 31, 10), f(f"LUT_{p}_SLOPE_OFLOW_SHIFT", 9, 5),
             f(f"LUT_{p}_SLOPE_UFLOW_SHIFT", 4, 0))  # fmt: skip


def dma_port(base: int) -> list[RegSpec]:
    """DDMA and SDMA: the same AXI arbitration/QoS registers at two bases (registers.xml)."""
    return [
        r(base + 0x00, "CFG_OUTSTANDING", f("RESERVED_0", 31, 16), f("WR_OS_CNT", 15, 8),
          f("RD_OS_CNT", 7, 0)),
        r(base + 0x04, "RD_WEIGHT_0", f("RD_WEIGHT_PDP", 31, 24), f("RD_WEIGHT_DPU", 23, 16),
          f("RD_WEIGHT_KERNEL", 15, 8), f("RD_WEIGHT_FEATURE", 7, 0)),
        r(base + 0x08, "WR_WEIGHT_0", f("RESERVED_0", 31, 16), f("WR_WEIGHT_PDP", 15, 8),
          f("WR_WEIGHT_DPU", 7, 0)),
        r(base + 0x0C, "CFG_ID_ERROR", f("RESERVED_0", 31, 10), f("WR_RESP_ID", 9, 6),
          f("RESERVED_1", 5), f("RD_RESP_ID", 4, 0)),
        r(base + 0x10, "RD_WEIGHT_1", f("RESERVED_0", 31, 8), f("RD_WEIGHT_PC", 7, 0),
          doc="[vendor] rknpu writes 0x80000101 then 0x00000101 at 0x8010 to clear the "
              "bandwidth counters (RKNPU_OFFSET_CLR_ALL_RW_AMOUNT); registers.xml has no "
              "such meaning here"),
        r(base + 0x14, "CFG_DMA_FIFO_CLR", f("RESERVED_0", 31, 1), f("DMA_FIFO_CLR", 0)),
        r(base + 0x18, "CFG_DMA_ARB", f("RESERVED_0", 31, 10), f("WR_ARBIT_MODEL", 9),
          f("RD_ARBIT_MODEL", 8), f("RESERVED_1", 7), f("WR_FIX_ARB", 6, 4),
          f("RESERVED_2", 3), f("RD_FIX_ARB", 2, 0)),
        r(base + 0x20, "CFG_DMA_RD_QOS", f("RESERVED_0", 31, 10), f("RD_PC_QOS", 9, 8),
          f("RD_PPU_QOS", 7, 6), f("RD_DPU_QOS", 5, 4), f("RD_KERNEL_QOS", 3, 2),
          f("RD_FEATURE_QOS", 1, 0)),
        r(base + 0x24, "CFG_DMA_RD_CFG", f("RESERVED_0", 31, 13), f("RD_ARLOCK", 12),
          f("RD_ARCACHE", 11, 8), f("RD_ARPROT", 7, 5), f("RD_ARBURST", 4, 3),
          f("RD_ARSIZE", 2, 0)),
        r(base + 0x28, "CFG_DMA_WR_CFG", f("RESERVED_0", 31, 13), f("WR_AWLOCK", 12),
          f("WR_AWCACHE", 11, 8), f("WR_AWPROT", 7, 5), f("WR_AWBURST", 4, 3),
          f("WR_AWSIZE", 2, 0)),
        raw(base + 0x2C, "CFG_DMA_WSTRB", "WR_WSTRB"),
        r(base + 0x30, "CFG_STATUS", f("RESERVED_0", 31, 9),
          f("IDEL", 8, doc="idle (registers.xml spelling)"), f("RESERVED_1", 7, 0)),
    ]  # fmt: skip


# ------------------------------------------------------------------------------- blocks

PC = block("PC", 0x0000, [
    raw(0x0000, "VERSION"),
    raw(0x0004, "VERSION_NUM"),
    r(0x0008, "OPERATION_ENABLE", f("RESERVED_0", 31, 1), f("OP_EN", 0),
      doc="the kernel writes OP_EN=1 to start a job; the task trailer's op-enable word "
          "carries this offset under its own target (command.py)"),
    r(0x0010, "BASE_ADDRESS",
      f("PC_SOURCE_ADDR", 31, 4, doc="DMA address of the next regcmd >> 4 (Mesa chains "
                                     "tasks by patching it into the trailer)"),
      f("RESERVED_0", 3, 1), f("PC_SEL", 0)),
    r(0x0014, "REGISTER_AMOUNTS", f("RESERVED_0", 31, 16),
      f("PC_DATA_AMOUNT", 15, 0, doc="Mesa trailer: align((next_task_words - 4) / 2, 2); "
                                     "the kernel: (words + 1) / 2 - 1")),
    interrupt_bits(0x0020, "INTERRUPT_MASK"),
    interrupt_bits(0x0024, "INTERRUPT_CLEAR"),
    interrupt_bits(0x0028, "INTERRUPT_STATUS"),
    interrupt_bits(0x002C, "INTERRUPT_RAW_STATUS"),
    r(0x0030, "TASK_CON", f("RESERVED_0", 31, 14), f("TASK_COUNT_CLEAR", 13),
      f("TASK_PP_EN", 12), f("TASK_NUMBER", 11, 0)),
    stride4(0x0034, "TASK_DMA_BASE_ADDR", "DMA_BASE_ADDR"),
    r(0x003C, "TASK_STATUS", f("RESERVED_0", 31, 28), f("TASK_STATUS", 27, 0)),
], doc="program controller: command fetch, task chaining, interrupts")  # fmt: skip

CNA = block("CNA", 0x1000, [
    s_status(0x1000),
    s_pointer(0x1004),
    op_enable(0x1008),
    r(0x100C, "CONV_CON1", f("RESERVED_0", 31),
      f("NONALIGN_DMA", 30, doc="Mesa: 1 for a 1-channel input"),
      f("GROUP_LINE_OFF", 29, doc="Mesa: 1 for a 1-channel input"),
      f("RESERVED_1", 28, 17), f("DECONV", 16),
      f("ARGB_IN", 15, 12, doc="Mesa: 8 for a 1-channel input"),
      f("RESERVED_2", 11, 10),
      f("PROC_PRECISION", 9, 7, doc="0 = int8 (Mesa)"),
      f("IN_PRECISION", 6, 4, doc="0 = int8 (Mesa)"),
      f("CONV_MODE", 3, 0, doc="Mesa: 3 = depthwise, 0 = direct convolution")),
    r(0x1010, "CONV_CON2", f("RESERVED_0", 31, 24), f("KERNEL_GROUP", 23, 16),
      f("RESERVED_1", 15, 14),
      f("FEATURE_GRAINS", 13, 4, doc="Mesa: 50 + stride_y + 1 ('magic')"),
      f("RESERVED_2", 3), f("CSC_WO_EN", 2), f("CSC_DO_EN", 1), f("CMD_FIFO_SRST", 0)),
    r(0x1014, "CONV_CON3", f("RESERVED_0", 31), f("NN_MODE", 30, 28), f("RESERVED_1", 27, 26),
      f("ATROUS_Y_DILATION", 25, 21), f("ATROUS_X_DILATION", 20, 16), f("RESERVED_2", 15, 14),
      f("DECONV_Y_STRIDE", 13, 11), f("DECONV_X_STRIDE", 10, 8), f("RESERVED_3", 7, 6),
      f("CONV_Y_STRIDE", 5, 3), f("CONV_X_STRIDE", 2, 0)),
    r(0x1018, "CONV_CON4", f("RESERVED_0", 31, 24), f("RGB_BYTELENGTH", 23, 0),
      doc="[fork] iav/mesa only; not in upstream registers.xml"),
    r(0x1020, "DATA_SIZE0", f("RESERVED_0", 31, 27), f("DATAIN_WIDTH", 26, 16),
      f("RESERVED_1", 15, 11), f("DATAIN_HEIGHT", 10, 0)),
    r(0x1024, "DATA_SIZE1", f("RESERVED_0", 31, 30),
      f("DATAIN_CHANNEL_REAL", 29, 16, doc="Mesa: real input channels - 1"),
      f("DATAIN_CHANNEL", 15, 0, doc="Mesa: input channels aligned")),
    r(0x1028, "DATA_SIZE2", f("RESERVED_0", 31, 11), f("DATAOUT_WIDTH", 10, 0)),
    r(0x102C, "DATA_SIZE3", f("RESERVED_0", 31, 24), f("SURF_MODE", 23, 22),
      f("DATAOUT_ATOMICS", 21, 0, doc="Mesa: output width x height of the task")),
    raw(0x1030, "WEIGHT_SIZE0", "WEIGHT_BYTES"),
    r(0x1034, "WEIGHT_SIZE1", f("RESERVED_0", 31, 19), f("WEIGHT_BYTES_PER_KERNEL", 18, 0)),
    r(0x1038, "WEIGHT_SIZE2", f("RESERVED_0", 31, 29), f("WEIGHT_WIDTH", 28, 24),
      f("RESERVED_1", 23, 21), f("WEIGHT_HEIGHT", 20, 16), f("RESERVED_2", 15, 14),
      f("WEIGHT_KERNELS", 13, 0, doc="Mesa: align(Cout, 2), 1 for depthwise")),
    r(0x1040, "CBUF_CON0", f("RESERVED_0", 31, 14),
      f("WEIGHT_REUSE", 13, doc="Mesa: 1 for tasks > 0 when the weights stay in CBUF"),
      f("DATA_REUSE", 12), f("RESERVED_1", 11), f("FC_DATA_BANK", 10, 8),
      f("WEIGHT_BANK", 7, 4), f("DATA_BANK", 3, 0)),
    r(0x1044, "CBUF_CON1", f("RESERVED_0", 31, 14), f("DATA_ENTRIES", 13, 0)),
    r(0x104C, "CVT_CON0", f("RESERVED_0", 31, 28), f("CVT_TRUNCATE_3", 27, 22),
      f("CVT_TRUNCATE_2", 21, 16), f("CVT_TRUNCATE_1", 15, 10), f("CVT_TRUNCATE_0", 9, 4),
      f("DATA_SIGN", 3), f("ROUND_TYPE", 2), f("CVT_TYPE", 1), f("CVT_BYPASS", 0)),
    *(
        r(0x1050 + 4 * n, f"CVT_CON{n + 1}", f(f"CVT_SCALE{n}", 31, 16),
          f(f"CVT_OFFSET{n}", 15, 0, signed=True,
            doc="signed (our reading): Mesa writes 65408 = -128 for uint8 -> int8"))
        for n in range(4)
    ),
    r(0x1060, "FC_CON0", f("FC_SKIP_DATA", 31, 16), f("RESERVED_0", 15, 1), f("FC_SKIP_EN", 0)),
    r(0x1064, "FC_CON1", f("RESERVED_0", 31, 17), f("DATA_OFFSET", 16, 0)),
    r(0x1068, "PAD_CON0", f("RESERVED_0", 31, 8), f("PAD_LEFT", 7, 4), f("PAD_TOP", 3, 0)),
    raw(0x1070, "FEATURE_DATA_ADDR", "FEATURE_BASE_ADDR", doc="input DMA address (relocated)"),
    r(0x1074, "FC_CON2", f("RESERVED_0", 31, 17), f("WEIGHT_OFFSET", 16, 0)),
    r(0x1078, "DMA_CON0", f("OV4K_BYPASS", 31), f("RESERVED_0", 30, 20),
      f("WEIGHT_BURST_LEN", 19, 16, doc="Mesa: 15"),
      f("FETCH_PIXEL_LEN", 15, 8, doc="[fork] upstream: part of RESERVED_1 (bits 4-15)"),
      f("RESERVED_1", 7, 4), f("DATA_BURST_LEN", 3, 0, doc="Mesa: 15")),
    r(0x107C, "DMA_CON1", f("RESERVED_0", 31, 28), f("LINE_STRIDE", 27, 0)),
    r(0x1080, "DMA_CON2", f("RESERVED_0", 31, 28), f("SURF_STRIDE", 27, 0)),
    r(0x1084, "FC_DATA_SIZE0", f("RESERVED_0", 31, 30), f("DMA_WIDTH", 29, 16),
      f("RESERVED_1", 15, 11), f("DMA_HEIGHT", 10, 0)),
    r(0x1088, "FC_DATA_SIZE1", f("RESERVED_0", 31, 16), f("DMA_CHANNEL", 15, 0)),
    r(0x1090, "CLK_GATE", f("RESERVED_0", 31, 5), f("CBUF_CS_DISABLE_CLKGATE", 4),
      f("RESERVED_1", 3), f("CSC_DISABLE_CLKGATE", 2), f("CNA_WEIGHT_DISABLE_CLKGATE", 1),
      f("CNA_FEATURE_DISABLE_CLKGATE", 0)),
    r(0x1100, "DCOMP_CTRL", f("RESERVED_0", 31, 4), f("WT_DEC_BYPASS", 3),
      f("DECOMP_CONTROL", 2, 0)),
    raw(0x1104, "DCOMP_REGNUM"),
    raw(0x1110, "DCOMP_ADDR0", "DECOMPRESS_ADDR0", doc="weights DMA address (relocated)"),
    *(raw(0x1140 + 4 * n, f"DCOMP_AMOUNT{n}") for n in range(16)),
    raw(0x1180, "CVT_CON5", "PER_CHANNEL_CVT_EN", doc="Mesa: 0xFFFF for a 1-channel input"),
    r(0x1184, "PAD_CON1",
      f("PAD_VALUE", 31, 0, signed=True,
        doc="signed (our reading): Mesa writes int32 input_zp - 0x80")),
], doc="convolution front end: feature/weight DMA, CBUF, input convert")  # fmt: skip

CORE = block("CORE", 0x3000, [
    s_status(0x3000),
    s_pointer(0x3004),
    op_enable(0x3008),
    r(0x300C, "MAC_GATING", f("RESERVED_0", 31, 27), f("SLCG_OP_EN", 26, 0)),
    r(0x3010, "MISC_CFG", f("RESERVED_0", 31, 20), f("SOFT_GATING", 19, 14),
      f("RESERVED_1", 13, 11), f("PROC_PRECISION", 10, 8), f("RESERVED_2", 7, 2),
      f("DW_EN", 1, doc="Mesa: 1 for depthwise"), f("QD_EN", 0, doc="Mesa: always 1")),
    r(0x3014, "DATAOUT_SIZE_0", f("DATAOUT_HEIGHT", 31, 16, doc="Mesa: H - 1"),
      f("DATAOUT_WIDTH", 15, 0, doc="Mesa: W - 1")),
    r(0x3018, "DATAOUT_SIZE_1", f("RESERVED_0", 31, 16),
      f("DATAOUT_CHANNEL", 15, 0, doc="Mesa: C - 1")),
    r(0x301C, "CLIP_TRUNCATE", f("RESERVED_0", 31, 7), f("ROUND_TYPE", 6), f("RESERVED_1", 5),
      f("CLIP_TRUNCATE", 4, 0)),
    raw(0x3030, "UNKNOWN_3030", "VALUE",
        doc="[mesa-raw] undocumented; Mesa writes 0 (mtx512 npu_hw.h: 'doesn't seem to be "
            "documented')"),
], doc="MAC array and accumulator truncation")  # fmt: skip

DPU = block("DPU", 0x4000, [
    s_status(0x4000),
    s_pointer(0x4004),
    op_enable(0x4008),
    r(0x400C, "FEATURE_MODE_CFG", f("COMB_USE", 31), f("TP_EN", 30), f("RGP_TYPE", 29, 26),
      f("NONALIGN", 25), f("SURF_LEN", 24, 9), f("BURST_LEN", 8, 5, doc="Mesa: 15"),
      f("CONV_MODE", 4, 3, doc="Mesa: 3 for depthwise"),
      f("OUTPUT_MODE", 2, 1, doc="Mesa: 2"), f("FLYING_MODE", 0),
      doc="upstream layout; [fork] iav/mesa says (RK3568 TRM) BURST_LEN 7-8, bit 6 reserved, "
          "CONV_MODE 4-5, OUTPUT_MODE 1-3, bit 31 reserved: unresolved"),
    r(0x4010, "DATA_FORMAT", f("OUT_PRECISION", 31, 29), f("IN_PRECISION", 28, 26),
      f("EW_TRUNCATE_NEG", 25, 16), f("BN_MUL_SHIFT_VALUE_NEG", 15, 10),
      f("BS_MUL_SHIFT_VALUE_NEG", 9, 4), f("MC_SURF_OUT", 3), f("PROC_PRECISION", 2, 0),
      doc="precision codes used by mtx512: int8 0, fp16 2, int32 4, fp32 5"),
    r(0x4014, "OFFSET_PEND", f("RESERVED_0", 31, 16), f("OFFSET_PEND", 15, 0)),
    raw(0x4020, "DST_BASE_ADDR", doc="output DMA address (relocated)"),
    stride4(0x4024, "DST_SURF_STRIDE", "DST_SURF_STRIDE"),
    r(0x4030, "DATA_CUBE_WIDTH", f("RESERVED_0", 31, 13), f("WIDTH", 12, 0)),
    r(0x4034, "DATA_CUBE_HEIGHT", f("RESERVED_0", 31, 25), f("MINMAX_CTL", 24, 22),
      f("RESERVED_1", 21, 13), f("HEIGHT", 12, 0)),
    r(0x4038, "DATA_CUBE_NOTCH_ADDR", f("RESERVED_0", 31, 29), f("NOTCH_ADDR_1", 28, 16),
      f("RESERVED_1", 15, 13), f("NOTCH_ADDR_0", 12, 0)),
    r(0x403C, "DATA_CUBE_CHANNEL", f("RESERVED_0", 31, 29), f("ORIG_CHANNEL", 28, 16),
      f("RESERVED_1", 15, 13), f("CHANNEL", 12, 0)),
    alu_cfg(0x4040, "BS_CFG", "BS"),
    raw(0x4044, "BS_ALU_CFG", "BS_ALU_OPERAND"),
    mul_cfg(0x4048, "BS_MUL_CFG", "BS"),
    raw(0x404C, "BS_RELUX_CMP_VALUE", "BS_RELUX_CMP_DAT"),
    r(0x4050, "BS_OW_CFG", f("RGP_CNTER", 31, 28), f("TP_ORG_EN", 27), f("RESERVED_0", 26, 11),
      f("SIZE_E_2", 10, 8), f("SIZE_E_1", 7, 5), f("SIZE_E_0", 4, 2), f("OD_BYPASS", 1),
      f("OW_SRC", 0)),
    r(0x4054, "BS_OW_OP", f("RESERVED_0", 31, 16),
      f("OW_OP", 15, 0, signed=True, doc="signed (our reading): Mesa writes 0x80 - weight_zp")),
    r(0x4058, "WDMA_SIZE_0", f("RESERVED_0", 31, 28), f("TP_PRECISION", 27),
      f("SIZE_C_WDMA", 26, 16), f("RESERVED_1", 15, 13), f("CHANNEL_WDMA", 12, 0)),
    r(0x405C, "WDMA_SIZE_1", f("RESERVED_0", 31, 29), f("HEIGHT_WDMA", 28, 16),
      f("RESERVED_1", 15, 13), f("WIDTH_WDMA", 12, 0)),
    alu_cfg(0x4060, "BN_CFG", "BN"),
    raw(0x4064, "BN_ALU_CFG", "BN_ALU_OPERAND"),
    mul_cfg(0x4068, "BN_MUL_CFG", "BN"),
    raw(0x406C, "BN_RELUX_CMP_VALUE", "BN_RELUX_CMP_DAT"),
    r(0x4070, "EW_CFG", f("EW_CVT_TYPE", 31), f("EW_CVT_ROUND", 30), f("EW_DATA_MODE", 29, 28),
      f("RESERVED_0", 27, 24), f("EDATA_SIZE", 23, 22), f("EW_EQUAL_EN", 21),
      f("EW_BINARY_EN", 20), f("EW_ALU_ALGO", 19, 16), f("RESERVED_1", 15, 11),
      f("EW_RELUX_EN", 10), f("EW_RELU_BYPASS", 9), f("EW_OP_CVT_BYPASS", 8),
      f("EW_LUT_BYPASS", 7), f("EW_OP_SRC", 6), f("EW_MUL_PRELU", 5), f("RESERVED_2", 4, 3),
      f("EW_OP_TYPE", 2), f("EW_OP_BYPASS", 1), f("EW_BYPASS", 0)),
    r(0x4074, "EW_CVT_OFFSET_VALUE",
      f("EW_OP_CVT_OFFSET", 31, 0, signed=True,
        doc="signed (our reading): Mesa writes 0x80 - addend_zp")),
    r(0x4078, "EW_CVT_SCALE_VALUE", f("EW_TRUNCATE", 31, 22), f("EW_OP_CVT_SHIFT", 21, 16),
      f("EW_OP_CVT_SCALE", 15, 0)),
    raw(0x407C, "EW_RELUX_CMP_VALUE", "EW_RELUX_CMP_DAT"),
    r(0x4080, "OUT_CVT_OFFSET",
      f("OUT_CVT_OFFSET", 31, 0, signed=True,
        doc="signed (our reading): Mesa writes output_zp - 0x80")),
    r(0x4084, "OUT_CVT_SCALE", f("RESERVED_0", 31, 17), f("FP32TOFP16_EN", 16),
      f("OUT_CVT_SCALE", 15, 0, doc="15-bit mantissa with the implicit 1 at bit 14 (Mesa)")),
    r(0x4088, "OUT_CVT_SHIFT", f("CVT_TYPE", 31), f("CVT_ROUND", 30), f("RESERVED_0", 29, 20),
      f("MINUS_EXP", 19, 12), f("OUT_CVT_SHIFT", 11, 0)),
    *(raw(0x4090 + 4 * n, f"EW_OP_VALUE_{n}", f"EW_OPERAND_{n}") for n in range(8)),
    stride4(0x40C0, "SURFACE_ADD", "SURF_ADD"),
    raw(0x40C4, "UNKNOWN_40C4", "VALUE",
        doc="[mesa-raw] undocumented; Mesa writes 0 (mtx512 npu_hw.h: 'not documented')"),
    r(0x4100, "LUT_ACCESS_CFG", f("RESERVED_0", 31, 18), f("LUT_ACCESS_TYPE", 17),
      f("LUT_TABLE_ID", 16), f("RESERVED_1", 15, 10), f("LUT_ADDR", 9, 0)),
    r(0x4104, "LUT_ACCESS_DATA", f("RESERVED_0", 31, 16), f("LUT_ACCESS_DATA", 15, 0)),
    r(0x4108, "LUT_CFG", f("RESERVED_0", 31, 8), f("LUT_CAL_SEL", 7),
      f("LUT_HYBRID_PRIORITY", 6), f("LUT_OFLOW_PRIORITY", 5), f("LUT_UFLOW_PRIORITY", 4),
      f("LUT_LO_LE_MUX", 3, 2), f("LUT_EXPAND_EN", 1), f("LUT_ROAD_SEL", 0)),
    r(0x410C, "LUT_INFO", f("RESERVED_0", 31, 24), f("LUT_LO_INDEX_SELECT", 23, 16),
      f("LUT_LE_INDEX_SELECT", 15, 8), f("RESERVED_1", 7, 0)),
    raw(0x4110, "LUT_LE_START"),
    raw(0x4114, "LUT_LE_END"),
    raw(0x4118, "LUT_LO_START"),
    raw(0x411C, "LUT_LO_END"),
    lut_slope(0x4120, "LUT_LE_SLOPE_SCALE", "LE", "SCALE"),
    lut_slope(0x4124, "LUT_LE_SLOPE_SHIFT", "LE", "SHIFT"),
    lut_slope(0x4128, "LUT_LO_SLOPE_SCALE", "LO", "SCALE"),
    lut_slope(0x412C, "LUT_LO_SLOPE_SHIFT", "LO", "SHIFT"),
], doc="post-processing: bias/BN/EW ALUs, ReLU, LUT, output convert, write DMA")  # fmt: skip

DPU_RDMA = block("DPU_RDMA", 0x5000, [
    s_status(0x5000, "RDMA_S_STATUS"),
    s_pointer(0x5004, "RDMA_S_POINTER"),
    op_enable(0x5008, "RDMA_OPERATION_ENABLE"),
    r(0x500C, "RDMA_DATA_CUBE_WIDTH", f("RESERVED_0", 31, 13), f("WIDTH", 12, 0)),
    r(0x5010, "RDMA_DATA_CUBE_HEIGHT", f("RESERVED_0", 31, 29),
      f("EW_LINE_NOTCH_ADDR", 28, 16), f("RESERVED_1", 15, 13), f("HEIGHT", 12, 0)),
    r(0x5014, "RDMA_DATA_CUBE_CHANNEL", f("RESERVED_0", 31, 13), f("CHANNEL", 12, 0)),
    raw(0x5018, "RDMA_SRC_BASE_ADDR", "SRC_BASE_ADDR"),
    r(0x501C, "RDMA_BRDMA_CFG", f("RESERVED_0", 31, 5), f("BRDMA_DATA_USE", 4, 1),
      f("RESERVED_1", 0)),
    raw(0x5020, "RDMA_BS_BASE_ADDR", "BS_BASE_ADDR", doc="bias DMA address (relocated)"),
    r(0x5028, "RDMA_NRDMA_CFG", f("RESERVED_0", 31, 5), f("NRDMA_DATA_USE", 4, 1),
      f("RESERVED_1", 0)),
    raw(0x502C, "RDMA_BN_BASE_ADDR", "BN_BASE_ADDR"),
    r(0x5034, "RDMA_ERDMA_CFG", f("ERDMA_DATA_MODE", 31, 30), f("ERDMA_SURF_MODE", 29),
      f("ERDMA_NONALIGN", 28), f("RESERVED_0", 27, 4), f("ERDMA_DATA_SIZE", 3, 2),
      f("OV4K_BYPASS", 1), f("ERDMA_DISABLE", 0)),
    raw(0x5038, "RDMA_EW_BASE_ADDR", "EW_BASE_ADDR"),
    stride4(0x5040, "RDMA_EW_SURF_STRIDE", "EW_SURF_STRIDE"),
    r(0x5044, "RDMA_FEATURE_MODE_CFG", f("RESERVED_0", 31, 18), f("IN_PRECISION", 17, 15),
      f("BURST_LEN", 14, 11), f("COMB_USE", 10, 8), f("PROC_PRECISION", 7, 5),
      f("MRDMA_DISABLE", 4), f("MRDMA_FP16TOFP32_EN", 3), f("CONV_MODE", 2, 1),
      f("FLYING_MODE", 0)),
    r(0x5048, "RDMA_SRC_DMA_CFG", f("LINE_NOTCH_ADDR", 31, 19), f("RESERVED_0", 18, 14),
      f("POOLING_METHOD", 13), f("UNPOOLING_EN", 12), f("KERNEL_STRIDE_HEIGHT", 11, 9),
      f("KERNEL_STRIDE_WIDTH", 8, 6), f("KERNEL_HEIGHT", 5, 3), f("KERNEL_WIDTH", 2, 0)),
    stride4(0x504C, "RDMA_SURF_NOTCH", "SURF_NOTCH_ADDR"),
    r(0x5064, "RDMA_PAD_CFG", f("PAD_VALUE", 31, 16), f("RESERVED_0", 15, 7),
      f("PAD_TOP", 6, 4), f("RESERVED_1", 3), f("PAD_LEFT", 2, 0)),
    r(0x5068, "RDMA_WEIGHT", f("E_WEIGHT", 31, 24), f("N_WEIGHT", 23, 16),
      f("B_WEIGHT", 15, 8), f("M_WEIGHT", 7, 0)),
    stride4(0x506C, "RDMA_EW_SURF_NOTCH", "EW_SURF_NOTCH"),
], doc="DPU read DMA: bias (BS), BN and element-wise (EW) operands")  # fmt: skip

PPU = block("PPU", 0x6000, [
    s_status(0x6000),
    s_pointer(0x6004),
    op_enable(0x6008),
    cube(0x600C, "DATA_CUBE_IN_WIDTH", "CUBE_IN_WIDTH"),
    cube(0x6010, "DATA_CUBE_IN_HEIGHT", "CUBE_IN_HEIGHT"),
    cube(0x6014, "DATA_CUBE_IN_CHANNEL", "CUBE_IN_CHANNEL"),
    cube(0x6018, "DATA_CUBE_OUT_WIDTH", "CUBE_OUT_WIDTH"),
    cube(0x601C, "DATA_CUBE_OUT_HEIGHT", "CUBE_OUT_HEIGHT"),
    cube(0x6020, "DATA_CUBE_OUT_CHANNEL", "CUBE_OUT_CHANNEL"),
    r(0x6024, "OPERATION_MODE_CFG", f("RESERVED_0", 31), f("INDEX_EN", 30), f("RESERVED_1", 29),
      f("NOTCH_ADDR", 28, 16), f("RESERVED_2", 15, 8), f("USE_CNT", 7, 5),
      f("FLYING_MODE", 4), f("RESERVED_3", 3, 2), f("POOLING_METHOD", 1, 0)),
    r(0x6034, "POOLING_KERNEL_CFG", f("RESERVED_0", 31, 24), f("KERNEL_STRIDE_HEIGHT", 23, 20),
      f("KERNEL_STRIDE_WIDTH", 19, 16), f("RESERVED_1", 15, 12), f("KERNEL_HEIGHT", 11, 8),
      f("RESERVED_2", 7, 4), f("KERNEL_WIDTH", 3, 0)),
    r(0x6038, "RECIP_KERNEL_WIDTH", f("RESERVED_0", 31, 17), f("RECIP_KERNEL_WIDTH", 16, 0)),
    r(0x603C, "RECIP_KERNEL_HEIGHT", f("RESERVED_0", 31, 17), f("RECIP_KERNEL_HEIGHT", 16, 0)),
    r(0x6040, "POOLING_PADDING_CFG", f("RESERVED_0", 31, 15), f("PAD_BOTTOM", 14, 12),
      f("RESERVED_1", 11), f("PAD_RIGHT", 10, 8), f("RESERVED_2", 7), f("PAD_TOP", 6, 4),
      f("RESERVED_3", 3), f("PAD_LEFT", 2, 0)),
    raw(0x6044, "PADDING_VALUE_1_CFG", "PAD_VALUE_0"),
    r(0x6048, "PADDING_VALUE_2_CFG", f("RESERVED_0", 31, 3), f("PAD_VALUE_1", 2, 0)),
    stride4(0x6070, "DST_BASE_ADDR", "DST_BASE_ADDR"),
    stride4(0x607C, "DST_SURF_STRIDE", "DST_SURF_STRIDE"),
    r(0x6084, "DATA_FORMAT", f("INDEX_ADD", 31, 4), f("DPU_FLYIN", 3),
      f("PROC_PRECISION", 2, 0)),
    r(0x60DC, "MISC_CTRL", f("SURF_LEN", 31, 16), f("RESERVED_0", 15, 9), f("MC_SURF_OUT", 8),
      f("NONALIGN", 7), f("RESERVED_1", 6, 4), f("BURST_LEN", 3, 0)),
], doc="planar processing (pooling); Mesa does not use it")  # fmt: skip

PPU_RDMA = block("PPU_RDMA", 0x7000, [
    s_status(0x7000, "RDMA_S_STATUS"),
    s_pointer(0x7004, "RDMA_S_POINTER"),
    op_enable(0x7008, "RDMA_OPERATION_ENABLE"),
    cube(0x700C, "RDMA_CUBE_IN_WIDTH", "CUBE_IN_WIDTH"),
    cube(0x7010, "RDMA_CUBE_IN_HEIGHT", "CUBE_IN_HEIGHT"),
    cube(0x7014, "RDMA_CUBE_IN_CHANNEL", "CUBE_IN_CHANNEL"),
    raw(0x701C, "RDMA_SRC_BASE_ADDR", "SRC_BASE_ADDR"),
    stride4(0x7024, "RDMA_SRC_LINE_STRIDE", "SRC_LINE_STRIDE"),
    stride4(0x7028, "RDMA_SRC_SURF_STRIDE", "SRC_SURF_STRIDE"),
    r(0x7030, "RDMA_DATA_FORMAT", f("RESERVED_0", 31, 2), f("IN_PRECISION", 1, 0)),
], doc="PPU read DMA")  # fmt: skip

DDMA = block("DDMA", 0x8000, [
    *dma_port(0x8000),
    raw(0x8034, "DT_WR_AMOUNT", doc="[vendor] data bytes written (read-only counter)"),
    raw(0x8038, "DT_RD_AMOUNT", doc="[vendor] data bytes read (read-only counter)"),
    raw(0x803C, "WT_RD_AMOUNT", doc="[vendor] weight bytes read (read-only counter)"),
], doc="AXI DMA port: outstanding counts, arbitration weights, QoS, cache attributes")  # fmt: skip

SDMA = block("SDMA", 0x9000, dma_port(0x9000), doc="second DMA port, DDMA's layout")

GLOBAL = block("GLOBAL", 0xF000, [
    r(0xF008, "OPERATION_ENABLE", f("RESERVED_0", 31, 7), f("PPU_RDMA_OP_EN", 6),
      f("PPU_OP_EN", 5), f("DPU_RDMA_OP_EN", 4), f("DPU_OP_EN", 3), f("CORE_OP_EN", 2),
      f("RESERVED_1", 1), f("CNA_OP_EN", 0),
      doc="the vendor driver's RKNPU_ENABLE_MASK (MMIO); command.py reads the task "
          "trailer's op-enable value with these bits (our interpretation)"),
], doc="per-core operation enable of every block")  # fmt: skip

RK3588 = RegisterDatabase(
    "rk3588", (PC, CNA, CORE, DPU, DPU_RDMA, PPU, PPU_RDMA, DDMA, SDMA, GLOBAL)
)
