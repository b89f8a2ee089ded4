"""The chips, as data: one `Target` per chip family, every number with its source.

Sources (paths relative to the checkout's parent, `../shared/research/`):

- `sdk §x.y`     sdk_inventory.md, our inventory of Rockchip's "RKNN SDK User Guide" V2.3.0
                 (its [APIREF] tags are the RKNN-Toolkit2 API Reference 2.3.0);
- `anchors §x.y` anchors.md (Mesa rocket driver code, RK3588 hardware facts);
- `[DERIVED]`    our arithmetic on numbers from those sections, shown in the comment;
- `ASSUMPTION`   not in our research: a named constant below, saying where the real number
                 would come from. Its field is listed in the record's `assumed`.

Chips that run each other's models share a record (sdk §8.2: {RK3566, RK3568}, {RK3588,
RK3588S}, {RV1103, RV1106}). RV1103B/RV1106B are another chip (C2 int8 8, 8-byte zero-copy
alignment, sdk §5.2/§5.3) with too few facts in our research for a record; RK2118 has no
w8a8 (sdk §5.1) and is left out too.

A lead for later, not used here: Rockchip's vendor NPU driver (`drivers/rknpu/rknpu_drv.c`
in rockchip-linux/kernel@23a11aee) gives RK3562 and RK3576 an NPU-private buffer ("nbuf",
256 KiB and 1 MiB) that our research does not cover.
"""

from __future__ import annotations

from backends.targets.target import (
    NPU_CORE_0,
    NPU_CORE_0_1,
    NPU_CORE_0_1_2,
    NPU_CORE_1,
    NPU_CORE_2,
    NPU_CORE_ALL,
    NPU_CORE_AUTO,
    Alignment,
    DdrBandwidth,
    MacArray,
    Target,
)

# ---------------------------------------------------------------------- assumptions
# Numbers our research does not give. Each is a guess with a stated basis; replace it with
# the measured value when one exists (and drop its name from the record's `assumed`).

# NPU clocks other than RK3588's. ASSUMPTION: RK3588's 1 GHz (anchors §6). The real maximum
# is the chip's NPU OPP table in its device tree, or the "NPU Current Frequency List" that
# RKNN's eval_perf prints on a board (sdk §4.1).
RK3576_CLOCK_HZ = 1_000_000_000
RK3562_CLOCK_HZ = 1_000_000_000
RK3566_CLOCK_HZ = 1_000_000_000
RV1106_CLOCK_HZ = 1_000_000_000

# CBUF geometry other than RK3588's. ASSUMPTION: RK3588's 12 x 32 KiB per core (anchors
# §1.5). The real one is in the chip's TRM (NPU chapter), or shows in the CBUF_CON0 bank
# fields of the register streams RKNN emits for that chip (anchors §1.4).
OTHER_CBUF_BANKS = 12
OTHER_CBUF_BANK_BYTES = 32 * 1024

# DDR rates of chips with no RKNN per-layer cycle table in our research. ASSUMPTION: the
# rates fitted to sdk §4.1 fig 8-3 (see RK3588 below). The real ones: fit `DDRCycles` of an
# eval_perf per-layer table taken on that chip, as done for RK3588 and RK3576.
OTHER_DDR = DdrBandwidth(read=7.54, write=3.67)

# How each MAC array splits into input x output channels, and its size where our research
# gives no MAC count. ASSUMPTION (rule): atomic C = the conv input-channel alignment and
# atomic K = the conv output-channel alignment of sdk §5.4. The rule reproduces the one
# number we have (RK3588 int8: 32 x 32 = 1024 MACs, anchors §6) and the working assumption
# that int16/fp16 run at half the int8 rate there (anchors §6). The real numbers: MacUsage
# and NPUCycles of RKNN's eval_perf on large convolutions (sdk §4.1), or the TRM.

# ---------------------------------------------------------------------- shared tables

# sdk §5.4 (user guide tables 8-1..8-4), RK3588/RK3576 rows: (conv IC, conv OC, depthwise,
# other) per dtype.
RK3588_ALIGNMENTS = {
    "i8": Alignment(conv_in=32, conv_out=32, depthwise=64, other=16),
    "i16": Alignment(conv_in=32, conv_out=16, depthwise=32, other=8),
    "f16": Alignment(conv_in=32, conv_out=16, depthwise=32, other=8),
    "bf16": Alignment(conv_in=32, conv_out=16, depthwise=32, other=8),
    "tf32": Alignment(conv_in=16, conv_out=16, depthwise=16, other=4),
}

