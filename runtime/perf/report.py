"""RKNN's `eval_perf` report (research/sdk_inventory.md §4.1) from the cycle model: one row
per op of the container's op table, in its order, with the columns

    ID, OpType, DataType, Target, InputShape, OutputShape, DDRCycles, NPUCycles, MaxCycles,
    Time(us), MacUsage(%), WorkLoad(0/1/2), TaskNumber, RW(KB), FullName

then `Total Operator Elapsed Per Frame Time(us)`, `Total Memory Read/Write Per Frame
Size(KB)` and the ranking table (OpType, CallNumber, CPUTime(us), GPUTime(us), NPUTime(us),
TotalTime(us), TimeRatio(%)); and the same as JSON (`PerfReport.as_dict`).

- An NPU op's cycles are the sums over its tasks (`cycles.py`); its MaxCycles is the sum of
  each task's max(NPU, DDR), since tasks run one after the other. Time(us) = MaxCycles /
  clock. MacUsage = MACs / (MaxCycles x the MACs per cycle of the cores it runs on).
- OpType is RKNN's name: the base type plus fused activations and add (ConvRelu, ConvClip,
  ConvAdd, ...); FullName is `<OpType base>:<ONNX node name>` (RKNN: `<op type>:<node>`).
  InputShape lists every operand (data, weights, bias), as RKNN does.
- Core mask (`core_mask`: auto, 0, 1, 2, 0_1, 0_1_2, all; RKNN's names): auto runs on one
  idle core (sdk §5.5; shown as the first core). With several cores, an op whose RKNN type
  is in the chip's `multicore_ops` has each task's output rows split as evenly as the rows
  allow; its NPU cycles shrink to the largest share, its DDR cycles do not (the cores share
  the DDR). Other ops run on the first core of the mask. WorkLoad gives each core's share of
  the op's output rows.
- An NPU op with no task (code generation does not cover it yet) has no cycles: its row
  says so, and the totals count it under `not_timed`.
- CPU ops: `cycles.cpu_op_us`; elements and MACs from the IR's shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.ir import Operation
from xdsl.parser import Parser

from backends.container import COMMANDS, Container
from backends.targets import Target, get_target
from backends.targets.target import (
    NPU_CORE_0,
    NPU_CORE_0_1,
    NPU_CORE_0_1_2,
    NPU_CORE_1,
    NPU_CORE_2,
    NPU_CORE_ALL,
    NPU_CORE_AUTO,
)
from dialects.context import make_context
from runtime.perf import cycles as cm
from runtime.perf.cycles import PerfError, TaskCost

MODULE = "module"  # the post-backend IR section (compiler/build.py)

# RKNN's core_mask names (sdk §1.1) -> rknn_core_mask values
CORE_MASKS = {
    "auto": NPU_CORE_AUTO,
    "0": NPU_CORE_0,
    "1": NPU_CORE_1,
    "2": NPU_CORE_2,
    "0_1": NPU_CORE_0_1,
    "0_1_2": NPU_CORE_0_1_2,
    "all": NPU_CORE_ALL,
}

# npu dialect op -> RKNN's op type (sdk §4.1 tables); eltwise / pool / lut refine below
BASE_TYPES = {
    "npu.conv2d": "Conv",
    "npu.conv_transpose": "ConvTranspose",
    "npu.fully_connected": "FullyConnected",
    "npu.concat": "Concat",
    "npu.slice": "Slice",
    "npu.reshape": "Reshape",
    "npu.transpose": "Transpose",
    "npu.pad": "Pad",
    "npu.resize": "Resize",
    "npu.quantize": "Quantize",
    "npu.dequantize": "Dequantize",
    "npu.requantize": "Requantize",
}
ELTWISE_TYPES = {"add": "Add", "sub": "Sub", "mul": "Mul", "max": "Max", "min": "Min"}
POOL_TYPES = {"max": "MaxPool", "avg": "AveragePool", "min": "MinPool"}
DTYPE_NAMES = {"i8": "INT8", "u8": "UINT8", "i16": "INT16", "i32": "INT32", "f16": "FLOAT16",
               "f32": "FLOAT32", "i64": "INT64", "f64": "FLOAT64"}  # fmt: skip
COLUMNS = ("ID", "OpType", "DataType", "Target", "InputShape", "OutputShape", "DDRCycles",
           "NPUCycles", "MaxCycles", "Time(us)", "MacUsage(%)", "WorkLoad", "TaskNumber",
           "RW(KB)", "FullName")  # fmt: skip


@dataclass
class OpRow:
    """One row of the per-op table (cycles None for CPU ops and untimed NPU ops)."""

    id: int
    op_type: str
    data_type: str
    target: str  # "NPU" | "CPU"
    input_shape: str
    output_shape: str
    ddr_cycles: float | None
    npu_cycles: int | None
    max_cycles: float | None
    time_us: float
    mac_usage: float | None  # percent
    workload: list[float]  # percent per core of the chip
    task_number: int
    rw_kb: float
    full_name: str
    macs: int = 0
    note: str = ""


@dataclass
class PerfReport:
    target: str
    core_mask: str
    clock_hz: int
    cores: int
    rows: list[OpRow]
    not_timed: list[str] = field(default_factory=list)

    @property
    def total_time_us(self) -> float:
        return sum(row.time_us for row in self.rows)

    @property
    def total_rw_kb(self) -> float:
        return sum(row.rw_kb for row in self.rows)

    @property
    def fps(self) -> float:
        return 1e6 / self.total_time_us if self.total_time_us else math.inf

    def ranking(self) -> list[dict[str, Any]]:
        """Per OpType: calls, CPU/GPU/NPU time and its share of the total, slowest first."""
        table: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            entry = table.setdefault(row.op_type, {"OpType": row.op_type, "CallNumber": 0,
                                                   "CPUTime(us)": 0.0, "GPUTime(us)": 0.0,
                                                   "NPUTime(us)": 0.0})  # fmt: skip
            entry["CallNumber"] += 1
            entry[f"{row.target}Time(us)"] += row.time_us
        total = self.total_time_us or 1.0
        for entry in table.values():
            entry["TotalTime(us)"] = entry["CPUTime(us)"] + entry["NPUTime(us)"]
            entry["TimeRatio(%)"] = 100.0 * entry["TotalTime(us)"] / total
        return sorted(table.values(), key=lambda e: (-e["TotalTime(us)"], e["OpType"]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "core_mask": self.core_mask,
            "clock_hz": self.clock_hz,
            "rows": [asdict(row) for row in self.rows],
            "total_time_us": self.total_time_us,
            "fps": self.fps,
            "total_rw_kb": self.total_rw_kb,
            "ranking": self.ranking(),
            "not_timed": self.not_timed,
            "model": model_constants(),
        }

    def text(self) -> str:
        return "\n".join(_text_lines(self))


def model_constants() -> dict[str, float]:
    """The cycle model's own constants (the chip's are in backends.targets)."""
    return {name: getattr(cm, name) for name in (
        "CYCLES_PER_STEP", "MIN_STEPS_PER_OUTPUT", "DPU_CYCLES_PER_ATOM", "PPU_CYCLES_PER_TAP",
        "CPU_OP_FIXED_US", "CPU_NS_PER_ELEMENT", "CPU_MACS_PER_US")}  # fmt: skip


# ---------------------------------------------------------------------- core masks


def mask_cores(target: Target, core_mask: str) -> list[int]:
    """The cores `core_mask` (an RKNN name) runs on; PerfError if the chip has no such mask."""
    names = [name for name, value in CORE_MASKS.items() if value in target.core_masks]
    if core_mask not in CORE_MASKS or CORE_MASKS[core_mask] not in target.core_masks:
        raise PerfError(f"{target.name} has no core mask {core_mask!r} "
                        f"(it takes {', '.join(names)})")  # fmt: skip
    value = CORE_MASKS[core_mask]
    if value == NPU_CORE_AUTO:
        return [0]  # sdk §5.5: AUTO runs a model on one idle core
    if value == NPU_CORE_ALL:
        return list(range(target.cores))
    return [core for core in range(target.cores) if value >> core & 1]


def split_rows(rows: int, cores: int) -> list[int]:
    """`rows` output rows over `cores` cores, as evenly as whole rows allow."""
    base, extra = divmod(rows, cores)
    return [base + (1 if i < extra else 0) for i in range(cores)]


# ---------------------------------------------------------------------- the IR side


def module_ops(container: Container) -> list[Operation] | None:
    """The function body's ops by block index (op table `index`), or None without IR."""
    text = container.sections.get(MODULE)
    if not text:
        return None
    try:
        module = Parser(make_context(), text.decode()).parse_module()
    except Exception as exc:  # the IR is only for shapes: say why it is missing, go on
        raise PerfError(f"the container's module section does not parse: {exc}") from None
    ops = module.ops if isinstance(module, ModuleOp) else []
    funcs = [op for op in ops if isinstance(op, FuncOp)]
    if len(funcs) != 1:
        raise PerfError(f"the module holds {len(funcs)} functions, not one")
    return list(funcs[0].body.blocks[0].ops)


