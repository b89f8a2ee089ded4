"""How much output cosine int8 activations alone cost: a bound no weight rounding can beat.

For each zoo model, ours (int8, `normal`, per-channel weights, the calibration samples of
`quantization_accuracy.py`) is quantized; every tensor our quantized IR holds as int8 is then
fake-quantized with exactly our parameters in the *float* ONNX model (a QuantizeLinear /
DequantizeLinear pair after it) and onnxruntime runs that model: float weights, float
arithmetic, only our int8 activation grid. Prints a table; not a pass/fail test.

    python tests/benchmarks/activation_bound.py [--models a,b] [--samples 8]

Columns: ours int8 end to end (our interpreter against our float interpreter), the
activations-only model (onnxruntime against onnxruntime float), both on the zoo's real input
and as the mean over held-out inputs, and how many of our int8 tensors exist by name in the
ONNX graph (a tensor fused away inside an op, e.g. a Conv output before its activation, is
not quantized by us either).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu.ops import NpuOp
from tests.benchmarks.quantization_accuracy import (
    dataset_for,
    held_out,
    preprocess,
    score,
    score_quantized,
)
from tests.zoo import MODELS, ZooModel, model_path

HELD_OUT = 6


def int8_activations(model: IRModel) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of every per-tensor int8 result of the quantized IR, by ONNX name."""
    found: dict[str, tuple[float, int]] = {}
    for op in model.main.walk():
        if not isinstance(op, NpuOp) or op.quant.element != "i8":
            continue
        params = op.quant.params()
        if params.axis is not None or not op.output_names:
            continue
        found[op.output_names[0]] = (float(params.scale), int(params.zero_point))
    return found


def fake_quantized(source: onnx.ModelProto, params: dict[str, tuple[float, int]]
                   ) -> tuple[onnx.ModelProto, int]:  # fmt: skip
    """`source` with a QuantizeLinear/DequantizeLinear pair after every tensor of `params`
    (the producer's output is renamed, so readers and graph outputs see the pair's result);
    and how many tensors got one."""
    model = onnx.ModelProto()
    model.CopyFrom(source)
    graph = model.graph
    nodes, count = [], 0
    for name in (i.name for i in graph.input):
        if name in params:
            _rename_inputs(graph, name, f"{name}__fq")
            nodes += _qdq(name, f"{name}__fq", params[name], graph)
            count += 1
    for node in graph.node:
        nodes.append(node)
        for index, name in enumerate(node.output):
            if name in params:
                node.output[index] = f"{name}__f"
                nodes += _qdq(f"{name}__f", name, params[name], graph)
                count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return model, count


def _rename_inputs(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new


def _qdq(source: str, target: str, param: tuple[float, int], graph: onnx.GraphProto
         ) -> list[onnx.NodeProto]:  # fmt: skip
    scale, zero_point = param
    scale_name, zp_name = f"{target}__scale", f"{target}__zp"
    graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), scale_name))
    graph.initializer.append(numpy_helper.from_array(np.array(zero_point, np.int8), zp_name))
    return [
        helper.make_node("QuantizeLinear", [source, scale_name, zp_name], [f"{target}__q"]),
        helper.make_node("DequantizeLinear", [f"{target}__q", scale_name, zp_name], [target]),
    ]


def _opset_at_least_13(model: onnx.ModelProto) -> onnx.ModelProto:
    """QuantizeLinear with an int8 zero point is fine from opset 10; other nodes of old
    models keep their opset, so only the default domain's version is raised when needed."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    if version >= 10:
        return model
    from onnx import version_converter

    return version_converter.convert_version(model, 13)


def measure(zm: ZooModel, samples: int, folder: Path) -> str:
    import onnxruntime as ort

    model = import_onnx(str(model_path(zm)))
    name = model.inputs[0].name
    options = QuantizeOptions(preprocess=preprocess(zm), progress=False)
    quantize_model(model, dataset_for(zm, samples, folder), options)
    params = int8_activations(model)
    source = _opset_at_least_13(onnx.load(str(model_path(zm))))
    fake, count = fake_quantized(source, params)
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = 2
    session_options.log_severity_level = 3  # old exports warn about initializers as inputs
    # no graph rewrites: onnxruntime would otherwise move or drop some pairs (QDQ propagation)
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    float_ort = ort.InferenceSession(source.SerializeToString(), session_options)
    fake_ort = ort.InferenceSession(fake.SerializeToString(), session_options)
    others = held_out(zm, samples, model.inputs)[:HELD_OUT]
    ours_score = score_quantized(zm, Interpreter(model), others)
    bound = score(lambda x: fake_ort.run(None, {name: x})[0],
                  lambda x: float_ort.run(None, {name: x})[0], zm, others)  # fmt: skip
    return (f"| {zm.name} | {ours_score.bench:.4f} · {ours_score.held_mean:.4f} | "
            f"{bound.bench:.4f} · {bound.held_mean:.4f} | {count} / {len(params)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    parser.add_argument("--samples", type=int, default=8, help="calibration samples")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    print("Each cell: cosine on the real input · mean over held-out inputs\n")
    print("| model | ours int8 | int8 activations only (float weights) | tensors |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for zm in MODELS:
            if not wanted or zm.name in wanted:
                print(measure(zm, args.samples, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
