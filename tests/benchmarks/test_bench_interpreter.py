"""Benchmarks (pytest-benchmark; no timed asserts): import time, and reference-interpreter
time per inference as a ratio to onnxruntime measured in the same run.

    pytest tests/benchmarks --benchmark-enable -s

Under the default `--benchmark-disable` each benchmark runs once as a smoke test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import onnx
import pytest

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from tests.zoo import BY_NAME, model_path, real_input

BENCH_MODELS = ["resnet18_224", "mobilenetv2_224", "yolov8n_like_320"]


def min_seconds(fn: Callable[[], object], repeat: int = 10) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ort_session(path):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        onnx.load(path).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("name", BENCH_MODELS)
def test_import_time(benchmark, name: str) -> None:
    path = model_path(BY_NAME[name])
    benchmark.group = "import"
    model = benchmark(import_onnx, path)
    assert model.outputs


@pytest.mark.parametrize("name", BENCH_MODELS)
def test_interpreter_vs_onnxruntime(benchmark, name: str, capsys) -> None:
    zoo_model = BY_NAME[name]
    path = model_path(zoo_model)
    interpreter = Interpreter(import_onnx(path))
    feeds = {interpreter.input_specs[0].name: real_input(zoo_model)}
    benchmark.group = "interpreter"
    benchmark(interpreter.run, feeds)
    if benchmark.disabled:
        return
    session = ort_session(path)
    ort_s = min_seconds(lambda: session.run(None, feeds))
    ours_s = benchmark.stats.stats.min
    benchmark.extra_info.update(ort_ms=ort_s * 1e3, ratio_to_ort=ours_s / ort_s)
    with capsys.disabled():
        print(
            f"\n{name}: interpreter {ours_s * 1e3:.1f} ms, onnxruntime {ort_s * 1e3:.1f} ms, "
            f"ratio {ours_s / ort_s:.2f}x"
        )
