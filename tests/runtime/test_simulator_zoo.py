"""The zoo's digit models, quantized on their calibration sets, through the backend passes and
code generation: every convolution, pooling, the flatten (a PPU copy into a row-major
tensor) and the fully connected layer run on the simulator and match the `npu` reference
executor bit for bit; the classifier's output also matches what `compiler.interpreter`
reports for the same IR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.codegen import generate
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.pipeline import parse_pipeline, run_pipeline
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import numerics as nx
from tests.runtime.sim_harness import BACKEND, assert_exact, simulate
from tests.zoo import ZOO

MODELS = {"digits_cnn": ("data16", 7), "digits_resnet": ("data32", 21)}
CALIBRATION_SAMPLES = 16  # of the set's list: calibration time is not what is tested here


def calibration_subset(folder: Path, tmp_path: Path) -> Path:
    lines = (folder / "dataset.txt").read_text().split()[:CALIBRATION_SAMPLES]
    listing = tmp_path / "dataset.txt"
    listing.write_text("".join(f"{folder / line}\n" for line in lines))
    return listing


@pytest.mark.parametrize("name", sorted(MODELS))
def test_digit_models_match_the_reference(name, tmp_path):
    data, generated = MODELS[name]
    path = ZOO / "digits" / f"{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    model = import_onnx(path)
    dataset = calibration_subset(ZOO / "digits" / data, tmp_path)
    quantize_model(model, dataset, QuantizeOptions(progress=False))
    run_pipeline(model, parse_pipeline(BACKEND))
    program = generate(model)
    assert program.unsupported == []
    images = np.load(ZOO / "digits" / data / "test_x.npy")
    spec = model.inputs[0]
    for index in (0, 7):
        feed = {spec.name: images[index : index + 1].astype(spec.dtype)}
        results = simulate(model, feed, program)
        assert_exact(results, expected_ops=generated)
        # the classifier, simulated, is what the interpreter computes for the same IR
        fc = results[-1]
        assert fc.op.name == "npu.fully_connected"
        reals = Interpreter(model).run(feed, capture=True).tensors[fc.op.output_names[0]]
        np.testing.assert_array_equal(nx.dequantize(fc.got, fc.op.quant.params()), reals)
