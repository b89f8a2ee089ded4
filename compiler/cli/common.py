"""What several commands share: reading a model given as `.onnx` or `.mlir`, and output
file names made from tensor names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backends.fileio import atomic_write
from compiler.errors import CompilerError
from compiler.frontend import import_onnx, parse_input_shapes
from compiler.ir_model import IRModel


def add_input_shape_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D1,D2,...",
        help="pin the shape of a dynamic model input (repeat for several inputs)",
    )


def load_ir(path: Path, input_shapes: list[str]) -> IRModel:
    """An `.onnx` model (imported) or an `.mlir` file with its `.npz` weights."""
    if path.suffix == ".mlir":
        if input_shapes:
            raise CompilerError("--input-shape applies to .onnx models; the .mlir is static")
        return IRModel.load(path)
    return import_onnx(path, parse_input_shapes(input_shapes))


def format_bytes(n: int) -> str:
    """`18.9 KB`, `46.7 MB`: sizes as people read them."""
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def add_op_target_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--op-target",
        action="append",
        default=[],
        metavar="NAME=cpu",
        help="run an op (ONNX node or output tensor name) on the CPU (RKNN op_target)",
    )


def op_targets(entries: list[str]) -> frozenset[str]:
    """The names `--op-target NAME=cpu` entries send to the CPU."""
    names = set()
    for entry in entries:
        name, sep, where = entry.rpartition("=")
        if not sep or not name or where.strip().lower() != "cpu":
            raise CompilerError(f"--op-target {entry!r}: expected NAME=cpu")
        names.add(name)
    return frozenset(names)


def write_json(path: Path, data: object) -> None:
    """`data` as indented JSON at `path`, written atomically (one-line error otherwise);
    its folder must exist (a mistyped path is an error, not a new folder)."""
    if not path.parent.is_dir():
        raise CompilerError(f"cannot write {path}: no such folder {path.parent}")
    try:
        with atomic_write(path, "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise CompilerError(f"cannot write {path}: {exc.strerror}") from None
