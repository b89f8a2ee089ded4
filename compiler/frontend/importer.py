"""`import_onnx`: an ONNX model (file or ModelProto) -> verified `onnx`-dialect IR with static
shapes and the weights in a side table.

Steps: load and check structure -> set heavy tensors aside -> pin input shapes -> canonical
opset -> onnx shape inference -> build IR -> (shapes onnx could not infer: run the reference
interpreter once on zeros, read the shapes off, rebuild) -> verify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
from xdsl.utils.exceptions import VerifyException

from compiler.errors import CompilerError
from compiler.frontend.builder import build_ir
from compiler.frontend.light_model import split_heavy
from compiler.frontend.load import check_structure, load_model, sort_nodes
from compiler.frontend.opset import model_opset, to_canonical_opset
from compiler.frontend.shape_discovery import discover_shapes
from compiler.frontend.shapes import (
    apply_input_shapes,
    infer_tensor_infos,
    parse_input_shapes,
)
from compiler.ir_model import IRModel

__all__ = ["import_onnx", "parse_input_shapes"]


def import_onnx(
    model: onnx.ModelProto | Path | str,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> IRModel:
    """Import `model`; `input_shapes` pins dynamic input dimensions by input name."""
    source = "model" if isinstance(model, onnx.ModelProto) else str(model)
    try:
        return _import(model, source, input_shapes)
    except UnicodeDecodeError:  # protobuf checks string fields only when they are read
        raise CompilerError(f"{source}: damaged ONNX file (a name is not valid UTF-8)") from None


def _import(
    model: onnx.ModelProto | Path | str,
    source: str,
    input_shapes: Mapping[str, Sequence[int]] | None,
) -> IRModel:
    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    source_opset = model_opset(model)
    light, heavy = split_heavy(model)  # a copy: the caller's model is never modified
    sort_nodes(light.graph)
    check_structure(light, source)
    apply_input_shapes(light, dict(input_shapes or {}), heavy.tensors, source)
    light = to_canonical_opset(light, source)
    infos = infer_tensor_infos(light, source)
    ir, unknown = build_ir(light, heavy, infos, source, source_opset)
    if unknown:
        infos = discover_shapes(ir, infos, unknown, source)
        ir, unknown = build_ir(light, heavy, infos, source, source_opset)
        if unknown:  # cannot happen: the run captures every tensor it was asked for
            raise CompilerError(f"{source}: cannot determine the shape of {unknown[0]!r}")
    _verify(ir, source)
    return ir


def _verify(ir: IRModel, source: str) -> None:
    try:
        ir.module.verify()
    except VerifyException as exc:
        text = str(exc).strip().splitlines()
        raise CompilerError(f"{source}: inconsistent model: {text[0] if text else exc}") from None
