"""A whole container on the simulator (`runtime.session.Session`): the zoo's digit models
built into containers (`compiler.build.build_model`), written and read back, run on held-out
images; the outputs equal the `npu` reference executor's (`compiler.interpreter` on the
same quantized IR before the backend passes) bit for bit, and so does the top-1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.container import write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from runtime.session import Session, SessionError
from tests.zoo import ZOO

MODELS = {"digits_cnn": "data16", "digits_resnet": "data32"}
CALIBRATION_SAMPLES = 16
IMAGES = 20


def calibration_subset(folder: Path, tmp_path: Path) -> Path:
    lines = (folder / "dataset.txt").read_text().split()[:CALIBRATION_SAMPLES]
    listing = tmp_path / "dataset.txt"
    listing.write_text("".join(f"{folder / line}\n" for line in lines))
    return listing


def built(name: str, tmp_path: Path, cpu_ops: frozenset[str] = frozenset(),
          strict: bool = True) -> tuple[Path, Interpreter, np.ndarray]:  # fmt: skip
    """The container's path, the reference interpreter and the test images (`cpu_ops`: the
    ONNX nodes kept float on the CPU)."""
    path = ZOO / "digits" / f"{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    folder = ZOO / "digits" / MODELS[name]
    dataset = calibration_subset(folder, tmp_path)
    options = QuantizeOptions(progress=False, cpu_ops=cpu_ops)
    result = build_model(import_onnx(path), dataset, options)
    if strict:
        assert result.summary()["not_generated"] == []
    container = tmp_path / f"{name}.rknn"
    write_container(result.container, container)
    reference = import_onnx(path)
    quantize_model(reference, dataset, options)
    images = np.load(folder / "test_x.npy")[:IMAGES]
    return container, Interpreter(reference), images


def assert_matches(container: Path, interpreter: Interpreter, images: np.ndarray) -> None:
    session = Session(container)
    (spec,) = session.metadata["inputs"]
    (out,) = session.metadata["outputs"]
    tops = []
    for image in images:
        feed = {spec["name"]: image[None].astype(np.float32)}
        got = session.run(feed)[out["name"]]
        expected = interpreter.run(feed).outputs[out["name"]]
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert int(np.argmax(got)) == int(np.argmax(expected))
        tops.append(int(np.argmax(got)))
    assert len(set(tops)) > 1, "every image gets one class: the comparison means little"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_container_matches_the_reference(name, tmp_path):
    assert_matches(*built(name, tmp_path))


# float ONNX ops on the CPU between NPU jobs: values cross through simulated memory both
# ways (NC1HWC2 into a pool, a row-major flatten, the classifier's weights in cpu_weights)
SECOND_CONV = "/features/features.2/features.2.0/Conv"
CPU_NODES = ["/features/features.1/MaxPool", "/Flatten", "/fc/Gemm"]


@pytest.mark.parametrize("node", CPU_NODES)
def test_cpu_ops_between_jobs(node, tmp_path):
    container, interpreter, images = built("digits_cnn", tmp_path, frozenset({node}))
    module = Session(container).metadata["ops"]
    assert any(op["op"].startswith("onnx.") and op["target"] == "cpu" for op in module)
    assert_matches(container, interpreter, images)


def test_ops_without_code_generation_run_on_the_cpu(tmp_path):
    # the second convolution kept on the CPU leaves the next pool's input in a tensor of
    # more than one C2, which the PPU code does not pool yet: build places that pool on the
    # CPU (with its reason) and the session runs it with the integer reference kernel
    container, interpreter, images = built("digits_cnn", tmp_path, frozenset({SECOND_CONV}),
                                           strict=False)  # fmt: skip
    ops = Session(container).metadata["ops"]
    moved = [op for op in ops if op.get("reason", "").startswith("code generation:")]
    if not moved:
        pytest.skip("every NPU op is generated now: nothing falls back")
    assert all(op["target"] == "cpu" and "tasks" not in op for op in moved)
    assert any(op["op"] == "npu.pool" for op in moved)
    assert_matches(container, interpreter, images)


def test_missing_input_is_an_error(tmp_path):
    container, _, _ = built("digits_cnn", tmp_path)
    with pytest.raises(SessionError, match="no value for model input"):
        Session(container).run({})


def test_every_layer_output_equals_the_reference(tmp_path):
    # captured after each op's last task, before a later task reuses the arena
    container, interpreter, images = built("digits_resnet", tmp_path)
    session = Session(container)
    (spec,) = session.metadata["inputs"]
    feed = {spec["name"]: images[:1].astype(np.float32)}
    layers: dict[str, np.ndarray] = {}
    session.run(feed, layers=layers)
    expected = interpreter.run(feed, capture=True).tensors
    shared = set(layers) & set(expected)
    npu_results = {name for op in session.metadata["ops"] if op["target"] == "npu"
                   for name in op["outputs"]}  # fmt: skip
    assert npu_results and npu_results <= shared
    for name in sorted(shared):
        np.testing.assert_array_equal(layers[name], expected[name], err_msg=name)


def test_inputs_as_rknn_takes_them(tmp_path):
    # raw integer data and NHWC arrays give what the float NCHW array gives
    container, _, images = built("digits_cnn", tmp_path)
    session = Session(container)
    (spec,) = session.metadata["inputs"]
    (out,) = session.metadata["outputs"]
    pixels = np.round(images[:1] * 10).astype(np.uint8)  # small integers: exact in float32
    expected = session.run({spec["name"]: pixels.astype(np.float32)})[out["name"]]
    as_uint8 = session.run({spec["name"]: pixels})[out["name"]]
    nhwc = session.run({spec["name"]: pixels.transpose(0, 2, 3, 1)}, "nhwc")[out["name"]]
    np.testing.assert_array_equal(as_uint8, expected)
    np.testing.assert_array_equal(nhwc, expected)
    with pytest.raises(SessionError, match="NHWC shape"):
        session.run({spec["name"]: pixels}, "nhwc")
    with pytest.raises(SessionError, match="expected nhwc or nchw"):
        session.run({spec["name"]: pixels}, "hwc")
    with pytest.raises(SessionError, match="expected numbers"):
        session.run({spec["name"]: np.array([["a"]])})


def test_a_float16_container_runs_on_the_npu(tmp_path):
    # float16 convolutions, max pooling and the classifier have code generation: only the
    # conversions at the model's edges run on the CPU, bit-exact against the reference
    path = ZOO / "digits" / "digits_cnn.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    options = QuantizeOptions(progress=False, dtype="f16")
    result = build_model(import_onnx(path), None, options)
    ops = result.container.metadata["ops"]
    assert result.container.metadata["jobs"]
    on_cpu = {op["op"] for op in ops if op["target"] == "cpu"}
    assert on_cpu == {"npu.quantize", "npu.dequantize"}
    reference = import_onnx(path)
    quantize_model(reference, None, options)
    image = np.load(ZOO / "digits" / "data16" / "test_x.npy")[:1].astype(np.float32)
    session = Session(result.container)
    (spec,) = session.metadata["inputs"]
    (out,) = session.metadata["outputs"]
    got = session.run({spec["name"]: image})[out["name"]]
    expected = Interpreter(reference).run({spec["name"]: image}).outputs[out["name"]]
    np.testing.assert_array_equal(got, expected)
