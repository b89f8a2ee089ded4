"""Relocations: the addresses a loader patches into the command blob once it has placed the
buffers (DESIGN.md, "Register command streams and the container").

A register-command word is a little-endian u64 `(target << 48) | (value << 16) | register`.
For a relocation, the loader writes `address(buffer_id) + buffer_offset` into the 32-bit value
field (bits 16..47) of the word at byte `offset_in_commands` of the "commands" section,
replacing what is there (code generation leaves 0). Buffer ids are the memory plan's.

Record: 24 bytes, little-endian `<u64 offset_in_commands, u32 buffer_id, u32 reserved (0),
u64 buffer_offset>`. A section holds the records sorted by `offset_in_commands`, each offset a
multiple of 8 (a word) inside the command blob, no word patched twice.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

RECORD = struct.Struct("<QIIQ")
RECORD_SIZE = RECORD.size  # 24
WORD_SIZE = 8


class Relocation(NamedTuple):
    offset_in_commands: int  # byte offset of the u64 register word in the command blob
    buffer_id: int  # the memory plan's buffer
    buffer_offset: int  # bytes from the buffer's start


def pack_relocations(relocations: Iterable[Relocation]) -> bytes:
    """The section bytes: records sorted by offset. ValueError on a field out of range or a
    word patched twice."""
    records = sorted(relocations)
    try:
        data = b"".join(
            RECORD.pack(r.offset_in_commands, r.buffer_id, 0, r.buffer_offset) for r in records
        )
    except struct.error as exc:
        raise ValueError(f"relocation field out of range: {exc}") from None
    problem = relocation_problem(data, None)
    if problem is not None:
        raise ValueError(problem)
    return data


def unpack_relocations(data: bytes | bytearray | memoryview) -> list[Relocation]:
    """The records of a section. ValueError if it is malformed."""
    problem = relocation_problem(data, None)
    if problem is not None:
        raise ValueError(problem)
    return [Relocation(off, buf, boff) for off, buf, _, boff in RECORD.iter_unpack(data)]


def relocation_problem(
    data: bytes | bytearray | memoryview, commands_size: int | None
) -> str | None:
    """What is wrong with a relocation section (one line), or None. With `commands_size`,
    every patched word must lie inside a command blob of that many bytes."""
    size = memoryview(data).nbytes
    if size % RECORD_SIZE:
        return f"{size} bytes is not a whole number of {RECORD_SIZE}-byte relocation records"
    previous = -1
    for i, (offset, _, reserved, _) in enumerate(RECORD.iter_unpack(data)):
        if reserved:
            return f"relocation {i}: reserved field is {reserved}, not 0"
        if offset % WORD_SIZE:
            return f"relocation {i}: offset {offset} is not on a {WORD_SIZE}-byte word"
        if offset <= previous:
            return f"relocation {i}: offset {offset} is not after the previous one ({previous})"
        if commands_size is not None and offset + WORD_SIZE > commands_size:
            return (
                f"relocation {i}: offset {offset} is outside the {commands_size}-byte command blob"
            )
        previous = offset
    return None