def _shape(value_type: Any) -> tuple[tuple[int, ...], str] | None:
    if not isinstance(value_type, TensorType):
        return None
    return tuple(value_type.get_shape()), str(value_type.element_type)


def shapes_text(values: Sequence[Any]) -> str:
    parts = [_shape(v.type) for v in values]
    return ",".join("(" + ",".join(map(str, s[0])) + ")" for s in parts if s is not None)


def _prop(op: Operation, name: str) -> str:
    attr = op.properties.get(name)
    return str(getattr(attr, "data", "")) if attr is not None else ""


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def rknn_op_type(op: Operation | None, name: str, is_input: bool, is_output: bool) -> str:
    """RKNN's OpType for an op (the IR op when there is one, else the op table's name)."""
    if name == "npu.quantize" and is_input:
        return "InputOperator"
    if name == "npu.dequantize" and is_output:
        return "OutputOperator"
    if name.startswith("onnx."):
        return name.removeprefix("onnx.")
    if op is None:
        return BASE_TYPES.get(name, _title(name.removeprefix("npu.")))
    if name == "npu.eltwise":
        return ELTWISE_TYPES.get(_prop(op, "kind"), "Eltwise") + _activation(op, "activation")
    if name == "npu.pool":
        base = POOL_TYPES.get(_prop(op, "kind"), "Pool")
        return "Global" + base if _prop(op, "global_pool") == "1" else base
    if name == "npu.lut":
        return _title(_prop(op, "function")) or "Lut"
    base = BASE_TYPES.get(name, _title(name.removeprefix("npu.")))
    if name in ("npu.conv2d", "npu.fully_connected", "npu.conv_transpose"):
        base += _activation(op, "activation")
        if len(op.operands) > 3:  # the residual operand of a fused add
            base += "Add" + _activation(op, "post_activation")
    return base


