"""`memory MODEL.rknn [--json FILE]`: a container's memory profile as RKNN's `eval_memory`
prints it (weight, internal tensor, other and total memory, model size), from the memory
plan the build wrote into the container (`runtime.perf.memory`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from backends.container import read_container
from compiler.cli.common import write_json
from compiler.errors import CompilerError
from runtime.perf import PerfError, memory_profile


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "memory",
        help="print a container's memory profile",
        description="Print the weight, internal tensor, other and total memory of a container "
        "built by `build`, as RKNN's eval_memory prints them, from its memory plan.",
    )
    parser.add_argument("container", type=Path, help="the .rknn file")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the profile as JSON to FILE")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    container = read_container(args.container)
    try:
        profile = memory_profile(container, args.container.stat().st_size)
    except PerfError as exc:
        raise CompilerError(f"{args.container}: {exc}") from None
    print(profile.text())
    if args.json is not None:
        write_json(args.json, profile.as_dict())
    return 0
