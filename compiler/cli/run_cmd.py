"""`run MODEL.rknn --input NAME=FILE.npy ... --output-dir DIR`: run a container on the
register-level simulator (`runtime.session`), write each output as DIR/<name>.npy (float32)
and print the top-5 of a classifier-shaped output; `--inputs LIST.txt` runs every sample
and stacks each output along a new first axis."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from compiler.cli.interpret_cmd import parse_inputs, write_arrays
from compiler.datasets import iter_samples, read_sample_list
from compiler.errors import CompilerError
from runtime.session import Session, SessionError


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
    source.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                        help="an input array (NAME= may be left out for one input)")  # fmt: skip
    source.add_argument("--inputs", type=Path, metavar="LIST.txt",
                        help="a dataset.txt-style list: one sample per line")  # fmt: skip
    parser.add_argument("--output-dir", type=Path, required=True, metavar="DIR")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        session = Session(args.container)
        names = [spec["name"] for spec in session.metadata["inputs"]]
        if args.inputs is not None:
            outputs = _run_list(session, args.inputs, names)
        else:
            outputs = session.run(parse_inputs(args.input, names))
    except SessionError as exc:
        raise CompilerError(f"{args.container}: {exc}") from None
    write_arrays(args.output_dir, outputs)
    for name, array in outputs.items():
        if args.inputs is None and array.ndim == 2 and array.shape[0] == 1 and array.size > 1:
            print(f"{name} top-5: " + ", ".join(
                f"{i}: {array[0, i]:.4f}" for i in np.argsort(-array[0])[:5]))  # fmt: skip
    return 0


def _run_list(session: Session, list_path: Path, names: list[str]) -> dict[str, np.ndarray]:
    samples = read_sample_list(list_path, len(names))
    collected: dict[str, list[np.ndarray]] = {}
    for feed in tqdm(iter_samples(samples, names, list_path), total=len(samples),
                     unit="sample", desc="run"):  # fmt: skip
        for name, array in session.run(feed).items():
            collected.setdefault(name, []).append(array)
    return {name: np.stack(arrays) for name, arrays in collected.items()}
