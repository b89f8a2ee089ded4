"""Targets (`backends/targets`): every number against the research tables, typed in here
independently of `chips.py` (../shared/research/sdk_inventory.md §5, anchors.md §1.5, §6),
names and aliases, the unknown-target error, and `supports()`."""

from __future__ import annotations

import dataclasses

import pytest

from backends.targets import (
    ACTIVATION_DTYPES,
    DEFAULT_TARGET,
    FEATURES,
    TARGETS,
    Alignment,
    MacArray,
    Target,
    get_target,
    targets_supporting,
)
from backends.targets.target import NPU_CORE_ALL
from compiler.errors import CompilerError

CHIPS = ("rk3588", "rk3576", "rk3562", "rk3566", "rv1106")

# ---------------------------------------------------------------------- the doc tables

# sdk_inventory §5.4 (user guide tables 8-1..8-4): chip -> dtype -> (conv IC, conv OC,
# depthwise, other)
ALIGNMENT_TABLE = {
    "rk3566": {
        "i8": (32, 16, 32, 8),
        "i16": (16, 8, 16, 4),
        "f16": (16, 8, 16, 4),
        "bf16": (16, 8, 16, 4),
    },
    "rk3588": {
        "i8": (32, 32, 64, 16),
        "i16": (32, 16, 32, 8),
        "f16": (32, 16, 32, 8),
        "bf16": (32, 16, 32, 8),
        "tf32": (16, 16, 16, 4),
    },
    "rv1106": {
        "i8": (32, 16, 32, 16),
        "i16": (16, 16, 16, 8),
    },
    "rk3562": {
        "i8": (32, 16, 32, 16),
        "i16": (32, 8, 16, 8),
        "f16": (32, 8, 16, 8),
        "bf16": (32, 8, 16, 8),
        "tf32": (16, 8, 8, 4),
    },
}
ALIGNMENT_TABLE["rk3576"] = ALIGNMENT_TABLE["rk3588"]  # one table for RK3588/RK3576

# sdk_inventory §5.2 table 5-1 (best reading): int8 and float16 C2; int16 by the derived
# rule C2 x element size = 8 bytes (RK3566/RK3568) or 16 bytes (the others)
C2_TABLE = {
    ("rk3588", "i8"): 16,
    ("rk3588", "f16"): 8,
    ("rk3588", "i16"): 8,
    ("rk3576", "i8"): 16,
    ("rk3576", "f16"): 8,
    ("rk3576", "i16"): 8,
    ("rk3562", "i8"): 16,
    ("rk3562", "f16"): 8,
    ("rk3562", "i16"): 8,
    ("rk3566", "i8"): 8,
    ("rk3566", "f16"): 4,
    ("rk3566", "i16"): 4,
    ("rv1106", "i8"): 16,
    ("rv1106", "i16"): 8,
}

CORES = {"rk3588": 3, "rk3576": 2, "rk3562": 1, "rk3566": 1, "rv1106": 1}  # sdk §5.1

# sdk §5.3 table 5-2: zero-copy input alignment in bytes
IO_ALIGNMENT = {"rk3588": 16, "rk3576": 16, "rk3562": 16, "rk3566": 8, "rv1106": 16}

# sdk §2.2 [APIREF] / §5.1: RKNN's quantized_dtype (and float16) per chip
RKNN_DTYPES = {
    "rk3588": {"w8a8", "float16"},
    "rk3576": {"w8a8", "w4a16", "float16"},
    "rk3562": {"w8a8", "w8a16", "float16"},
    "rk3566": {"w8a8", "float16"},
    "rv1106": {"w8a8", "w16a16i", "w16a16i_dfp"},
}

