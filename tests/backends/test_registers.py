"""The register database (`backends/registers`): the table's invariants, encode/decode round
trips over every register (hypothesis), rejection of bad names and values, and golden words
worked out by hand from ../shared/research/anchors.md §1.3-1.4 (never by calling the code)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.registers import (
    CMD,
    RK3588,
    Block,
    Field,
    Register,
    RegisterDatabase,
    RegisterError,
    data_amount,
    decode,
    decode_value,
    encode,
    encode_value,
    op_enable_word,
    task_trailer,
)
from compiler.errors import CompilerError
from dialects.npu import limits

# anchors §1.3: the command word's target field for a write, per block ("block enum value +
# 1": PC 0x0101, CNA 0x0201, CORE 0x0801, DPU 0x1001, DPU_RDMA 0x2001, PPU 0x4001, PPU_RDMA
# 0x8001). DDMA 0x10000, SDMA 0x20000, GLOBAL 0x40000 do not fit 16 bits: no write target.
WRITE_TARGETS = {
    "PC": 0x0101,
    "CNA": 0x0201,
    "CORE": 0x0801,
    "DPU": 0x1001,
    "DPU_RDMA": 0x2001,
    "PPU": 0x4001,
    "PPU_RDMA": 0x8001,
}
NOT_ADDRESSABLE = ("DDMA", "SDMA", "GLOBAL")
# anchors §1.2: each block's register window.
WINDOWS = {
    "PC": 0x0000,
    "CNA": 0x1000,
    "CORE": 0x3000,
    "DPU": 0x4000,
    "DPU_RDMA": 0x5000,
    "PPU": 0x6000,
    "PPU_RDMA": 0x7000,
    "DDMA": 0x8000,
    "SDMA": 0x9000,
    "GLOBAL": 0xF000,
}

REGISTERS = list(RK3588.registers())
IDS = [r.qualified_name for r in REGISTERS]


def _mask(lsb: int, width: int) -> int:
    return ((1 << width) - 1) << lsb


def _field_values(reg: Register) -> st.SearchStrategy[dict[str, int]]:
    """A valid value for every field of `reg`, from the field's own width and sign."""
    parts = {}
    for f in reg.fields:
        lo, hi = ((-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed
                  else (0, (1 << f.width) - 1))  # fmt: skip
        parts[f.name] = st.integers(lo, hi)
    return st.fixed_dictionaries(parts)


def _expected_value(reg: Register, values: dict[str, int]) -> int:
    """The 32-bit value, assembled here independently of the encoder."""
    raw = 0
    for f in reg.fields:
        raw |= (values[f.name] & ((1 << f.width) - 1)) << f.lsb
    return raw


# ------------------------------------------------------------------- table invariants


def test_blocks_and_targets() -> None:
    assert [b.name for b in RK3588] == list(WINDOWS)
    for block in RK3588:
        assert block.base == WINDOWS[block.name]
    # registers.xml <enum name="target"> (anchors §1.3)
    assert {b.name: b.target for b in RK3588} == {
        "PC": 0x100, "CNA": 0x200, "CORE": 0x800, "DPU": 0x1000, "DPU_RDMA": 0x2000,
        "PPU": 0x4000, "PPU_RDMA": 0x8000, "DDMA": 0x10000, "SDMA": 0x20000,
        "GLOBAL": 0x40000,
    }  # fmt: skip


@pytest.mark.parametrize("reg", REGISTERS, ids=IDS)
def test_fields_fit_and_do_not_overlap(reg: Register) -> None:
    used = 0
    for f in reg.fields:
        assert f.width >= 1 and f.lsb >= 0 and f.lsb + f.width <= 32, f.name
        assert used & _mask(f.lsb, f.width) == 0, f"{reg.qualified_name}.{f.name} overlaps"
        used |= _mask(f.lsb, f.width)
    # registers.xml documents every bit (RESERVED_n included); a gap means a typo here
    assert used == 0xFFFF_FFFF, f"{reg.qualified_name}: bits {~used & 0xFFFFFFFF:#x} uncovered"
    assert len({f.name for f in reg.fields}) == len(reg.fields)


def test_offsets_unique_aligned_and_in_window() -> None:
    seen: dict[int, str] = {}
    for block in RK3588:
        names = [r.name for r in block]
        assert len(set(names)) == len(names), block.name
        for reg in block:
            assert reg.offset % 4 == 0
            assert block.base <= reg.offset < block.base + 0x1000, reg.qualified_name
            assert reg.offset not in seen, f"{reg.qualified_name} and {seen.get(reg.offset)}"
            seen[reg.offset] = reg.qualified_name


def test_anchor_offsets() -> None:
    # anchors §1.4, offsets typed from the doc
    for name, offset in {
        "PC.OPERATION_ENABLE": 0x0008, "PC.BASE_ADDRESS": 0x0010,
        "PC.REGISTER_AMOUNTS": 0x0014, "PC.TASK_CON": 0x0030, "PC.TASK_STATUS": 0x003C,
        "CNA.CONV_CON1": 0x100C, "CNA.CONV_CON2": 0x1010, "CNA.CONV_CON3": 0x1014,
        "CNA.DATA_SIZE0": 0x1020, "CNA.DATA_SIZE3": 0x102C, "CNA.WEIGHT_SIZE2": 0x1038,
        "CNA.CBUF_CON0": 0x1040, "CNA.CVT_CON0": 0x104C, "CNA.CVT_CON4": 0x105C,
        "CNA.FC_CON2": 0x1074, "CNA.PAD_CON0": 0x1068, "CNA.FEATURE_DATA_ADDR": 0x1070,
        "CNA.DMA_CON0": 0x1078, "CNA.DCOMP_ADDR0": 0x1110, "CNA.DCOMP_AMOUNT15": 0x117C,
        "CNA.CVT_CON5": 0x1180, "CNA.PAD_CON1": 0x1184, "CORE.MISC_CFG": 0x3010,
        "CORE.CLIP_TRUNCATE": 0x301C, "CORE.UNKNOWN_3030": 0x3030,
        "DPU.FEATURE_MODE_CFG": 0x400C, "DPU.DATA_FORMAT": 0x4010, "DPU.BS_CFG": 0x4040,
        "DPU.BS_OW_OP": 0x4054, "DPU.EW_CFG": 0x4070, "DPU.OUT_CVT_SHIFT": 0x4088,
        "DPU.EW_OP_VALUE_7": 0x40AC, "DPU.SURFACE_ADD": 0x40C0, "DPU.LUT_LO_SLOPE_SHIFT": 0x412C,
        "DPU_RDMA.RDMA_BS_BASE_ADDR": 0x5020, "DPU_RDMA.RDMA_ERDMA_CFG": 0x5034,
        "DPU_RDMA.RDMA_EW_SURF_NOTCH": 0x506C, "PPU.OPERATION_MODE_CFG": 0x6024,
        "PPU.POOLING_KERNEL_CFG": 0x6034, "PPU.MISC_CTRL": 0x60DC, "DDMA.RD_WEIGHT_0": 0x8004,
        "DDMA.CFG_STATUS": 0x8030, "DDMA.DT_WR_AMOUNT": 0x8034,
        "GLOBAL.OPERATION_ENABLE": 0xF008,
    }.items():  # fmt: skip
        assert RK3588.lookup(name).offset == offset, name
        assert RK3588.at(offset).qualified_name == name


def test_limits_match_field_widths() -> None:
    # dialects/npu/limits.py states these maxima from the same register fields
    def widest(name: str, field: str) -> int:
        return RK3588.lookup(name).field(field).max_value

    assert widest("CNA.CONV_CON3", "CONV_X_STRIDE") == limits.MAX_STRIDE
    assert widest("CNA.CONV_CON3", "CONV_Y_STRIDE") == limits.MAX_STRIDE
    assert widest("CNA.CONV_CON3", "ATROUS_X_DILATION") == limits.MAX_DILATION
    assert widest("CNA.WEIGHT_SIZE2", "WEIGHT_WIDTH") == limits.MAX_KERNEL
    assert widest("CNA.DATA_SIZE0", "DATAIN_WIDTH") == limits.MAX_FEATURE_SIZE
    # PPU kernel and stride: 4 bits, stored minus one (limits.py's reading)
    assert widest("PPU.POOLING_KERNEL_CFG", "KERNEL_WIDTH") + 1 == limits.MAX_POOL_KERNEL
    assert widest("PPU.POOLING_KERNEL_CFG", "KERNEL_STRIDE_WIDTH") + 1 == limits.MAX_POOL_STRIDE


# --------------------------------------------------------------------- round trips


@pytest.mark.parametrize("reg", REGISTERS, ids=IDS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip(reg: Register, data: st.DataObject) -> None:
    values = data.draw(_field_values(reg))
    value = encode_value(reg, **values)
    assert value == _expected_value(reg, values)
    assert decode_value(reg, value) == values
    if reg.block in NOT_ADDRESSABLE:
        with pytest.raises(RegisterError, match=reg.block):
            encode(reg.block, reg.name, **values)
        return
    word = encode(reg.block, reg.name, **values)
    assert word >> 48 == WRITE_TARGETS[reg.block]
    assert (word >> 16) & 0xFFFF_FFFF == value
    assert word & 0xFFFF == reg.offset
    assert decode(word) == (reg.block, reg.name, values)


@pytest.mark.parametrize("reg", REGISTERS, ids=IDS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_out_of_range_rejected(reg: Register, data: st.DataObject) -> None:
    f = data.draw(st.sampled_from(reg.fields))
    lo, hi = f.min_value, f.max_value
    bad = data.draw(
        st.one_of(st.integers(hi + 1, hi + (1 << 40)), st.integers(lo - (1 << 40), lo - 1))
    )
    with pytest.raises(RegisterError) as err:
        encode_value(reg, **{f.name: bad})
    message = str(err.value)
    assert f"{reg.qualified_name}.{f.name}" in message
    assert f"{lo}..{hi}" in message


def test_unset_fields_are_zero() -> None:
    assert encode_value("CNA.CONV_CON3") == 0
    assert encode("CNA", "CONV_CON3") == 0x0201_0000_0000_1014


def test_signed_fields_round_trip_negative() -> None:
    for name, field in (("CNA.PAD_CON1", "PAD_VALUE"), ("DPU.OUT_CVT_OFFSET", "OUT_CVT_OFFSET"),
                        ("DPU.BS_OW_OP", "OW_OP"), ("CNA.CVT_CON1", "CVT_OFFSET0")):  # fmt: skip
        reg = RK3588.lookup(name)
        f = reg.field(field)
        assert f.signed
        for v in (f.min_value, -1, 0, f.max_value):
            assert decode_value(reg, encode_value(reg, **{field: v}))[field] == v


# ------------------------------------------------------------- golden words, by hand
#
# A word is (target << 48) | (value << 16) | offset (anchors §1.3). Field positions from
# anchors §1.4; the values are the ones Mesa writes (rkt_regcmd.c) where it writes them.


def test_golden_cna_conv_con3_strides() -> None:
    # CONV_X_STRIDE bits 0-2 = 2, CONV_Y_STRIDE bits 3-5 = 2: 2 | 2 << 3 = 0x12;
    # target CNA 0x0201, offset 0x1014
    word = encode("CNA", "CONV_CON3", CONV_X_STRIDE=2, CONV_Y_STRIDE=2)
    assert word == 0x0201_0000_0012_1014
    block, register, fields = decode(0x0201_0000_0012_1014)
    assert (block, register) == ("CNA", "CONV_CON3")
    assert fields["CONV_X_STRIDE"] == 2 and fields["CONV_Y_STRIDE"] == 2
    assert sum(fields.values()) == 4  # every other field 0


def test_golden_cna_conv_con1_one_channel_input() -> None:
    # Mesa, 1-channel input: NONALIGN_DMA bit 30 (0x4000_0000) + GROUP_LINE_OFF bit 29
    # (0x2000_0000) + ARGB_IN bits 12-15 = 8 (0x8000) = 0x6000_8000; depthwise: CONV_MODE 3
    assert encode("CNA", "CONV_CON1", NONALIGN_DMA=1, GROUP_LINE_OFF=1, ARGB_IN=8) == (
        0x0201_6000_8000_100C
    )
    assert encode("CNA", "CONV_CON1", CONV_MODE=3) == 0x0201_0000_0003_100C


def test_golden_cna_data_size0() -> None:
    # DATAIN_WIDTH bits 16-26 = 224 (0xE0), DATAIN_HEIGHT bits 0-10 = 224: 0x00E0_00E0
    assert encode("CNA", "DATA_SIZE0", DATAIN_WIDTH=224, DATAIN_HEIGHT=224) == (
        0x0201_00E0_00E0_1020
    )


def test_golden_cna_first_layer_convert_and_pad() -> None:
    # first layer: CVT_SCALE0 bits 16-31 = 16384 (0x4000), CVT_OFFSET0 bits 0-15 = -128,
    # which Mesa writes as 65408 = 0xFF80: value 0x4000_FF80
    assert encode("CNA", "CVT_CON1", CVT_SCALE0=16384, CVT_OFFSET0=-128) == 0x0201_4000_FF80_1050
    # PAD_CON1 = input_zp - 0x80 = -128 as int32: 0xFFFF_FF80
    assert encode("CNA", "PAD_CON1", PAD_VALUE=-128) == 0x0201_FFFF_FF80_1184
    assert decode(0x0201_FFFF_FF80_1184).fields == {"PAD_VALUE": -128}


def test_golden_core_misc_cfg() -> None:
    # depthwise: QD_EN bit 0 + DW_EN bit 1 = 3; target CORE 0x0801, offset 0x3010
    assert encode("CORE", "MISC_CFG", QD_EN=1, DW_EN=1) == 0x0801_0000_0003_3010


def test_golden_dpu_words() -> None:
    # BS_CFG: BS_ALU_ALGO bits 16-19 = 2 (0x2_0000), BS_ALU_SRC bit 8 (0x100),
    # BS_RELU_BYPASS bit 6 (0x40), BS_MUL_BYPASS bit 4 (0x10): 0x0002_0150; target 0x1001
    word = encode("DPU", "BS_CFG", BS_ALU_ALGO=2, BS_ALU_SRC=1, BS_RELU_BYPASS=1, BS_MUL_BYPASS=1)
    assert word == 0x1001_0002_0150_4040
    # FEATURE_MODE_CFG: BURST_LEN bits 5-8 = 15 (0x1E0), OUTPUT_MODE bits 1-2 = 2 (0x4)
    assert encode("DPU", "FEATURE_MODE_CFG", BURST_LEN=15, OUTPUT_MODE=2) == 0x1001_0000_01E4_400C
    # ... depthwise adds CONV_MODE bits 3-4 = 3 (0x18): 0x1FC
    assert encode("DPU", "FEATURE_MODE_CFG", BURST_LEN=15, OUTPUT_MODE=2, CONV_MODE=3) == (
        0x1001_0000_01FC_400C
    )


def test_golden_dpu_rdma_words() -> None:
    # RDMA_WEIGHT: E/N/B/M_WEIGHT = 1 each in bytes 3/2/1/0: 0x0101_0101; target 0x2001
    assert encode("DPU_RDMA", "RDMA_WEIGHT", E_WEIGHT=1, N_WEIGHT=1, B_WEIGHT=1, M_WEIGHT=1) == (
        0x2001_0101_0101_5068
    )
    # RDMA_S_POINTER as Mesa sets it: POINTER_PP_MODE bit 3 + EXECUTER_PP_EN bit 2 +
    # POINTER_PP_EN bit 1 = 0xE
    block, register, fields = decode(0x2001_0000_000E_5004)
    assert (block, register) == ("DPU_RDMA", "RDMA_S_POINTER")
    assert {k for k, v in fields.items() if v} == {"POINTER_PP_MODE", "EXECUTER_PP_EN",
                                                   "POINTER_PP_EN"}  # fmt: skip


def test_golden_special_words() -> None:
    # Mesa's op-enable: target 0x0081, offset 0x0008, value RESERVED_0(14) | OP_EN(1) =
    # 14 << 1 | 1 = 0x1D = bits 0, 2, 3, 4 = CNA, CORE, DPU, DPU_RDMA
    assert op_enable_word() == 0x0081_0000_001D_0008
    assert decode(0x0081_0000_001D_0008) == (CMD, "OP_ENABLE", {
        "CNA_OP_EN": 1, "RESERVED_1": 0, "CORE_OP_EN": 1, "DPU_OP_EN": 1, "DPU_RDMA_OP_EN": 1,
        "PPU_OP_EN": 0, "PPU_RDMA_OP_EN": 0, "RESERVED_0": 0,
    })  # fmt: skip
    # the TRM's "64'h0081_0000_007f_0008" sets bits 0-6
    fields = decode(0x0081_0000_007F_0008).fields
    assert all(fields[k] == 1 for k in ("CNA_OP_EN", "CORE_OP_EN", "PPU_RDMA_OP_EN"))
    # "before op_en, 64'h0041_xxxx_xxxx_xxxx must be set": Mesa writes 0x0041 << 48
    assert encode(CMD, "OP_40") == 0x0041_0000_0000_0000
    assert decode(0x0041_0000_0000_0000) == (CMD, "OP_40", {})
    assert decode(0) == (CMD, "NOP", {})
    # pooling would start PPU (bit 5) and PPU_RDMA (bit 6) too: 0x1D | 0x60 = 0x7D
    assert op_enable_word(("CNA", "CORE", "DPU", "DPU_RDMA", "PPU", "PPU_RDMA")) == (
        0x0081_0000_007D_0008
    )


def test_golden_task_trailer() -> None:
    # chained task: PC.BASE_ADDRESS value = next regcmd address 0x1000_0040 (target PC 0x0101,
    # offset 0x0010); PC.REGISTER_AMOUNTS = align((130 - 4) / 2, 2) = align(63, 2) = 64 = 0x40
    assert task_trailer(next_address=0x1000_0040, next_words=130) == (
        0x0101_1000_0040_0010,
        0x0101_0000_0040_0014,
        0x0041_0000_0000_0000,
        0x0081_0000_001D_0008,
    )
    # an operation's only task: a bare zero word instead of PC.BASE_ADDRESS
    assert task_trailer(single_task=True)[:2] == (0, 0x0101_0000_0000_0014)
    # the last of several tasks: PC.BASE_ADDRESS written with 0
    assert task_trailer()[:2] == (0x0101_0000_0000_0010, 0x0101_0000_0000_0014)
    assert data_amount(130) == 64 and data_amount(4) == 0 and data_amount(9) == 2


def test_trailer_rejects_bad_arguments() -> None:
    with pytest.raises(RegisterError, match="16-aligned"):
        task_trailer(next_address=0x1000_0008, next_words=130)
    with pytest.raises(RegisterError, match="both"):
        task_trailer(next_address=0x1000_0040)
    with pytest.raises(RegisterError, match="only task"):
        task_trailer(next_address=0x1000_0040, next_words=130, single_task=True)
    with pytest.raises(RegisterError, match="at least"):
        data_amount(3)


# ---------------------------------------------------------------------------- errors


def test_rknn_stride_limit_error() -> None:
    # RKNN: "REGTASK: ... offset: 0x1014 ... limit: 0x7, value: 0x32" (anchors §1.10)
    with pytest.raises(RegisterError) as err:
        encode("CNA", "CONV_CON3", CONV_X_STRIDE=50)
    message = str(err.value)
    assert "CNA.CONV_CON3.CONV_X_STRIDE" in message and "0..7" in message and "0x7" in message
    assert isinstance(err.value, CompilerError) and isinstance(err.value, ValueError)


def test_negative_value_for_unsigned_field() -> None:
    with pytest.raises(RegisterError, match=r"CNA\.DATA_SIZE0\.DATAIN_WIDTH.*0\.\.2047"):
        encode("CNA", "DATA_SIZE0", DATAIN_WIDTH=-1)


def test_non_integer_value() -> None:
    with pytest.raises(RegisterError, match="not an integer"):
        encode_value("CNA.CONV_CON3", CONV_X_STRIDE=1.5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: encode("CNAA", "CONV_CON3"), r"no block 'CNAA' \(did you mean CNA"),
        (lambda: encode("CNA", "CONV_CON9"), r"CNA: no register 'CONV_CON9'"),
        (lambda: encode("CNA", "CONV_CON3", CONV_X_STRDE=1), r"CNA\.CONV_CON3: no field"),
        (lambda: encode(CMD, "OP_41"), "no special word"),
        (lambda: encode_value("CONV_CON3"), "expected BLOCK.REGISTER"),
        (lambda: decode(0x0301_0000_0000_1014), "unknown target 0x0301"),
        (lambda: decode(0x0201_0000_0000_1FF0), "CNA: no register at offset 0x1ff0"),
        (lambda: decode(0x0201_0000_0000_4040), "CNA: no register at offset 0x4040"),
        (lambda: decode(0x0081_0000_001D_0010), "expected 0x0008"),
        (lambda: decode(0x0041_0000_0001_0000), "no field defines"),
        (lambda: decode(1 << 64), "not a 64-bit"),
        (lambda: decode_value("CNA.CONV_CON3", 1 << 32), "not a 32-bit"),
    ],
)
def test_bad_names_and_words(call, match: str) -> None:
    with pytest.raises(RegisterError, match=match):
        call()


def test_mmio_only_blocks_encode_values_only() -> None:
    # GLOBAL.OPERATION_ENABLE bits 0, 2, 3, 4: 0x1D (the kernel's MMIO write)
    assert encode_value("GLOBAL.OPERATION_ENABLE", CNA_OP_EN=1, CORE_OP_EN=1, DPU_OP_EN=1,
                        DPU_RDMA_OP_EN=1) == 0x1D  # fmt: skip
    for name in NOT_ADDRESSABLE:
        with pytest.raises(RegisterError, match="no known command-stream target"):
            encode(name, RK3588.block(name).registers[0].name)


# ------------------------------------------------------------ table construction errors


def test_overlapping_fields_rejected() -> None:
    with pytest.raises(RegisterError, match=r"X\.R\.B: bits 3-5 overlap field A"):
        Register("X", "R", 0x10, (Field("A", 0, 4), Field("B", 3, 3)))


def test_field_past_bit_31_rejected() -> None:
    with pytest.raises(RegisterError, match=r"X\.R\.A: lsb 30, width 4"):
        Register("X", "R", 0x10, (Field("A", 30, 4),))


def test_bad_reset_rejected() -> None:
    with pytest.raises(RegisterError, match=r"X\.R\.A: value 16"):
        Register("X", "R", 0x10, (Field("A", 0, 4, reset=16),))


def test_duplicate_offset_and_window_rejected() -> None:
    a = Register("X", "A", 0x1010, (Field("V", 0, 32),))
    b = Register("X", "B", 0x1010, (Field("V", 0, 32),))
    with pytest.raises(RegisterError, match=r"X\.B: offset 0x1010 is already X\.A"):
        Block("X", 0x100, 0x1000, (a, b))
    with pytest.raises(RegisterError, match="outside the block's window"):
        Block("X", 0x100, 0x2000, (a,))
    with pytest.raises(RegisterError, match="target 0x100 used twice"):
        RegisterDatabase("t", (Block("X", 0x100, 0x1000, (a,)), Block("Y", 0x100, 0x2000, ())))


def test_reset_value_and_undefined_bits() -> None:
    reg = Register("X", "R", 0x10, (Field("A", 0, 4, reset=5), Field("B", 8, 4, signed=True)))
    assert reg.encode() == 5
    assert reg.encode(A=1, B=-1) == 0xF01
    with pytest.raises(RegisterError, match="bits 0x000000f0"):
        reg.decode(0xF0)
    assert reg.decode(0xF0, strict=False) == {"A": 0, "B": 0, "UNDEFINED_BITS": 0xF0}
