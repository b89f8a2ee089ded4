"""Helpers for the backend-pass tests (partition-cpu, assign-layout, align-channels): small
quantized models (an ONNX graph imported, fused, lowered under ranges measured on the very
samples the tests run) and reading the backend.* attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper

from compiler.ir_model import IRModel
from dialects.npu import placement as pl
from tests.helpers.npu import Input, body, import_graph, lower, measured_ranges, onnx_graph, samples
from tests.passes.helpers import run_passes


def lowered(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[Input],
    outputs: Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    passes: str = "fuse-activation",
    **plan_options,
) -> IRModel:
    """The graph imported, `passes` run, lowered to `npu` ops (ranges from `samples`)."""
    model = import_graph(onnx_graph(nodes, inputs, outputs, inits), passes)
    after, _ = lower(model, measured_ranges(model, samples(model)), **plan_options)
    return after


def conv(x: str, w: str, y: str, name: str, b: str | None = None, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w] + ([b] if b else []), [y], name, **attrs)


def placed(model: IRModel) -> list:
    """The ops that carry a placement: all but constants and the return."""
    return [op for op in body(model) if op.name != "func.return"]


def targets(model: IRModel) -> list[str | None]:
    return [pl.get_str(op, pl.TARGET) for op in placed(model)]


def segments(model: IRModel) -> list[int | None]:
    return [pl.get_int(op, pl.SEGMENT) for op in placed(model)]


def partition(model: IRModel, options: str = "") -> list[str]:
    """Run partition-cpu (with `options`, the text inside the braces); its notes."""
    spec = f"partition-cpu{{{options}}}" if options else "partition-cpu"
    return run_passes(model, spec).notes
