"""`import MODEL.onnx -o MODEL.mlir`: ONNX -> textual `onnx`-dialect IR + `.npz` weights."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from compiler.cli.common import add_input_shape_option, format_bytes
from compiler.errors import CompilerError
from compiler.frontend import import_onnx, parse_input_shapes


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "import",
        help="import an ONNX model into the onnx dialect",
        description="Import an ONNX model: canonical opset, static shapes, every node and "
        "tensor name kept. Writes OUT.mlir and the weights as OUT.npz beside it.",
    )
    parser.add_argument("model", type=Path, help="the .onnx model")
    parser.add_argument(
        "-o", "--output", type=Path, help="the .mlir to write (default: MODEL with suffix .mlir)"
    )
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    output: Path = args.output or args.model.with_suffix(".mlir")
    if output.suffix != ".mlir":
        raise CompilerError(
            f"-o {output}: the output must end in .mlir (weights go beside it as .npz)"
        )
    if args.model.resolve() in (output.resolve(), output.with_suffix(".npz").resolve()):
        raise CompilerError(f"-o {output} would overwrite the model")
    start = time.perf_counter()
    model = import_onnx(args.model, parse_input_shapes(args.input_shape))
    npz = model.save(output)
    n_ops = sum(1 for _ in model.main.body.blocks[0].ops)
    print(
        f"imported {args.model} in {time.perf_counter() - start:.2f} s: {n_ops} ops, "
        f"{len(model.weights)} weights ({format_bytes(model.weights.nbytes())})"
    )
    print(f"wrote {output} and {npz}")
    return 0
