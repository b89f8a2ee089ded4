"""What the NPU's register fields can hold (the same on every RKNPU2 chip; per-chip numbers
are in `backends/targets`). Source: `../shared/research/anchors.md` §1.10 (field widths from
the register map; RKNN's own "REGTASK: The bit width of field value exceeds the limit" error
for a stride of 50). The `npu` verifiers and the lowering's "can the NPU run this?" checks
both read these, so a model that passes lowering never fails in code generation.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_STRIDE = 7  # CNA_CONV_CON3 CONV_X/Y_STRIDE: 3 bits
MAX_KERNEL = 31  # CNA_WEIGHT_SIZE2 WEIGHT_WIDTH/HEIGHT: 5 bits (minus one)
MAX_FEATURE_SIZE = 2047  # CNA_DATA_SIZE0 DATAIN_WIDTH/HEIGHT: 11 bits (minus one)
MAX_DILATION = 31  # CNA_CONV_CON3 dilation fields: 5 bits
MAX_POOL_KERNEL = 16  # PPU POOLING_KERNEL_CFG kernel W/H: 4 bits, stored minus one
MAX_POOL_STRIDE = 16  # PPU POOLING_KERNEL_CFG stride W/H: 4 bits, stored minus one


def conv_violation(kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
                   in_hw: Sequence[int], out_hw: Sequence[int]) -> str | None:  # fmt: skip
    """Why a 2-D convolution does not fit the registers, or None."""
    if len(kernel) != 2:
        return f"only 2-D convolutions run on the NPU (this one is {len(kernel)}-D)"
    if max(kernel) > MAX_KERNEL:
        return f"kernel {list(kernel)} exceeds {MAX_KERNEL}"
    if max(strides) > MAX_STRIDE:
        return f"stride {list(strides)} exceeds {MAX_STRIDE}"
    if max(dilations) > MAX_DILATION:
        return f"dilation {list(dilations)} exceeds {MAX_DILATION}"
    if max(*in_hw, *out_hw) > MAX_FEATURE_SIZE:
        return f"feature map {list(in_hw)} -> {list(out_hw)} exceeds {MAX_FEATURE_SIZE}"
    return None


def pool_violation(kernel: Sequence[int], strides: Sequence[int], global_pool: bool) -> str | None:
    """Why a pooling does not fit the PPU registers, or None (global pooling is a reduction
    the DPU/PPU does in passes, with no kernel limit)."""
    if global_pool:
        return None
    if len(kernel) != 2:
        return f"only 2-D pooling runs on the NPU (this one is {len(kernel)}-D)"
    if max(kernel) > MAX_POOL_KERNEL:
        return f"pooling kernel {list(kernel)} exceeds {MAX_POOL_KERNEL}"
    if max(strides) > MAX_POOL_STRIDE:
        return f"pooling stride {list(strides)} exceeds {MAX_POOL_STRIDE}"
    return None
