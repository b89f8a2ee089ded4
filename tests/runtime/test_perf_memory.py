"""The eval_memory-style profile (`runtime.perf.memory`): figures equal the container's
memory plan and sections (worked by hand for a one-convolution model), RKNN's size format,
and one-line errors for a missing or inconsistent plan."""

from __future__ import annotations

import dataclasses

import pytest

from backends.container import Container, read_container
from runtime.perf import PerfError, memory_profile
from runtime.perf.memory import format_size
from tests.runtime.perf_layers import build, conv_model

# input 1x32x16x16 float32 -> Conv 64 3x3 -> output 1x64x16x16 float32, int8 on rk3588
WEIGHTS = 64 * 32 * 9 + 64 * 32  # packed int8 weights + one 32-byte operand record a channel
INTERNAL = 32 * 16 * 16 + 64 * 16 * 16  # the int8 input and output, both live at once
IO = 4 * 32 * 16 * 16 + 4 * 64 * 16 * 16  # the float32 model input and output buffers


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Container:
    folder = tmp_path_factory.mktemp("perf_memory")
    return read_container(build(conv_model((1, 32, 16, 16), 64, 3), folder, "conv"))


def test_figures_equal_the_plan(container: Container):
    profile = memory_profile(container, model_size=12345)
    plan = container.metadata["memory"]
    commands = len(container.sections["commands"])
    assert profile.weight_memory == WEIGHTS == plan["weight_bytes"]
    assert profile.weight_memory == len(container.sections["weights"])
    assert profile.internal_memory == INTERNAL == plan["internal_bytes"]
    assert profile.other_memory == commands + IO
    assert commands == plan["command_bytes"]
    assert profile.total_memory == WEIGHTS + INTERNAL + commands + IO
    assert profile.model_size == 12345
    assert profile.as_dict()["total_memory"] == profile.total_memory


def test_text_as_rknn_prints_it(container: Container):
    text = memory_profile(container, 2 * 1024 * 1024).text()
    assert "Memory Profile Info Dump" in text
    assert f"    Weight Memory: {WEIGHTS / 1024:.2f} KiB" in text
    assert f"    Internal Tensor Memory: {INTERNAL / 1024:.2f} KiB" in text
    assert "current model size is: 2.00 MiB" in text
    assert text.splitlines()[0] == "=" * 54


def test_sizes_in_rknn_units():
    # sdk §4.2 [APIREF]: caffe mobilenet_v2 on RK3588, bytes -> printed
    assert format_size(3698688) == "3.53 MiB"
    assert format_size(1756160) == "1.67 MiB"
    assert format_size(484352) == "473.00 KiB"
    assert format_size(5939200) == "5.66 MiB"


def test_missing_or_inconsistent_plan_is_an_error(container: Container):
    no_plan = dataclasses.replace(container, metadata={k: v for k, v in
                                  container.metadata.items() if k != "memory"})  # fmt: skip
    with pytest.raises(PerfError, match="no memory plan"):
        memory_profile(no_plan)
    memory = dict(container.metadata["memory"], weight_bytes=1)
    wrong = dataclasses.replace(container, metadata={**container.metadata, "memory": memory})
    with pytest.raises(PerfError, match="buffer 0 holds"):
        memory_profile(wrong)
    partial = {"buffers": {}}
    broken = dataclasses.replace(container, metadata={**container.metadata, "memory": partial})
    with pytest.raises(PerfError, match="incomplete"):
        memory_profile(broken)
