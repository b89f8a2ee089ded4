"""Benchmark (pytest-benchmark; no timed asserts): wall time of `float-pipeline{level=3}` on
the big zoo models and a Paddle export (target: under 1 s each).

    pytest tests/benchmarks/test_bench_passes.py --benchmark-enable
"""

from __future__ import annotations

import pytest

from compiler.frontend import import_onnx
from compiler.pipeline import parse_pipeline, run_pipeline
from tests.passes.helpers import clone
from tests.zoo import BY_NAME, model_path

# ppocrv4_det is a Paddle export (weights in Constant nodes)
PIPELINE_MODELS = ["resnet18_224", "mobilenetv2_224", "yolov8n_like_320", "ppocrv4_det"]


@pytest.mark.parametrize("name", PIPELINE_MODELS)
def test_float_pipeline_time(benchmark, name: str) -> None:
    imported = import_onnx(model_path(BY_NAME[name]))
    passes = parse_pipeline("float-pipeline{level=3}")
    benchmark.group = "float-pipeline level 3"

    def optimize() -> object:
        model = clone(imported)  # each round a fresh copy (the copy is timed too: ~1 ms)
        run_pipeline(model, passes)
        return model

    assert benchmark(optimize).outputs == imported.outputs
