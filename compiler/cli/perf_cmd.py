"""`perf MODEL.rknn [--core-mask MASK] [--json FILE]`: the cycle model's estimate of a
container (`runtime.perf`), printed as RKNN's `eval_perf` prints its per-layer table: per op
DDR / NPU / max cycles, time, MAC usage, per-core workload, tasks and bytes moved; the
totals and the OpType ranking table. An estimate, not a measurement: the model and its
error against published RK3588 figures are in README.md, "Performance model"."""

from __future__ import annotations

import argparse
from pathlib import Path

from backends.container import read_container
from compiler.cli.common import write_json
from compiler.errors import CompilerError
from runtime.perf import PerfError, perf_report
from runtime.perf.report import CORE_MASKS


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "perf",
        help="estimate a container's per-op cycles and time",
        description="Estimate the NPU cycles, DDR cycles and time of every op of a container "
        "built by `build` from its register command streams (cycle model, no board), as "
        "RKNN's eval_perf table with totals and the OpType ranking.",
    )
    parser.add_argument("container", type=Path, help="the .rknn file")
    parser.add_argument(
        "--core-mask",
        default="auto",
        choices=list(CORE_MASKS),
        help="NPU cores to run on, RKNN's names (default auto: one idle core)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the report as JSON to FILE")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    container = read_container(args.container)
    try:
        report = perf_report(container, args.core_mask)
    except PerfError as exc:
        raise CompilerError(f"{args.container}: {exc}") from None
    print(report.text())
    if args.json is not None:
        write_json(args.json, report.as_dict())
    return 0
