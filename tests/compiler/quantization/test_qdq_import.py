"""Pre-quantized models: onnxruntime's `quantize_static` QDQ models of zoo models lower with
their own parameters (no dataset) and run on the `npu` reference executor close to
onnxruntime running the same QDQ model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from compiler.calibration import InputPreprocess, load_calibration_set
from compiler.cli import main
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from tests.helpers.compare import cosine
from tests.helpers.ort_qdq import ort_quantize_static
from tests.zoo import MODELS, ZooModel, model_path, real_input, zoo_file


def zoo(name: str) -> ZooModel:
    return next(m for m in MODELS if m.name == name)


def calibration_samples(zm: ZooModel, count: int) -> list[dict[str, np.ndarray]]:
    """The first `count` zoo calibration samples, preprocessed as the float model wants."""
    if zm.image is None:
        folder = "data32" if "resnet" in zm.name else "data16"
        return [{"input": np.load(zoo_file(f"digits/{folder}/calib/{i:04d}.npy"))}
                for i in range(count)]  # fmt: skip
    listing = zoo_file("images/dataset.txt")
    model = import_onnx(str(model_path(zm)))
    pre = [InputPreprocess(list(zm.mean), list(zm.std), zm.bgr)]
    samples = list(load_calibration_set(listing, model.inputs, pre))
    return samples[:count]


def qdq_model(zm: ZooModel, folder: Path, **options) -> Path:
    samples = calibration_samples(zm, 4)
    return ort_quantize_static(model_path(zm), samples, folder / f"{zm.name}.qdq.onnx", **options)


def ours_and_onnxruntime(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model = import_onnx(str(path))
    quantize_model(model, None, QuantizeOptions(progress=False))
    name = model.inputs[0].name
    ours = next(iter(Interpreter(model).run({name: x}).outputs.values()))
    theirs = ort.InferenceSession(str(path)).run(None, {name: x})[0]
    return ours, theirs


@pytest.mark.parametrize("name", ["digits_cnn", "digits_resnet", "digits_resnet_bn"])
def test_digits_qdq_models_match_onnxruntime(name: str, tmp_path: Path):
    zm = zoo(name)
    path = qdq_model(zm, tmp_path)
    folder = "data32" if "resnet" in name else "data16"
    xs = np.load(zoo_file(f"digits/{folder}/test_x.npy"))[:8].astype(np.float32)
    for x in xs:
        ours, theirs = ours_and_onnxruntime(path, x[None])
        assert cosine(ours, theirs) >= 0.999
        assert np.argmax(ours) == np.argmax(theirs)


def test_unsigned_activations(tmp_path: Path):
    path = qdq_model(zoo("digits_cnn"), tmp_path, activations="QUInt8")
    x = np.load(zoo_file("digits/data16/test_x.npy"))[:1].astype(np.float32)
    ours, theirs = ours_and_onnxruntime(path, x)
    assert cosine(ours, theirs) >= 0.999


def test_resnet18_qdq_matches_onnxruntime(tmp_path: Path):
    """The issue's check: a zoo model's QDQ export, cosine >= 0.999 against onnxruntime."""
    zm = zoo("resnet18_224")
    ours, theirs = ours_and_onnxruntime(qdq_model(zm, tmp_path), real_input(zm))
    assert cosine(ours, theirs) >= 0.999


def test_cli_quantizes_a_qdq_model_without_a_dataset(tmp_path: Path, capsys):
    path = qdq_model(zoo("digits_cnn"), tmp_path)
    code = main(["quantize", str(path), "-o", str(tmp_path / "q.mlir"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "strip-qdq: removed" in err and "0 stay float" in err
