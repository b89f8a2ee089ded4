"""What a target chip is, as data: the `Target` record and its small parts.

The numbers themselves live in `chips.py`, each with its source; this module only says what
the fields mean and answers the questions the rest of the compiler asks (`c2`, `alignment`,
`supports`). Nothing outside `backends/targets` hard-codes a chip number (DESIGN.md,
"Targets").

Dtype names are the `npu` dialect's (`dialects/npu/numerics.py`): activations "i8" | "i16" |
"f16"; weights additionally "i4". A record describes what the *hardware* computes; what
RKNN-Toolkit2's API exposes on the chip is kept beside it (`rknn_dtypes`), because the two
differ (RK3588 computes int16 natively, RKNN offers only w8a8 and float16 there).

A number our research does not give is a named assumption in `chips.py`, and its field name
is listed in `Target.assumed` ("clock_hz", or "mac_arrays.i16" for one dtype's entry), so a
report can say which results rest on assumptions. To try another value (say a clock measured
on a board), build a variant: `dataclasses.replace(get_target("rk3562"), clock_hz=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dialects.errors import CompilerError

ACTIVATION_DTYPES = ("i8", "i16", "f16")
WEIGHT_DTYPES = ("i4", "i8", "i16", "f16")
ALIGNMENT_KINDS = ("conv_in", "conv_out", "depthwise", "other")

# RKNN's `rknn_core_mask` values (sdk_inventory §1.1 init_runtime, §1.3 rknn_api.h).
NPU_CORE_AUTO = 0x0
NPU_CORE_0 = 0x1
NPU_CORE_1 = 0x2
NPU_CORE_2 = 0x4
NPU_CORE_0_1 = 0x3
NPU_CORE_0_1_2 = 0x7
NPU_CORE_ALL = 0xFFFF

# Capability names a `Target.features` set may hold (the source of each is in chips.py).
FEATURES = {
    "multi_core": "several NPU cores, chosen by core_mask; multi-batch across cores",
    "dynamic_conv": "convolution with weights as a runtime input (group=1 only)",
    "sparse_weights": "4:2 / 16:4 structured-sparse int8 convolution weights",
    "matmul": "RKNN's standalone Matmul API",
    "dynamic_shape": "models built for a finite set of input shapes",
    "sram": "on-SoC SRAM for internal tensors and weights",
    "per_layer_perf": "per-layer timing on the board (perf_debug)",
}


@dataclass(frozen=True)
class MacArray:
    """One core's multiply-accumulate array for one dtype: per cycle it consumes
    `input_channels` input channels of one output pixel for `output_channels` kernels."""

    input_channels: int  # atomic C
    output_channels: int  # atomic K

    @property
    def macs_per_cycle(self) -> int:
        return self.input_channels * self.output_channels


@dataclass(frozen=True)
class Alignment:
    """RKNN's channel alignment for DDR efficiency, in channels (user guide tables 8-1..8-4:
    "non-mandatory", a channel count that is a multiple runs without waste)."""

    conv_in: int  # convolution input channels
    conv_out: int  # convolution output channels
    depthwise: int  # depthwise convolution input and output channels
    other: int  # every other op, input and output channels


@dataclass(frozen=True)
class DdrBandwidth:
    """Bytes the NPU moves to or from DDR per NPU clock cycle (RKNN's `DDRCycles` are
    bytes over these rates, "converted to NPU clock")."""

    read: float
    write: float


@dataclass(frozen=True)
class Target:
    """One chip (or a family of chips that run the same compiled model)."""

    name: str  # canonical, RKNN's target_platform spelling, lower case
    description: str  # the chips covered, as Rockchip writes them
    aliases: tuple[str, ...]  # other names accepted by get_target (lower case)
    cores: int  # NPU cores
    core_masks: tuple[int, ...]  # RKNN core_mask values the chip accepts (NPU_CORE_*)
    clock_hz: int  # NPU clock (the maximum, as RKNN's published numbers assume)
    mac_arrays: Mapping[str, MacArray]  # per activation dtype, per core
    cbuf_banks: int  # convolution buffer banks per core
    cbuf_bank_bytes: int  # bytes per bank
    ddr_bytes_per_cycle: DdrBandwidth
    c2_by_dtype: Mapping[str, int]  # C2 of NC1HWC2 per activation dtype
    alignments: Mapping[str, Alignment]  # per dtype (also "bf16"/"tf32" where listed)
    activation_dtypes: tuple[str, ...]  # what the NPU computes in
    weight_dtypes: Mapping[str, tuple[str, ...]]  # weight dtype -> activation dtypes it pairs with
    rknn_dtypes: tuple[str, ...]  # RKNN's quantized_dtype / float_dtype values for the chip
    sram_bytes: int  # on-SoC SRAM the NPU may use (0: none)
    io_alignment_bytes: int  # zero-copy input width / size alignment
    features: frozenset[str]  # names from FEATURES
    multicore_ops: frozenset[str]  # RKNN op types split across cores (empty: single core)
    assumed: frozenset[str] = field(default_factory=frozenset)  # fields that are assumptions

    def __post_init__(self) -> None:
        for name in ("mac_arrays", "c2_by_dtype", "alignments", "weight_dtypes"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        self._check()

    def __hash__(self) -> int:  # the mappings are not hashable; a name is one chip
        return hash(self.name)

    # ------------------------------------------------------------------ questions

    @property
    def cbuf_bytes(self) -> int:
        """Convolution buffer per core."""
        return self.cbuf_banks * self.cbuf_bank_bytes

    def mac_array(self, dtype: str) -> MacArray:
        """One core's MAC array for `dtype` activations."""
        self._require_activation(dtype)
        return self.mac_arrays[dtype]

    def macs_per_cycle(self, dtype: str, cores: int = 1) -> int:
        """MACs per cycle on `cores` cores (peak: `cores=target.cores`)."""
        return self.mac_array(dtype).macs_per_cycle * cores

    def c2(self, dtype: str) -> int:
        """C2 of the NC1HWC2 layout for `dtype` activations (C1 = ceil(C / C2))."""
        self._require_activation(dtype)
        return self.c2_by_dtype[dtype]

    def alignment(self, dtype: str, kind: str) -> int:
        """Channel alignment for `kind` ("conv_in", "conv_out", "depthwise", "other")."""
        if kind not in ALIGNMENT_KINDS:
            raise ValueError(f"alignment kind {kind!r} is not one of {', '.join(ALIGNMENT_KINDS)}")
        if dtype not in self.alignments:
            raise CompilerError(
                f"{self.name} has no channel-alignment table for {dtype} "
                f"(it has {', '.join(self.alignments)})"
            )
        return getattr(self.alignments[dtype], kind)

    def supports(self, activation_dtype: str, weight_dtype: str | None = None) -> str | None:
        """None when the NPU computes `activation_dtype` activations (with `weight_dtype`
        weights, if given; None means weights of the activation dtype), else one line saying
        why not, naming the chip and what it does compute."""
        if activation_dtype not in ACTIVATION_DTYPES:
            return (
                f"{activation_dtype!r} is not an activation dtype "
                f"(one of {', '.join(ACTIVATION_DTYPES)})"
            )
        if activation_dtype not in self.activation_dtypes:
            return (
                f"{self.name} NPU does not compute {activation_dtype} activations "
                f"(it computes {', '.join(self.activation_dtypes)})"
            )
        if weight_dtype is None:
            return None
        if weight_dtype not in WEIGHT_DTYPES:
            return f"{weight_dtype!r} is not a weight dtype (one of {', '.join(WEIGHT_DTYPES)})"
        if activation_dtype in self.weight_dtypes.get(weight_dtype, ()):
            return None
        return (
            f"{self.name} NPU does not pair {weight_dtype} weights with {activation_dtype} "
            f"activations (it takes {self._pairs_text()})"
        )

    # ------------------------------------------------------------------ internals

    def _require_activation(self, dtype: str) -> None:
        reason = self.supports(dtype)
        if reason is not None:
            raise CompilerError(reason)

    def _pairs_text(self) -> str:
        return "; ".join(
            f"{weights} weights with {' or '.join(acts)} activations"
            for weights, acts in self.weight_dtypes.items()
        )

    def _check(self) -> None:
        """The record is consistent: one entry per activation dtype everywhere, known names."""
        problems = []
        acts = set(self.activation_dtypes)
        if not acts <= set(ACTIVATION_DTYPES):
            problems.append(f"activation dtypes {sorted(acts - set(ACTIVATION_DTYPES))}")
        for table in ("mac_arrays", "c2_by_dtype"):
            if set(getattr(self, table)) != acts:
                problems.append(f"{table} keys {sorted(getattr(self, table))}")
        if not acts <= set(self.alignments):
            problems.append(f"alignments lack {sorted(acts - set(self.alignments))}")
        for weights, paired in self.weight_dtypes.items():
            if weights not in WEIGHT_DTYPES or not set(paired) <= acts:
                problems.append(f"weight dtype {weights} -> {paired}")
        for act in acts:
            if act not in self.weight_dtypes.get(act, ()):
                problems.append(f"no {act} weights beside {act} activations")
        if not self.features <= set(FEATURES):
            problems.append(f"features {sorted(self.features - set(FEATURES))}")
        if self.cores < 1 or NPU_CORE_AUTO not in self.core_masks:
            problems.append(f"cores {self.cores}, core masks {self.core_masks}")
        if any(m not in (NPU_CORE_AUTO, NPU_CORE_ALL) and m >> self.cores for m in self.core_masks):
            problems.append(f"core masks {self.core_masks} name cores beyond {self.cores}")
        if problems:
            raise ValueError(f"target {self.name}: inconsistent record: {'; '.join(problems)}")