# sdk §4.1 fig 8-3 (int8 YOLO-like model): (input bytes + weight bytes + bias bytes,
# output bytes, DDRCycles), the stride-1 rows
FIG_8_3 = [
    (3 * 480 * 640 + 32 * 3 * 3 * 3 + 32 * 4, 32 * 240 * 320, 794117),
    (32 * 240 * 320 + 64 * 32 * 9 + 64 * 4, 64 * 120 * 160, 665207),
    (64 * 120 * 160 + 32 * 64 + 32 * 4, 32 * 120 * 160, 332036),
    (32 * 120 * 160 + 32 * 32 + 32 * 4, 32 * 120 * 160, 248988),
    (32 * 120 * 160 + 32 * 32 * 9 + 32 * 4, 32 * 120 * 160, 250087),
    (2 * 32 * 120 * 160, 32 * 120 * 160, 329574),  # Add
    (2 * 32 * 120 * 160, 64 * 120 * 160, 494407),  # Concat
    (64 * 120 * 160 + 64 * 64 + 64 * 4, 64 * 120 * 160, 497258),
    (128 * 60 * 80 + 64 * 128 + 64 * 4, 64 * 60 * 80, 167682),
]

# sdk §6.6 (RK3576 sparse ResNet50 log): (read bytes, write bytes, DDR cycles)
SPARSE_LOG = [
    (3 * 224 * 224 + 64 * 3 * 49 + 64 * 4, 64 * 112 * 112, 129458),
    (64 * 56 * 56 + 64 * 32 + 64 * 4, 64 * 56 * 56, 53807),
    (64 * 56 * 56 + 64 * 32 * 9 + 64 * 4, 64 * 56 * 56, 53532),
]


# ---------------------------------------------------------------------- registry, names


def test_registry_holds_the_five_chips_and_rk3588_is_default():
    assert tuple(TARGETS) == CHIPS
    assert DEFAULT_TARGET == "rk3588"
    assert get_target() is TARGETS["rk3588"]
    assert get_target(None).name == "rk3588"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("rk3588", "rk3588"),
        ("RK3588", "rk3588"),
        ("rk3588s", "rk3588"),
        ("RK3588S", "rk3588"),
        ("rk3576", "rk3576"),
        ("Rk3562", "rk3562"),
        ("rk3566", "rk3566"),
        ("rk3568", "rk3566"),
        ("RK3566_RK3568", "rk3566"),
        ("rk356x", "rk3566"),
        (" rk3568 ", "rk3566"),
        ("rv1106", "rv1106"),
        ("RV1103", "rv1106"),
    ],
)
def test_names_and_aliases(name, canonical):
    assert get_target(name).name == canonical


@pytest.mark.parametrize("name", ["rk1808", "rv1106b", "rk2118", "", "rk35"])
def test_unknown_target_is_one_line_listing_the_known(name):
    with pytest.raises(CompilerError) as info:
        get_target(name)
    message = str(info.value)
    assert "\n" not in message
    assert f"unknown target {name!r}" in message
    for known in (*CHIPS, "rk3588s", "rk3568", "rv1103"):
        assert known in message


def test_records_are_frozen():
    target = get_target("rk3588")
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.clock_hz = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        target.c2_by_dtype["i8"] = 32  # type: ignore[index]
    assert hash(target) == hash(get_target("rk3588s"))


def test_replace_builds_a_variant_for_a_measured_number():
    measured = dataclasses.replace(get_target("rk3562"), clock_hz=900_000_000)
    assert measured.clock_hz == 900_000_000
    assert get_target("rk3562").clock_hz == 1_000_000_000


# ---------------------------------------------------------------------- the numbers


@pytest.mark.parametrize(("chip", "dtype"), sorted(C2_TABLE))
def test_c2(chip, dtype):
    assert get_target(chip).c2(dtype) == C2_TABLE[(chip, dtype)]


def test_c2_spot_values_from_the_brief():
    assert get_target("rk3588").c2("i8") == 16
    assert get_target("rk3566").c2("i8") == 8
    assert get_target("rk3568").c2("f16") == 4


