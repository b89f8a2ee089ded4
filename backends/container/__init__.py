"""The `.rknn`-like container: one file holding everything a runtime needs to run a compiled
model (layout: `format.py`).

    from backends.container import Container, read_container, write_container
    write_container(Container("rk3588", metadata, {"weights": w, "commands": c}), "m.rknn")
    container = read_container("m.rknn")   # CompilerError (one line) if damaged
    relocations = unpack_relocations(container.sections["relocations"])
"""

from __future__ import annotations

from backends.container.format import (
    COMMANDS,
    CPU_WEIGHTS,
    FORMAT_VERSION,
    MAGIC,
    METADATA,
    RELOCATIONS,
    WEIGHTS,
    Container,
)
from backends.container.reader import read_container
from backends.container.relocations import Relocation, pack_relocations, unpack_relocations
from backends.container.writer import container_bytes, metadata_bytes, write_container

__all__ = [
    "COMMANDS",
    "CPU_WEIGHTS",
    "FORMAT_VERSION",
    "MAGIC",
    "METADATA",
    "RELOCATIONS",
    "WEIGHTS",
    "Container",
    "Relocation",
    "container_bytes",
    "metadata_bytes",
    "pack_relocations",
    "read_container",
    "unpack_relocations",
    "write_container",
]