# anchors §1.4 CNA_CONV_CON1: one IN_PRECISION / PROC_PRECISION per convolution, so the
# weights are in the activations' precision; the dtypes are the rows of each chip's
# alignment table (sdk §5.4). Mixed pairs are added per chip with their source.
SAME_WIDTH_WEIGHTS = {"i8": ("i8",), "i16": ("i16",), "f16": ("f16",)}

# sdk §4.1 (multi-core view, lenet on RK3588): ops RKNN splits across cores; others run on
# core 0. RKNN op type names.
MULTICORE_OPS = frozenset(
    {
        "Conv",
        "DepthwiseConvolution",
        "Add",
        "Concat",
        "Relu",
        "Clip",
        "Relu6",
        "ThresholdedRelu",
        "PRelu",
        "LeakyRelu",
    }
)

# ---------------------------------------------------------------------- RK3588 / RK3588S

RK3588 = Target(
    name="rk3588",
    description="RK3588 / RK3588S",
    aliases=("rk3588s",),  # sdk §5.1: models for RK3588/RK3588S are interchangeable
    cores=3,  # sdk §5.1, §5.5; anchors §6 (three DT nodes)
    # sdk §1.1: core_mask AUTO, 0, 1, 2, 0_1, 0_1_2, ALL on RK3588
    core_masks=(
        NPU_CORE_AUTO,
        NPU_CORE_0,
        NPU_CORE_1,
        NPU_CORE_2,
        NPU_CORE_0_1,
        NPU_CORE_0_1_2,
        NPU_CORE_ALL,
    ),
    # anchors §6 ("RKNN clock is 1GHz"); sdk §4.1 eval_perf sample: NPU 1000000000 Hz
    clock_hz=1_000_000_000,
    mac_arrays={
        # 1024 MACs/cycle/core: anchors §6 (TRM quoted by jas-hacks; 6 TOPS = 1024 x 3 x
        # 1 GHz x 2). The 32 x 32 split: ASSUMPTION (anchors §6: suggested by Mesa's
        # WEIGHT_ATOMIC_SIZE 32 and Cout alignment 32; NVDLA uses 64 x 16)
        "i8": MacArray(input_channels=32, output_channels=32),
        # ASSUMPTION: half of int8 (anchors §6 working assumption), split by the rule above
        "i16": MacArray(input_channels=32, output_channels=16),
        "f16": MacArray(input_channels=32, output_channels=16),
    },
    cbuf_banks=12,  # anchors §1.5 (rkt_ml.h CBUF_BANKS), §6
    cbuf_bank_bytes=32 * 1024,  # anchors §1.5 (CBUF_BANK_SIZE 32768), §6: 384 KiB per core
    # [DERIVED] least-squares fit of DDRCycles = read_bytes/r + write_bytes/w to the nine
    # stride-1 rows of sdk §4.1 fig 8-3 (int8, inputs + weights + bias read, output
    # written): r = 7.54, w = 3.67 B/cycle, every row within 0.8 %. ASSUMPTION: the guide
    # does not name fig 8-3's chip; RK3588 is its running example. Peak for comparison:
    # DDR 2112 MHz (sdk §4.1 sample) x 2 x 8 B = 33.8 B per 1 GHz NPU cycle (anchors §6).
    ddr_bytes_per_cycle=DdrBandwidth(read=7.54, write=3.67),
    c2_by_dtype={
        "i8": 16,  # sdk §5.2 table 5-1 (best reading); anchors §1.6 NativeShape (1,2,112,112,16)
        "f16": 8,  # sdk §5.2 table 5-1; anchors §1.6 (8 halves per 16-byte atomic)
        "i16": 8,  # [DERIVED] sdk §5.2 rule C2 x element size = 16 bytes on RK3588
    },
    alignments=RK3588_ALIGNMENTS,  # sdk §5.4
    # the hardware: sdk §5.4 lists Int8, Int16, Float16 (and BFloat16, TFloat32) for RK3588
    activation_dtypes=("i8", "i16", "f16"),
    # no int4 weights: RKNN's w4a16 is RK3576 only (sdk §2.2); RK3588's Matmul API has int4
    # only as int4 x int4 (sdk §6.11 table 3-13), and the "12 TOPS int4" is a low-confidence
    # third-party claim (anchors §6)
    weight_dtypes=SAME_WIDTH_WEIGHTS,
    rknn_dtypes=("w8a8", "float16"),  # sdk §2.2 [APIREF], §5.1
    sram_bytes=956 * 1024,  # sdk §5.6: 1 MB SRAM, 956 KB (0xEF000) assignable to the NPU
    io_alignment_bytes=16,  # sdk §5.3 table 5-2
    features=frozenset(
        {
            "multi_core",  # sdk §5.5
            "dynamic_conv",  # sdk §5.7
            "matmul",  # sdk §6.11
            "dynamic_shape",  # sdk §6.7
            "sram",  # sdk §5.6
            "per_layer_perf",  # sdk §4.1
        }
    ),
    multicore_ops=MULTICORE_OPS,  # sdk §4.1
    # mac_arrays.i8: its MAC count is sourced, its 32 x 32 split is not
    assumed=frozenset({"mac_arrays.i8", "mac_arrays.i16", "mac_arrays.f16", "ddr_bytes_per_cycle"}),
)