def test_c2_times_element_size_is_the_atom():
    # sdk §5.2 rule of thumb: 8-byte atoms on RK3566/RK3568, 16 bytes elsewhere
    size = {"i8": 1, "i16": 2, "f16": 2}
    for target in TARGETS.values():
        atom = 8 if target.name == "rk3566" else 16
        for dtype in target.activation_dtypes:
            assert target.c2(dtype) * size[dtype] == atom, (target.name, dtype)


@pytest.mark.parametrize(
    ("chip", "dtype"), [(c, d) for c, table in ALIGNMENT_TABLE.items() for d in table]
)
def test_alignment_tables(chip, dtype):
    target = get_target(chip)
    conv_in, conv_out, depthwise, other = ALIGNMENT_TABLE[chip][dtype]
    assert target.alignment(dtype, "conv_in") == conv_in
    assert target.alignment(dtype, "conv_out") == conv_out
    assert target.alignment(dtype, "depthwise") == depthwise
    assert target.alignment(dtype, "other") == other
    assert target.alignments[dtype] == Alignment(conv_in, conv_out, depthwise, other)
    assert set(target.alignments) == set(ALIGNMENT_TABLE[chip])


def test_alignment_spot_values_from_the_brief():
    assert get_target("rk3588").alignment("i8", "depthwise") == 64
    assert get_target("rk3562").alignment("i16", "conv_out") == 8


def test_alignment_errors():
    with pytest.raises(ValueError, match="alignment kind 'pool'"):
        get_target("rk3588").alignment("i8", "pool")
    with pytest.raises(CompilerError, match="rk3566 has no channel-alignment table for tf32"):
        get_target("rk3566").alignment("tf32", "conv_in")
    with pytest.raises(CompilerError, match="rv1106 has no channel-alignment table for f16"):
        get_target("rv1106").alignment("f16", "other")


@pytest.mark.parametrize("chip", CHIPS)
def test_cores_and_core_masks(chip):
    target = get_target(chip)
    assert target.cores == CORES[chip]
    assert 0 in target.core_masks  # AUTO everywhere
    if chip == "rk3588":  # sdk §1.1: AUTO, 0, 1, 2, 0_1, 0_1_2, ALL
        assert set(target.core_masks) == {0x0, 0x1, 0x2, 0x4, 0x3, 0x7, 0xFFFF}
    elif chip == "rk3576":  # no CORE_2 / CORE_0_1_2
        assert set(target.core_masks) == {0x0, 0x1, 0x2, 0x3, 0xFFFF}
    else:  # rknn_set_core_mask is RK3588/RK3576 only
        assert target.core_masks == (0x0,)
    for mask in target.core_masks:
        if mask != NPU_CORE_ALL:
            assert mask < (1 << target.cores)


def test_rk3588_hardware_numbers():
    target = get_target("rk3588")
    assert target.clock_hz == 10**9  # anchors §6; sdk §4.1 sample
    assert target.macs_per_cycle("i8") == 1024  # anchors §6
    assert target.macs_per_cycle("i8", cores=target.cores) == 3072
    # 6 TOPS = 1024 MACs x 3 cores x 1 GHz x 2 ops (anchors §6)
    assert 2 * target.macs_per_cycle("i8", target.cores) * target.clock_hz == 6_144 * 10**9
    assert target.macs_per_cycle("i16") == target.macs_per_cycle("f16") == 512
    assert (target.cbuf_banks, target.cbuf_bank_bytes) == (12, 32768)  # anchors §1.5
    assert target.cbuf_bytes == 384 * 1024  # anchors §6: 384 KB per core
    assert target.sram_bytes == 0xEF000 == 978944  # sdk §5.6: 956 KB
    assert target.mac_array("i8") == MacArray(32, 32)


def test_sram_is_rk3588_only():
    assert {t.name for t in TARGETS.values() if t.sram_bytes} == {"rk3588"}
    assert {t.name for t in TARGETS.values() if "sram" in t.features} == {"rk3588"}


