"""`tile`: split each NPU op's output into tasks that fit one core's CBUF, and record them as
`backend.tasks` = [(y0, y1, c0, c1), ...] (output rows [y0, y1) x output channels [c0, c1),
covering the output exactly once; `dialects/npu/placement.py`).

Which ops: every op with `backend.target` "npu" that computes on the MAC array, the DPU or
the PPU. The pass runs after partition-cpu and assign-layout, and reads their attributes
(layout, C2) through `passes/backend_values.py`. The chip is the module's `backend.chip`
(rk3588 when it is absent).

- Convolutions (conv2d, conv_transpose) and fully_connected (a 1x1 convolution over the rows
  of its input): a task holds the band of input rows its output rows read (kernel overlap
  included, clipped at the padding), across the input width and the input channels its
  output channels read (grouped and depthwise convolutions read only their own groups),
  aligned to C2. It also holds the weights of its output-channel group. The weights get
  the banks they need, at least one, and the rest hold data (`backends/cbuf.py`, Mesa's bank
  split).
- Element-wise, LUT, (re)quantize, pooling and resize: a task's input band(s) plus its output
  band fit the data banks (all banks, since there are no weights). A nearest resize by an
  integer factor that code generation computes as a depthwise transposed convolution
  (`backends/codegen/resize.py`) is tiled as that convolution.

Output channels are split into groups only when a group's weights or one output row do not
fit, and then the rows are split within each group. Register field widths bound every task
(`backends.cbuf.FIELD_LIMITS`). Data-movement ops (concat, slice, reshape, transpose, pad)
get no tasks here: how they are emitted, by DMA or by addressing, belongs to code
generation. An op that cannot be tiled is a CompilerError naming its ONNX node. The pass
reports the total number of tasks and the ops with the most tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from backends.cbuf import (
    Band,
    Cbuf,
    Feature,
    TileProblem,
    TilingError,
    conv_input_rows,
    group_input_channels,
    over_limit,
    resize_input_rows,
    tile,
    transposed_input_rows,
    weight_bytes,
)
from backends.codegen.resize import nearest_upsampling
from backends.targets import Target
from dialects.errors import CompilerError
from dialects.module import main_func
from dialects.npu import ops as npu
from dialects.npu.placement import TASKS, set_tasks
from passes.backend_values import (
    element_bits,
    element_bytes,
    layout_of,
    runs_on_npu,
    shape_of,
    target_of,
)
from passes.report import note

ELEMENTWISE = (npu.EltwiseOp, npu.LutOp, npu.RequantizeOp, npu.QuantizeOp, npu.DequantizeOp)
SHOWN = 3  # ops named in the report


@dataclass(frozen=True)
class Tile(ModulePass):
    """Split NPU ops into tasks that fit the CBUF (backend.tasks)."""

    name = "tile"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = target_of(op)
        cbuf = Cbuf(target.cbuf_banks, target.cbuf_bank_bytes)
        counts: list[tuple[int, npu.NpuOp]] = []
        untiled = 0
        for child in main_func(op).body.walk():
            child.attributes.pop(TASKS, None)  # from an earlier run
            if not (isinstance(child, npu.NpuOp) and runs_on_npu(child)):
                continue
            problem = problem_for(child, target)
            if problem is None:
                untiled += 1
                continue
            try:
                tasks = tile(problem, STREAMED if isinstance(child, npu.PoolOp) else cbuf)
            except TilingError as exc:
                raise CompilerError(
                    f"{child.describe()}: no split into tasks fits the {target.name} CBUF "
                    f"({cbuf.banks} banks of {cbuf.bank_bytes} B): {exc}"
                ) from None
            set_tasks(child, tasks)
            counts.append((len(tasks), child))
        note(self.name, report(counts, untiled))


def report(counts: list[tuple[int, npu.NpuOp]], untiled: int) -> str:
    total = sum(n for n, _ in counts)
    text = f"{total} tasks for {len(counts)} NPU ops"
    split = sorted((c for c in counts if c[0] > 1), key=lambda c: -c[0])
    if split:
        shown = ", ".join(f"{op.node_name or op.name} {n}" for n, op in split[:SHOWN])
        text += f"; {len(split)} split, most: {shown}"
    if untiled:
        text += f"; {untiled} data-movement ops not tiled"
    return text


# ---------------------------------------------------------------------- problems


# The PPU reads a pool's input through PPU_RDMA straight from memory, not through the CBUF
# (anchors §1.4): only the register field limits split a pool into tasks.
STREAMED = Cbuf(1, 1 << 40)


def feature(value: SSAValue, target: Target, rank: int | None = None) -> Feature:
    """`value` as rows x width x channels. A 4-D tensor is NCHW. Any other rank is rows (all
    axes but the last) x channels (the last). `rank` left-pads the shape with 1s
    (broadcasting)."""
    shape = shape_of(value)
    _, c2 = layout_of(value, target)
    if rank is not None and len(shape) < rank:
        shape, c2 = (1,) * (rank - len(shape)) + shape, 1
    size = element_bytes(value)
    if len(shape) == 4:
        n, c, h, w = shape
        return Feature(h, w, c, c2, size, n)
    rows = math.prod(shape[:-1]) if shape else 1
    return Feature(rows, 1, shape[-1] if shape else 1, c2, size)


def problem_for(op: npu.NpuOp, target: Target) -> TileProblem | None:
    if isinstance(op, npu.Conv2dOp | npu.ConvTransposeOp):
        return conv_problem(op, target)
    if isinstance(op, npu.FullyConnectedOp):
        return fc_problem(op, target)
    if isinstance(op, npu.PoolOp):
        return pool_problem(op, target)
    if isinstance(op, npu.ResizeOp):
        if (scales := nearest_upsampling(op)) is not None:
            return upsampling_problem(op, scales[0], target)
        x, y = feature(op.input, target), feature(op.output, target)
        mode = op.coordinate_transformation_mode.data
        return streaming_problem(
            y, [(x, lambda y0, y1: resize_input_rows(y0, y1, x.rows, y.rows, mode))]
        )
    if isinstance(op, ELEMENTWISE):
        y = feature(op.output, target)
        inputs = [op.lhs, op.rhs] if isinstance(op, npu.EltwiseOp) else [op.operands[0]]
        rank = len(shape_of(op.output))
        return streaming_problem(y, [_same_rows(feature(v, target, rank), y) for v in inputs])
    return None


RowMap = Callable[[int, int], Band]


def conv_problem(op: npu.Conv2dOp | npu.ConvTransposeOp, target: Target) -> TileProblem:
    x, y = feature(op.input, target), feature(op.output, target)
    kh, kw = shape_of(op.weight)[2:]
    (stride, _), (dilation, _) = npu.ints(op.strides), npu.ints(op.dilations)
    pad_top, groups = npu.ints(op.pads)[0], op.group.data
    rows = transposed_input_rows if isinstance(op, npu.ConvTransposeOp) else conv_input_rows

    def band(y0: int, y1: int) -> Band:
        return rows(y0, y1, stride, pad_top, kh, dilation, x.rows)

    return mac_problem(x, y, band, groups, kh * kw, element_bits(op.weight))


def upsampling_problem(op: npu.ResizeOp, scale: int, target: Target) -> TileProblem:
    """A nearest resize code generation computes as a depthwise transposed convolution with
    kernel = stride = `scale` and no padding (`backends/codegen/resize.py`)."""
    x, y = feature(op.input, target), feature(op.output, target)
    taps = math.prod(op.shape[2:]) // math.prod(shape_of(op.input)[2:])  # sy * sx

    def band(y0: int, y1: int) -> Band:
        return transposed_input_rows(y0, y1, scale, 0, scale, 1, x.rows)

    return mac_problem(x, y, band, x.channels, taps, element_bits(op.input))


def fc_problem(op: npu.FullyConnectedOp, target: Target) -> TileProblem:
    x, y = feature(op.input, target), feature(op.output, target)
    return mac_problem(x, y, lambda y0, y1: (y0, y1), 1, 1, element_bits(op.weight))


def mac_problem(x: Feature, y: Feature, band: RowMap, groups: int, taps: int,
                 bits: int) -> TileProblem:  # fmt: skip
    def channels(c0: int, c1: int) -> tuple[int, int]:
        return group_input_channels(c0, c1, y.channels, x.channels, groups)

    def data(y0: int, y1: int, c0: int, c1: int) -> int:
        return x.band_bytes(band(y0, y1), *channels(c0, c1))

    def weights(c0: int, c1: int) -> int:
        return weight_bytes(c1 - c0, x.channels // groups, taps, bits)

    def violation(y0: int, y1: int, c0: int, c1: int) -> str | None:
        b0, b1 = band(y0, y1)
        i0, i1 = channels(c0, c1)
        aligned = x.row_bytes(i0, i1) // max(1, x.width * x.batch * x.element_bytes)
        return over_limit(input_rows=b1 - b0, input_width=x.width, output_width=y.width,
                          output_atomics=(y1 - y0) * y.width, input_channels=aligned,
                          kernels=c1 - c0, cube=max(y1 - y0, y.width, c1 - c0))  # fmt: skip

    return TileProblem(y.rows, y.channels, y.c2, data, weights, violation)


def pool_problem(op: npu.PoolOp, target: Target) -> TileProblem:
    x, y = feature(op.input, target), feature(op.output, target)
    if op.global_pool.data:
        return streaming_problem(y, [(x, lambda y0, y1: (0, x.rows))])
    kernel, stride = npu.ints(op.kernel_shape)[0], npu.ints(op.strides)[0]
    pad_top = npu.ints(op.pads)[0]
    return streaming_problem(
        y, [(x, lambda y0, y1: conv_input_rows(y0, y1, stride, pad_top, kernel, 1, x.rows))]
    )


def _same_rows(x: Feature, y: Feature) -> tuple[Feature, RowMap]:
    """An element-wise input: the output's rows, or its single row when it broadcasts."""
    if x.rows == y.rows:
        return x, lambda y0, y1: (y0, y1)
    return x, lambda y0, y1: (0, x.rows)


def streaming_problem(y: Feature, inputs: list[tuple[Feature, RowMap]]) -> TileProblem:
    """An op without weights: each task's input bands and its output band fit the CBUF."""

    def channels(x: Feature, c0: int, c1: int) -> tuple[int, int]:
        return (c0, c1) if x.channels == y.channels else (0, x.channels)

    def data(y0: int, y1: int, c0: int, c1: int) -> int:
        total = y.band_bytes((y0, y1), c0, c1)
        return total + sum(x.band_bytes(rows(y0, y1), *channels(x, c0, c1)) for x, rows in inputs)

    def violation(y0: int, y1: int, c0: int, c1: int) -> str | None:
        bands = [rows(y0, y1) for _, rows in inputs]
        tallest = max([y1 - y0] + [b - a for a, b in bands])
        widest = max([y.width] + [x.width for x, _ in inputs])
        return over_limit(cube=max(tallest, widest, c1 - c0))

    return TileProblem(y.rows, y.channels, y.c2, data, None, violation)
