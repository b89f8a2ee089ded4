"""Reading a container: every field is checked before anything is used (magic, version,
header and total sizes against the file size, directory entries in range, aligned and not
overlapping, per-section CRC-32, the whole-file SHA-256, the metadata JSON, the relocations
against the command blob). Whatever the bytes, the only exception is a one-line
CompilerError naming the file; nothing hangs or allocates more than the file's size."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any, NoReturn

from backends.container.format import (
    ALIGNMENT,
    COMMANDS,
    DIGEST_OFFSET,
    DIGEST_SIZE,
    ENTRY,
    ENTRY_SIZE,
    FORMAT_VERSION,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    METADATA,
    RELOCATIONS,
    SUPPORTED_VERSIONS,
    Container,
)
from backends.container.relocations import relocation_problem
from dialects.errors import CompilerError

DAMAGED = "the file is damaged; copy or build it again"


def read_container(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, name: str | None = None
) -> Container:
    """The container in a file (a path) or in memory (bytes). `name` is how error messages
    call it (default: the path, or "<bytes>")."""
    if isinstance(source, bytes | bytearray | memoryview):
        return _parse(bytes(source), name or "<bytes>")
    label = name or os.fspath(source)
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        _fail(label, "no such file")
    except OSError as exc:
        _fail(label, f"cannot read ({exc.strerror or exc})")
    return _parse(data, label)


def _fail(label: str, message: str) -> NoReturn:
    raise CompilerError(" ".join(f"{label}: {message}".splitlines()))


def _decode_name(raw: bytes) -> str | None:
    """A NUL-padded name field, or None if it is not one the writer could have written."""
    stripped = raw.rstrip(b"\0")
    if not stripped or b"\0" in stripped:
        return None
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _parse(data: bytes, label: str) -> Container:
    def fail(message: str) -> NoReturn:
        _fail(label, message)

    size = len(data)
    if not size:
        fail("empty file, not a container")
    if not MAGIC.startswith(data[: len(MAGIC)]):
        fail("not a container (bad magic)")
    if size < HEADER_SIZE:
        fail(f"truncated: {size} bytes, shorter than the {HEADER_SIZE}-byte header")
    _, version, header_size, flags, count, total, raw_target, digest = HEADER.unpack_from(data)
    if version not in SUPPORTED_VERSIONS:
        fail(
            f"container format version {version} is not supported (this tool reads version "
            f"{FORMAT_VERSION}; build the model again with this tool)"
        )
    if header_size != HEADER_SIZE:
        fail(f"corrupted header (header size {header_size}, expected {HEADER_SIZE}; {DAMAGED})")
    if flags:
        fail(f"corrupted header (unknown flags {flags:#x}; {DAMAGED})")
    if size < total:
        fail(f"truncated: header says {total} bytes, file has {size}")
    if size > total:
        fail(
            f"{size - total} bytes of trailing garbage: header says {total} bytes, file has {size}"
        )
    target = _decode_name(raw_target)
    if target is None:
        fail(f"corrupted header (the target name is not printable UTF-8; {DAMAGED})")
    directory_end = HEADER_SIZE + ENTRY_SIZE * count
    if not count or directory_end > total:
        fail(f"corrupted header ({count} sections in a {total}-byte file; {DAMAGED})")

    view = memoryview(data)
    blobs: dict[str, memoryview] = {}
    end = directory_end
    for i in range(count):
        raw_name, offset, length, crc, reserved = ENTRY.unpack_from(
            data, HEADER_SIZE + ENTRY_SIZE * i
        )
        name = _decode_name(raw_name)
        where = f"corrupted directory (section {i}"
        if name is None:
            fail(f"{where}: the name is not printable UTF-8; {DAMAGED})")
        where = f"corrupted directory (section {name!r}"
        if name in blobs:
            fail(f"{where} appears twice; {DAMAGED})")
        if reserved:
            fail(f"{where}: reserved field is {reserved}; {DAMAGED})")
        if offset % ALIGNMENT or offset < end:
            fail(f"{where}: offset {offset} is misaligned or overlaps; {DAMAGED})")
        if offset + length > total:
            fail(f"{where} ends at byte {offset + length}, after the end of the file; {DAMAGED})")
        blob = view[offset : offset + length]
        if zlib.crc32(blob) != crc:
            fail(f"checksum mismatch in section {name!r} ({DAMAGED})")
        blobs[name] = blob
        end = offset + length
    if end != total:
        fail(
            f"corrupted header (total size {total}, but the last section ends at {end}; {DAMAGED})"
        )
    actual = hashlib.sha256(view[:DIGEST_OFFSET])
    actual.update(view[DIGEST_OFFSET + DIGEST_SIZE :])
    if actual.digest() != digest:
        fail(f"checksum mismatch in the header or the section directory ({DAMAGED})")

    if METADATA not in blobs:
        fail(f"no {METADATA!r} section ({DAMAGED})")
    try:
        metadata = json.loads(
            bytes(blobs.pop(METADATA)).decode("utf-8"), parse_constant=_reject_constant
        )
    except UnicodeDecodeError:
        fail("the metadata is not UTF-8")
    except (ValueError, RecursionError) as exc:
        fail(f"the metadata is not valid JSON ({exc})")
    if not isinstance(metadata, dict):
        fail(f"the metadata is a JSON {type(metadata).__name__}, not an object")
    if RELOCATIONS in blobs:
        commands_size = blobs[COMMANDS].nbytes if COMMANDS in blobs else 0
        problem = relocation_problem(blobs[RELOCATIONS], commands_size)
        if problem is not None:
            fail(f"section {RELOCATIONS!r}: {problem}")
    return Container(
        target=target, metadata=metadata, sections={n: bytes(b) for n, b in blobs.items()}
    )
