"""What several commands share: reading a model given as `.onnx` or `.mlir`, and output
file names made from tensor names."""

from __future__ import annotations

import argparse
from pathlib import Path

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
