"""Bit-exactness on the whole zoo: every model built into a container (int8, rk3588,
calibrated on its one real input) and run by `runtime.session.Session` (NPU jobs on the
simulator from the command stream, CPU ops in numpy between them) gives the `npu`
reference executor's outputs (`compiler.interpreter` on the same model quantized again,
before the backend passes) bit for bit, every output.

The ops code generation does not cover yet run on the CPU (`build` places them there); the
test also checks that every convolution, transposed convolution and fully connected layer
has NPU tasks, so a model whose MAC work silently fell back to the CPU would not pass as
"bit-exact".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.container import write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from runtime.session import Session
from tests.zoo import MODELS, ZooModel, model_path, real_input

MAC_OPS = ("npu.conv2d", "npu.conv_transpose", "npu.fully_connected")


def dataset(zm: ZooModel, tmp_path: Path) -> tuple[Path, np.ndarray]:
    sample = real_input(zm)
    np.save(tmp_path / "sample.npy", sample)
    listing = tmp_path / "dataset.txt"
    listing.write_text("sample.npy\n")
    return listing, sample


@pytest.mark.parametrize("zm", MODELS, ids=[m.name for m in MODELS])
def test_container_on_the_simulator_equals_the_reference(zm: ZooModel, tmp_path: Path):
    listing, sample = dataset(zm, tmp_path)
    options = QuantizeOptions(progress=False)
    result = build_model(import_onnx(model_path(zm)), listing, options)
    container = tmp_path / f"{zm.name}.rknn"
    write_container(result.container, container)

    session = Session(container)
    ops = session.metadata["ops"]
    mac = [op for op in ops if op["op"] in MAC_OPS]
    assert mac and all(op["target"] == "npu" and op["tasks"][1] > 0 for op in mac)

    reference = import_onnx(model_path(zm))
    quantize_model(reference, listing, options)
    (spec,) = session.metadata["inputs"]
    feed = {spec["name"]: sample}
    got = session.run(feed)
    expected = Interpreter(reference).run(feed).outputs
    assert set(got) == set(expected)
    for name, array in expected.items():
        assert got[name].shape == array.shape, name
        np.testing.assert_array_equal(got[name], array, err_msg=name)
    assert any(np.any(a != 0) for a in expected.values()), "all-zero outputs prove little"


FLOAT16_MODELS = ("digits_resnet", "mobilenetv2_224", "yolov8n_like_320", "unet_small_256")


@pytest.mark.parametrize("name", FLOAT16_MODELS)
def test_float16_container_on_the_simulator_equals_the_reference(name: str, tmp_path: Path):
    # RKNN's do_quantization=False build: float16 everywhere, no dataset; every convolution
    # on the NPU (these models have no PRelu / LeakyRelu, which the float path lacks)
    zm = next(m for m in MODELS if m.name == name)
    options = QuantizeOptions(dtype="f16", progress=False)
    result = build_model(import_onnx(model_path(zm)), None, options)
    container = tmp_path / f"{zm.name}.rknn"
    write_container(result.container, container)
    session = Session(container)
    convs = [op for op in session.metadata["ops"] if op["op"] == "npu.conv2d"]
    assert convs and all(op["target"] == "npu" and op["tasks"][1] > 0 for op in convs)

    reference = import_onnx(model_path(zm))
    quantize_model(reference, None, options)
    (spec,) = session.metadata["inputs"]
    feed = {spec["name"]: real_input(zm)}
    got = session.run(feed)
    expected = Interpreter(reference).run(feed).outputs
    assert set(got) == set(expected)
    for key, array in expected.items():
        np.testing.assert_array_equal(got[key], array, err_msg=key)
    assert any(np.any(a != 0) for a in expected.values())
