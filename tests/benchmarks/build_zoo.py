"""`build` on every zoo model for a target at int8: ops on the NPU / CPU, NPU tasks, weight
and internal memory, build wall time per stage; the NPU ops code generation does not cover
yet (placed on the CPU by `build`) are counted. Prints a table; not a pass/fail test.

    python tests/benchmarks/build_zoo.py [--models a,b] [--samples 20] [--target rk3588]

The issue's speed target: `build` of resnet18_224, mobilenetv2_224 and yolov8n_like_320 with
a 20-image dataset under 15 s each on this 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backends.container import container_bytes
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions
from tests.benchmarks.quantization_accuracy import dataset_for, preprocess
from tests.zoo import MODELS, model_path


def row(zm, samples: int, target: str, folder: Path) -> str:
    start = time.perf_counter()
    model = import_onnx(str(model_path(zm)))
    options = QuantizeOptions(preprocess=preprocess(zm), progress=False, target=target)
    result = build_model(model, dataset_for(zm, samples, folder), options)
    size = len(container_bytes(result.container))
    total = time.perf_counter() - start
    s = result.summary()
    stages = " / ".join(f"{seconds:.1f}" for _, seconds in result.stages)
    return (f"| {zm.name} | {s['npu_ops']} / {s['cpu_ops']} | {s['tasks']} | "
            f"{len(s['not_generated'])} | {s['weight_bytes'] / 1024:.0f} KiB | "
            f"{s['internal_bytes'] / 1024:.0f} KiB | {size / 1024:.0f} KiB | {total:.1f} s "
            f"({stages}) |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    parser.add_argument("--samples", type=int, default=20, help="calibration samples")
    parser.add_argument("--target", default="rk3588")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    print("| model | NPU / CPU ops | tasks | of which CPU for lack of code generation | weights | internal | "
          "container | build time (quantize / passes / codegen / container) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for zm in [m for m in MODELS if not wanted or m.name in wanted]:
            try:
                print(row(zm, args.samples, args.target, Path(tmp)), flush=True)
            except Exception as exc:  # report, do not stop the table
                print(f"| {zm.name} | failed: {type(exc).__name__}: {exc} |", flush=True)


if __name__ == "__main__":
    main()
