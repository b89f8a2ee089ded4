"""What the backend passes decide about each op, as discardable attributes on the op that
produces a value (read and written only through these helpers, so names stay in one place):

    backend.target   "npu" | "cpu"            partition-cpu: where the op runs
    backend.segment  int                      partition-cpu: index of its run of same-target ops
    backend.reason   str                      partition-cpu: why a CPU op is not on the NPU
    backend.layout   "NC1HWC2" | "NCHW" | "NHWC" | "UNDEFINED"   assign-layout: its result's
    backend.c2       int                      assign-layout: C2 of an NC1HWC2 result
    backend.weight_out_channels / backend.weight_in_channels  int   align-channels: the
                     padded weights' rows and the input channels they read
    backend.padded_weight / backend.padded_bias  weight refs   align-channels: the padded
                     arrays (the op keeps its logical weights for the reference executor)
    backend.padded_weight_quant  #npu.quant  align-channels: weight parameters over the
                     padded rows (padding rows: scale 1, zero point 0)
    backend.tasks    [[y0, y1, c0, c1], ...]  tile: output rows [y0, y1) x channels [c0, c1)
    backend.offset   int                      plan-memory: byte offset of its result
    backend.bytes    int                      plan-memory: bytes of its result
    backend.buffer   "input" | "output" | "internal"   plan-memory: which buffer holds it
    backend.scratch_offset int                plan-memory: arena offset of the op's own
                     working memory (two-pass global pooling)

Module attributes: `backend.chip` (the target's name), `backend.internal_bytes` (the
internal arena's size, plan-memory).
"""

from __future__ import annotations

from collections.abc import Iterable

from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, IntAttr, StringAttr, i64
from xdsl.ir import Attribute, Operation

TARGET = "backend.target"
SEGMENT = "backend.segment"
REASON = "backend.reason"
LAYOUT = "backend.layout"
C2 = "backend.c2"
TASKS = "backend.tasks"
OFFSET = "backend.offset"
BYTES = "backend.bytes"
BUFFER = "backend.buffer"
CHIP = "backend.chip"
WEIGHT_OUT_CHANNELS = "backend.weight_out_channels"
WEIGHT_IN_CHANNELS = "backend.weight_in_channels"
PADDED_WEIGHT = "backend.padded_weight"
PADDED_BIAS = "backend.padded_bias"
PADDED_WEIGHT_QUANT = "backend.padded_weight_quant"
INTERNAL_BYTES = "backend.internal_bytes"
SCRATCH_OFFSET = "backend.scratch_offset"


def set_str(op: Operation, name: str, value: str) -> None:
    op.attributes[name] = StringAttr(value)


def get_str(op: Operation, name: str, default: str | None = None) -> str | None:
    attr = op.attributes.get(name)
    return attr.data if isinstance(attr, StringAttr) else default


def set_int(op: Operation, name: str, value: int) -> None:
    op.attributes[name] = IntAttr(int(value))


def get_int(op: Operation, name: str, default: int | None = None) -> int | None:
    attr = op.attributes.get(name)
    return attr.data if isinstance(attr, IntAttr) else default


def number_segments(ops: Iterable[Operation]) -> None:
    """`backend.segment` of each op (in block order): the index of its run of ops with the
    same `backend.target`."""
    segment, previous = -1, None
    for op in ops:
        target = get_str(op, TARGET)
        if target != previous:
            segment, previous = segment + 1, target
        set_int(op, SEGMENT, segment)


def set_tasks(op: Operation, tasks: list[tuple[int, int, int, int]]) -> None:
    op.attributes[TASKS] = ArrayAttr([DenseArrayBase.from_list(i64, list(t)) for t in tasks])


def get_tasks(op: Operation) -> list[tuple[int, int, int, int]]:
    attr: Attribute | None = op.attributes.get(TASKS)
    if not isinstance(attr, ArrayAttr):
        return []
    return [tuple(int(v) for v in a.get_values()) for a in attr.data]  # type: ignore[union-attr]