# ---------------------------------------------------------------------- RK3576

RK3576 = Target(
    name="rk3576",
    description="RK3576",
    aliases=(),
    cores=2,  # sdk §5.1, §5.5
    # sdk §1.1: core_mask on RK3576 has no CORE_2 / CORE_0_1_2
    core_masks=(NPU_CORE_AUTO, NPU_CORE_0, NPU_CORE_1, NPU_CORE_0_1, NPU_CORE_ALL),
    clock_hz=RK3576_CLOCK_HZ,  # ASSUMPTION (above)
    # ASSUMPTION: RK3588's arrays. RK3576 shares RK3588's C2 column (sdk §5.2), alignment
    # table (sdk §5.4) and Matmul native layouts (sdk §6.11 table 3-12); its single-core
    # zoo FPS is within 10 % of RK3588's on ResNet50 (110.1 vs 99.0, anchors §4.1)
    mac_arrays={
        "i8": MacArray(input_channels=32, output_channels=32),
        "i16": MacArray(input_channels=32, output_channels=16),
        "f16": MacArray(input_channels=32, output_channels=16),
    },
    cbuf_banks=OTHER_CBUF_BANKS,  # ASSUMPTION (above)
    cbuf_bank_bytes=OTHER_CBUF_BANK_BYTES,  # ASSUMPTION (above)
    # [DERIVED] sdk §6.6 sparse log (RK3576 only): ResNet50 rows 1, 3, 4 (int8; read =
    # input + weights + bias, write = output): one rate of 7.50 B/cycle each way fits all
    # three within 5 % (a two-rate fit gives read 8.06, write 7.32 on three rows)
    ddr_bytes_per_cycle=DdrBandwidth(read=7.5, write=7.5),
    c2_by_dtype={
        "i8": 16,  # sdk §5.2 table 5-1 (RK3588/RK3576 column)
        "f16": 8,  # sdk §5.2 table 5-1
        "i16": 8,  # [DERIVED] sdk §5.2 rule C2 x element size = 16 bytes
    },
    alignments=RK3588_ALIGNMENTS,  # sdk §5.4 (one table for RK3588/RK3576)
    activation_dtypes=("i8", "i16", "f16"),  # sdk §5.4 rows
    weight_dtypes={
        **SAME_WIDTH_WEIGHTS,
        # i4 x f16: RKNN's w4a16, RK3576 only (sdk §2.2 [APIREF]; anchors §4.2); i4 x i8:
        # Matmul INT8_MM_INT4_TO_INT32 (sdk §6.11 table 3-13; RKNN's w4a8 is "not
        # supported yet" in the toolkit, sdk §2.2)
        "i4": ("f16", "i8"),
        # i8 x f16: Matmul FLOAT16_MM_INT8_TO_FLOAT32 (sdk §6.11 table 3-13)
        "i8": ("i8", "f16"),
    },
    rknn_dtypes=("w8a8", "w4a16", "float16"),  # sdk §2.2 [APIREF], §5.1
    sram_bytes=0,  # sdk §5.6: SRAM is RK3588 only
    io_alignment_bytes=16,  # sdk §5.3 table 5-2
    features=frozenset(
        {
            "multi_core",  # sdk §5.5
            "dynamic_conv",  # sdk §5.7
            "sparse_weights",  # sdk §6.6 (RK3576 only; int8, group 1, 32-aligned channels)
            "matmul",  # sdk §6.11
            "dynamic_shape",  # sdk §6.7
            "per_layer_perf",  # sdk §4.1 (WorkLoad(0/1) column)
        }
    ),
    # ASSUMPTION: RK3588's list (sdk §4.1 shows it for RK3588; RK3576 reports WorkLoad(0/1))
    multicore_ops=MULTICORE_OPS,
    assumed=frozenset(
        {
            "clock_hz",
            "mac_arrays.i8",
            "mac_arrays.i16",
            "mac_arrays.f16",
            "cbuf_banks",
            "cbuf_bank_bytes",
            "multicore_ops",
        }
    ),
)

