"""The memory profile RKNN's `eval_memory` prints (research/sdk_inventory.md §4.2), from the
container's memory plan (`metadata["memory"]`, written by plan-memory and the backend):

    Weight Memory           the weight blob: packed weights, biases, per-channel operand
                            tables (buffer 0, `weight_bytes`)
    Internal Tensor Memory  the arena of intermediate tensors, after reuse (buffer 1,
                            `internal_bytes`)
    Other Memory            the register command blob (buffer 2, `command_bytes`) and the
                            model's input and output buffers (3, 4, ...): RKNN's "register
                            configs, input/output tensors"
    Total Memory            the sum

Sizes print as RKNN prints them: MiB (bytes / 1048576) from 1 MiB up, KiB below, two
decimals. The constants of CPU-fallback ops (`cpu_weights` section) live in CPU memory and
are not part of the NPU's profile; they are reported beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from backends.codegen.buffers import ARENA, COMMANDS, FIRST_IO, WEIGHTS
from backends.container import CPU_WEIGHTS, Container
from runtime.perf.cycles import PerfError

MIB = 1024 * 1024
KIB = 1024


@dataclass(frozen=True)
class MemoryProfile:
    weight_memory: int
    internal_memory: int
    other_memory: int
    total_memory: int
    model_size: int  # bytes of the container file
    cpu_weight_bytes: int  # constants of CPU ops (not NPU memory)

    def as_dict(self) -> dict[str, Any]:
        """RKNN's dictionary keys (sdk §4.2 [APIREF]), plus ours."""
        return asdict(self)

    def text(self) -> str:
        rows = (
            ("Weight Memory", self.weight_memory),
            ("Internal Tensor Memory", self.internal_memory),
            ("Other Memory", self.other_memory),
            ("Total Memory", self.total_memory),
        )
        rule = "=" * 54
        lines = [rule, "Memory Profile Info Dump", "NPU model memory detail(bytes):"]
        lines += [f"    {name}: {format_size(size)}" for name, size in rows]
        lines.append("INFO: When evaluating memory usage, we need consider the size of model, "
                     f"current model size is: {format_size(self.model_size)}")  # fmt: skip
        if self.cpu_weight_bytes:
            cpu = format_size(self.cpu_weight_bytes)
            lines.append(f"(constants of CPU ops, outside the NPU: {cpu})")
        lines.append(rule)
        return "\n".join(lines)


def format_size(size: int) -> str:
    """`3.53 MiB`, `377.19 KiB`: RKNN's units, two decimals."""
    if size >= MIB:
        return f"{size / MIB:.2f} MiB"
    return f"{size / KIB:.2f} KiB"


def memory_profile(container: Container, model_size: int = 0) -> MemoryProfile:
    """The profile of `container`; `model_size` is its file's length (0 when unknown)."""
    plan = container.metadata.get("memory")
    if not isinstance(plan, dict):
        raise PerfError("the container has no memory plan (metadata 'memory')")
    try:
        buffers = {int(k): int(v) for k, v in plan.get("buffers", {}).items()}
        weight = int(plan["weight_bytes"])
        internal = int(plan["internal_bytes"])
        commands = int(plan.get("command_bytes", buffers.get(COMMANDS, 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise PerfError(f"the memory plan is incomplete or malformed: {exc}") from None
    for buffer_id, size in ((WEIGHTS, weight), (ARENA, internal), (COMMANDS, commands)):
        if buffer_id in buffers and buffers[buffer_id] != size:
            raise PerfError(f"the memory plan disagrees with itself: buffer {buffer_id} holds "
                            f"{buffers[buffer_id]} bytes, the totals say {size}")  # fmt: skip
    io = sum(size for buffer_id, size in buffers.items() if buffer_id >= FIRST_IO)
    other = commands + io
    cpu = len(container.sections.get(CPU_WEIGHTS, b""))
    return MemoryProfile(weight, internal, other, weight + internal + other, model_size, cpu)