@pytest.mark.parametrize("chip", CHIPS)
def test_io_alignment(chip):
    assert get_target(chip).io_alignment_bytes == IO_ALIGNMENT[chip]


def test_mac_arrays_follow_the_conv_alignment_rule():
    # chips.py's stated assumption: atomic C x K = conv IC x OC alignment (sdk §5.4)
    for target in TARGETS.values():
        for dtype in target.activation_dtypes:
            conv_in, conv_out, _, _ = ALIGNMENT_TABLE[target.name][dtype]
            assert target.mac_array(dtype) == MacArray(conv_in, conv_out), (target.name, dtype)


def test_rk3588_ddr_rates_reproduce_fig_8_3():
    rate = get_target("rk3588").ddr_bytes_per_cycle
    for read, write, cycles in FIG_8_3:
        predicted = read / rate.read + write / rate.write
        assert predicted == pytest.approx(cycles, rel=0.01)


def test_rk3576_ddr_rate_reproduces_the_sparse_log():
    rate = get_target("rk3576").ddr_bytes_per_cycle
    for read, write, cycles in SPARSE_LOG:
        predicted = read / rate.read + write / rate.write
        assert predicted == pytest.approx(cycles, rel=0.05)


# ---------------------------------------------------------------------- dtypes


def test_hardware_dtypes():
    # the alignment tables list Int8/Int16/Float16 for every chip but RV1103/RV1106
    for chip in ("rk3588", "rk3576", "rk3562", "rk3566"):
        assert set(get_target(chip).activation_dtypes) == {"i8", "i16", "f16"}
    assert set(get_target("rv1106").activation_dtypes) == {"i8", "i16"}


@pytest.mark.parametrize("chip", CHIPS)
def test_rknn_dtypes(chip):
    assert set(get_target(chip).rknn_dtypes) == RKNN_DTYPES[chip]


def test_rk3588_supports_int16_though_rknn_does_not_expose_it():
    target = get_target("rk3588")
    assert not any("16" in d and d != "float16" for d in target.rknn_dtypes)
    assert target.supports("i16") is None
    assert target.supports("i16", "i16") is None
    assert target.supports("f16") is None
    assert target.supports("i8", "i8") is None


@pytest.mark.parametrize("chip", CHIPS)
def test_same_width_weights_everywhere(chip):
    target = get_target(chip)
    for dtype in target.activation_dtypes:
        assert target.supports(dtype, dtype) is None


def test_int4_weights_only_on_rk3576():
    assert get_target("rk3576").supports("f16", "i4") is None  # w4a16
    assert get_target("rk3576").supports("i8", "i4") is None  # Matmul INT8 x INT4
    assert targets_supporting("f16", "i4") == ["rk3576"]
    assert targets_supporting("i8", "i4") == ["rk3576"]
    assert targets_supporting("i16", "i4") == []


def test_mixed_int8_weights_with_f16_activations():
    assert get_target("rk3562").supports("f16", "i8") is None  # w8a16 (RK3562 only)
    assert get_target("rk3576").supports("f16", "i8") is None  # Matmul FLOAT16 x INT8
    reason = get_target("rk3588").supports("f16", "i8")
    assert reason is not None and reason.startswith("rk3588 ")


def test_refusal_names_the_chip_and_what_it_supports():
    reason = get_target("rk3588").supports("f16", "i4")
    assert reason == (
        "rk3588 NPU does not pair i4 weights with f16 activations (it takes i8 weights "
        "with i8 activations; i16 weights with i16 activations; f16 weights with f16 "
        "activations)"
    )
    reason = get_target("rv1103").supports("f16")
    assert reason == "rv1106 NPU does not compute f16 activations (it computes i8, i16)"
    # a refused activation dtype is refused whatever the weights
    assert get_target("rv1106").supports("f16", "f16") == reason
    assert get_target("rk3566").supports("i16", "i8") is not None


