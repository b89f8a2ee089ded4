"""Weight rounding to nearest against GPTQ on the calibration data, on the zoo: int8 (w8a8,
rk3588) and int4 weights with float16 activations (w4a16, rk3576). Prints a table; not a
pass/fail test.

    python tests/benchmarks/weight_rounding.py [--models a,b] [--samples 8]

Each cell: output cosine against the float model on the zoo's real input · mean over
held-out inputs (as `quantization_accuracy.py`), and the quantize time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from tests.benchmarks.quantization_accuracy import (
    dataset_for,
    held_out,
    preprocess,
    score_quantized,
)
from tests.zoo import MODELS, ZooModel, model_path

HELD_OUT = 6
CONFIGS = {  # name: (activation dtype, weight dtype, target)
    "w8a8": ("i8", None, "rk3588"),
    "w4a16": ("f16", "i4", "rk3576"),
}


def measure(zm: ZooModel, config: str, rounding: str, dataset: Path, samples: int) -> str:
    dtype, weight_dtype, target = CONFIGS[config]
    model = import_onnx(str(model_path(zm)))
    options = QuantizeOptions(dtype=dtype, weight_dtype=weight_dtype, target=target,
                              preprocess=preprocess(zm), progress=False,
                              weight_rounding=rounding)  # fmt: skip
    start = time.perf_counter()
    quantize_model(model, dataset, options)
    seconds = time.perf_counter() - start
    result = score_quantized(zm, Interpreter(model), held_out(zm, samples, model.inputs)[:HELD_OUT])
    return f"{result.bench:.4f} · {result.held_mean:.4f} ({seconds:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    parser.add_argument("--samples", type=int, default=8, help="calibration samples")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    columns = [f"{c} {r}" for c in CONFIGS for r in ("nearest", "gptq")]
    print("| model | " + " | ".join(columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for zm in MODELS:
            if wanted and zm.name not in wanted:
                continue
            dataset = dataset_for(zm, args.samples, Path(tmp))
            cells = [measure(zm, c, r, dataset, args.samples)
                     for c in CONFIGS for r in ("nearest", "gptq")]  # fmt: skip
            print(f"| {zm.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
