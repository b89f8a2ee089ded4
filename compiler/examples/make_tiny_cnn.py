"""Write `tiny_cnn.onnx` (opset 13, seeded random weights) and a sample input.

A 3x32x32 -> 10 classifier with the ops deployment models are made of: Conv +
BatchNormalization + Relu, a depthwise Conv with Clip (ReLU6), a residual Add, MaxPool,
GlobalAveragePool, Flatten, Gemm and Softmax. Run `python -m compiler.examples.make_tiny_cnn`
to regenerate (the files are committed; the weights are not trained).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.examples import TINY_CNN, TINY_CNN_INPUT


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int, scale: float = 0.2) -> onnx.TensorProto:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [
        weight("stem.w", 16, 3, 3, 3),
        weight("stem.b", 16),
        numpy_helper.from_array((1 + 0.1 * rng.standard_normal(16)).astype(np.float32), "bn.scale"),
        weight("bn.bias", 16, scale=0.1),
        weight("bn.mean", 16, scale=0.1),
        numpy_helper.from_array((1 + rng.random(16)).astype(np.float32), "bn.var"),
        weight("dw.w", 16, 1, 3, 3, scale=0.5),
        weight("dw.b", 16, scale=0.1),
        weight("pw.w", 16, 16, 1, 1, scale=0.3),
        numpy_helper.from_array(np.array(0.0, np.float32), "relu6.min"),
        numpy_helper.from_array(np.array(6.0, np.float32), "relu6.max"),
        weight("fc.w", 10, 16, scale=0.3),
        weight("fc.b", 10, scale=0.1),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["input", "stem.w", "stem.b"],
            ["stem"],
            "stem_conv",
            pads=[1, 1, 1, 1],
            strides=[2, 2],
        ),
        helper.make_node(
            "BatchNormalization",
            ["stem", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
            ["stem_bn"],
            "stem_bn",
        ),
        helper.make_node("Relu", ["stem_bn"], ["stem_relu"], "stem_relu"),
        helper.make_node(
            "Conv", ["stem_relu", "dw.w", "dw.b"], ["dw"], "dw_conv", pads=[1, 1, 1, 1], group=16
        ),
        helper.make_node("Clip", ["dw", "relu6.min", "relu6.max"], ["dw_relu6"], "dw_relu6"),
        helper.make_node("Conv", ["dw_relu6", "pw.w"], ["pw"], "pw_conv"),
        helper.make_node("Add", ["pw", "stem_relu"], ["residual"], "residual_add"),
        helper.make_node(
            "MaxPool", ["residual"], ["pool"], "pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("GlobalAveragePool", ["pool"], ["gap"], "gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], "softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rknpu-compiler example"
    )
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main() -> None:
    onnx.save(build(), TINY_CNN)
    sample = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    np.save(TINY_CNN_INPUT, sample)
    print(f"wrote {TINY_CNN} and {TINY_CNN_INPUT}")


if __name__ == "__main__":
    main()
