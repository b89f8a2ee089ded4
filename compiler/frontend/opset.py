"""Bring a model to the dialect's canonical opset.

Older models go through onnx's version converter (it turns attributes that later became
inputs into inputs, Upsample into Resize, and so on). Newer models are relabelled when every
op they use has the same signature (inputs, outputs, attributes and defaults) at both
opsets: ONNX's later versions of most ops only widened the allowed element types.

The converter copies the whole model, weights included, so it is given the light model of
`light_model.split_heavy`.
"""

from __future__ import annotations

import onnx
import onnx.defs
from onnx import helper, version_converter

from compiler.errors import CompilerError
from compiler.frontend.load import DEFAULT_DOMAINS, node_label
from dialects.onnx import OPSET


def model_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return entry.version
    return 1  # no default-domain import: ONNX's first version


def to_canonical_opset(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """`model` at opset `OPSET` (a new model, or `model` relabelled in place)."""
    version = model_opset(model)
    if version < OPSET:
        return _upgrade(model, version, source)
    if version > OPSET:
        _check_relabel(model, version, source)
    _set_default_opset(model, OPSET)
    return model


def _upgrade(model: onnx.ModelProto, version: int, source: str) -> onnx.ModelProto:
    try:
        converted = version_converter.convert_version(model, OPSET)
    except Exception as exc:  # the converter raises bare RuntimeErrors/ValueErrors
        raise CompilerError(
            f"{source}: cannot convert opset {version} to {OPSET}: {_first_line(exc)}"
        ) from None
    _set_default_opset(converted, OPSET)
    return converted


def _check_relabel(model: onnx.ModelProto, version: int, source: str) -> None:
    for index, node in enumerate(model.graph.node):
        label = node_label(node, index)
        newer = _schema(node.op_type, version)
        older = _schema(node.op_type, OPSET)
        if newer is None:
            raise CompilerError(
                f"{source}: {label}: unknown op type {node.op_type!r} at opset {version}"
            )
        if older is None or not _same_meaning(node, older, newer):
            raise CompilerError(
                f"{source}: {label}: {node.op_type} at opset {version} has no "
                f"equivalent at opset {OPSET}, the newest this compiler reads; re-export the "
                f"model at opset {OPSET} or lower"
            )


def _same_meaning(
    node: onnx.NodeProto, older: onnx.defs.OpSchema, newer: onnx.defs.OpSchema
) -> bool:
    """Whether `node` means the same under both schemas: same inputs and outputs, and it
    sets no attribute the older schema lacks. ONNX gives attributes added in later versions
    defaults that keep the earlier behaviour, so leaving them unset is safe; an attribute
    whose default changed must be set explicitly."""
    if older.since_version == newer.since_version:
        return True
    if _params(older.inputs) != _params(newer.inputs) or (
        _params(older.outputs) != _params(newer.outputs)
    ):
        return False
    set_on_node = {a.name for a in node.attribute}
    for name, attr in newer.attributes.items():
        old = older.attributes.get(name)
        if old is None:
            if name in set_on_node:
                return False
        elif old.type != attr.type or (name not in set_on_node and _default(old) != _default(attr)):
            return False
    return set_on_node <= set(newer.attributes)


def _params(params: list[onnx.defs.OpSchema.FormalParameter]) -> list[tuple[str, int]]:
    return [(p.name, int(p.option.value)) for p in params]


def _default(attr: onnx.defs.OpSchema.Attribute) -> bytes:
    return attr.default_value.SerializeToString() if attr.default_value else b""


def _schema(op_type: str, version: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, version, "")
    except onnx.defs.SchemaError:
        return None


def _set_default_opset(model: onnx.ModelProto, version: int) -> None:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            entry.version = version
            return
    model.opset_import.append(helper.make_opsetid("", version))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