# ---------------------------------------------------------------------- RK3562

RK3562 = Target(
    name="rk3562",
    description="RK3562",
    aliases=(),
    cores=1,  # sdk §5.1
    core_masks=(NPU_CORE_AUTO,),  # sdk §1.3: rknn_set_core_mask is RK3588/RK3576 only
    clock_hz=RK3562_CLOCK_HZ,  # ASSUMPTION (above)
    mac_arrays={
        # ASSUMPTION (alignment rule above): conv IC x OC alignment of sdk §5.4
        "i8": MacArray(input_channels=32, output_channels=16),
        "i16": MacArray(input_channels=32, output_channels=8),
        "f16": MacArray(input_channels=32, output_channels=8),
    },
    cbuf_banks=OTHER_CBUF_BANKS,  # ASSUMPTION (above)
    cbuf_bank_bytes=OTHER_CBUF_BANK_BYTES,  # ASSUMPTION (above)
    ddr_bytes_per_cycle=OTHER_DDR,  # ASSUMPTION (above)
    c2_by_dtype={
        "i8": 16,  # sdk §5.1, §5.2 table 5-1
        "f16": 8,  # sdk §5.1, §5.2 table 5-1
        "i16": 8,  # [DERIVED] sdk §5.2 rule C2 x element size = 16 bytes
    },
    # sdk §5.4, RK3562 rows
    alignments={
        "i8": Alignment(conv_in=32, conv_out=16, depthwise=32, other=16),
        "i16": Alignment(conv_in=32, conv_out=8, depthwise=16, other=8),
        "f16": Alignment(conv_in=32, conv_out=8, depthwise=16, other=8),
        "bf16": Alignment(conv_in=32, conv_out=8, depthwise=16, other=8),
        "tf32": Alignment(conv_in=16, conv_out=8, depthwise=8, other=4),
    },
    activation_dtypes=("i8", "i16", "f16"),  # sdk §5.4 rows
    weight_dtypes={
        **SAME_WIDTH_WEIGHTS,
        "i8": ("i8", "f16"),  # RKNN's w8a16: int8 weights, fp16 activations, RK3562 only (sdk §2.2)
    },
    rknn_dtypes=("w8a8", "w8a16", "float16"),  # sdk §2.2 [APIREF], §5.1
    sram_bytes=0,  # sdk §5.6: SRAM is RK3588 only
    io_alignment_bytes=16,  # sdk §5.3 table 5-2
    features=frozenset(
        {
            "matmul",  # sdk §6.11 (int8/fp16)
            "dynamic_shape",  # sdk §6.7
            "per_layer_perf",  # sdk §4.1
        }
    ),
    multicore_ops=frozenset(),
    assumed=frozenset(
        {
            "clock_hz",
            "mac_arrays.i8",
            "mac_arrays.i16",
            "mac_arrays.f16",
            "cbuf_banks",
            "cbuf_bank_bytes",
            "ddr_bytes_per_cycle",
        }
    ),
)

# ---------------------------------------------------------------------- RK3566 / RK3568

