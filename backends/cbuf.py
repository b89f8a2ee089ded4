"""The convolution buffer (CBUF): how much of it a task needs, how its banks split between
input data and weights, and the search that cuts an op's output into tasks that fit.

Pure arithmetic, no IR: `passes/tile.py` describes each op as a `TileProblem` and calls
`tile`.

The CBUF (anchors §1.5: Mesa `rkt_task.c` after NVDLA) has `Target.cbuf_banks` banks of
`Target.cbuf_bank_bytes` per core (RK3588: 12 x 32 KiB = 384 KiB). A convolution task holds
its weights and a band of input rows at once. The weights get the banks they need, at least
one, and the other banks hold the data (`Cbuf.split`). This is Mesa's `rkt_split_tasks`
without its unexplained extra weight bank ("why do we need an extra bank?"). An op
without weights uses every bank for data.

Feature data in the CBUF is NC1HWC2: a row of input holds whole C2 channel blocks
(`Feature.row_bytes`), so channels are counted aligned up to a multiple of C2.

A task's register fields bound it as well (anchors §1.4). The limits are read off the
register map (`backends/registers`), so they have a single source (`FIELD_LIMITS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from backends.registers import RK3588 as _REGISTERS
from dialects.errors import CompilerError

Task = tuple[int, int, int, int]  # output rows [y0, y1) x output channels [c0, c1)
Band = tuple[int, int]  # rows [start, stop)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def align_up(value: int, alignment: int) -> int:
    return ceil_div(value, alignment) * alignment


def _field_max(block: str, register: str, field: str) -> int:
    return _REGISTERS.register(block, register).field(field).max_value


# What one task's register fields can hold (same on every RKNPU2 chip, dialects/npu/limits.py).
# Conv tasks: CNA and CORE fields; every op writes its output cube through the DPU (PPU for
# pooling), whose cube fields are 13 bits wide. The 13-bit limit is taken as the field maximum
# (8191), which is safe whether or not the hardware stores the value minus one.
FIELD_LIMITS = {
    "input rows": _field_max("CNA", "DATA_SIZE0", "DATAIN_HEIGHT"),  # 2047
    "input width": _field_max("CNA", "DATA_SIZE0", "DATAIN_WIDTH"),  # 2047
    "input channels": _field_max("CNA", "DATA_SIZE1", "DATAIN_CHANNEL"),  # 65535 (aligned)
    "output width": _field_max("CNA", "DATA_SIZE2", "DATAOUT_WIDTH"),  # 2047
    "output atomics": _field_max("CNA", "DATA_SIZE3", "DATAOUT_ATOMICS"),  # 2**22 - 1
    "kernels": _field_max("CNA", "WEIGHT_SIZE2", "WEIGHT_KERNELS"),  # 16383
    "cube": _field_max("DPU", "DATA_CUBE_HEIGHT", "HEIGHT"),  # 8191 (13 bits)
}


class TilingError(CompilerError):
    """An op no split into tasks can fit; the message says why (the caller adds the op)."""


# ---------------------------------------------------------------------- banks


@dataclass(frozen=True)
class BankSplit:
    data_banks: int
    weight_banks: int


@dataclass(frozen=True)
class Cbuf:
    """One core's convolution buffer."""

    banks: int
    bank_bytes: int

    @property
    def bytes(self) -> int:
        return self.banks * self.bank_bytes

    def banks_for(self, nbytes: int) -> int:
        return ceil_div(nbytes, self.bank_bytes)

    def split(self, weight_bytes: int | None) -> BankSplit | None:
        """Weights (`None`: the op has none) get the banks they need, at least one. The rest
        hold data. Returns None when no bank is left for data."""
        weight_banks = 0 if weight_bytes is None else max(1, self.banks_for(weight_bytes))
        if weight_banks >= self.banks:
            return None
        return BankSplit(self.banks - weight_banks, weight_banks)


# ---------------------------------------------------------------------- feature data