def test_supports_rejects_unknown_dtype_names():
    target = get_target("rk3588")
    assert target.supports("i32") == "'i32' is not an activation dtype (one of i8, i16, f16)"
    assert target.supports("i4") is not None  # a weight dtype only
    assert target.supports("i8", "i2") == ("'i2' is not a weight dtype (one of i4, i8, i16, f16)")
    for reason in (target.supports("i32"), target.supports("i8", "i2")):
        assert "\n" not in reason


def test_dtype_queries_refuse_what_the_chip_lacks():
    with pytest.raises(CompilerError, match=r"rv1106 NPU does not compute f16"):
        get_target("rv1106").c2("f16")
    with pytest.raises(CompilerError, match=r"rv1106 NPU does not compute f16"):
        get_target("rv1106").mac_array("f16")


# ---------------------------------------------------------------------- features, ops


def test_features():
    def having(feature):
        return {t.name for t in TARGETS.values() if feature in t.features}

    assert having("multi_core") == {"rk3588", "rk3576"}  # sdk §5.5
    assert having("sparse_weights") == {"rk3576"}  # sdk §6.6
    assert having("dynamic_conv") == {"rk3588", "rk3576"}  # sdk §5.7
    assert having("matmul") == {"rk3588", "rk3576", "rk3562", "rk3566"}  # sdk §6.11
    assert having("dynamic_shape") == {"rk3588", "rk3576", "rk3562", "rk3566"}  # sdk §6.7
    assert having("per_layer_perf") == {"rk3588", "rk3576", "rk3562", "rk3566"}  # sdk §4.1
    for target in TARGETS.values():
        assert target.features <= set(FEATURES)


def test_multicore_ops():
    rk3588 = get_target("rk3588")
    assert {"Conv", "DepthwiseConvolution", "Add", "Concat", "LeakyRelu"} <= rk3588.multicore_ops
    assert "MaxPool" not in rk3588.multicore_ops  # sdk §4.1: MaxPool stays on core 0
    for target in TARGETS.values():
        assert bool(target.multicore_ops) == (target.cores > 1)


# ---------------------------------------------------------------------- assumptions


def test_assumptions_are_named_fields():
    fields = {f.name for f in dataclasses.fields(Target)}
    for target in TARGETS.values():
        for name in target.assumed:
            field, _, dtype = name.partition(".")
            assert field in fields, (target.name, name)
            if dtype:
                assert dtype in getattr(target, field), (target.name, name)


def test_what_is_and_is_not_assumed():
    rk3588 = get_target("rk3588")
    assert "clock_hz" not in rk3588.assumed
    assert "cbuf_banks" not in rk3588.assumed
    assert {"mac_arrays.i16", "ddr_bytes_per_cycle"} <= rk3588.assumed
    for chip in ("rk3576", "rk3562", "rk3566", "rv1106"):
        target = get_target(chip)
        assert {"clock_hz", "cbuf_banks", "cbuf_bank_bytes"} <= target.assumed
        assert {f"mac_arrays.{d}" for d in target.activation_dtypes} <= target.assumed
    assert "ddr_bytes_per_cycle" not in get_target("rk3576").assumed  # fitted to sdk §6.6


def test_an_inconsistent_record_is_refused():
    good = get_target("rv1106")
    with pytest.raises(ValueError, match="c2_by_dtype keys"):
        dataclasses.replace(good, c2_by_dtype={"i8": 16})
    with pytest.raises(ValueError, match="weight dtype i4"):
        dataclasses.replace(good, weight_dtypes={**good.weight_dtypes, "i4": ("f16",)})
    with pytest.raises(ValueError, match="features"):
        dataclasses.replace(good, features=frozenset({"warp_drive"}))
    with pytest.raises(ValueError, match="core masks"):
        dataclasses.replace(good, core_masks=(0, 0x3))
    assert set(ACTIVATION_DTYPES) == {"i8", "i16", "f16"}
