"""Writing a container: `container_bytes` (deterministic: equal containers give equal bytes,
nothing time- or machine-dependent is added) and `write_container` (atomic: the path holds
either its old file or the complete new one). A container the writer accepts, the reader
accepts; a malformed `Container` (a programming error, not bad user input) raises
ValueError or TypeError before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from typing import Any

from backends.container.format import (
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
    NAME_SIZE,
    RELOCATIONS,
    Container,
    align,
)
from backends.container.relocations import relocation_problem
from backends.fileio import atomic_write
from dialects.errors import CompilerError


def container_bytes(container: Container) -> bytes:
    """The file's bytes."""
    return b"".join(_serialise(container))


def write_container(container: Container, path: str | os.PathLike[str]) -> None:
    """Write `container` to `path` atomically. CompilerError (one line) if the file cannot
    be written; a pre-existing file at `path` is then left as it was."""
    chunks = _serialise(container)
    try:
        with atomic_write(path) as f:
            for chunk in chunks:
                f.write(chunk)
    except OSError as exc:
        raise CompilerError(f"{os.fspath(path)}: cannot write ({exc.strerror or exc})") from None


def metadata_bytes(metadata: dict[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity, str keys only."""
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    try:
        _check_keys(metadata, "metadata")
        text = json.dumps(
            metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"metadata is not JSON data: {exc}") from None


def _check_keys(value: Any, where: str) -> None:
    """json.dumps would turn int/float/bool/None keys into strings (no round trip)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a str")
            _check_keys(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_keys(item, f"{where}[{i}]")


def encode_name(name: str, what: str) -> bytes:
    """A target or section name as its fixed-size field."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    raw = name.encode("utf-8", errors="replace")
    if not name or not name.isprintable() or len(raw) > NAME_SIZE:
        raise ValueError(f"{what} {name!r} must be printable and 1..{NAME_SIZE} bytes of UTF-8")
    return raw.ljust(NAME_SIZE, b"\0")


def _as_bytes(data: Any, name: str) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"section {name!r} is a {type(data).__name__}, not bytes") from None
    if not view.c_contiguous:
        raise ValueError(f"section {name!r} is not a contiguous buffer")
    return view.cast("B")


def _serialise(container: Container) -> list[bytes | memoryview]:
    """The file as chunks: header, directory, then padding and blob alternately."""
    target = encode_name(container.target, "target")
    for name in container.sections:
        encode_name(name, "section name")
    if METADATA in container.sections:
        raise ValueError(f"{METADATA!r} is the container's own section; use Container.metadata")
    blobs = [(METADATA, memoryview(metadata_bytes(container.metadata)))]
    blobs += [(n, _as_bytes(container.sections[n], n)) for n in sorted(container.sections)]
    views = dict(blobs)
    if RELOCATIONS in views:
        commands_size = views[COMMANDS].nbytes if COMMANDS in views else 0
        problem = relocation_problem(views[RELOCATIONS], commands_size)
        if problem is not None:
            raise ValueError(f"section {RELOCATIONS!r}: {problem}")

    entries: list[bytes] = []
    chunks: list[bytes | memoryview] = [b""]  # [0]: the directory, filled in below
    position = HEADER_SIZE + ENTRY_SIZE * len(blobs)
    for name, blob in blobs:
        start = align(position)
        entries.append(
            ENTRY.pack(encode_name(name, "section name"), start, blob.nbytes, zlib.crc32(blob), 0)
        )
        chunks += [bytes(start - position), blob]
        position = start + blob.nbytes
    chunks[0] = b"".join(entries)

    header = HEADER.pack(
        MAGIC, FORMAT_VERSION, HEADER_SIZE, 0, len(blobs), position, target, bytes(DIGEST_SIZE)
    )
    digest = hashlib.sha256(header[:DIGEST_OFFSET])
    for chunk in chunks:
        digest.update(chunk)
    return [header[:DIGEST_OFFSET] + digest.digest(), *chunks]
