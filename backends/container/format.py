"""Byte layout of the container (format version 1). All integers are little-endian.

    offset  size  field
    0       8     magic b"RKNPUOPN"
    8       4     u32 format version (1)
    12      4     u32 header size (96)
    16      4     u32 flags (0; no flag is defined yet, a reader rejects unknown bits)
    20      4     u32 section count N (the metadata section included)
    24      8     u64 total size of the file in bytes
    32      32    target name, UTF-8, NUL-padded ("rk3588")
    64      32    SHA-256 of the whole file except these 32 bytes
    96      56*N  section directory, one entry per section, in file order:
                    32  name, UTF-8, NUL-padded
                     8  u64 offset of the blob from the start of the file (a multiple of 64)
                     8  u64 length of the blob in bytes
                     4  u32 CRC-32 (zlib) of the blob
                     4  u32 reserved (0)
    ...           zero padding to the next multiple of 64, then the blobs, each starting on a
                  64-byte boundary (zero padding between them); the file ends with the last blob

The first section is always "metadata": canonical JSON (UTF-8, sorted keys, no whitespace,
no NaN/Infinity) holding one object. The others follow in the order of their names. The
per-section CRC-32 names the damaged blob in the error message; the SHA-256 covers
everything else too (header, directory, padding).

Why 64-byte alignment: a loader copies (or maps) each blob into its own NPU buffer object.
The rocket driver and RKNN place register-command arrays on 64-byte boundaries (the NPU's
DMA fetches whole 64-byte bursts; research/anchors.md §1.10), and 64 bytes is the CPU cache
line on the RK35xx Cortex-A cores, so the cache maintenance done around NPU jobs never
touches a line shared by two blobs. Aligned in the file, a blob can be used in place from an
mmap without being copied to realign it.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

MAGIC = b"RKNPUOPN"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

# <magic, version, header size, flags, section count, total size, target, sha256>
HEADER = struct.Struct("<8sIIIIQ32s32s")
HEADER_SIZE = HEADER.size  # 96
DIGEST_OFFSET = 64
DIGEST_SIZE = 32
NAME_SIZE = 32  # bytes, for the target and for section names

# <name, offset, length, crc32, reserved>
ENTRY = struct.Struct("<32sQQII")
ENTRY_SIZE = ENTRY.size  # 56

ALIGNMENT = 64

# Section names the container knows. Only "metadata" is required; "relocations" (when present)
# is checked against "commands". The others are opaque to the container.
METADATA = "metadata"
WEIGHTS = "weights"  # NPU weights and biases, in the layouts the tasks read
COMMANDS = "commands"  # register-command arrays (u64 words), one 64-byte-aligned run per task
RELOCATIONS = "relocations"  # backends.container.relocations records
CPU_WEIGHTS = "cpu_weights"  # constants of the CPU-fallback segments

# Top-level metadata keys the backend writes (the container does not enforce them):
# "inputs"/"outputs" (name, shape, dtype, layout, quantization), "ops" (ONNX name, placement
# npu|cpu, task range), "memory_plan", "build_config", "tool_version", "cpu_segments".
METADATA_KEYS = (
    "inputs",
    "outputs",
    "ops",
    "memory_plan",
    "build_config",
    "tool_version",
    "cpu_segments",
)


def align(n: int) -> int:
    """`n` rounded up to the next multiple of ALIGNMENT."""
    return -(-n // ALIGNMENT) * ALIGNMENT


@dataclasses.dataclass
class Container:
    """A container in memory. `metadata` is JSON data (a dict with str keys; tuples are
    written as lists, so it reads back with lists); `sections` are the blobs by name (any
    name but "metadata": at most 32 bytes of UTF-8, printable), read back as bytes."""

    target: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    sections: dict[str, bytes] = dataclasses.field(default_factory=dict)
