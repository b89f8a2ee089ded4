"""Single-layer ONNX models (onnx.helper) built into containers, for the cycle model's tests
and for `tests/benchmarks/perf_zoo.py`: the layers of RKNN's per-layer table (fig 8-3,
research/sdk_inventory.md §4.1) and small convolutions worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from backends.container import write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions

OPSET = 13


def conv_model(shape: tuple[int, int, int, int], kernels: int, kernel: int, stride: int = 1,
               group: int = 1, seed: int = 0) -> onnx.ModelProto:  # fmt: skip
    """x [N, C, H, W] -> Conv (kernel x kernel, `stride`, same padding) -> y."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    weights = rng.normal(0, 0.1, (kernels, channels // group, kernel, kernel)).astype(np.float32)
    bias = rng.normal(0, 0.1, kernels).astype(np.float32)
    pad = kernel // 2
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="/layer/Conv",
                            kernel_shape=[kernel, kernel], strides=[stride, stride],
                            pads=[pad] * 4, group=group)  # fmt: skip
    out_h, out_w = (
        (shape[2] + 2 * pad - kernel) // stride + 1,
        (shape[3] + 2 * pad - kernel) // stride + 1,
    )
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], kernels, out_h, out_w])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def binary_model(op: str, shape: tuple[int, int, int, int], seed: int = 0) -> onnx.ModelProto:
    """x [N, C, H, W] -> two 1x1 Convs a, b -> Add (or Concat on channels) -> y: the binary
    op reads two NPU tensors, as inside a network (on two model inputs it would stay float
    on the CPU); a and b are outputs too, so that the add is not fused into a convolution."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    inits, nodes = [], []
    for branch in ("a", "b"):
        w = rng.normal(0, 0.1, (channels, channels, 1, 1)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w_{branch}"))
        nodes.append(helper.make_node("Conv", ["x", f"w_{branch}"], [branch],
                                      name=f"/{branch}/Conv", kernel_shape=[1, 1]))  # fmt: skip
    out = list(shape)
    attrs = {}
    if op == "Concat":
        out[1] *= 2
        attrs["axis"] = 1
    nodes.append(helper.make_node(op, ["a", "b"], ["y"], name=f"/layer/{op}", **attrs))
    graph = helper.make_graph(
        nodes, op.lower(),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)]
        + [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape)) for n in "ab"],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def build(model: onnx.ModelProto, folder: Path, name: str, samples: int = 2,
          target: str = "rk3588") -> Path:  # fmt: skip
    """`model` quantized int8 on `samples` random inputs and built: the container's path."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / f"{name}.onnx"
    onnx.save(model, onnx_path)
    rng = np.random.default_rng(1)
    lines = []
    for sample in range(samples):
        paths = []
        for value in model.graph.input:
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
            path = folder / f"{name}_{value.name}_{sample}.npy"
            np.save(path, rng.uniform(-1, 1, dims).astype(np.float32))
            paths.append(str(path))
        lines.append(" ".join(paths))
    dataset = folder / f"{name}_dataset.txt"
    dataset.write_text("\n".join(lines) + "\n")
    options = QuantizeOptions(progress=False, target=target)
    result = build_model(import_onnx(onnx_path), dataset, options)
    path = folder / f"{name}.rknn"
    write_container(result.container, path)
    return path


class _Graph:
    """Nodes and initializers of a network being written with onnx.helper."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"/{kind}_{self.count}"

    def conv(self, x: str, cin: int, cout: int, kernel: int, stride: int = 1,
             relu: bool = True) -> str:  # fmt: skip
        name = self.name("conv")
        scale = np.sqrt(2.0 / (cin * kernel * kernel))  # He init: activations stay in range
        w = self.rng.normal(0, scale, (cout, cin, kernel, kernel)).astype(np.float32)
        b = np.zeros(cout, np.float32)
        self.inits += [
            numpy_helper.from_array(w, f"{name}_w"),
            numpy_helper.from_array(b, f"{name}_b"),
        ]
        self.nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_y"],
                                           name=f"{name}/Conv", kernel_shape=[kernel, kernel],
                                           strides=[stride, stride], pads=[kernel // 2] * 4))  # fmt: skip
        return self.op("Relu", [f"{name}_y"]) if relu else f"{name}_y"

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        name = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [f"{name}_y"], name=f"{name}/{op_type}",
                                           **attrs))  # fmt: skip
        return f"{name}_y"


def resnet50_model(size: int = 224, seed: int = 0) -> onnx.ModelProto:
    """ResNet-50 (bottlenecks 3, 4, 6, 3; stride on the 3x3 convolution; BN folded into the
    convolutions; random He-initialized weights): the convolution shapes of rknn_model_zoo's
    resnet50-v2-7, in the post-activation layout (v2's pre-activation BN + ReLU, which a
    compiler folds or fuses, are left out)."""
    g = _Graph(seed)
    x = g.conv("images", 3, 64, 7, 2)
    x = g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512))):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            y = g.conv(x, cin, width, 1)
            y = g.conv(y, width, width, 3, stride)
            y = g.conv(y, width, width * 4, 1, relu=False)
            skip = g.conv(x, cin, width * 4, 1, stride, relu=False) if block == 0 else x
            x = g.op("Relu", [g.op("Add", [y, skip])])
            cin = width * 4
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    w = g.rng.normal(0, 0.02, (1000, cin)).astype(np.float32)
    g.inits.append(numpy_helper.from_array(w, "fc_w"))
    logits = g.op("Gemm", [x, "fc_w"], transB=1)
    graph = helper.make_graph(
        g.nodes, "resnet50",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(logits, TensorProto.FLOAT, [1, 1000])], g.inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