def _activation(op: Operation, prop: str) -> str:
    kind = _prop(op, prop)
    return (
        ""
        if kind in ("", "none")
        else {"leaky": "LeakyRelu", "prelu": "PRelu"}.get(kind, _title(kind))
    )


def tensor_elements(values: Sequence[Any]) -> int:
    sizes = [math.prod(s[0]) for s in (_shape(v.type) for v in values) if s is not None]
    return max(sizes, default=0)


def cpu_macs(op: Operation | None) -> int:
    """MACs of a float convolution or matmul run on the CPU (0 for everything else)."""
    if op is None or op.name not in ("onnx.Conv", "onnx.Gemm", "onnx.MatMul") or not op.results:
        return 0
    weight, out = _shape(op.operands[1].type), _shape(op.results[0].type)
    if weight is None or out is None or not weight[0] or not out[0]:
        return 0
    if op.name == "onnx.Conv":  # out N x K x H x W, weights K x C/g x kh x kw
        return math.prod(out[0]) * math.prod(weight[0][1:])
    return math.prod(out[0]) * weight[0][0]


# ---------------------------------------------------------------------- building rows


def perf_report(container: Container, core_mask: str = "auto") -> PerfReport:
    """The eval_perf-style report of `container` on `core_mask`."""
    target = get_target(container.target)
    cores = mask_cores(target, core_mask)
    meta = container.metadata
    costs = cm.task_costs(cm.read_words(container.sections.get(COMMANDS, b"")),
                          meta.get("tasks", []), target)  # fmt: skip
    by_op: dict[int, list[TaskCost]] = {}
    for cost in costs:
        by_op.setdefault(cost.op_index, []).append(cost)
    ir = module_ops(container)
    inputs = {spec["name"] for spec in meta.get("inputs", [])}
    outputs = {spec["name"] for spec in meta.get("outputs", [])}
    report = PerfReport(target.name, core_mask, target.clock_hz, target.cores, [])
    for entry in meta.get("ops", []):
        op = ir[entry["index"]] if ir is not None and entry["index"] < len(ir) else None
        row = _row(entry, op, by_op.get(entry["index"], []), target, cores, inputs, outputs)
        if row.note:
            report.not_timed.append(row.full_name)
        report.rows.append(row)
    return report


def _row(entry: dict[str, Any], op: Operation | None, costs: list[TaskCost], target: Target,
         cores: list[int], inputs: set[str], outputs: set[str]) -> OpRow:  # fmt: skip
    names = set(entry.get("outputs", []))
    op_type = rknn_op_type(op, entry["op"], bool(names & inputs) and entry["target"] == "cpu",
                           bool(names & outputs) and entry["target"] == "cpu")  # fmt: skip
    operands = list(op.operands) if op is not None else []
    results = list(op.results) if op is not None else []
    first = _shape(operands[0].type) if operands else None
    dtype = (
        DTYPE_NAMES.get(first[1], first[1].upper())
        if first
        else (DTYPE_NAMES.get(costs[0].dtype, "") if costs else "")
    )
    node = entry.get("node") or ",".join(entry.get("outputs", []))
    base = op_type if entry["target"] == "cpu" else BASE_TYPES.get(entry["op"], op_type)
    row = OpRow(entry["index"], op_type, dtype, entry["target"].upper(), shapes_text(operands),
                shapes_text(results), None, None, None, 0.0, None, [0.0] * target.cores,
                len(costs), 0.0, f"{base}:{node}")  # fmt: skip
    if entry["target"] == "cpu":
        row.time_us = cm.cpu_op_us(tensor_elements(operands + results), cpu_macs(op))
    elif not costs:
        row.note = "an NPU op without tasks: not timed"
    else:
        _npu_figures(row, costs, target, cores)
    return row


