"""`python -m compiler <command>`: one module per command, each adding its own subparser.

Bad input ends with one line on stderr and exit code 2 (`CompilerError`); an unexpected
exception is reported as an internal error in one line (exit 1), with the traceback only
under `--traceback`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from compiler import __version__
from compiler.cli import (
    analyze_cmd,
    build_cmd,
    hybrid_cmd,
    import_cmd,
    inspect_cmd,
    interpret_cmd,
    memory_cmd,
    opt_cmd,
    perf_cmd,
    quantize_cmd,
    run_cmd,
)
from compiler.errors import CompilerError

COMMANDS = (
    import_cmd,
    interpret_cmd,
    opt_cmd,
    quantize_cmd,
    build_cmd,
    inspect_cmd,
    run_cmd,
    perf_cmd,
    memory_cmd,
    analyze_cmd,
    hybrid_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compiler",
        description="An open compiler for the Rockchip NPU.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the Python traceback of an internal error"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CompilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes it at exit)
        return 0
    except Exception as exc:
        if args.traceback:
            traceback.print_exc()
        else:
            text = str(exc).strip().splitlines()
            print(
                f"internal error: {type(exc).__name__}: {text[0] if text else ''} "
                "(rerun with --traceback and report it)",
                file=sys.stderr,
            )
        return 1