@dataclass(frozen=True)
class Feature:
    """A tensor as the NPU streams it: `rows` rows of `width` positions (times `batch`),
    `channels` channels stored in blocks of `c2` (1: planar or not NC1HWC2)."""

    rows: int
    width: int
    channels: int
    c2: int = 1
    element_bytes: int = 1
    batch: int = 1

    def row_bytes(self, c0: int = 0, c1: int | None = None) -> int:
        """Bytes of one row of channels [c0, c1), whole C2 blocks."""
        c1 = self.channels if c1 is None else c1
        if c1 <= c0:
            return 0
        blocks = ceil_div(c1, self.c2) - c0 // self.c2
        return blocks * self.c2 * self.width * self.batch * self.element_bytes

    def band_bytes(self, band: Band, c0: int = 0, c1: int | None = None) -> int:
        return max(0, band[1] - band[0]) * self.row_bytes(c0, c1)


def clip_band(lo: int, hi: int, rows: int) -> Band:
    lo, hi = max(0, lo), min(rows, hi)
    return (lo, max(lo, hi))


def conv_input_rows(y0: int, y1: int, stride: int, pad_top: int, kernel: int,
                    dilation: int, in_rows: int) -> Band:  # fmt: skip
    """Input rows that output rows [y0, y1) of a convolution (or pooling window) read."""
    lo = y0 * stride - pad_top
    hi = (y1 - 1) * stride - pad_top + (kernel - 1) * dilation + 1
    return clip_band(lo, hi, in_rows)


def transposed_input_rows(y0: int, y1: int, stride: int, pad_top: int, kernel: int,
                          dilation: int, in_rows: int) -> Band:  # fmt: skip
    """Input rows that output rows [y0, y1) of a transposed convolution read. Input row i
    reaches outputs i*stride - pad_top + k*dilation for k in [0, kernel)."""
    lo = ceil_div(y0 + pad_top - (kernel - 1) * dilation, stride)
    hi = (y1 - 1 + pad_top) // stride + 1
    return clip_band(lo, hi, in_rows)


def resize_input_rows(y0: int, y1: int, in_rows: int, out_rows: int, mode: str) -> Band:
    """A band of input rows that covers what output rows [y0, y1) of a nearest or linear
    resize read. It is conservative: one row of margin on each side of the source
    coordinates, for rounding and for scales that differ from out_rows / in_rows."""

    def source(y: int) -> float:
        if mode == "align_corners":
            return y * (in_rows - 1) / (out_rows - 1) if out_rows > 1 else 0.0
        if mode == "asymmetric":
            return y * in_rows / out_rows
        return (y + 0.5) * in_rows / out_rows - 0.5  # half_pixel and its variants

    return clip_band(math.floor(source(y0)) - 1, math.floor(source(y1 - 1)) + 3, in_rows)


def group_input_channels(c0: int, c1: int, out_channels: int, in_channels: int,
                         groups: int) -> tuple[int, int]:  # fmt: skip
    """Input channels that output channels [c0, c1) of a grouped convolution read."""
    out_per_group, in_per_group = out_channels // groups, in_channels // groups
    g0, g1 = c0 // out_per_group, ceil_div(c1, out_per_group)
    return (g0 * in_per_group, g1 * in_per_group)


def weight_bytes(kernels: int, channels_per_kernel: int, kernel_hw: int, bits: int) -> int:
    """Bytes of `kernels` kernels of `channels_per_kernel` x `kernel_hw` taps (unaligned, as
    Mesa's `calc_weights_banks` counts them)."""
    return ceil_div(kernels * channels_per_kernel * kernel_hw * bits, 8)


def rows_that_fit(capacity: int, row_bytes: int) -> int:
    """How many rows of `row_bytes` fit in `capacity` bytes."""
    return capacity // row_bytes if row_bytes else 1 << 62


# ---------------------------------------------------------------------- the search


def _no_violation(y0: int, y1: int, c0: int, c1: int) -> str | None:
    return None


