"""The container (`backends/container`): round trips, deterministic bytes, the layout, atomic
writes, and damaged files: every truncation, random byte flips, overwritten runs, appended
garbage and files whose checksums were recomputed after the damage all end in a one-line
CompilerError, never another exception."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.container import (
    FORMAT_VERSION,
    MAGIC,
    Container,
    Relocation,
    container_bytes,
    pack_relocations,
    read_container,
    unpack_relocations,
    write_container,
)
from backends.container import writer as writer_module
from backends.container.format import ALIGNMENT, ENTRY, HEADER, HEADER_SIZE
from compiler.errors import CompilerError

NAME = "MODEL.rknn"


def small_container() -> Container:
    metadata = {
        "inputs": [
            {
                "name": "images",
                "shape": [1, 3, 4, 4],
                "dtype": "int8",
                "layout": "NCHW",
                "quantization": {"scale": 0.0078125, "zero_point": -128},
            }
        ],
        "outputs": [{"name": "out", "shape": [1, 2], "dtype": "float32", "layout": "NC"}],
        "ops": [
            {"onnx": "conv1", "placement": "npu", "tasks": [0, 1]},
            {"onnx": "softmax", "placement": "cpu", "segment": 0},
        ],
        "memory_plan": {"buffers": [{"id": 0, "size": 128}, {"id": 1, "size": 64}]},
        "build_config": {"target": "rk3588", "optimization_level": 3},
        "tool_version": "0.1.0",
        "note": "ünïcode",
    }
    return Container(
        target="rk3588",
        metadata=metadata,
        sections={
            "weights": bytes(range(40)),
            "commands": bytes(range(100, 164)),
            "relocations": pack_relocations([Relocation(8, 0, 0), Relocation(56, 1, 32)]),
            "cpu_weights": b"\x7f" * 5,
        },
    )


@pytest.fixture(scope="module")
def data() -> bytes:
    return container_bytes(small_container())


def read_error(blob: bytes) -> str:
    """The message of the CompilerError reading `blob` raises (any other outcome fails)."""
    with pytest.raises(CompilerError) as info:
        read_container(blob, name=NAME)
    message = str(info.value)
    assert message.startswith(f"{NAME}: ") and len(message.splitlines()) == 1, message
    return message


def reseal(blob: bytes) -> bytes:
    """`blob` with its section CRCs and SHA-256 recomputed, so damage reaches the checks
    behind the checksums (as a file written by a broken writer would)."""
    out = bytearray(blob)
    if len(out) < HEADER_SIZE:
        return blob
    count = struct.unpack_from("<I", out, 20)[0]
    for i in range(min(count, (len(out) - HEADER_SIZE) // ENTRY.size)):
        at = HEADER_SIZE + ENTRY.size * i
        name, offset, length, _, reserved = ENTRY.unpack_from(out, at)
        if offset + length <= len(out):
            crc = zlib.crc32(out[offset : offset + length])
            ENTRY.pack_into(out, at, name, offset, length, crc, reserved)
    out[64:96] = hashlib.sha256(out[:64] + out[96:]).digest()
    return bytes(out)


# ---------------------------------------------------------------------- round trip, layout


def test_round_trip(data: bytes, tmp_path: Path) -> None:
    original = small_container()
    assert read_container(data) == original
    path = tmp_path / "sub" / NAME
    write_container(original, path)
    assert path.read_bytes() == data
    back = read_container(path)
    assert back == original and back.metadata == original.metadata
    assert back.sections == original.sections
    assert unpack_relocations(back.sections["relocations"]) == [
        Relocation(8, 0, 0),
        Relocation(56, 1, 32),
    ]


def test_deterministic(data: bytes) -> None:
    assert container_bytes(small_container()) == data
    # insertion order of metadata keys and sections does not matter
    shuffled = small_container()
    shuffled.metadata = dict(reversed(shuffled.metadata.items()))
    shuffled.sections = dict(reversed(shuffled.sections.items()))
    assert container_bytes(shuffled) == data
    # tuples are written as lists; bytearray/memoryview as bytes
    same = small_container()
    same.metadata["outputs"][0]["shape"] = (1, 2)
    same.sections["weights"] = memoryview(bytearray(same.sections["weights"]))
    assert container_bytes(same) == data
    assert container_bytes(read_container(data)) == data


def test_layout(data: bytes) -> None:
    magic, version, header_size, flags, count, total, target, digest = HEADER.unpack_from(data)
    assert (magic, version, header_size, flags) == (MAGIC, FORMAT_VERSION, 96, 0)
    assert total == len(data) and target.rstrip(b"\0") == b"rk3588"
    assert digest == hashlib.sha256(data[:64] + data[96:]).digest()
    entries = [ENTRY.unpack_from(data, 96 + 56 * i) for i in range(count)]
    names = [e[0].rstrip(b"\0").decode() for e in entries]
    assert names == ["metadata", "commands", "cpu_weights", "relocations", "weights"]
    end = 96 + 56 * count
    for _, offset, length, crc, reserved in entries:
        assert offset % ALIGNMENT == 0 and offset >= end and reserved == 0
        assert data[end:offset] == bytes(offset - end)  # zero padding
        assert zlib.crc32(data[offset : offset + length]) == crc
        end = offset + length
    assert end == total
    _, offset, length, _, _ = entries[0]
    meta = data[offset : offset + length]
    assert meta == json.dumps(
        small_container().metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


# ---------------------------------------------------------------------- damaged files


def test_every_truncation(data: bytes) -> None:
    for n in range(len(data)):
        message = read_error(data[:n])
        if n >= HEADER_SIZE:
            assert message == f"{NAME}: truncated: header says {len(data)} bytes, file has {n}"
        elif n:
            assert "truncated" in message
    assert read_error(b"") == f"{NAME}: empty file, not a container"


def test_random_damage(data: bytes) -> None:
    rng = random.Random(5)
    for _ in range(3000):  # one byte changed anywhere
        blob = bytearray(data)
        blob[rng.randrange(len(blob))] ^= rng.randrange(1, 256)
        read_error(bytes(blob))
    for _ in range(500):  # a run of bytes overwritten
        start = rng.randrange(len(data))
        run = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        blob = (data[:start] + run + data[start + len(run) :])[: len(data)]
        if blob != data:
            read_error(blob)
    for n in range(1, 200, 7):  # garbage appended, also after a truncation
        garbage = bytes(rng.randrange(256) for _ in range(n))
        assert "trailing garbage" in read_error(data + garbage)
        read_error(data[: rng.randrange(len(data))] + garbage)
    for _ in range(300):  # noise, and noise behind a plausible header
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(400)))
        read_error(noise)
        read_error(data[:24] + struct.pack("<Q", 24 + 8 + len(noise)) + noise)


def test_resealed_damage_never_escapes(data: bytes) -> None:
    """Damage with the checksums made to match again: the structural, JSON and relocation
    checks either reject the file with a CompilerError or read something consistent."""
    rng = random.Random(6)
    outcomes = {"error": 0, "read": 0}
    for i in range(3000):
        blob = bytearray(data)
        for _ in range(1 + i % 3):
            blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        try:
            read_container(reseal(bytes(blob)), name=NAME)
            outcomes["read"] += 1
        except CompilerError as exc:
            assert str(exc).startswith(f"{NAME}: ") and "\n" not in str(exc)
            outcomes["error"] += 1
    assert outcomes["error"] > 100 and outcomes["read"] > 100  # both paths were exercised


def test_messages(data: bytes) -> None:
    assert read_error(b"PK\x03\x04" + data[4:]) == f"{NAME}: not a container (bad magic)"
    newer = bytearray(data)
    newer[8] = 7
    assert "container format version 7 is not supported" in read_error(bytes(newer))

    def find(name: bytes) -> int:
        for i in range(HEADER.unpack_from(data)[4]):
            entry = ENTRY.unpack_from(data, 96 + 56 * i)
            if entry[0].rstrip(b"\0") == name:
                return entry[1]
        raise AssertionError(name)

    flipped = bytearray(data)
    flipped[find(b"weights") + 3] ^= 0x10
    assert read_error(bytes(flipped)).startswith(f"{NAME}: checksum mismatch in section 'weights'")
    flipped = bytearray(data)
    flipped[33] ^= 0x01  # the target name: "rj3588"
    assert "checksum mismatch in the header" in read_error(bytes(flipped))
    flipped = bytearray(data)
    offset = find(b"commands")
    struct.pack_into("<Q", flipped, 96 + 56 + 32, offset + 1)  # misaligned
    assert "corrupted directory (section 'commands'" in read_error(bytes(flipped))
    crafted = bytearray(data)
    crafted[96 + 56 * 3 : 96 + 56 * 3 + 11] = b"m\nrelocatio"  # a name with a newline
    assert "corrupted directory (section 3: the name" in read_error(reseal(bytes(crafted)))


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (b"[1, 2]", "the metadata is a JSON list, not an object"),
        (b'{"a": NaN}', "the metadata is not valid JSON (NaN is not JSON)"),
        (b"{", "the metadata is not valid JSON"),
        (b"[" * 100_000, "the metadata is not valid JSON"),
        (b'{"a": ' + b"9" * 5000 + b"}", "the metadata is not valid JSON"),
        (b'{"a": "\xff"}', "the metadata is not UTF-8"),
        (b"\xef\xbb\xbf{}", "the metadata is not valid JSON"),
    ],
)
def test_bad_metadata(monkeypatch: pytest.MonkeyPatch, metadata: bytes, expected: str) -> None:
    """Well-sealed files whose metadata a correct writer cannot produce."""
    monkeypatch.setattr(writer_module, "metadata_bytes", lambda _: metadata)
    assert read_error(container_bytes(Container("rk3588"))).startswith(f"{NAME}: {expected}")


def test_bad_relocations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "relocation_problem", lambda *_: None)
    inside = pack_relocations([Relocation(56, 0, 0)])
    outside = container_bytes(
        Container("rk3588", {}, {"commands": bytes(56), "relocations": inside})
    )
    assert "relocation 0: offset 56 is outside the 56-byte command blob" in read_error(outside)
    ragged = container_bytes(Container("rk3588", {}, {"relocations": bytes(25)}))
    assert "not a whole number of 24-byte relocation records" in read_error(ragged)


def test_read_path_errors(tmp_path: Path) -> None:
    with pytest.raises(CompilerError, match=r"missing\.rknn: no such file$"):
        read_container(tmp_path / "missing.rknn")
    with pytest.raises(CompilerError, match="cannot read"):
        read_container(tmp_path)


# ---------------------------------------------------------------------- writer


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.metadata.update(x=float("nan")),
        lambda c: c.metadata.update(x={1: 2}),
        lambda c: c.metadata.update(x=object()),
        lambda c: setattr(c, "metadata", [1]),
        lambda c: c.sections.update(metadata=b""),
        lambda c: c.sections.update({"x" * 33: b""}),
        lambda c: c.sections.update({"a\nb": b""}),
        lambda c: c.sections.update({"": b""}),
        lambda c: c.sections.update(x="text"),
        lambda c: setattr(c, "target", "é" * 17),
        lambda c: c.sections.update(relocations=pack_relocations([Relocation(64, 0, 0)])),
        lambda c: c.sections.pop("commands"),
    ],
)
def test_writer_rejects_bad_containers(change: Any, tmp_path: Path) -> None:
    container = small_container()
    change(container)
    path = tmp_path / NAME
    path.write_bytes(b"old")
    with pytest.raises((ValueError, TypeError)):
        write_container(container, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == [NAME]


def test_relocations_pack() -> None:
    relocations = [Relocation(16, 3, 1 << 40), Relocation(0, 0, 0)]
    data = pack_relocations(relocations)
    assert len(data) == 48 and unpack_relocations(data) == sorted(relocations)
    assert data[:24] == bytes(24)
    for bad in ([Relocation(4, 0, 0)], [Relocation(8, 0, 0)] * 2, [Relocation(0, -1, 0)]):
        with pytest.raises(ValueError):
            pack_relocations(bad)
    with pytest.raises(ValueError, match="reserved"):
        unpack_relocations(struct.pack("<QIIQ", 0, 0, 1, 0))


def test_atomic_write_failure_keeps_old_file(
    data: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / NAME
    path.write_bytes(b"previous model")

    def fail_on_sync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # the disk fills up while the file is written
        patch.setattr(os, "fsync", fail_on_sync)
        with pytest.raises(CompilerError) as info:
            write_container(small_container(), path)
    assert str(info.value) == f"{path}: cannot write (No space left on device)"
    assert path.read_bytes() == b"previous model" and os.listdir(tmp_path) == [NAME]

    real = writer_module._serialise
    with monkeypatch.context() as patch:  # writing stops after the first chunks
        patch.setattr(writer_module, "_serialise", lambda c: [*real(c)[:3], None])
        with pytest.raises(TypeError):
            write_container(small_container(), path)
    assert path.read_bytes() == b"previous model" and os.listdir(tmp_path) == [NAME]

    write_container(small_container(), path)
    assert path.read_bytes() == data and os.listdir(tmp_path) == [NAME]


# ---------------------------------------------------------------------- property


def printable_name(text: str) -> bool:
    return text.isprintable() and len(text.encode("utf-8")) <= 32


NAMES = st.text(min_size=1, max_size=12).filter(printable_name)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None)
@given(
    target=NAMES,
    metadata=st.dictionaries(st.text(max_size=8), JSON, max_size=5),
    sections=st.dictionaries(
        NAMES.filter(lambda n: n not in ("metadata", "relocations")),
        st.binary(max_size=150),
        max_size=5,
    ),
)
def test_round_trip_property(
    target: str, metadata: dict[str, Any], sections: dict[str, bytes]
) -> None:
    container = Container(target, metadata, sections)
    data = container_bytes(container)
    back = read_container(data)
    assert back == container
    assert container_bytes(back) == data
