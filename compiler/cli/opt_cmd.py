"""`opt IN.mlir --passes a,b{option=value} -o OUT.mlir`: run any passes by name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.cli.common import add_input_shape_option, load_ir
from compiler.errors import CompilerError
from compiler.pipeline import parse_pipeline, run_pipeline
from passes.registry import PASSES, load_pass


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "opt",
        help="run passes on the IR",
        description="Run passes on IN (.mlir with its .npz weights, or .onnx, imported "
        "first). The IR is verified after every pass; a pass that breaks it is named.",
    )
    parser.add_argument("input", type=Path, nargs="?", help="the .mlir or .onnx model")
    parser.add_argument(
        "-p",
        "--passes",
        default="",
        metavar="PIPELINE",
        help="comma-separated pass names, options in braces: 'dce,fold-constants{limit=1024}'",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the .mlir to write, weights beside it as .npz (default: print "
        "the IR on stdout, weights not written)",
    )
    parser.add_argument(
        "--print-ir-after-all",
        action="store_true",
        help="print the IR after every pass (on stderr)",
    )
    parser.add_argument("--timing", action="store_true", help="report wall time per pass")
    parser.add_argument("--list-passes", action="store_true", help="list the passes and exit")
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.list_passes:
        for name in PASSES:
            cls = load_pass(name)
            doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
            print(f"{name:24s} {doc[0] if doc else ''}")
        return 0
    if args.input is None:
        raise CompilerError("give the input model (.mlir or .onnx)")
    passes = parse_pipeline(args.passes)
    model = load_ir(args.input, args.input_shape)
    report = run_pipeline(model, passes, print_ir_after_all=args.print_ir_after_all)
    for line in report.notes:
        print(line, file=sys.stderr)
    if args.output is not None:
        if args.output.suffix != ".mlir":
            raise CompilerError(f"-o {args.output}: the output must end in .mlir")
        npz = model.save(args.output)
        print(f"wrote {args.output} and {npz}", file=sys.stderr)
    else:
        print(model.module)
    if args.timing:
        print(report.format(), file=sys.stderr)
    return 0
