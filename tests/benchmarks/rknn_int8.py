"""Our int8 against RKNN-Toolkit2's on exactly the arrays its peer run used. Prints a table;
not a pass/fail test.

    python tests/benchmarks/rknn_int8.py --peer-runs /work/peer/runs [--models a,b]

`--peer-runs` is the output folder of `../shared/research/rknn_peer`'s proposal runner
(RKNN-Toolkit2 2.5.0, rk3588, w8a8 `normal` per channel, calibrated on the 23 zoo images):
per model `<stem>/data/NNNN.npy` (the images as it read them: cv2, resized, raw 0..255, the
model's channel order), `<stem>/data/dataset.txt` and `<stem>/result.json` (its simulator's
cosine per image). We calibrate on the same dataset.txt (mean/std in the model, as RKNN) with
weights rounded to nearest and by GPTQ, and take the cosine of output 0 against our float
interpreter on the array of the model's zoo image, which RKNN measured against onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.calibration import InputPreprocess, channel_axis
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from tests.benchmarks.quantization_accuracy import cosine, first_output
from tests.zoo import MODELS, ZooModel, model_path

ROUNDINGS = ("nearest", "gptq")


def measure(zm: ZooModel, run: Path) -> str:
    result = json.loads((run / "result.json").read_text())
    per_image = result["int8"]["per_image"]
    raw = np.load(run / "data" / f"{list(per_image).index(zm.image):04d}.npy").astype(np.float32)
    shape = [1] * raw.ndim
    shape[channel_axis(raw.shape)] = -1
    mean, std = np.array(zm.mean, np.float32), np.array(zm.std, np.float32)
    normalized = ((raw - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)
    want = first_output(Interpreter(import_onnx(str(model_path(zm)))).run(
        {result["input"]: normalized}).outputs)  # fmt: skip
    cells = []
    for rounding in ROUNDINGS:
        model = import_onnx(str(model_path(zm)))
        # the arrays are in the model's channel order already: no RGB -> BGR here
        options = QuantizeOptions(preprocess=[InputPreprocess(list(zm.mean), list(zm.std), False)],
                                  progress=False, weight_rounding=rounding)  # fmt: skip
        quantize_model(model, run / "data" / "dataset.txt", options)
        got = first_output(Interpreter(model).run({result["input"]: raw}).outputs)
        cells.append(f"{cosine(got, want):.4f}")
    return f"| {zm.name} | " + " | ".join(cells) + f" | {per_image[zm.image][0]:.4f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-runs", type=Path, required=True, help="the peer runner's RUNS")
    parser.add_argument("--models", default="", help="comma-separated zoo names (default all)")
    args = parser.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    print("| model | ours (nearest) | ours (gptq) | RKNN-Toolkit2 |")
    print("|---|---|---|---|")
    for zm in MODELS:
        run = args.peer_runs / Path(zm.path).stem
        if zm.image is None or (wanted and zm.name not in wanted):
            continue
        if not (run / "result.json").exists():
            print(f"| {zm.name} | no peer run in {run} | | |")
            continue
        print(measure(zm, run), flush=True)


if __name__ == "__main__":
    main()
