"""Quantization accuracy on the zoo: ours (normal / mmse / kl_divergence, int8, per-channel
weights) against the float model, beside onnxruntime's `quantize_static` (QDQ, per-channel,
MinMax and Entropy) calibrated on the same samples. Prints a table; not a pass/fail test.

    python tests/benchmarks/quantization_accuracy.py [--models a,b] [--samples 10]

Per model: cosine and max abs error of the first output against the float model (our
interpreter for ours, onnxruntime float for onnxruntime's) on the zoo's real input, the mean
and min cosine over held-out inputs (zoo images after the calibration ones; digits: 20 test
images); for the digits models also top-1 on the 360-image test split. onnxruntime runs
with fair settings (tests/helpers/ort_qdq.py: opset >= 13 for per-channel, Entropy with
2048 bins).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.calibration import InputPreprocess, channel_axis, load_calibration_set
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from tests.helpers.ort_qdq import ort_quantize_static
from tests.zoo import MODELS, ZooModel, model_path, real_input, zoo_file

ALGORITHMS = ("normal", "mmse", "kl_divergence")
HELD_OUT_DIGITS = 20


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


@dataclass
class Score:
    """Cosine and max abs error of the first output on the zoo's real input ("bench"), the
    mean and min cosine over held-out inputs (images the calibration did not see; digits:
    test images), digits top-1 on the 360-image test split, quantize time."""

    bench: float
    error: float
    held_mean: float
    held_min: float
    top1: float | None = None
    seconds: float = 0.0

    def cell(self) -> str:
        return (f"{self.bench:.4f} / {self.error:.3g} · {self.held_mean:.4f} "
                f"({self.held_min:.4f})")  # fmt: skip


def held_out(zm: ZooModel, samples: int, inputs: list) -> list[np.ndarray]:
    """Normalised inputs the calibration did not use: the zoo images after the first
    `samples` (digits: the first HELD_OUT_DIGITS test images)."""
    if zm.image is None:
        xs = np.load(zoo_file(f"digits/{_digits(zm)}/test_x.npy")).astype(np.float32)
        return [xs[i : i + 1] for i in range(HELD_OUT_DIGITS)]
    listing = zoo_file("images/dataset.txt")
    feeds = list(load_calibration_set(listing, inputs, preprocess(zm)))[samples:]
    return [next(iter(feed.values())) for feed in feeds]


def score(run: Callable[[np.ndarray], np.ndarray], reference: Callable[[np.ndarray], np.ndarray],
          zm: ZooModel, others: list[np.ndarray]) -> Score:  # fmt: skip
    x = real_input(zm)
    got, want = run(x), reference(x)
    held = [cosine(run(o), reference(o)) for o in others]
    return Score(cosine(got, want), float(np.abs(got - want).max()), float(np.mean(held)),
                 float(np.min(held)))  # fmt: skip


def ours(zm: ZooModel, algorithm: str, dataset: Path, others: list[np.ndarray]) -> Score:
    model = import_onnx(str(model_path(zm)))
    start = time.perf_counter()
    options = QuantizeOptions(algorithm=algorithm, preprocess=preprocess(zm), progress=False)
    quantize_model(model, dataset, options)
    elapsed = time.perf_counter() - start
    quantized = Interpreter(model)
    result = score_quantized(zm, quantized, others)
    result.seconds = elapsed
    if zm.image is None:
        result.top1 = digits_top1(zm, quantized, model.inputs[0].name)
    return result


def score_quantized(zm: ZooModel, quantized: Interpreter, others: list[np.ndarray]) -> Score:
    """`score` of our quantized model of `zm` (it takes raw pixels) against the float model,
    both on the reference interpreter."""
    float_model = Interpreter(import_onnx(str(model_path(zm))))
    name = float_model.model.inputs[0].name
    return score(lambda x: first_output(quantized.run({name: raw_input(zm, x)}).outputs),
                 lambda x: first_output(float_model.run({name: x}).outputs), zm, others)  # fmt: skip


def first_output(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


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
                    others: list[np.ndarray]) -> Score:  # fmt: skip
    import onnxruntime as ort

    model = import_onnx(str(model_path(zm)))
    name = model.inputs[0].name
    samples = list(load_calibration_set(dataset, model.inputs, preprocess(zm)))
    out = ort_quantize_static(model_path(zm), samples, folder / f"{zm.name}_{method}.qdq.onnx",
                              method)  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    float_session = ort.InferenceSession(str(model_path(zm)), options)
    q_session = ort.InferenceSession(str(out), options)
    result = score(lambda x: q_session.run(None, {name: x})[0],
                   lambda x: float_session.run(None, {name: x})[0], zm, others)  # fmt: skip
    if zm.image is None:
        xs = np.load(zoo_file(f"digits/{_digits(zm)}/test_x.npy")).astype(np.float32)
        ys = np.load(zoo_file(f"digits/{_digits(zm)}/test_y.npy"))
        hits = sum(int(np.argmax(q_session.run(None, {name: xs[i : i + 1]})[0]) == ys[i])
                   for i in range(len(xs)))  # fmt: skip
        result.top1 = 100.0 * hits / len(xs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    parser.add_argument("--samples", type=int, default=10, help="calibration samples")
    parser.add_argument("--no-onnxruntime", action="store_true")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    models = [m for m in MODELS if not wanted or m.name in wanted]
    methods = () if args.no_onnxruntime else ("MinMax", "Entropy")
    columns = [*ALGORITHMS, *(f"ORT {m}" for m in methods)]
    print("Each cell: bench cosine / max abs error · held-out mean cosine (min)\n")
    print("| model | " + " | ".join(columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for zm in models:
            dataset = dataset_for(zm, args.samples, folder)
            others = held_out(zm, args.samples, import_onnx(str(model_path(zm))).inputs)
            scores: list[Score | None] = [ours(zm, a, dataset, others) for a in ALGORITHMS]
            for method in methods:
                try:
                    scores.append(onnxruntime_qdq(zm, method, dataset, folder, others))
                except Exception as exc:  # report, do not stop the table
                    print(f"  (onnxruntime {method} failed on {zm.name}: {exc})", flush=True)
                    scores.append(None)
            cells = ["failed" if sc is None else sc.cell() for sc in scores]
            print(f"| {zm.name} | " + " | ".join(cells) + " |", flush=True)
            if zm.image is None:
                tops = ["-" if sc is None or sc.top1 is None else f"{sc.top1:.2f} %"
                        for sc in scores]  # fmt: skip
                print(f"| {zm.name} top-1 (float {float_top1(zm):.2f} %) | "
                      + " | ".join(tops) + " |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
