"""The xDSL context with every dialect the compiler's IR uses."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func
from xdsl.ir import Dialect

from dialects.npu import NPU
from dialects.onnx import ONNX
from dialects.weights import Weights


def all_dialects() -> tuple[Dialect, ...]:
    return (Builtin, Func, ONNX, NPU, Weights)


def make_context() -> Context:
    ctx = Context()
    for dialect in all_dialects():
        ctx.load_dialect(dialect)
    return ctx
