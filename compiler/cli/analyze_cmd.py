"""`analyze MODEL.onnx --dataset DS.txt --inputs LIST.txt --output-dir DIR`: build the model
(as `build` does, same options), then compare the float golden with the simulator per
layer on every sample of LIST.txt (RKNN's `accuracy_analysis`, `compiler.analysis`); writes
DIR/error_analysis.txt, DIR/report.html and its plot, and with `--dump` the golden/ and
simulator/ tensors as .npy.

Samples are read as `run` and calibration read them: raw data (the model normalizes with
its mean/std), a `.npy` array in the model's layout (the batch dimension of 1 may be left
out) or an image, RGB (BGR with --rgb2bgr), resized to the input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from compiler.analysis import accuracy_analysis, build_for_analysis
from compiler.calibration.dataset import InputPreprocess, read_sample
from compiler.cli.common import (
    add_input_shape_option,
    add_op_target_option,
    format_bytes,
    load_ir,
    op_targets,
)
from compiler.cli.quantize_cmd import add_quantization_options, quantize_options
from compiler.datasets import read_sample_list
from compiler.ir_model import TensorSpec

WORST_SHOWN = 5


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "analyze",
        help="per-layer accuracy of the quantized model against the float one",
        description="Build MODEL as `build` does, run each sample of LIST.txt through the "
        "float model (the golden), the container on the simulator (entire) and each "
        "quantized layer fed the golden input (single), and write the cosine and Euclidean "
        "distance per layer as RKNN's error_analysis.txt, plus report.html with a plot.",
    )
    parser.add_argument("model", type=Path, help="the .onnx (or float .mlir) model")
    add_quantization_options(parser)
    parser.add_argument("--inputs", type=Path, required=True, metavar="LIST.txt",
                        help="the samples to analyse, dataset.txt-style: one line per "
                        "sample, one .npy or image per model input")  # fmt: skip
    add_op_target_option(parser)
    parser.add_argument("--dump", action="store_true",
                        help="also write every tensor: DIR/golden/, DIR/simulator/ "
                        "(.npy)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--output-dir", type=Path, required=True, metavar="DIR")
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_ir(args.model, args.input_shape)
    options = quantize_options(args, len(model.inputs))
    options.cpu_ops = op_targets(args.op_target)
    specs = list(model.inputs)
    preprocess = list(options.preprocess or [None] * len(specs))
    samples = read_samples(args.inputs, specs, preprocess)  # bad input fails before the build
    float_model, build, quantized = build_for_analysis(model, args.dataset, options)
    for line in build.notes:
        print(line, file=sys.stderr)
    report = accuracy_analysis(float_model, build, quantized, samples, args.output_dir,
                               dump=args.dump)  # fmt: skip
    size = sum(p.stat().st_size for p in args.output_dir.rglob("*") if p.is_file())
    print(f"wrote {args.output_dir}: {', '.join(p.name for p in report.paths.values())} "
          f"({format_bytes(size)}, analysis {report.seconds:.2f} s)", file=sys.stderr)  # fmt: skip
    for row in report.outputs:
        if (mean := row.entire_mean) is not None:
            print(f"output {row.name}: cosine {mean.cos:.5f}, euclidean {mean.euc:.5f}")
    print(f"worst {WORST_SHOWN} layers by single cosine:")
    for row in report.worst(WORST_SHOWN):
        single, entire = row.single_mean, row.entire_mean
        print(f"  {row.label} ({row.dtype}): single {_cos(single)}, entire {_cos(entire)}")
    return 0


def read_samples(list_path: Path, specs: list[TensorSpec],
                 preprocess: list[InputPreprocess | None]
                 ) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """Every sample of the list, raw, by input name (one-line errors name file and line)."""
    return [read_sample(sample.paths, specs, preprocess, f"{list_path}:{sample.line}")
            for sample in read_sample_list(list_path, len(specs))]  # fmt: skip


def _cos(value: object) -> str:
    return "-" if value is None else f"{value.cos:.5f}"
