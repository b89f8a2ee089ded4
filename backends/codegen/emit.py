"""Building command words: one task's register writes by block, register and field names
(`backends.registers.encode`, so every value is range-checked against the register map),
with the address-bearing writes recorded for relocation; the weight blob; and the program
that lays tasks out back to back with their chaining trailers (anchors §1.3).

Layout of the command blob: each task starts on a 64-byte boundary (Mesa pads each task's
regcmd to 64 bytes; PC.BASE_ADDRESS holds bits 4-31 of the next task's address); the words
between a task's op-enable word and the next task are zero (NOP) and never fetched: the
trailer's PC.REGISTER_AMOUNTS announces only the next task's own words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.codegen.buffers import COMMANDS, WEIGHTS
from backends.container import Relocation
from backends.registers import CONV_BLOCKS, NOP_WORD, encode, task_trailer
from dialects.errors import CompilerError

WORD_BYTES = 8
TASK_ALIGNMENT_WORDS = 64 // WORD_BYTES
BLOB_ALIGNMENT = 64  # bytes: every weight-blob item starts on a 64-byte boundary


class NotGenerated(CompilerError):
    """An NPU op (or a form of it) code generation does not cover yet: `generate` lists it
    in `Program.unsupported` instead of failing the build."""


class TaskWords:
    """The register writes of one task (its trailer is added by `ProgramBuilder`)."""

    def __init__(self) -> None:
        self.words: list[int] = []
        self.relocations: list[tuple[int, int, int]] = []  # (word index, buffer id, offset)
        self.blocks: tuple[str, ...] = CONV_BLOCKS  # what the trailer's op-enable starts

    def write(self, block: str, register: str, **fields: int) -> None:
        self.words.append(encode(block, register, **fields))

    def address(self, block: str, register: str, buffer: int, offset: int) -> None:
        """A register holding an address: written 0, patched by the loader with
        `address(buffer) + offset`."""
        self.relocations.append((len(self.words), buffer, offset))
        self.words.append(encode(block, register))


class WeightBlob:
    """The weight section: items appended at 64-byte aligned offsets."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, item: bytes) -> tuple[int, int]:
        """Append `item`; its (buffer id, offset) for a relocation."""
        self.data += bytes(-len(self.data) % BLOB_ALIGNMENT)
        offset = len(self.data)
        self.data += item
        return WEIGHTS, offset


@dataclass(frozen=True)
class TaskRecord:
    """One task of the program: the op it belongs to (index in the main function's block,
    constants counted), the op's ONNX node name, and its words in `Program.words`."""

    op_index: int
    onnx_name: str
    first_word: int
    word_count: int


@dataclass
class Program:
    """Code generation's result.

    - `words`: every u64 command word, task after task (each task 64-byte aligned, zero
      padding between tasks);
    - `tasks`: where each task's words are;
    - `relocations`: the address-bearing words (`backends.codegen.buffers` names the ids);
    - `weight_blob`: packed weights and per-channel operand tables;
    - `jobs`: indices into `tasks` of the first task of each PC chain (a chain runs to the
      task whose trailer has no next address);
    - `buffer_bytes`: the size each buffer id needs;
    - `unsupported`: the NPU ops code generation does not cover yet, one line each."""

    words: list[int]
    tasks: list[TaskRecord]
    relocations: list[Relocation]
    weight_blob: bytes
    jobs: list[int] = field(default_factory=list)
    buffer_bytes: dict[int, int] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)

    def command_bytes(self) -> bytes:
        return b"".join(w.to_bytes(WORD_BYTES, "little") for w in self.words)


@dataclass
class _Pending:
    op_index: int
    name: str
    task: TaskWords
    chained: bool  # continues the previous task's chain


class ProgramBuilder:
    """Collects tasks, then lays them out and writes the chaining trailers."""

    def __init__(self) -> None:
        self.blob = WeightBlob()
        self._pending: list[_Pending] = []

    def add(self, op_index: int, name: str, task: TaskWords, chained: bool) -> None:
        """Append a task; `chained`: the previous task's trailer points to it."""
        self._pending.append(_Pending(op_index, name, task, chained and bool(self._pending)))

    def build(self) -> Program:
        starts, counts = [], []
        position = 0
        for pending in self._pending:
            starts.append(position)
            counts.append(len(pending.task.words) + 4)
            position += _aligned(counts[-1])
        words: list[int] = []
        relocations: list[Relocation] = []
        tasks: list[TaskRecord] = []
        jobs: list[int] = []
        for i, pending in enumerate(self._pending):
            base = starts[i]
            words += [NOP_WORD] * (base - len(words))
            words += pending.task.words
            relocations += [Relocation((base + index) * WORD_BYTES, buffer, offset)
                            for index, buffer, offset in pending.task.relocations]  # fmt: skip
            has_next = i + 1 < len(self._pending) and self._pending[i + 1].chained
            if not pending.chained:
                jobs.append(i)
            if has_next:
                relocations.append(Relocation(len(words) * WORD_BYTES, COMMANDS,
                                              starts[i + 1] * WORD_BYTES))  # fmt: skip
                words += task_trailer(next_address=0, next_words=counts[i + 1],
                                      blocks=pending.task.blocks)  # fmt: skip
            else:
                words += task_trailer(single_task=not pending.chained, blocks=pending.task.blocks)
            tasks.append(TaskRecord(pending.op_index, pending.name, base, counts[i]))
        return Program(words, tasks, relocations, bytes(self.blob.data), jobs)


def _aligned(count: int) -> int:
    return -(-count // TASK_ALIGNMENT_WORDS) * TASK_ALIGNMENT_WORDS