@dataclass(frozen=True)
class TileProblem:
    """An op's output (`rows` x `channels`) and what a task [y0, y1) x [c0, c1) needs.

    - `data_bytes(y0, y1, c0, c1)`: the CBUF data the task holds.
    - `weight_bytes(c0, c1)`: its weights (None: the op has no weights).
    - `violation(y0, y1, c0, c1)`: which register field the task overflows, or None.

    Channel groups are multiples of `granule` (the output's C2, so that no two tasks write
    the same C2 block)."""

    rows: int
    channels: int
    granule: int
    data_bytes: Callable[[int, int, int, int], int]
    weight_bytes: Callable[[int, int], int] | None = None
    violation: Callable[[int, int, int, int], str | None] = _no_violation


def group_sizes(channels: int, granule: int) -> Iterator[int]:
    """Channel-group sizes to try, fewest groups first. Each size is the smallest multiple
    of `granule` that covers `channels` in g groups, so the groups come out balanced."""
    seen: set[int] = set()
    for groups in range(1, ceil_div(channels, granule) + 1):
        size = min(align_up(ceil_div(channels, groups), granule), max(channels, 1))
        if size not in seen:
            seen.add(size)
            yield size


def tile(problem: TileProblem, cbuf: Cbuf) -> list[Task]:
    """Tasks that cover the output exactly once, ordered by channel group and then by row
    band. Output channels are split only when a group's weights or a single output row do not
    fit. Within a group, the weights stay resident and the rows are cut into the tallest bands
    that fit the data banks. Raises TilingError when even the smallest group fails."""
    if problem.rows <= 0 or problem.channels <= 0:
        return []
    reason = ""
    for size in group_sizes(problem.channels, problem.granule):
        tasks: list[Task] = []
        for c0 in range(0, problem.channels, size):
            c1 = min(c0 + size, problem.channels)
            bands, reason = _bands(problem, cbuf, c0, c1)
            if bands is None:
                break
            tasks += [(y0, y1, c0, c1) for y0, y1 in bands]
        else:
            return tasks
    raise TilingError(reason)


def _bands(problem: TileProblem, cbuf: Cbuf, c0: int, c1: int) -> tuple[list[Band] | None, str]:
    weights = problem.weight_bytes(c0, c1) if problem.weight_bytes is not None else None
    split = cbuf.split(weights)
    if split is None:
        return None, (
            f"the weights of output channels [{c0}, {c1}) need {cbuf.banks_for(weights or 0)} "
            f"CBUF banks of {cbuf.bank_bytes} B, and only {cbuf.banks} exist"
        )
    capacity = split.data_banks * cbuf.bank_bytes

    def fits(y0: int, y1: int) -> bool:
        return (problem.data_bytes(y0, y1, c0, c1) <= capacity
                and problem.violation(y0, y1, c0, c1) is None)  # fmt: skip

    bands: list[Band] = []
    y0 = 0
    while y0 < problem.rows:
        if not fits(y0, y0 + 1):
            broken = problem.violation(y0, y0 + 1, c0, c1)
            return None, broken or (
                f"output row {y0} of channels [{c0}, {c1}) needs "
                f"{problem.data_bytes(y0, y0 + 1, c0, c1)} B of CBUF data; {capacity} B "
                f"({split.data_banks} banks) are left beside {split.weight_banks} weight banks"
            )
        lo, hi = y0 + 1, problem.rows  # the tallest band: fits(y0, lo) holds, find max
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(y0, mid) else (lo, mid - 1)
        bands.append((y0, lo))
        y0 = lo
    return bands, ""


def over_limit(**values: int) -> str | None:
    """The first `name=value` that exceeds `FIELD_LIMITS[name]` (underscores in names read
    as spaces), as a message; None when all fit."""
    for name, value in values.items():
        key = name.replace("_", " ")
        if value > FIELD_LIMITS[key]:
            return f"{key} {value} exceeds the register field's {FIELD_LIMITS[key]}"
    return None
