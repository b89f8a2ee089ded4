"""`interpret MODEL --input NAME=FILE.npy ... --output-dir DIR`: run the float reference
interpreter; `--inputs LIST.txt` runs every sample of a dataset-style list and stacks each
output along a new first axis."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from backends.fileio import atomic_write
from compiler.cli.common import add_input_shape_option, load_ir
from compiler.datasets import iter_samples, load_array, read_sample_list
from compiler.errors import CompilerError
from compiler.file_names import file_names
from compiler.interpreter import Interpreter


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "interpret",
        help="run a model on the float reference interpreter",
        description="Run MODEL (.onnx, or .mlir with its .npz) on the numpy reference "
        "interpreter and write each output as DIR/<output name>.npy.",
    )
    parser.add_argument("model", type=Path, help="the .onnx or .mlir model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="an input array (repeat per input; NAME= may be left out for a single-input model)",
    )
    source.add_argument(
        "--inputs",
        type=Path,
        metavar="LIST.txt",
        help="a dataset.txt-style list: one sample per line, one .npy per "
        "input separated by spaces, paths relative to the list's folder",
    )
    parser.add_argument("--output-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--save-intermediates",
        action="store_true",
        help="also write every intermediate tensor to DIR/tensors/ (single sample only)",
    )
    add_input_shape_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_ir(args.model, args.input_shape)
    interpreter = Interpreter(model)
    names = [s.name for s in interpreter.input_specs]
    if args.inputs is not None:
        if args.save_intermediates:
            raise CompilerError("--save-intermediates needs a single sample (--input)")
        outputs = _run_list(interpreter, args.inputs, names)
        intermediates: dict[str, np.ndarray] = {}
    else:
        feeds = parse_inputs(args.input, names)
        result = interpreter.run(feeds, capture=args.save_intermediates)
        outputs, intermediates = result.outputs, result.tensors
    write_arrays(args.output_dir, outputs)
    if intermediates:
        write_arrays(args.output_dir / "tensors", intermediates, quiet=True)
        print(f"wrote {len(intermediates)} intermediate tensors to {args.output_dir / 'tensors'}")
    return 0


def parse_inputs(specs: list[str], names: list[str]) -> dict[str, np.ndarray]:
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            if len(names) != 1:
                raise CompilerError(
                    f"--input {spec}: give NAME=FILE.npy; the model's inputs "
                    f"are {', '.join(repr(n) for n in names)}"
                )
            name, path = names[0], spec
        if name in feeds:
            raise CompilerError(f"--input {name} given twice")
        feeds[name] = load_array(Path(path), f"--input {name}")
    return feeds


def _run_list(interpreter: Interpreter, list_path: Path, names: list[str]) -> dict[str, np.ndarray]:
    samples = read_sample_list(list_path, len(names))
    collected: dict[str, list[np.ndarray]] = {}
    feeds = iter_samples(samples, names, list_path)
    for feed in tqdm(feeds, total=len(samples), unit="sample", desc="interpret"):
        for name, array in interpreter.run(feed).outputs.items():
            collected.setdefault(name, []).append(array)
    return {name: np.stack(arrays) for name, arrays in collected.items()}


def write_arrays(directory: Path, arrays: dict[str, np.ndarray], quiet: bool = False) -> None:
    stems = file_names(list(arrays))
    for name, array in arrays.items():
        path = directory / f"{stems[name]}.npy"
        with atomic_write(path, "wb") as f:
            np.save(f, array)
        if not quiet:
            print(f"{name}: {array.dtype}{list(array.shape)} -> {path}")
