"""Bit-exactness on the whole zoo: every model built into a container (int8, rk3588,
calibrated on its one real input) and run by `runtime.session.Session` (NPU jobs on the
simulator from the command stream, CPU ops in numpy between them) gives the `npu`
reference executor's outputs (`compiler.interpreter` on the same model quantized again,
before the backend passes) bit for bit, every output; and four models built float16 (RKNN's
do_quantization=False, no dataset) the same way.

The ops code generation does not cover yet run on the CPU (`build` places them there); the
test also checks that every convolution, transposed convolution and fully connected layer
has NPU tasks, so a model whose MAC work silently fell back to the CPU would not pass as
"bit-exact".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.quantization.quantize import QuantizeOptions
from tests.helpers.containers import TwoRuns, run_both
from tests.zoo import MODELS, ZooModel, real_input

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
    runs = run_both(zm, listing, QuantizeOptions(progress=False), sample, tmp_path)
    mac = runs.ops(*MAC_OPS)
    assert mac and all(op["target"] == "npu" and op["tasks"][1] > 0 for op in mac)
    assert_equal_outputs(runs)


def assert_equal_outputs(runs: TwoRuns) -> None:
    assert set(runs.simulated) == set(runs.reference)
    for name, array in runs.reference.items():
        assert runs.simulated[name].shape == array.shape, name
        np.testing.assert_array_equal(runs.simulated[name], array, err_msg=name)
    assert any(np.any(a != 0) for a in runs.reference.values()), "all-zero outputs prove little"


FLOAT16_MODELS = ("digits_resnet", "mobilenetv2_224", "yolov8n_like_320", "unet_small_256")


@pytest.mark.parametrize("name", FLOAT16_MODELS)
def test_float16_container_on_the_simulator_equals_the_reference(name: str, tmp_path: Path):
    # RKNN's do_quantization=False build: float16 everywhere, no dataset; every convolution
    # on the NPU (these models have no PRelu / LeakyRelu, which the float path lacks)
    zm = next(m for m in MODELS if m.name == name)
    options = QuantizeOptions(dtype="f16", progress=False)
    runs = run_both(zm, None, options, real_input(zm), tmp_path)
    convs = runs.ops("npu.conv2d")
    assert convs and all(op["target"] == "npu" and op["tasks"][1] > 0 for op in convs)
    assert_equal_outputs(runs)
