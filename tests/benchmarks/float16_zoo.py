"""float16 builds of the zoo (RKNN's `do_quantization=False`): how much runs on the NPU, the
container on the simulator against the reference executor, the output against the float
model, and the cycle model's time. Prints a table; not a pass/fail test.

    python tests/benchmarks/float16_zoo.py [--models a,b]

Columns: convolutions with NPU tasks / all MAC-array ops (convolutions, transposed
convolutions, fully connected), CPU ops (with the most frequent kinds), whether the
simulated container equals the reference executor bit for bit on the zoo's real input, the
cosine of the first output against the float model there, and the predicted time on one
core (the float16 MAC array is an assumption of the chip record: half of int8's).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backends.container import read_container
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions
from runtime.perf import perf_report
from tests.benchmarks.quantization_accuracy import cosine, first_output
from tests.helpers.containers import run_both
from tests.zoo import MODELS, ZooModel, model_path, real_input

MAC_OPS = ("npu.conv2d", "npu.conv_transpose", "npu.fully_connected")


def row(zm: ZooModel, folder: Path) -> str:
    runs = run_both(zm, None, QuantizeOptions(dtype="f16", progress=False), real_input(zm),
                    folder)  # fmt: skip
    mac = runs.ops(*MAC_OPS)
    on_npu = [op for op in mac if op["target"] == "npu" and op["tasks"][1] > 0]
    cpu = Counter(op["op"] for op in runs.session.metadata["ops"] if op["target"] == "cpu")
    exact = all(np.array_equal(runs.simulated[name], array)
                for name, array in runs.reference.items())  # fmt: skip
    (spec,) = runs.session.metadata["inputs"]
    floating = Interpreter(import_onnx(model_path(zm))).run({spec["name"]: real_input(zm)})
    similarity = cosine(first_output(runs.simulated), first_output(floating.outputs))
    time_ms = perf_report(read_container(runs.path)).total_time_us / 1000
    kinds = ", ".join(f"{kind.split('.')[-1]} {n}" for kind, n in cpu.most_common(3))
    return (f"| {zm.name} | {len(on_npu)} / {len(mac)} | {sum(cpu.values())} ({kinds}) | "
            f"{'yes' if exact else 'NO'} | {similarity:.6f} | {time_ms:.2f} ms |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    print("| model | MAC ops on the NPU | CPU ops (most frequent) | bit-exact | cosine vs float "
          "| predicted time |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for zm in MODELS:
            if not wanted or zm.name in wanted:
                print(row(zm, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