RK3566 = Target(
    name="rk3566",
    description="RK3566 / RK3568",
    # sdk §1.3, §8.2: one model for RK3566/RK3568 ("RK3566_RK3568"); RKNN's default target
    aliases=("rk3568", "rk356x", "rk3566_rk3568"),
    cores=1,  # sdk §5.1
    core_masks=(NPU_CORE_AUTO,),  # sdk §1.3: rknn_set_core_mask is RK3588/RK3576 only
    clock_hz=RK3566_CLOCK_HZ,  # ASSUMPTION (above)
    mac_arrays={
        # ASSUMPTION (alignment rule above): conv IC x OC alignment of sdk §5.4
        "i8": MacArray(input_channels=32, output_channels=16),
        "i16": MacArray(input_channels=16, output_channels=8),
        "f16": MacArray(input_channels=16, output_channels=8),
    },
    cbuf_banks=OTHER_CBUF_BANKS,  # ASSUMPTION (above)
    cbuf_bank_bytes=OTHER_CBUF_BANK_BYTES,  # ASSUMPTION (above)
    ddr_bytes_per_cycle=OTHER_DDR,  # ASSUMPTION (above)
    c2_by_dtype={
        "i8": 8,  # sdk §5.1, §5.2 (stated: RK3568 int8 (1,13,4,4) -> (1,2,4,4,8))
        "f16": 4,  # sdk §5.1, §5.2 table 5-1
        "i16": 4,  # [DERIVED] sdk §5.2 rule C2 x element size = 8 bytes on RK3566/RK3568
    },
    # sdk §5.4, RK3566/RK3568 rows
    alignments={
        "i8": Alignment(conv_in=32, conv_out=16, depthwise=32, other=8),
        "i16": Alignment(conv_in=16, conv_out=8, depthwise=16, other=4),
        "f16": Alignment(conv_in=16, conv_out=8, depthwise=16, other=4),
        "bf16": Alignment(conv_in=16, conv_out=8, depthwise=16, other=4),
    },
    activation_dtypes=("i8", "i16", "f16"),  # sdk §5.4 rows
    weight_dtypes=SAME_WIDTH_WEIGHTS,
    rknn_dtypes=("w8a8", "float16"),  # sdk §2.2 [APIREF], §5.1
    sram_bytes=0,  # sdk §5.6: SRAM is RK3588 only
    io_alignment_bytes=8,  # sdk §5.3 table 5-2
    features=frozenset(
        {
            "matmul",  # sdk §6.11 (INT8->INT32, FP16->FP32 only)
            "dynamic_shape",  # sdk §6.7
            "per_layer_perf",  # sdk §4.1
        }
    ),
    multicore_ops=frozenset(),
    assumed=frozenset(
        {
            "clock_hz",
            "mac_arrays.i8",
            "mac_arrays.i16",
            "mac_arrays.f16",
            "cbuf_banks",
            "cbuf_bank_bytes",
            "ddr_bytes_per_cycle",
        }
    ),
)

# ---------------------------------------------------------------------- RV1106 / RV1103

RV1106 = Target(
    name="rv1106",
    description="RV1106 / RV1103",
    aliases=("rv1103",),  # sdk §8.2: one model for RV1103/RV1106
    cores=1,  # sdk §5.1
    core_masks=(NPU_CORE_AUTO,),  # sdk §1.3: rknn_set_core_mask is RK3588/RK3576 only
    clock_hz=RV1106_CLOCK_HZ,  # ASSUMPTION (above)
    mac_arrays={
        # ASSUMPTION (alignment rule above): conv IC x OC alignment of sdk §5.4
        "i8": MacArray(input_channels=32, output_channels=16),
        "i16": MacArray(input_channels=16, output_channels=16),
    },
    cbuf_banks=OTHER_CBUF_BANKS,  # ASSUMPTION (above)
    cbuf_bank_bytes=OTHER_CBUF_BANK_BYTES,  # ASSUMPTION (above)
    ddr_bytes_per_cycle=OTHER_DDR,  # ASSUMPTION (above)
    c2_by_dtype={
        "i8": 16,  # sdk §5.2 table 5-1 (RV1103/RV1106 column)
        "i16": 8,  # [DERIVED] sdk §5.2 rule C2 x element size = 16 bytes on RV1103/RV1106
    },
    # sdk §5.4, RV1106/RV1103 rows (Int8 and Int16 only)
    alignments={
        "i8": Alignment(conv_in=32, conv_out=16, depthwise=32, other=16),
        "i16": Alignment(conv_in=16, conv_out=16, depthwise=16, other=8),
    },
    # no float16: the alignment table lists Int8/Int16 only (sdk §5.4), RKNN offers no
    # float16 here (sdk §5.1) and zero-copy outputs are int8-model only (sdk §5.3 table 5-7)
    activation_dtypes=("i8", "i16"),
    weight_dtypes={"i8": ("i8",), "i16": ("i16",)},
    # sdk §2.2 [APIREF], §5.1: w16a16i and w16a16i_dfp exist only here
    rknn_dtypes=("w8a8", "w16a16i", "w16a16i_dfp"),
    sram_bytes=0,  # sdk §5.6: SRAM is RK3588 only
    io_alignment_bytes=16,  # sdk §5.3 table 5-2
    # sdk §5.1: no perf_debug, no matmul, no dynamic shape, no custom ops
    features=frozenset(),
    multicore_ops=frozenset(),
    assumed=frozenset(
        {
            "clock_hz",
            "mac_arrays.i8",
            "mac_arrays.i16",
            "cbuf_banks",
            "cbuf_bank_bytes",
            "ddr_bytes_per_cycle",
        }
    ),
)

CHIPS: tuple[Target, ...] = (RK3588, RK3576, RK3562, RK3566, RV1106)
