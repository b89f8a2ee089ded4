"""What raising one layer to int16 or float16 would cost in predicted time (an estimate).

Per NPU op of the container, from the cycle model's tasks (`runtime.perf.cycles`): each task
is re-costed as if its tensors were of the wider dtype, with the task's shape kept:

- **NPU cycles**: a convolution (or fully connected) task scales by the ratio of
  `conv_npu_cycles` for the op's channels, kernels and kernel size under the two dtypes'
  MAC geometry (`weight_atoms`: on RK3588 int8 is 32 x 32, int16/float16 32 x 16, depthwise
  groups of 64 vs 32, all from `backends.targets`); a DPU-only or PPU task by the ratio of
  its C2 atoms (`ceil(C / C2)`, C2 16 for int8, 8 for int16/float16).
- **DDR cycles** scale by the element size (2 bytes against 1): the input and output
  cubes and the weights all widen; the per-channel operand tables, which do not, are a small
  part and are scaled too (the estimate errs high by that much).
- Time = the sum over tasks of max(NPU, DDR) cycles / clock, as `perf` does.

Not counted: the conversions a lone wider layer needs at its boundaries (an `npu.requantize`
each side), tiling changes (wider data fills CBUF sooner), multi-core splits. CPU ops and
NPU ops without tasks get no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation

from backends.container import COMMANDS, Container
from backends.registers.values import ELEMENT_BYTES, weight_atoms
from backends.targets import Target, get_target
from dialects.npu import ops as npu
from runtime.perf import cycles as cm
from runtime.perf.report import cpu_macs, tensor_elements

RAISED_DTYPES = ("i16", "f16")


@dataclass(frozen=True)
class LayerCost:
    target: str  # NPU | CPU
    time_us: float  # as built (perf's Time(us) on one core)
    raised_us: dict[str, float | None]  # per dtype of RAISED_DTYPES; None: no estimate


def layer_costs(container: Container, ir: Sequence[Operation]
                ) -> dict[tuple[str, str], LayerCost]:  # fmt: skip
    """(IR op name, ONNX output name) -> the op's predicted time and raised estimates.
    `ir`: the container's post-backend ops by block index (a `Session` has them parsed;
    parsing the module again would cost more than the whole analysis)."""
    target = get_target(container.target)
    meta = container.metadata
    costs = cm.task_costs(cm.read_words(container.sections.get(COMMANDS, b"")),
                          meta.get("tasks", []), target)  # fmt: skip
    by_op: dict[int, list[cm.TaskCost]] = {}
    for cost in costs:
        by_op.setdefault(cost.op_index, []).append(cost)
    found: dict[tuple[str, str], LayerCost] = {}
    for entry in meta.get("ops", []):
        index = entry["index"]
        op = ir[index] if index < len(ir) else None
        cost = _op_cost(entry["target"], by_op.get(index, []), op, target)
        for name in entry.get("outputs", []):
            found.setdefault((entry["op"], name), cost)
    return found


def _op_cost(placed: str, tasks: list[cm.TaskCost], op: Operation | None,
             target: Target) -> LayerCost:  # fmt: skip
    """As `perf` times it on one core: an NPU op's tasks, a CPU op's sizes (no task: 0)."""
    if placed != "npu":
        operands = [*op.operands, *op.results] if op is not None else []
        return LayerCost("CPU", cm.cpu_op_us(tensor_elements(operands), cpu_macs(op)),
                         dict.fromkeys(RAISED_DTYPES))  # fmt: skip
    now = sum(t.max_cycles for t in tasks) * 1e6 / target.clock_hz
    raised = {d: raised_us(tasks, op, target, d) if tasks and op is not None else None
              for d in RAISED_DTYPES}  # fmt: skip
    return LayerCost("NPU", now, raised)


def raised_us(tasks: list[cm.TaskCost], op: Operation, target: Target, dtype: str) -> float:
    """The op's predicted time (us) with its tasks re-costed in `dtype` (module doc)."""
    cycles = 0.0
    for task in tasks:
        npu_ratio = _npu_ratio(task, op, target, dtype)
        ddr_ratio = ELEMENT_BYTES[dtype] / ELEMENT_BYTES.get(task.dtype, 1)
        cycles += max(task.npu_cycles * npu_ratio, task.ddr_cycles * ddr_ratio)
    return cycles * 1e6 / target.clock_hz


def _npu_ratio(task: cm.TaskCost, op: Operation, target: Target, dtype: str) -> float:
    if task.kind == cm.CONV:
        shape = _conv_shape(op)
        if shape is None:
            return ELEMENT_BYTES[dtype] / ELEMENT_BYTES.get(task.dtype, 1)
        channels, kernels, kernel, depthwise = shape
        now = cm.conv_npu_cycles(channels, kernels, kernel, 1, depthwise,
                                 weight_atoms(target, task.dtype))  # fmt: skip
        wide = cm.conv_npu_cycles(channels, kernels, kernel, 1, depthwise,
                                  weight_atoms(target, dtype))  # fmt: skip
        return wide / now
    channels = _out_channels(op)
    return math.ceil(channels / target.c2(dtype)) / math.ceil(channels / target.c2(task.dtype))


def _shape(value: object) -> tuple[int, ...]:
    kind = getattr(value, "type", None)
    return tuple(kind.get_shape()) if isinstance(kind, TensorType) else ()


def _conv_shape(op: Operation) -> tuple[int, int, tuple[int, int], bool] | None:
    """(input channels, kernels, kernel size, depthwise) of a convolution-like op."""
    if not isinstance(op, npu.Conv2dOp | npu.FullyConnectedOp) or len(op.operands) < 2:
        return None
    data, weight = _shape(op.operands[0]), _shape(op.operands[1])
    if len(data) < 2 or len(weight) < 2:
        return None
    kernel = (weight[2], weight[3]) if len(weight) == 4 else (1, 1)
    group = op.group.data if isinstance(op, npu.Conv2dOp) else 1
    depthwise = group > 1 and group == data[1]
    return data[1], weight[0], kernel, depthwise


def _out_channels(op: Operation) -> int:
    shape = _shape(op.results[0]) if op.results else ()
    return shape[1] if len(shape) >= 2 else 1
