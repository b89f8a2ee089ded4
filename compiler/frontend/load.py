"""Reading an ONNX file, and the structural checks that turn a damaged or foreign model into
a one-line error instead of a confusing failure later."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from compiler.errors import CompilerError

DEFAULT_DOMAINS = ("", "ai.onnx")


def load_model(path: Path | str) -> onnx.ModelProto:
    """Parse `path` (with its external data) into a ModelProto."""
    path = Path(path)
    if not path.is_file():
        raise CompilerError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CompilerError(f"{path}: cannot read ({exc.strerror})") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError):
        raise CompilerError(
            f"{path}: not an ONNX model, or a truncated one (protobuf does not parse)"
        ) from None
    if not model.HasField("graph") or not model.opset_import:
        raise CompilerError(f"{path}: not an ONNX model (no graph or no opset)")
    _load_external_data(model, path)
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    externals = [t for t in _all_tensors(model) if uses_external_data(t)]
    if not externals:
        return
    for tensor in externals:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not (path.parent / location).is_file():
            raise CompilerError(
                f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, which is "
                f"missing: put it beside the model"
            )
    try:
        load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        raise CompilerError(f"{path}: cannot load external data: {_first_line(exc)}") from None


def _all_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
    return tensors


def node_label(node: onnx.NodeProto, index: int) -> str:
    """`node 'conv1' (Conv)` for messages; unnamed nodes are called `<OpType>_<index>`, the
    name the importer gives them."""
    return f"node {node.name or f'{node.op_type}_{index}'!r} ({node.op_type})"


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Put the nodes in a topological order (ONNX requires one; some tools write graphs
    out of order). Already sorted graphs are left untouched; ties keep file order."""
    produced_by = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    order: list[int] = []
    placed: set[int] = set()
    for index in range(len(graph.node)):
        _place(graph, index, produced_by, placed, order, set())
    if order != list(range(len(graph.node))):
        nodes = [graph.node[i] for i in order]
        del graph.node[:]
        graph.node.extend(nodes)


def _place(
    graph: onnx.GraphProto,
    index: int,
    produced_by: dict[str, int],
    placed: set[int],
    order: list[int],
    visiting: set[int],
) -> None:
    stack = [(index, False)]
    while stack:
        i, expanded = stack.pop()
        if i in placed:
            continue
        if expanded:
            visiting.discard(i)
            placed.add(i)
            order.append(i)
            continue
        if i in visiting:
            raise CompilerError(f"{node_label(graph.node[i], i)} is part of a cycle")
        visiting.add(i)
        stack.append((i, True))
        producers = [produced_by[n] for n in graph.node[i].input if n in produced_by]
        stack.extend((p, False) for p in reversed(producers) if p not in placed)


def check_structure(model: onnx.ModelProto, source: str) -> None:
    """Every node input is defined before use, every op is in the default domain, every
    graph output is produced: what a truncated or foreign file gets wrong."""
    graph = model.graph
    if not graph.output:
        raise CompilerError(f"{source}: the graph has no outputs")
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for index, node in enumerate(graph.node):
        label = node_label(node, index)
        if node.domain not in DEFAULT_DOMAINS:
            raise CompilerError(
                f"{source}: {label} is in domain {node.domain!r}; only standard ONNX ops "
                "are supported (export without custom or contrib ops)"
            )
        for name in node.input:
            if name and name not in defined:
                raise CompilerError(
                    f"{source}: {label} reads {name!r}, which no node, initializer or input "
                    "produces (a truncated or damaged model?)"
                )
        defined.update(o for o in node.output if o)
    for out in graph.output:
        if out.name not in defined:
            raise CompilerError(f"{source}: graph output {out.name!r} is produced by no node")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
