"""Static shapes for every tensor: user-given input shapes, then onnx's shape inference
(with data propagation, so Shape->Gather->Concat->Reshape chains resolve)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import onnx

from compiler.errors import CompilerError


@dataclass(frozen=True)
class TensorInfo:
    elem: int  # onnx.TensorProto.DataType; 0 when unknown
    shape: tuple[int, ...] | None  # None when the rank or any dimension is unknown


def parse_input_shapes(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`["images=1,3,224,224"]` -> {"images": (1, 3, 224, 224)}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
        except ValueError:
            shape = (-1,)
        if not sep or not name or any(d <= 0 for d in shape):
            raise CompilerError(
                f"--input-shape {spec!r}: expected NAME=D1,D2,... with positive integers"
            )
        shapes[name] = shape
    return shapes


def user_inputs(graph: onnx.GraphProto, heavy: Mapping[str, object]) -> list[onnx.ValueInfoProto]:
    """Graph inputs the user feeds (not initializers, not set-aside weights)."""
    inits = {t.name for t in graph.initializer} | set(heavy)
    return [i for i in graph.input if i.name not in inits]


def apply_input_shapes(
    model: onnx.ModelProto,
    shapes: Mapping[str, Sequence[int]],
    heavy: Mapping[str, object],
    source: str,
) -> None:
    """Pin the user's inputs to `shapes` (in place); fail on any input still dynamic."""
    inputs = {i.name: i for i in user_inputs(model.graph, heavy)}
    for info in (*inputs.values(), *model.graph.output):
        kind = info.type.WhichOneof("value")
        if kind not in ("tensor_type", None):
            raise CompilerError(
                f"{source}: {info.name!r} is {_article(kind.removesuffix('_type'))}, not a tensor; "
                "only tensor inputs and outputs are supported"
            )
    for name, shape in shapes.items():
        if name not in inputs:
            raise CompilerError(
                f"--input-shape names {name!r}, but the model's inputs are "
                f"{', '.join(repr(n) for n in inputs)}"
            )
        _set_shape(inputs[name], tuple(shape), source)
    for name, info in inputs.items():
        dims = _dims(info)
        if dims is None or any(d < 0 for d in dims):
            shown = (
                "unknown rank" if dims is None else ",".join("?" if d < 0 else str(d) for d in dims)
            )
            raise CompilerError(
                f"{source}: input {name!r} has a dynamic shape ({shown}); give it with "
                f"--input-shape {name}=D1,D2,..."
            )


def _set_shape(info: onnx.ValueInfoProto, shape: tuple[int, ...], source: str) -> None:
    dims = _dims(info)
    if dims is not None and len(dims) != len(shape):
        raise CompilerError(
            f"--input-shape {info.name}: the model's input has rank {len(dims)}, not {len(shape)}"
        )
    if dims is not None:
        for have, want in zip(dims, shape, strict=True):
            if have >= 0 and have != want:
                raise CompilerError(
                    f"{source}: input {info.name!r} is fixed at "
                    f"{','.join(map(str, dims))}; --input-shape cannot change it"
                )
    tensor_type = info.type.tensor_type
    tensor_type.shape.Clear()
    for d in shape:
        tensor_type.shape.dim.add().dim_value = d


def _dims(info: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    """Dimensions with -1 for unknown ones; None when the rank is unknown."""
    tensor_type = info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)


def infer_tensor_infos(model: onnx.ModelProto, source: str) -> dict[str, TensorInfo]:
    """Element type and static shape of every tensor onnx's inference can resolve."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and assorted RuntimeErrors
        text = str(exc).strip().splitlines()
        raise CompilerError(
            f"{source}: shape inference failed: {text[0] if text else exc}"
        ) from None
    graph = inferred.graph
    infos: dict[str, TensorInfo] = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        if info.type.HasField("tensor_type"):
            dims = _dims(info)
            static = dims if dims is not None and all(d >= 0 for d in dims) else None
            infos[info.name] = TensorInfo(info.type.tensor_type.elem_type, static)
    for tensor in graph.initializer:
        infos[tensor.name] = TensorInfo(tensor.data_type, tuple(tensor.dims))
    return infos


def _article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
