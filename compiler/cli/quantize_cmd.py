"""`quantize MODEL.onnx --dataset DS.txt -o MODEL.q.mlir`: calibrate and lower to the
quantized `npu` dialect (RKNN's `build(do_quantization=True)` without the backend)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backends.targets import DEFAULT_TARGET, TARGETS
from compiler.calibration import ALGORITHMS, InputPreprocess
from compiler.cli.common import add_input_shape_option, load_ir
from compiler.errors import CompilerError
from compiler.quantization.cfg import read_cfg, write_cfg
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from compiler.quantization.weight_rounding import ROUNDINGS

DTYPES = {"int8": "i8", "int16": "i16", "float16": "f16"}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "quantize",
        help="calibrate and quantize a model to the npu dialect",
        description="Optimize MODEL, calibrate it on the samples of a dataset.txt (images or "
        ".npy, as RKNN reads it) and lower it to quantized npu ops; ops the NPU cannot run "
        "stay float (listed on stderr). The output .mlir runs with `interpret`.",
    )
    parser.add_argument("model", type=Path, help="the .onnx (or float .mlir) model")
    add_quantization_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.mlir")
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def add_quantization_options(parser: argparse.ArgumentParser) -> None:
    """The options `quantize` and `build` share (RKNN's config() and build())."""
    parser.add_argument(
        "--dataset",
        type=Path,
        metavar="DS.txt",
        help="calibration samples, one line per sample (not needed for a QDQ model, which "
        "carries its parameters)",
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="int8",
        help="activation dtype (float16: no calibration; default int8)",
    )
    parser.add_argument(
        "--weight-dtype",
        choices=["int4"],
        default=None,
        help="int4 weights (symmetric, per channel) with the activation dtype",
    )
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="normal")
    parser.add_argument(
        "--method",
        choices=["channel", "layer"],
        default="channel",
        help="weight scales per output channel (default) or per tensor",
    )
    parser.add_argument(
        "--weight-rounding",
        choices=ROUNDINGS,
        default="auto",
        help="int8/int4 weights rounded to nearest, or by GPTQ on the calibration data "
        "(minimises each layer's output error; needs --dataset); auto (default): GPTQ for "
        "int4 weights when --dataset is given, else nearest",
    )
    parser.add_argument(
        "--mean-values",
        action="append",
        default=[],
        metavar="M1,M2,...",
        help="per-channel mean of an input (repeat per input)",
    )
    parser.add_argument(
        "--std-values",
        action="append",
        default=[],
        metavar="S1,S2,...",
        help="per-channel std of an input (repeat per input)",
    )
    parser.add_argument(
        "--rgb2bgr",
        action="store_true",
        help="swap RGB to BGR in calibration images (RKNN quant_img_RGB2BGR)",
    )
    parser.add_argument("--optimization-level", type=int, choices=[0, 1, 2, 3], default=3)
    parser.add_argument(
        "--cfg",
        type=Path,
        metavar="FILE",
        help="a .quantization.cfg: per-layer dtypes and fixed parameters",
    )
    parser.add_argument(
        "--export-cfg",
        type=Path,
        metavar="FILE",
        help="write the computed parameters as a .quantization.cfg",
    )
    parser.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        metavar="CHIP",
        help=f"the chip ({', '.join(TARGETS)}; default {DEFAULT_TARGET}): refuses dtypes "
        "its NPU does not compute",
    )


def quantize_options(args: argparse.Namespace, n_inputs: int) -> QuantizeOptions:
    return QuantizeOptions(
        dtype=DTYPES[args.dtype],
        weight_dtype="i4" if args.weight_dtype == "int4" else None,
        algorithm=args.algorithm,
        per_channel=args.method == "channel",
        weight_rounding=args.weight_rounding,
        optimization_level=args.optimization_level,
        preprocess=_preprocess(args, n_inputs),
        cfg=read_cfg(args.cfg) if args.cfg else None,
        progress=not args.no_progress,
        target=args.target,
    )


def run(args: argparse.Namespace) -> int:
    if args.output.suffix != ".mlir":
        raise CompilerError(f"-o {args.output}: the output must end in .mlir")
    model = load_ir(args.model, args.input_shape)
    options = quantize_options(args, len(model.inputs))
    result = quantize_model(model, args.dataset, options)
    for line in result.report.notes if result.report else []:
        print(line, file=sys.stderr)
    npz = model.save(args.output)
    print(f"wrote {args.output} and {npz}", file=sys.stderr)
    if args.export_cfg:
        write_cfg(result.to_cfg(options.cfg.custom_quantize_layers if options.cfg else None),
                  args.export_cfg)  # fmt: skip
        print(f"wrote {args.export_cfg}", file=sys.stderr)
    return 0


def _preprocess(args: argparse.Namespace, n_inputs: int) -> list[InputPreprocess | None] | None:
    means, stds = [_floats(v, "--mean-values") for v in args.mean_values], [
        _floats(v, "--std-values") for v in args.std_values]  # fmt: skip
    if not means and not stds and not args.rgb2bgr:
        return None
    if len(means) not in (0, n_inputs) or len(stds) not in (0, n_inputs):
        raise CompilerError(f"give --mean-values/--std-values once per input ({n_inputs})")
    return [
        InputPreprocess(means[i] if means else None, stds[i] if stds else None, args.rgb2bgr)
        for i in range(n_inputs)
    ]


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise CompilerError(f"{option} {text!r}: expected numbers separated by commas") from None