def _npu_figures(row: OpRow, costs: list[TaskCost], target: Target, cores: list[int]) -> None:
    split = len(cores) > 1 and _multicore_type(row.op_type, target)
    rows_per_core = [0] * target.cores
    npu = max_cycles = 0.0
    for cost in costs:
        shares = split_rows(cost.rows, len(cores)) if split else [cost.rows]
        for core, share in zip(cores, shares, strict=False):
            rows_per_core[core] += share
        npu_part = cost.npu_cycles * max(shares) / max(cost.rows, 1)
        npu += npu_part
        max_cycles += max(npu_part, cost.ddr_cycles)
    total_rows = sum(rows_per_core) or 1
    row.workload = [100.0 * r / total_rows for r in rows_per_core]
    row.npu_cycles = round(npu)
    row.ddr_cycles = sum(c.ddr_cycles for c in costs)
    row.max_cycles = max_cycles
    row.time_us = max_cycles * 1e6 / target.clock_hz
    row.macs = sum(c.macs for c in costs)
    used = len(cores) if split else 1
    peak = target.macs_per_cycle(costs[0].dtype, used) * max_cycles
    row.mac_usage = 100.0 * row.macs / peak if row.macs and peak else None
    row.rw_kb = sum(c.read_bytes + c.write_bytes for c in costs) / 1024


def _multicore_type(op_type: str, target: Target) -> bool:
    """RKNN splits Conv-family ops (and the others of `multicore_ops`) across cores."""
    return any(op_type == t or (t == "Conv" and op_type.startswith("Conv"))
               for t in target.multicore_ops)  # fmt: skip


# ---------------------------------------------------------------------- text


def _cell(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _workload(row: OpRow, cores: int) -> str:
    return "/".join(f"{share:.1f}%" for share in row.workload[:cores])


def _text_lines(report: PerfReport) -> list[str]:
    header = [f"Performance estimate (cycle model, not a measurement): {report.target}, "
              f"core mask {report.core_mask}",
              "NPU Current Frequency List:", f"- {report.clock_hz}"]  # fmt: skip
    columns = list(COLUMNS)
    columns[11] = "WorkLoad(" + "/".join(str(i) for i in range(report.cores)) + ")"
    table = [columns]
    for row in report.rows:
        table.append([str(row.id), row.op_type, row.data_type, row.target, row.input_shape,
                      row.output_shape, _cell(row.ddr_cycles), _cell(row.npu_cycles),
                      _cell(row.max_cycles), _cell(row.time_us), _cell(row.mac_usage, 2),
                      _workload(row, report.cores) if row.target == "NPU" and not row.note
                      else "", str(row.task_number) if row.target == "NPU" else "",
                      _cell(row.rw_kb, 2) if row.target == "NPU" else "",
                      row.full_name + (f"  ({row.note})" if row.note else "")])  # fmt: skip
    lines = header + _columns(table)
    lines += [f"Total Operator Elapsed Per Frame Time(us): {report.total_time_us:.0f}",
              f"Total Memory Read/Write Per Frame Size(KB): {report.total_rw_kb:.2f}",
              f"FPS (1e6 / total time): {report.fps:.1f}"]  # fmt: skip
    if report.not_timed:
        names = ", ".join(report.not_timed)
        lines.append(f"Not timed: {len(report.not_timed)} NPU ops have no tasks (code "
                     f"generation does not cover them yet): {names}")  # fmt: skip
    ranking = [["OpType", "CallNumber", "CPUTime(us)", "GPUTime(us)", "NPUTime(us)",
                "TotalTime(us)", "TimeRatio(%)"]]  # fmt: skip
    for e in report.ranking():
        ranking.append([e["OpType"], str(e["CallNumber"]), f"{e['CPUTime(us)']:.0f}",
                        f"{e['GPUTime(us)']:.0f}", f"{e['NPUTime(us)']:.0f}",
                        f"{e['TotalTime(us)']:.0f}", f"{e['TimeRatio(%)']:.2f}%"])  # fmt: skip
    return [*lines, "", "Operator Time Consuming Ranking Table", *_columns(ranking)]


def _columns(table: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
