"""Simulator time per inference against onnxruntime float32, in the same run.

    python tests/benchmarks/simulator_speed.py [--models a,b] [--repeat 5]

Each model is built (int8, rk3588, calibrated on its one real input), loaded once into a
`runtime.session.Session`, and run `--repeat` times on the real input; onnxruntime runs the
original float model on the same input (its default threads). Printed: the median time per
inference of each and their ratio. The issue's target: within 3x of onnxruntime.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import onnxruntime as ort

from backends.container import write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions
from runtime.session import Session
from tests.zoo import BY_NAME, ZooModel, model_path, real_input

DEFAULT_MODELS = "resnet18_224,mobilenetv2_224,yolov8n_like_320"


def median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def container_for(zm: ZooModel, sample: np.ndarray, folder: Path) -> Path:
    np.save(folder / "sample.npy", sample)
    (folder / "dataset.txt").write_text("sample.npy\n")
    result = build_model(import_onnx(model_path(zm)), folder / "dataset.txt",
                         QuantizeOptions(progress=False))  # fmt: skip
    path = folder / f"{zm.name}.rknn"
    write_container(result.container, path)
    return path


def row(zm: ZooModel, repeat: int, folder: Path) -> str:
    sample = real_input(zm)
    session = Session(container_for(zm, sample, folder))
    feed = {session.metadata["inputs"][0]["name"]: sample}
    session.run(feed)  # warm-up: kernels built, memory touched
    simulated = median_seconds(lambda: session.run(feed), repeat)
    ort_session = ort.InferenceSession(str(model_path(zm)), providers=["CPUExecutionProvider"])
    ort_feed = {ort_session.get_inputs()[0].name: sample}
    ort_session.run(None, ort_feed)
    reference = median_seconds(lambda: ort_session.run(None, ort_feed), max(repeat, 20))
    return (f"| {zm.name} | {simulated * 1e3:.0f} ms | {reference * 1e3:.1f} ms | "
            f"{simulated / reference:.0f}x | {len(session.tasks)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated zoo names")
    parser.add_argument("--repeat", type=int, default=5, help="simulator runs per model")
    args = parser.parse_args()
    print("| model | simulator / inference | onnxruntime float32 | ratio | NPU tasks |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(row(BY_NAME[name], args.repeat, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
