"""`partition-cpu{target=rk3588 op_target="NAME:cpu",...}`: where each op runs.

Every op but `onnx.Constant` and `func.return` gets `backend.target` ("npu" | "cpu") and
`backend.segment`, the index of its maximal run of consecutive same-target ops in block
order (a CPU op between two NPU ops makes three segments); the module gets `backend.chip`
(the canonical name of `target`). CPU ops also get `backend.reason`.

On the CPU: every float `onnx` op lower-to-npu left; every `npu` op the chip's NPU does not
compute (`Target.supports` on its activation dtype, and on its weights' dtype for a
weighted op); every op `op_target` names; and the dtype conversions at the edges of the
NPU's work (RKNN converts on the CPU there): an `npu.quantize` whose float input is a model
input, a constant (a compile-time value: code generation reads a scalar one into its
reader's registers) or a CPU op's result, an `npu.dequantize` whose float result is a model
output or read by a CPU op. Everything else runs on the NPU.

`op_target` is RKNN's `op_target` option: entries `NAME:cpu` (`NAME:npu` / `NAME:auto`
leave the choice to the pass; a bare `NAME` means cpu) where NAME is an op's ONNX output
tensor name, its node name, or the name of a node fused into it. Names hold `:` and `/`,
so quote each entry on the command line: `op_target="/fc/Gemm:cpu","logits:cpu"`.

The pass reports, through `passes.report`, "N ops on the NPU in K segments, M on the CPU"
and one line per CPU op with its ONNX node and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from backends.targets import DEFAULT_TARGET, Target, get_target
from dialects.errors import CompilerError
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.onnx import ConstantOp, OnnxOp
from dialects.onnx.base import NODE_NAME, OUTPUT_NAMES
from passes.report import note

PASS_NAME = "partition-cpu"
NPU, CPU = "npu", "cpu"
OP_TARGETS = ("cpu", "npu", "auto")  # RKNN's values this compiler has ("gpu": no backend)
CONVERSIONS = (npu.QuantizeOp, npu.DequantizeOp)
WEIGHTED = (npu.Conv2dOp, npu.ConvTransposeOp, npu.FullyConnectedOp)


@dataclass(frozen=True)
class PartitionCpu(ModulePass):
    """Places every op on the NPU or the CPU (backend.target, backend.segment, backend.reason).

    On the CPU: float ops, dtypes the chip does not compute, op_target, the conversions at
    the NPU's edges; segments number the runs of same-target ops."""

    name = PASS_NAME

    target: str = DEFAULT_TARGET
    op_target: tuple[str, ...] = ()

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip = get_target(self.target)
        forced = parse_op_target(self.op_target)
        pl.set_str(op, pl.CHIP, chip.name)
        matched: set[str] = set()
        for func in op.ops:
            if isinstance(func, FuncOp):
                matched |= Partition(chip, forced).run(func.body.blocks[0])
        for name in sorted(set(forced) - matched):
            note(PASS_NAME, f"op_target {name!r} names no op (fused away or misspelt?)")


def parse_op_target(entries: tuple[str, ...]) -> dict[str, str]:
    """`("a:cpu", "b:npu,c")` -> {"a": "cpu", "b": "npu", "c": "cpu"}. The placement is
    what follows the last `:` when it is one of OP_TARGETS (or "gpu", refused); otherwise
    the whole entry is a name (`onnx::Conv_3`)."""
    forced: dict[str, str] = {}
    for entry in (part.strip() for item in entries for part in item.split(",")):
        if not entry:
            continue
        name, _, where = entry.rpartition(":")
        if where.lower() == "gpu":
            raise CompilerError(f"op_target {entry!r}: there is no GPU backend (use cpu or npu)")
        if not name or where.lower() not in OP_TARGETS:
            name, where = entry, CPU
        forced[name] = where.lower()
    return forced


def onnx_names(op: Operation) -> list[str]:
    """The ONNX names an op answers to: output tensors, node, nodes fused into it."""
    found: list[str] = []
    for key in (OUTPUT_NAMES, NODE_NAME, npu.FUSED_NAMES):
        attr = op.attributes.get(key)
        if isinstance(attr, StringAttr):
            found.append(attr.data)
        elif isinstance(attr, ArrayAttr):
            found += [a.data for a in attr.data if isinstance(a, StringAttr)]
    return [n for n in found if n]


def describe(op: Operation) -> str:
    return op.describe() if isinstance(op, (OnnxOp, npu.NpuOp)) else op.name


def placed_ops(block: Block) -> list[Operation]:
    """The ops that get a placement: all but constants and the return."""
    return [op for op in block.ops if not isinstance(op, (ConstantOp, ReturnOp))]


