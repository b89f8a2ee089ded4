"""`hybrid-step1` and `hybrid-step2`: RKNN's hybrid quantization from the command line.

python -m compiler hybrid-step1 MODEL.onnx --dataset DS.txt [quantize options]
    [--proposal [--target-cosine 0.99] [--proposal-samples 1]] -o PREFIX
# edit PREFIX.quantization.cfg (custom_quantize_layers: tensor: int16 | float16)
python -m compiler hybrid-step2 PREFIX.model PREFIX.data PREFIX.quantization.cfg -o OUT.rknn
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backends.container import write_container
from compiler.build import build_model
from compiler.cli.common import add_input_shape_option, load_ir
from compiler.cli.quantize_cmd import add_quantization_options, quantize_options
from compiler.errors import CompilerError
from compiler.quantization.hybrid import hybrid_step1, hybrid_step2
from compiler.quantization.proposal import Proposal


def register(commands: argparse._SubParsersAction) -> None:
    _register_step1(commands)
    _register_step2(commands)


def _register_step1(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "hybrid-step1",
        help="hybrid quantization, step 1: the files to edit",
        description="Optimize and calibrate MODEL, and write PREFIX.model (the optimized float "
        "graph as ONNX, for Netron), PREFIX.data (what step 2 rebuilds from) and "
        "PREFIX.quantization.cfg (every tensor's parameters; custom_quantize_layers empty, or "
        "with --proposal the tensors to widen so that the outputs reach --target-cosine at "
        "the least predicted latency).",
    )
    parser.add_argument("model", type=Path, help="the .onnx (or float .mlir) model")
    add_quantization_options(parser)
    parser.add_argument("--proposal", action="store_true",
                        help="propose the tensors to compute in int16")  # fmt: skip
    parser.add_argument("--target-cosine", type=float, default=0.99,
                        help="the outputs' cosine to reach (default 0.99)")  # fmt: skip
    parser.add_argument("--proposal-samples", type=int, default=4,
                        help="dataset samples the proposal measures on, each held to the "
                        "target (default 4; RKNN uses 1, which overfits that sample)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PREFIX")
    add_input_shape_option(parser)
    parser.set_defaults(run=_run_step1)


def _register_step2(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "hybrid-step2",
        help="hybrid quantization, step 2: build from the edited files",
        description="Build the container from step 1's files and the edited cfg (its "
        "parameters as they are: no dataset is read).",
    )
    parser.add_argument("model_file", type=Path, metavar="PREFIX.model")
    parser.add_argument("data_file", type=Path, metavar="PREFIX.data")
    parser.add_argument("cfg_file", type=Path, metavar="PREFIX.quantization.cfg")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.rknn")
    parser.set_defaults(run=_run_step2)


def _run_step1(args: argparse.Namespace) -> int:
    if args.dataset is None:
        raise CompilerError("hybrid-step1 calibrates: give --dataset")
    if not 0.0 < args.target_cosine <= 1.0:
        raise CompilerError(f"--target-cosine {args.target_cosine}: expected 0 < c <= 1")
    if args.proposal_samples < 1:
        raise CompilerError("--proposal-samples must be at least 1")
    model = load_ir(args.model, args.input_shape)
    options = quantize_options(args, len(model.inputs))
    files = hybrid_step1(model, args.dataset, options, args.output, args.proposal,
                         args.proposal_samples, args.target_cosine, str(args.model))  # fmt: skip
    for path in (files.model, files.data, files.cfg):
        print(f"wrote {path}", file=sys.stderr)
    if files.proposal is not None:
        _print_proposal(files.proposal)
    return 0


def _print_proposal(proposal: Proposal) -> None:
    print(f"proposal: {len(proposal.overrides)} tensors widened; output cosine "
          f"{proposal.int8_cosine:.5f} (int8) -> {proposal.cosine:.5f} (target "
          f"{proposal.target_cosine}); predicted {proposal.int8_time_us / 1000:.2f} ms -> "
          f"{proposal.time_us / 1000:.2f} ms (all float16: cosine "
          f"{proposal.float16_cosine:.5f}, {proposal.float16_time_us / 1000:.2f} ms); "
          f"{proposal.evaluations} runs")  # fmt: skip
    for step in proposal.steps:
        print(f"  {step.tensor}: {step.dtype}, gains {step.gain:+.5f}, +{step.cost_us:.1f} us")
    for note in proposal.notes:
        print(f"  note: {note}")


def _run_step2(args: argparse.Namespace) -> int:
    model, options = hybrid_step2(args.model_file, args.data_file, args.cfg_file)
    result = build_model(model, None, options, statistics={})
    write_container(result.container, args.output)
    summary = result.summary()
    print(f"wrote {args.output}: {summary['npu_ops']} ops on the NPU, {summary['cpu_ops']} on "
          f"the CPU, {summary['tasks']} tasks", file=sys.stderr)  # fmt: skip
    return 0
