"""Simulated DRAM: buffers by id at addresses a loader assigns, byte-exact reads and writes
of strided element cubes, and the loader that patches relocations into a copy of the
command words (the same loader serves the hardware backend: DESIGN.md).

Addresses are 32-bit (the NPU's address registers). Buffers start at `BASE`, each on a
4 KiB boundary with at least one unmapped 4 KiB page after it, so a stray access lands
outside every buffer and is an error, never a silent read of a neighbour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from backends.container import Relocation

BASE = 0x1000_0000
PAGE = 0x1000
ADDRESS_LIMIT = 1 << 32
WORD_BYTES = 8
VALUE_SHIFT, VALUE_MASK = 16, 0xFFFF_FFFF


class SimulatorError(Exception):
    """The command stream asks for something the simulator cannot do or that is invalid (an
    access outside every buffer, an unsupported mode, inconsistent registers)."""


class Memory:
    """Buffers (numpy uint8 arrays) by id, each at an address."""

    def __init__(self, base: int = BASE) -> None:
        """`base`: the address of the first buffer `allocate` places."""
        self.buffers: dict[int, np.ndarray] = {}
        self.bases: dict[int, int] = {}
        self.commands_buffer: int | None = None
        self._next = base

    def allocate(self, buffer_id: int, content: int | bytes | np.ndarray) -> int:
        """A buffer of `content` bytes (a size: zeros); returns its address."""
        if buffer_id in self.buffers:
            raise SimulatorError(f"buffer {buffer_id} is allocated twice")
        if isinstance(content, int):
            data = np.zeros(content, np.uint8)
        else:
            data = np.frombuffer(bytes(content), np.uint8).copy()
        base = self._next
        end = base + max(data.size, 1)
        if end > ADDRESS_LIMIT:
            raise SimulatorError("the buffers do not fit the 32-bit address space")
        self._next = (end + 2 * PAGE - 1) // PAGE * PAGE
        self.buffers[buffer_id], self.bases[buffer_id] = data, base
        return base

    def base(self, buffer_id: int) -> int:
        try:
            return self.bases[buffer_id]
        except KeyError:
            raise SimulatorError(f"no buffer {buffer_id}") from None

    def locate(self, address: int, nbytes: int = 1) -> tuple[int, int]:
        """(buffer id, offset) of `nbytes` bytes at `address`, all inside one buffer."""
        for buffer_id, base in self.bases.items():
            size = self.buffers[buffer_id].size
            if base <= address < base + max(size, 1):
                offset = address - base
                if offset + nbytes > size:
                    raise SimulatorError(
                        f"access of {nbytes} bytes at {address:#x} runs past the end of "
                        f"buffer {buffer_id} ({size} bytes at {base:#x})"
                    )
                return buffer_id, offset
        raise SimulatorError(f"address {address:#x} is in no buffer")

    def read(self, address: int, nbytes: int) -> bytes:
        buffer_id, offset = self.locate(address, nbytes)
        return self.buffers[buffer_id][offset : offset + nbytes].tobytes()

    def write(self, address: int, data: bytes | np.ndarray) -> None:
        raw = np.frombuffer(bytes(data), np.uint8)
        buffer_id, offset = self.locate(address, raw.size)
        self.buffers[buffer_id][offset : offset + raw.size] = raw

    # ------------------------------------------------------------------ element cubes
    def _span(self, address: int, offsets: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The buffer and absolute byte indices of elements at `address + offsets`."""
        if offsets.size == 0:
            return np.zeros(0, np.uint8), offsets.astype(np.int64)
        low, high = int(offsets.min()), int(offsets.max()) + size
        buffer_id, start = self.locate(address + low, high - low)
        indices = offsets.astype(np.int64) - low + start
        return self.buffers[buffer_id], indices

    def read_elements(self, address: int, offsets: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Little-endian elements of `dtype` at `address + offsets` (any shape), as int64
        (float64 for a float dtype)."""
        dtype = np.dtype(dtype).newbyteorder("<")
        buffer, indices = self._span(address, offsets, dtype.itemsize)
        raw = buffer[indices[..., None] + np.arange(dtype.itemsize)]
        values = np.ascontiguousarray(raw).view(dtype)[..., 0]
        return values.astype(np.float64 if dtype.kind == "f" else np.int64)

    def write_elements(self, address: int, offsets: np.ndarray, values: np.ndarray,
                       dtype: np.dtype) -> None:  # fmt: skip
        dtype = np.dtype(dtype).newbyteorder("<")
        buffer, indices = self._span(address, offsets, dtype.itemsize)
        raw = np.ascontiguousarray(np.asarray(values).astype(dtype))[..., None].view(np.uint8)
        buffer[indices[..., None] + np.arange(dtype.itemsize)] = raw


def patch(words: Sequence[int], relocations: Iterable[Relocation], memory: Memory) -> list[int]:
    """A copy of `words` with `address(buffer_id) + buffer_offset` in the 32-bit value field
    of every relocated word."""
    out = list(words)
    for r in relocations:
        index, rest = divmod(r.offset_in_commands, WORD_BYTES)
        if rest or not 0 <= index < len(out):
            raise SimulatorError(f"relocation at byte {r.offset_in_commands} is not a word")
        address = memory.base(r.buffer_id) + r.buffer_offset
        if address >= ADDRESS_LIMIT:
            raise SimulatorError(f"relocated address {address:#x} does not fit 32 bits")
        out[index] = (out[index] & ~(VALUE_MASK << VALUE_SHIFT)) | (address << VALUE_SHIFT)
    return out


def load(
    words: Sequence[int],
    relocations: Iterable[Relocation],
    buffers: Mapping[int, int | bytes],
    commands_buffer: int,
) -> tuple[Memory, list[int]]:
    """Place `buffers` (id -> size or content; the command buffer is sized from `words`),
    patch the relocations, and store the patched words in the command buffer. Returns the
    memory and the patched words."""
    memory = Memory()
    for buffer_id in sorted(buffers):
        if buffer_id != commands_buffer:
            memory.allocate(buffer_id, buffers[buffer_id])
    memory.allocate(commands_buffer, len(words) * WORD_BYTES)
    memory.commands_buffer = commands_buffer
    patched = patch(words, relocations, memory)
    blob = b"".join(w.to_bytes(WORD_BYTES, "little") for w in patched)
    memory.write(memory.base(commands_buffer), blob)
    return memory, patched
