"""File stems for tensor names: what `interpret`/`run` outputs and accuracy analysis dumps
are saved as (ONNX names hold '/', ':' and other characters a file name cannot)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_names(tensor_names: list[str]) -> dict[str, str]:
    """Tensor name -> a file stem safe on every file system, unique among them (RKNN turns
    '/' into '_'; so does this, and any other unsafe character)."""
    stems: dict[str, str] = {}
    taken: set[str] = set()
    for name in tensor_names:
        stem = _UNSAFE.sub("_", name).strip(".") or "tensor"
        candidate, n = stem, 0
        while candidate in taken:
            n += 1
            candidate = f"{stem}_{n}"
        taken.add(candidate)
        stems[name] = candidate
    return stems
