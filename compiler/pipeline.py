"""Running passes: parse a pipeline spec (`a,b{option=value}`), run each pass with the weight
table in scope, verify after every pass (a pass that breaks the IR is named), report wall
time per pass, optionally print the IR after each one."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from xdsl.passes import ModulePass, PassPipeline
from xdsl.utils.exceptions import ArgSpecParseError, VerifyException

from compiler.errors import CompilerError
from compiler.ir_model import IRModel
from dialects.context import make_context
from dialects.weights import using_weights
from passes.pass_group import PassGroup
from passes.registry import all_passes
from passes.report import collecting_notes


@dataclass
class PassTiming:
    name: str
    seconds: float


@dataclass
class PipelineReport:
    timings: list[PassTiming] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what passes reported (see passes.report)

    def format(self) -> str:
        total = sum(t.seconds for t in self.timings)
        width = max([len(t.name) for t in self.timings] + [5])
        lines = [f"  {t.name:<{width}}  {t.seconds * 1e3:9.2f} ms" for t in self.timings]
        lines.append(f"  {'total':<{width}}  {total * 1e3:9.2f} ms")
        return "\n".join(["pass timing:", *lines])


def parse_pipeline(spec: str) -> list[ModulePass]:
    """The passes of `spec`, e.g. `"dce,fold-constants{limit=1024}"`."""
    if not spec.strip():
        return []
    try:
        return _expand(list(PassPipeline.parse_spec(all_passes(), spec).passes))
    except (ArgSpecParseError, ValueError, TypeError, KeyError) as exc:
        names = ", ".join(sorted(all_passes()))
        raise CompilerError(
            f"bad pass pipeline {spec!r}: {_first_line(exc)} (known passes: {names})"
        ) from None


def _expand(passes: list[ModulePass]) -> list[ModulePass]:
    """Pass groups replaced by their members, so each is timed and verified on its own."""
    flat: list[ModulePass] = []
    for p in passes:
        flat += _expand(p.members()) if isinstance(p, PassGroup) else [p]
    return flat


def run_pipeline(
    model: IRModel,
    passes: list[ModulePass],
    print_ir_after_all: bool = False,
    out: TextIO | None = None,
    after_pass: Callable[[ModulePass, IRModel], None] | None = None,
) -> PipelineReport:
    """Run `passes` on `model` in place."""
    ctx = make_context()
    report = PipelineReport()
    out = out or sys.stderr
    with using_weights(model.weights), collecting_notes() as notes:
        report.notes = notes
        for p in passes:
            start = time.perf_counter()
            p.apply(ctx, model.module)
            report.timings.append(PassTiming(p.name, time.perf_counter() - start))
            try:
                model.module.verify()
            except VerifyException as exc:
                raise CompilerError(
                    f"pass {p.name} produced invalid IR: {_first_line(exc)}"
                ) from None
            if print_ir_after_all:
                print(f"// -----// IR after {p.name} //----- //", file=out)
                print(model.module, file=out)
            if after_pass is not None:
                after_pass(p, model)
    return report


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