class Partition:
    """Decides one block: first every op but the boundary conversions, then those (they
    look at their float neighbours)."""

    def __init__(self, chip: Target, forced: dict[str, str]) -> None:
        self.chip = chip
        self.forced = forced
        self.matched: set[str] = set()
        self.where: dict[Operation, tuple[str, str]] = {}  # op -> (target, reason)

    def run(self, block: Block) -> set[str]:
        ops = placed_ops(block)
        for op in ops:
            if not isinstance(op, CONVERSIONS):
                self.where[op] = self._decide(op)
        for op in ops:
            self._placement(op)
        self._write(ops)
        return self.matched

    # ------------------------------------------------------------------ deciding
    def _forced(self, op: Operation) -> str | None:
        """What op_target says of `op` (cpu wins when several of its names are given)."""
        said = {name: self.forced[name] for name in onnx_names(op) if name in self.forced}
        self.matched |= set(said)
        if not said:
            return None
        return CPU if CPU in said.values() else next(iter(said.values()))

    def _decide(self, op: Operation) -> tuple[str, str]:
        forced = self._forced(op)
        if forced == CPU:
            return CPU, "op_target places it on the CPU"
        if isinstance(op, OnnxOp):
            if forced == NPU:
                note(PASS_NAME, f"op_target asks for the NPU, but {describe(op)} is a float op")
            return CPU, f"float {op.op_type}: lower-to-npu left it for the CPU"
        if not isinstance(op, npu.NpuOp):
            return CPU, f"{op.name} is not an npu op"
        reason = self._unsupported(op)
        return (CPU, reason) if reason else (NPU, "")

    def _unsupported(self, op: npu.NpuOp) -> str | None:
        """Why the chip's NPU does not compute `op`, or None."""
        dtypes = [op.quant.element]
        if isinstance(op, (npu.DequantizeOp, npu.RequantizeOp)):
            source = npu.quant_of(op.input)
            dtypes = [d for d in (source.element if source else None, op.quant.element)
                      if d not in (None, "f32")]  # fmt: skip
        for dtype in dtypes:
            reason = self.chip.supports(dtype)
            if reason:
                return reason
        if isinstance(op, WEIGHTED):
            return self.chip.supports(op.quant.element, op.weight_quant.element)
        return None

    def _placement(self, op: Operation) -> tuple[str, str]:
        """`op`'s (target, reason); decides a conversion on first use."""
        if op not in self.where:
            # provisional, for a dequantize -> quantize pair that would ask each other
            self.where[op] = (NPU, "")
            self.where[op] = self._conversion(op)  # type: ignore[arg-type]
        return self.where[op]

    def _conversion(self, op: npu.QuantizeOp | npu.DequantizeOp) -> tuple[str, str]:
        if self._forced(op) == CPU:
            return CPU, "op_target places it on the CPU"
        edge = self._float_edge(op)
        if edge:
            return CPU, f"{edge} (RKNN converts at the NPU's edges on the CPU)"
        reason = self._unsupported(op)
        return (CPU, reason) if reason else (NPU, "")

    def _float_edge(self, op: npu.QuantizeOp | npu.DequantizeOp) -> str | None:
        """What makes `op` a boundary conversion: its float side is a model input/output
        or a CPU op. None when it is not one."""
        if isinstance(op, npu.QuantizeOp):
            source: SSAValue = op.input
            if isinstance(source, BlockArgument):
                return "quantizes a model input"
            producer = source.owner
            if isinstance(producer, ConstantOp):
                return "quantizes a constant"
            if self._on_cpu(producer):
                return f"quantizes the result of CPU op {describe(producer)}"
            return None
        for use in op.output.uses:
            if isinstance(use.operation, ReturnOp):
                return "dequantizes a model output"
            if self._on_cpu(use.operation):
                return f"dequantizes for CPU op {describe(use.operation)}"
        return None

    def _on_cpu(self, op: Operation) -> bool:
        if isinstance(op, (ConstantOp, ReturnOp)) or op.parent is None:
            return False
        return self._placement(op)[0] == CPU

    # ------------------------------------------------------------------ writing
    def _write(self, ops: list[Operation]) -> None:
        cpu_lines = []
        for op in ops:
            target, reason = self.where[op]
            pl.set_str(op, pl.TARGET, target)
            if target == CPU:
                pl.set_str(op, pl.REASON, reason)
                cpu_lines.append(f"CPU: {describe(op)}: {reason}")
            else:
                op.attributes.pop(pl.REASON, None)
        pl.number_segments(ops)
        segments = {NPU: 0, CPU: 0}
        for op, previous in zip(ops, [None, *ops[:-1]], strict=True):
            if previous is None or self.where[previous][0] != self.where[op][0]:
                segments[self.where[op][0]] += 1
        n_npu = sum(1 for op in ops if self.where[op][0] == NPU)
        plural = "segment" if segments[NPU] == 1 else "segments"
        note(PASS_NAME, f"{n_npu} ops on the NPU in {segments[NPU]} {plural}, "
                        f"{len(ops) - n_npu} on the CPU")  # fmt: skip
        for line in cpu_lines:
            note(PASS_NAME, line)
