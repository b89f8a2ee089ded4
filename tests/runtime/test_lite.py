"""`runtime.lite.RKNNLite`, RKNN-Toolkit Lite2's class: on a container `RKNN` exported it
gives `RKNN.inference`'s outputs bit for bit; without an NPU it falls back to the simulator
with a warning, or fails with the reason when the NPU is asked for; it loads nothing of the
compiler."""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.api import RKNN
from runtime.lite import RKNNLite
from tests.zoo import zoo_file

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "compiler" / "examples" / "tiny_cnn.onnx"
TINY_DATASET = ROOT / "compiler" / "examples" / "tiny_cnn_dataset.txt"
TINY_INPUT = ROOT / "compiler" / "examples" / "tiny_cnn_input.npy"
HAS_NPU = bool(glob.glob("/dev/accel/accel*"))


def exported(model: Path, dataset: Path, path: Path) -> RKNN:
    rknn = RKNN()
    assert rknn.load_onnx(model=str(model)) == 0
    assert rknn.build(dataset=str(dataset)) == 0
    assert rknn.export_rknn(str(path)) == 0
    assert rknn.init_runtime() == 0
    return rknn


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("E ")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[RKNN, Path]:
    path = tmp_path_factory.mktemp("lite") / "tiny.rknn"
    rknn = exported(TINY, TINY_DATASET, path)
    yield rknn, path
    rknn.release()


def test_lite_equals_rknn_inference_on_tiny(tiny):
    rknn, path = tiny
    lite = RKNNLite()
    assert lite.load_rknn(str(path)) == 0
    assert lite.init_runtime(core_mask=RKNNLite.NPU_CORE_0, backend="simulator") == 0
    x = np.load(TINY_INPUT)
    for fmt, data in (("nchw", x), ("nhwc", x.transpose(0, 2, 3, 1))):
        (expected,) = rknn.inference(inputs=[data], data_format=fmt)
        (got,) = lite.inference(inputs=[data], data_format=[fmt])
        np.testing.assert_array_equal(got, expected)
    lite.release()


def test_lite_equals_rknn_inference_on_digits(tmp_path):
    model = zoo_file("digits/digits_resnet.onnx")
    folder = model.parent / "data32"
    listing = tmp_path / "dataset.txt"
    lines = (folder / "dataset.txt").read_text().split()[:8]
    listing.write_text("".join(f"{folder / line}\n" for line in lines))
    rknn = exported(model, listing, tmp_path / "digits.rknn")
    lite = RKNNLite()
    assert lite.load_rknn(str(tmp_path / "digits.rknn")) == 0
    assert lite.init_runtime(backend="simulator") == 0
    for image in np.load(folder / "test_x.npy")[:5]:
        nhwc = image[None].transpose(0, 2, 3, 1)  # RKNN's default layout for 4-D inputs
        (expected,) = rknn.inference(inputs=[nhwc])
        (got,) = lite.inference(inputs=[nhwc])
        np.testing.assert_array_equal(got, expected)
    lite.release()
    rknn.release()


@pytest.mark.skipif(HAS_NPU, reason="this machine has an NPU device node")
def test_without_an_npu_auto_falls_back_to_the_simulator(tiny, capsys):
    lite = RKNNLite()
    assert lite.load_rknn(str(tiny[1])) == 0
    assert lite.init_runtime() == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("W ")]
    assert len(warnings) == 1
    assert warnings[0].startswith("W init_runtime: no NPU device")
    assert warnings[0].endswith("; running on the simulator")
    assert lite.get_sdk_version().endswith("DRV: simulator")
    assert lite.inference(inputs=[np.load(TINY_INPUT)], data_format="nchw")[0].shape == (1, 10)


@pytest.mark.skipif(HAS_NPU, reason="this machine has an NPU device node")
def test_asking_for_the_npu_without_one_fails(tiny, capsys):
    lite = RKNNLite()
    assert lite.load_rknn(str(tiny[1])) == 0
    assert lite.init_runtime(backend="rocket") == -1
    (line,) = error_lines(capsys)
    assert line.startswith("E init_runtime: no NPU device: nothing matches /dev/accel/accel*")


def test_on_the_fake_npu_equals_the_simulator(tiny, monkeypatch):
    from backends.targets import get_target
    from runtime.hardware import RocketDevice
    from runtime.hardware.fake import FakeRocketDevice

    fake = FakeRocketDevice(get_target("rk3588"))
    monkeypatch.setattr(RocketDevice, "open", classmethod(lambda cls, *a, **k: fake.device()))
    rknn, path = tiny
    lite = RKNNLite()
    assert lite.load_rknn(str(path)) == 0
    assert lite.init_runtime(core_mask=RKNNLite.NPU_CORE_0_1_2) == 0  # auto: the NPU
    assert "\n DRV: rocket (" in lite.get_sdk_version()
    x = np.load(TINY_INPUT)
    (expected,) = rknn.inference(inputs=[x], data_format="nchw")
    np.testing.assert_array_equal(lite.inference(inputs=[x], data_format="nchw")[0], expected)
    lite.release()


@pytest.mark.parametrize(
    ("call", "failure", "reason"),
    [
        (lambda lite, path: lite.load_rknn("/nonexistent.rknn"), -1, "E load_rknn: /nonexistent"),
        (lambda lite, path: lite.init_runtime(), -1,
         "E init_runtime: no model: call load_rknn first"),
        (lambda lite, path: lite.inference(inputs=[np.zeros(1)]), None,
         "E inference: the runtime is not initialized: call init_runtime first"),
        (lambda lite, path: lite.get_sdk_version(), None,
         "E get_sdk_version: the runtime is not initialized"),
        (lambda lite, path: lite.load_rknn(path) or lite.init_runtime(core_mask=0x10), -1,
         "E init_runtime: core_mask 16: expected one of NPU_CORE_AUTO=0x0"),
        (lambda lite, path: lite.load_rknn(path) or lite.init_runtime(backend="gpu"), -1,
         "E init_runtime: backend 'gpu': expected auto, simulator or rocket"),
        (lambda lite, path: lite.load_rknn(path) or lite.init_runtime(backend="simulator")
         or lite.inference(inputs=[np.zeros((1, 3, 32, 32)), np.zeros(1)]), None,
         "E inference: 2 inputs given; the model takes 1 ('input'), as a list in that order"),
        (lambda lite, path: lite.load_rknn(path) or lite.init_runtime(backend="simulator")
         or lite.inference(inputs=[np.zeros((1, 32, 32, 4))]), None,
         "E inference: model input 'input': NHWC shape (1, 32, 32, 4), expected (1, 32, 32, 3)"),
    ],
)  # fmt: skip
def test_misuse_returns_failure_with_one_logged_line(tiny, call, failure, reason, capsys):
    lite = RKNNLite()
    assert call(lite, str(tiny[1])) == failure
    (line,) = error_lines(capsys)
    assert line.startswith(reason)
    lite.release()


def test_list_support_target_platform(tiny):
    lite = RKNNLite()
    assert lite.list_support_target_platform(str(tiny[1])) == ["rk3588"]
    assert "rk3588" in lite.list_support_target_platform()


def test_importing_rknnlite_loads_nothing_of_the_compiler():
    """A board needs only `runtime` (and what it imports): no compiler, no passes."""
    code = ("import sys, runtime.lite; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'compiler', 'passes'}))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
