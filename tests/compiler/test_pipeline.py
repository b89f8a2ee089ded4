"""Pass pipelines: specs with options, verification after every pass, timing report."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.passes import ModulePass

from compiler.errors import CompilerError
from compiler.examples import TINY_CNN
from compiler.frontend import import_onnx
from compiler.pipeline import parse_pipeline, run_pipeline
from dialects.onnx import OnnxOp


@dataclass(frozen=True)
class BreakShapes(ModulePass):
    """A deliberately wrong pass: gives the first Conv a result type it cannot have."""

    name = "break-shapes"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        conv = next(o for o in op.walk() if isinstance(o, OnnxOp) and o.op_type == "Conv")
        conv.results[0]._type = TensorType(f32, [1, 1, 1, 1])  # test-only corruption


def test_pass_that_breaks_the_ir_is_named():
    model = import_onnx(TINY_CNN)
    with pytest.raises(
        CompilerError,
        match=r"pass break-shapes produced invalid IR: "
        r'Conv "stem_conv"',
    ):
        run_pipeline(model, [BreakShapes()])


def test_timing_report_lists_every_pass():
    model = import_onnx(TINY_CNN)
    report = run_pipeline(model, parse_pipeline("dce,dce"))
    assert [t.name for t in report.timings] == ["dce", "dce"]
    text = report.format()
    assert text.count("dce") == 2 and "total" in text


def test_after_pass_hook_sees_every_pass():
    seen = []
    run_pipeline(
        import_onnx(TINY_CNN), parse_pipeline("dce"), after_pass=lambda p, m: seen.append(p.name)
    )
    assert seen == ["dce"]


def test_empty_pipeline():
    assert parse_pipeline("  ") == []
