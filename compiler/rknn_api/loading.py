"""`RKNN.load_onnx(model, inputs, input_size_list, input_initial_val, outputs)` ->
`compiler.frontend.import_onnx`.

- `input_size_list` pins input shapes: by the names in `inputs`, or the graph's inputs in
  order when `inputs` is not given.
- `inputs` / `outputs` naming tensors other than the graph's own inputs / outputs cut the
  graph there (RKNN's sub-graph conversion), with `onnx.utils.Extractor`.
- `input_initial_val` (inputs fixed to constants) is refused unless every entry is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx.utils

from compiler.frontend import import_onnx
from compiler.ir_model import IRModel
from runtime.api_support import ApiError


def load_onnx_model(
    model: str | Path,
    inputs: Sequence[str] | None = None,
    input_size_list: Sequence[Sequence[int]] | None = None,
    input_initial_val: Sequence[np.ndarray | None] | None = None,
    outputs: Sequence[str] | None = None,
) -> IRModel:
    if input_initial_val is not None and any(v is not None for v in input_initial_val):
        raise ApiError("input_initial_val (inputs fixed to constants) is not supported yet")
    path = Path(model)
    if not path.is_file():
        raise ApiError(f"{model}: no such file")
    graph_inputs, graph_outputs = _graph_io(path)
    names = list(inputs) if inputs is not None else graph_inputs
    shapes = _shapes(names, input_size_list, inputs is not None)
    cut_inputs = inputs is not None and set(inputs) != set(graph_inputs)
    cut_outputs = outputs is not None and set(outputs) != set(graph_outputs)
    if not (cut_inputs or cut_outputs):
        return import_onnx(path, shapes)
    sub = _extract(path, names, list(outputs) if outputs is not None else graph_outputs)
    return import_onnx(sub, shapes)


def _graph_io(path: Path) -> tuple[list[str], list[str]]:
    """The graph's input names (initializers left out) and output names."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise ApiError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    constants = {t.name for t in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in constants]
    return inputs, [o.name for o in proto.graph.output]


def _shapes(
    names: list[str], sizes: Sequence[Sequence[int]] | None, named: bool
) -> dict[str, tuple[int, ...]] | None:
    if sizes is None:
        if named:
            raise ApiError("inputs is set: input_size_list must give their shapes (as RKNN)")
        return None
    if len(sizes) != len(names):
        raise ApiError(
            f"input_size_list gives {len(sizes)} shapes for {len(names)} inputs "
            f"({', '.join(repr(n) for n in names)})"
        )
    return {name: tuple(int(d) for d in size) for name, size in zip(names, sizes, strict=True)}


def _extract(path: Path, inputs: list[str], outputs: list[str]) -> onnx.ModelProto:
    """The sub-graph between `inputs` and `outputs` (tensor names)."""
    try:
        # the cut points need their types: value_info from shape inference
        proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        extractor = onnx.utils.Extractor(proto)
        return extractor.extract_model(inputs, outputs)
    except Exception as exc:  # onnx reports unknown names as KeyError / ValueError
        raise ApiError(
            f"{path}: cannot cut the graph at inputs {inputs} and outputs "
            f"{outputs}: {type(exc).__name__}: {exc}"
        ) from None
