"""Pre-quantized models on the zoo: onnxruntime's `quantize_static` QDQ model of each zoo
model (per-channel int8 weights, int8 activations, MinMax on the same calibration samples)
compiled by us with its own parameters (no dataset), run on the `npu` reference executor,
against onnxruntime running that QDQ model. Prints a table; not a pass/fail test.

    python tests/benchmarks/qdq_import.py [--models a,b] [--samples 4]

Columns: cosine and max abs error of the first output, ours vs onnxruntime's QDQ; both
against the float model; ops on the NPU / left float.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.calibration import load_calibration_set
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from tests.benchmarks.quantization_accuracy import cosine, dataset_for, preprocess
from tests.helpers.ort_qdq import ort_quantize_static
from tests.zoo import MODELS, ZooModel, model_path, real_input


def row(zm: ZooModel, samples: int, folder: Path) -> str:
    import onnxruntime as ort

    float_model = import_onnx(str(model_path(zm)))
    dataset = dataset_for(zm, samples, folder)
    calibration = list(load_calibration_set(dataset, float_model.inputs, preprocess(zm)))
    qdq = ort_quantize_static(model_path(zm), calibration, folder / f"{zm.name}.qdq.onnx")
    name, x = float_model.inputs[0].name, real_input(zm)
    model = import_onnx(str(qdq))
    result = quantize_model(model, None, QuantizeOptions(progress=False))
    placement = next((n for n in result.report.notes if "ops on the NPU" in n), "")
    counts = re.findall(r"\d+", placement)
    ours = next(iter(Interpreter(model).run({name: x}).outputs.values()))
    theirs = ort.InferenceSession(str(qdq)).run(None, {name: x})[0]
    reference = ort.InferenceSession(str(model_path(zm))).run(None, {name: x})[0]
    err = float(np.abs(ours - theirs).max())
    return (f"| {zm.name} | {cosine(ours, theirs):.5f} / {err:.3g} | "
            f"{cosine(ours, reference):.4f} | {cosine(theirs, reference):.4f} | "
            f"{'/'.join(counts[:2])} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    parser.add_argument("--samples", type=int, default=4, help="calibration samples")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    print("| model | ours vs ORT QDQ (cos / max err) | ours vs float | ORT QDQ vs float "
          "| NPU/float ops |")  # fmt: skip
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for zm in [m for m in MODELS if not wanted or m.name in wanted]:
            try:
                print(row(zm, args.samples, Path(tmp)), flush=True)
            except Exception as exc:  # report, do not stop the table
                print(f"| {zm.name} | failed: {type(exc).__name__}: {exc} | | | |", flush=True)


if __name__ == "__main__":
    main()
