"""A small CNN written with onnx.helper, its calibration set and raw samples on disk, built
once per test module for accuracy analysis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.analysis import build_for_analysis
from compiler.build import BuildResult
from compiler.calibration import InputPreprocess
from compiler.frontend import import_onnx
from compiler.ir_model import IRModel
from compiler.quantization.quantize import QuantizeOptions

SHAPE = (1, 3, 8, 8)
MEAN = [120.0, 110.0, 100.0]
STD = [60.0, 55.0, 50.0]


def small_cnn() -> onnx.ModelProto:
    """conv 3x3 + relu -> conv 1x1 + residual add -> global average pool -> flatten -> gemm."""
    rng = np.random.default_rng(7)
    inits = {
        "w1": rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32),
        "b1": rng.normal(0, 0.1, 8).astype(np.float32),
        "w2": rng.normal(0, 0.3, (8, 8, 1, 1)).astype(np.float32),
        "b2": rng.normal(0, 0.1, 8).astype(np.float32),
        "wf": rng.normal(0, 0.5, (4, 8)).astype(np.float32),
        "bf": rng.normal(0, 0.1, 4).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], "conv2"),
        helper.make_node("Add", ["c2", "r1"], ["a2"], "add2"),
        helper.make_node("GlobalAveragePool", ["a2"], ["gap"], "gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def raw_samples(count: int, seed: int, pixels: bool) -> list[np.ndarray]:
    """Raw inputs: 0..255 pixels (for a model built with mean/std) or values around 0."""
    rng = np.random.default_rng(seed)
    if pixels:
        return [rng.integers(0, 256, SHAPE).astype(np.float32) for _ in range(count)]
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(count)]


def write_list(folder: Path, name: str, arrays: list[np.ndarray]) -> Path:
    """A dataset.txt-style list of .npy files."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, array in enumerate(arrays):
        np.save(folder / f"{name}_{k}.npy", array)
        lines.append(f"{name}_{k}.npy")
    path = folder / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Built:
    proto: onnx.ModelProto
    onnx_path: Path
    dataset: Path
    float_model: IRModel
    build: BuildResult
    quantized: IRModel
    samples: list[dict[str, np.ndarray]]
    normalized: bool


def build_small(folder: Path, normalized: bool) -> Built:
    """The small CNN built for rk3588 int8 (with mean/std when `normalized`)."""
    proto = small_cnn()
    onnx_path = folder / "small_cnn.onnx"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, onnx_path)
    dataset = write_list(folder, "calib", raw_samples(6, 1, normalized))
    preprocess = [InputPreprocess(MEAN, STD)] if normalized else None
    options = QuantizeOptions(progress=False, preprocess=preprocess)
    float_model, build, quantized = build_for_analysis(import_onnx(onnx_path), dataset, options)
    samples = [{"x": a} for a in raw_samples(2, 2, normalized)]
    return Built(proto, onnx_path, dataset, float_model, build, quantized, samples, normalized)


def np_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The formula, written out: sum(a*b) / sqrt(sum(a*a) * sum(b*b))."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def np_euclidean(a: np.ndarray, b: np.ndarray) -> float:
    d = np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()
    return float(np.sqrt(np.sum(d * d)))
