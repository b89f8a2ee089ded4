"""`build MODEL.onnx --target rk3588 --dataset DS.txt -o MODEL.rknn`: the whole pipeline
(quantize, backend passes, code generation) into a container, with a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backends.container import write_container
from compiler.build import build_model
from compiler.cli.common import add_input_shape_option, add_op_target_option, load_ir, op_targets
from compiler.cli.quantize_cmd import add_quantization_options, quantize_options


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build",
        help="compile a model into an .rknn-like container",
        description="Quantize MODEL (a dataset is needed for int8/int16, not for float16 or "
        "a QDQ model), place its ops on the NPU or the CPU, lay out, tile and plan memory, "
        "generate the register command streams and write the container. Ends with a "
        "summary: ops on NPU/CPU, tasks, memory, time per stage.",
    )
    parser.add_argument("model", type=Path, help="the .onnx (or float .mlir) model")
    add_quantization_options(parser)
    add_op_target_option(parser)
    parser.add_argument(
        "--model-pruning",
        action="store_true",
        help="accepted for RKNN compatibility: lossless pruning of all-zero channels always "
        "runs at optimization level 2 and above",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.rknn")
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_ir(args.model, args.input_shape)
    options = quantize_options(args, len(model.inputs))
    options.cpu_ops = op_targets(args.op_target)
    result = build_model(model, args.dataset, options)
    write_container(result.container, args.output)
    for line in result.notes:
        print(line, file=sys.stderr)
    if args.export_cfg:
        print("note: --export-cfg is written by `quantize`; build ignores it", file=sys.stderr)
    summary = result.summary()
    print(f"wrote {args.output}", file=sys.stderr)
    print(f"  ops: {summary['npu_ops']} on the NPU, {summary['cpu_ops']} on the CPU; "
          f"{summary['tasks']} NPU tasks", file=sys.stderr)  # fmt: skip
    print(f"  memory: weights {summary['weight_bytes'] / 1024:.1f} KiB, internal "
          f"{summary['internal_bytes'] / 1024:.1f} KiB", file=sys.stderr)  # fmt: skip
    for line in summary["not_generated"]:
        print(f"  on the CPU, no code generation yet: {line}", file=sys.stderr)
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.stages)
    print(f"  time: {stages}", file=sys.stderr)
    return 0
