"""`run MODEL.rknn --input NAME=FILE ... --output-dir DIR`: run a container on the
register-level simulator (`runtime.session`), write each output as DIR/<name>.npy (float32)
and print the top-5 of a classifier-shaped output; `--inputs LIST.txt` runs every sample
and stacks each output along a new first axis.

Inputs are taken as RKNN's `inference` takes them: raw data (uint8, int8, float32, ...; a
model built with mean/std normalizes inside), a `.npy` array in the model's layout or, with
`--data-format nhwc`, NHWC; or an image file (jpg/png/bmp), read as calibration reads it
(RGB, swapped to BGR when the model was built with --rgb2bgr, resized to the input)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from compiler.calibration.dataset import IMAGE_SUFFIXES, read_image
from compiler.cli.interpret_cmd import write_arrays
from compiler.datasets import load_array, read_sample_list
from compiler.errors import CompilerError
from compiler.ir_model import TensorSpec
from runtime.hardware import RocketError
from runtime.session import BACKENDS, DATA_FORMATS, Session, SessionError


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run a container on the simulator",
        description="Run a container built by `build` on the register-level simulator (the "
        "NPU's command streams, CPU ops in numpy between them) and write each output as "
        "DIR/<output name>.npy, dequantized to float32.",
    )
    parser.add_argument("container", type=Path, help="the .rknn file")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", action="append", default=[], metavar="NAME=FILE",
                        help="an input: a .npy array or an image (NAME= may be left out "
                        "for one input)")  # fmt: skip
    source.add_argument("--inputs", type=Path, metavar="LIST.txt",
                        help="a dataset.txt-style list: one sample per line")  # fmt: skip
    parser.add_argument("--data-format", choices=DATA_FORMATS, default=None,
                        help="layout of 4-D .npy inputs (default: the model's own)")  # fmt: skip
    parser.add_argument("--dump-layers", action="store_true",
                        help="also write every layer's output, dequantized, to DIR/layers/ "
                        "(one sample)")  # fmt: skip
    parser.add_argument("--backend", choices=BACKENDS, default="simulator",
                        help="simulator (default) or rocket: the NPU through the Linux "
                        "rocket driver (/dev/accel/accel*)")  # fmt: skip
    parser.add_argument("--output-dir", type=Path, required=True, metavar="DIR")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.dump_layers and args.inputs is not None:
        raise CompilerError("--dump-layers runs one sample: give --input, not --inputs")
    layers: dict[str, np.ndarray] | None = {} if args.dump_layers else None
    try:
        with Session(args.container, args.backend) as session:
            reader = InputReader(session, args.data_format)
            if args.inputs is not None:
                outputs = _run_list(session, reader, args.inputs)
            else:
                paths = _named_paths(args.input, reader.names)
                feed, formats = reader.read(paths, "--input")
                outputs = session.run(feed, formats, layers)
    except (SessionError, RocketError) as exc:
        raise CompilerError(f"{args.container}: {exc}") from None
    write_arrays(args.output_dir, outputs)
    if layers:
        write_arrays(args.output_dir / "layers", layers, quiet=True)
        print(f"{len(layers)} layer outputs -> {args.output_dir / 'layers'}")
    for name, array in outputs.items():
        if args.inputs is None and array.ndim == 2 and array.shape[0] == 1 and array.size > 1:
            print(f"{name} top-5: " + ", ".join(
                f"{i}: {array[0, i]:.4f}" for i in np.argsort(-array[0])[:5]))  # fmt: skip
    return 0


class InputReader:
    """Files -> the arrays and data formats `Session.run` takes, per model input."""

    def __init__(self, session: Session, data_format: str | None) -> None:
        self.specs = [TensorSpec(s["name"], tuple(s["shape"]), np.dtype(s["dtype"]))
                      for s in session.metadata["inputs"]]  # fmt: skip
        self.names = [spec.name for spec in self.specs]
        self.data_format = data_format
        preprocess = session.metadata.get("config", {}).get("preprocess") or []
        self.rgb2bgr = [bool(p and p.get("rgb2bgr")) for p in preprocess]

    def read(self, paths: dict[str, Path], where: str) -> tuple[dict, list[str | None]]:
        feed, formats = {}, []
        for index, spec in enumerate(self.specs):
            path = paths[spec.name]
            suffix = path.suffix.lower()
            if suffix != ".npy" and suffix not in IMAGE_SUFFIXES:
                raise CompilerError(f"{where}: {path}: unsupported file type "
                                    f"{suffix or '(none)'!r}; use .npy or an image "
                                    f"({', '.join(IMAGE_SUFFIXES)})")  # fmt: skip
            if suffix in IMAGE_SUFFIXES:
                swap = index < len(self.rgb2bgr) and self.rgb2bgr[index]
                feed[spec.name] = read_image(path, spec, swap, where)
                formats.append(None)  # read_image gives the model's layout
            else:
                feed[spec.name] = self._array(path, spec, where)
                formats.append(self.data_format)
        return feed, formats

    def _array(self, path: Path, spec: TensorSpec, where: str) -> np.ndarray:
        array = load_array(path, where)
        # a sample without its batch dimension of 1, as dataset.txt allows
        if len(spec.shape) == array.ndim + 1 and spec.shape[0] == 1:
            array = array[None]
        return array


def _named_paths(specs: list[str], names: Sequence[str]) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            if len(names) != 1:
                raise CompilerError(f"--input {spec}: give NAME=FILE; the model's inputs are "
                                    f"{', '.join(repr(n) for n in names)}")  # fmt: skip
            name, path = names[0], spec
        if name not in names:
            raise CompilerError(f"--input {name}: the model has no input of that name "
                                f"({', '.join(repr(n) for n in names)})")  # fmt: skip
        if name in paths:
            raise CompilerError(f"--input {name} given twice")
        paths[name] = Path(path)
    missing = [n for n in names if n not in paths]
    if missing:
        raise CompilerError(f"no --input for {', '.join(repr(n) for n in missing)}")
    return paths


def _run_list(session: Session, reader: InputReader, list_path: Path) -> dict[str, np.ndarray]:
    samples = read_sample_list(list_path, len(reader.names))
    collected: dict[str, list[np.ndarray]] = {}
    for sample in tqdm(samples, unit="sample", desc="run"):
        where = f"{list_path}:{sample.line}"
        feed, formats = reader.read(dict(zip(reader.names, sample.paths, strict=True)), where)
        for name, array in session.run(feed, formats).items():
            collected.setdefault(name, []).append(array)
    return {name: np.stack(arrays) for name, arrays in collected.items()}
