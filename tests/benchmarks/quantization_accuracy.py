"""Quantization accuracy on the zoo: ours (normal / mmse / kl_divergence, int8, per-channel
weights) against the float model, beside onnxruntime's `quantize_static` (QDQ, per-channel,
MinMax and Entropy) calibrated on the same samples. Prints a table; not a pass/fail test.

    python tests/benchmarks/quantization_accuracy.py [--models a,b] [--samples 10]

Per model: cosine and max abs error of the first output against the float model (our
interpreter for ours, onnxruntime float for onnxruntime's), on the zoo's real input; for
the digits models also top-1 on the 360-image test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.calibration import InputPreprocess, channel_axis, load_calibration_set
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from tests.zoo import MODELS, ZooModel, model_path, real_input, zoo_file

ALGORITHMS = ("normal", "mmse", "kl_divergence")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def dataset_for(zm: ZooModel, samples: int, folder: Path) -> Path:
    """A dataset.txt of the first `samples` calibration samples, absolute paths."""
    source = zoo_file("images/dataset.txt" if zm.image else f"digits/{_digits(zm)}/dataset.txt")
    lines = [ln.strip() for ln in source.read_text().splitlines() if ln.strip()][:samples]
    target = folder / f"{zm.name}_dataset.txt"
    target.write_text("\n".join(str(source.parent / ln) for ln in lines) + "\n")
    return target


def _digits(zm: ZooModel) -> str:
    return "data32" if "resnet" in zm.name else "data16"


def preprocess(zm: ZooModel) -> list[InputPreprocess] | None:
    if zm.image is None:
        return None
    return [InputPreprocess(list(zm.mean), list(zm.std), zm.bgr)]


def raw_input(zm: ZooModel, normalized: np.ndarray) -> np.ndarray:
    """The raw pixels the quantized model takes (it normalizes inside)."""
    if zm.image is None:
        return normalized
    axis = channel_axis(normalized.shape)
    shape = [1] * normalized.ndim
    shape[axis] = -1
    std, mean = np.array(zm.std).reshape(shape), np.array(zm.mean).reshape(shape)
    return (normalized * std + mean).astype(np.float32)


def ours(zm: ZooModel, algorithm: str, dataset: Path) -> tuple[float, float, float | None, float]:
    model = import_onnx(str(model_path(zm)))
    float_model = import_onnx(str(model_path(zm)))
    name = model.inputs[0].name
    x = real_input(zm)
    reference = Interpreter(float_model).run({name: x}).outputs
    start = time.perf_counter()
    options = QuantizeOptions(algorithm=algorithm, preprocess=preprocess(zm), progress=False)
    quantize_model(model, dataset, options)
    elapsed = time.perf_counter() - start
    quantized = Interpreter(model)
    got = quantized.run({name: raw_input(zm, x)}).outputs
    first = next(iter(reference))
    cos = cosine(got[first], reference[first])
    err = float(np.abs(got[first] - reference[first]).max())
    top1 = digits_top1(zm, quantized, name) if zm.image is None else None
    return cos, err, top1, elapsed


def digits_top1(zm: ZooModel, interpreter: Interpreter, name: str) -> float:
    xs = np.load(zoo_file(f"digits/{_digits(zm)}/test_x.npy")).astype(np.float32)
    ys = np.load(zoo_file(f"digits/{_digits(zm)}/test_y.npy"))
    hits = sum(
        int(np.argmax(next(iter(interpreter.run({name: xs[i : i + 1]}).outputs.values())))
            == ys[i])
        for i in range(len(xs))
    )  # fmt: skip
    return 100.0 * hits / len(xs)


def float_top1(zm: ZooModel) -> float:
    model = import_onnx(str(model_path(zm)))
    return digits_top1(zm, Interpreter(model), model.inputs[0].name)


def onnxruntime_qdq(zm: ZooModel, method: str, dataset: Path, folder: Path,
                    ) -> tuple[float, float, float | None]:  # fmt: skip
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = import_onnx(str(model_path(zm)))
    name = model.inputs[0].name
    samples = list(load_calibration_set(dataset, model.inputs, preprocess(zm)))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(samples)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    out = folder / f"{zm.name}_{method}.qdq.onnx"
    quantize_static(
        str(model_path(zm)), str(out), Reader(), quant_format=QuantFormat.QDQ,
        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax if method == "MinMax"
        else CalibrationMethod.Entropy,
    )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    float_session = ort.InferenceSession(str(model_path(zm)), options)
    q_session = ort.InferenceSession(str(out), options)
    x = real_input(zm)
    reference = float_session.run(None, {name: x})[0]
    got = q_session.run(None, {name: x})[0]
    top1 = None
    if zm.image is None:
        xs = np.load(zoo_file(f"digits/{_digits(zm)}/test_x.npy")).astype(np.float32)
        ys = np.load(zoo_file(f"digits/{_digits(zm)}/test_y.npy"))
        hits = sum(int(np.argmax(q_session.run(None, {name: xs[i : i + 1]})[0]) == ys[i])
                   for i in range(len(xs)))  # fmt: skip
        top1 = 100.0 * hits / len(xs)
    return cosine(got, reference), float(np.abs(got - reference).max()), top1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    parser.add_argument("--samples", type=int, default=10, help="calibration samples")
    parser.add_argument("--no-onnxruntime", action="store_true")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    models = [m for m in MODELS if not wanted or m.name in wanted]
    print("| model | " + " | ".join(ALGORITHMS) + " | ORT MinMax | ORT Entropy |")
    print("|---" * (3 + len(ALGORITHMS)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for zm in models:
            dataset = dataset_for(zm, args.samples, folder)
            cells, tops = [], []
            for algorithm in ALGORITHMS:
                cos, err, top1, seconds = ours(zm, algorithm, dataset)
                cells.append(f"{cos:.4f} / {err:.3g} ({seconds:.1f} s)")
                tops.append(top1)
            ort_cells, ort_tops = [], []
            for method in () if args.no_onnxruntime else ("MinMax", "Entropy"):
                try:
                    cos, err, top1 = onnxruntime_qdq(zm, method, dataset, folder)
                    ort_cells.append(f"{cos:.4f} / {err:.3g}")
                    ort_tops.append(top1)
                except Exception as exc:  # report, do not stop the table
                    ort_cells.append(f"failed: {type(exc).__name__}")
                    ort_tops.append(None)
            print(f"| {zm.name} | " + " | ".join(cells + ort_cells) + " |", flush=True)
            if zm.image is None:
                tops_text = [f"{t:.2f} %" for t in tops] + [
                    "-" if t is None else f"{t:.2f} %" for t in ort_tops]  # fmt: skip
                print(f"| {zm.name} top-1 (float {float_top1(zm):.2f} %) | "
                      + " | ".join(tops_text) + " |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
