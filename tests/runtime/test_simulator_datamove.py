"""Bit-exactness of data movement on NC1HWC2 tensors as PPU copies
(`backends/codegen/datamove.py`): concat along channels, rows and columns, slice, constant
pad and a relabelling reshape, each behind convolutions (so that it reads NC1HWC2 tensors),
run on the simulator and compared integer for integer with the `npu` reference executor,
both with the copy's quantization equal to its input's (a max copy) and requantizing (the
1 x 1 average)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from backends.codegen import generate
from dialects.npu import ops as npu
from tests.helpers.backend import conv
from tests.runtime.sim_harness import Comparison, assert_exact, compiled, simulate

RNG = np.random.default_rng(21)


def simulate_all(model, feed) -> list[Comparison]:
    """`sim_harness.simulate` of a model code generation covers completely."""
    program = generate(model)
    assert not program.unsupported, program.unsupported
    return simulate(model, feed, program)


def convs(channels: list[int], hw: tuple[int, int]) -> tuple[list, dict]:
    """Convolutions c0, c1, ... of the model input x [1, 4, *hw], channels[i] outputs each."""
    nodes, inits = [], {}
    for i, c in enumerate(channels):
        nodes.append(conv("x", f"w{i}", f"c{i}", f"conv{i}", b=f"b{i}", pads=[1, 1, 1, 1]))
        inits[f"w{i}"] = (RNG.standard_normal((c, 4, 3, 3)) * 0.3).astype(np.float32)
        inits[f"b{i}"] = (RNG.standard_normal(c) * 0.2).astype(np.float32)
    return nodes, inits


def run(node, channels: list[int], hw=(6, 7), extra_inits=None, **plan_options):
    nodes, inits = convs(channels, hw)
    inits.update(extra_inits or {})
    model, feeds = compiled([*nodes, node], [("x", [1, 4, *hw])], ["y"], inits, **plan_options)
    results = []
    for feed in feeds:
        results += simulate_all(model, feed)
    moved = [r for r in results if not isinstance(r.op, npu.Conv2dOp)]
    assert len(moved) == len(feeds)
    assert_exact(results)
    return model


@pytest.mark.parametrize(
    ("channels", "axis"),
    [([16, 16], 1), ([16, 8], 1), ([32, 16, 5], 1), ([8, 8], 2), ([8, 13], 3), ([16, 16], -1)],
    ids=["c16+16", "c16+8", "c32+16+5", "rows", "columns", "columns_neg"],
)
def test_concat(channels, axis):
    if axis in (2, 3, -1):
        channels = [channels[0]] * len(channels)
    node = helper.make_node("Concat", [f"c{i}" for i in range(len(channels))], ["y"],
                            name="cat", axis=axis)  # fmt: skip
    run(node, channels)


def test_concat_int16():
    node = helper.make_node("Concat", ["c0", "c1"], ["y"], name="cat", axis=1)
    run(node, [8, 8], dtype="i16")


def test_concat_of_misaligned_channels_is_not_generated():
    nodes, inits = convs([5, 8], (4, 4))
    node = helper.make_node("Concat", ["c0", "c1"], ["y"], name="cat", axis=1)
    model, _ = compiled([*nodes, node], [("x", [1, 4, 4, 4])], ["y"], inits)
    [line] = generate(model).unsupported
    assert "C2" in line


def slice_node(starts, ends, axes, steps=None):
    inits = {"st": np.array(starts, np.int64), "en": np.array(ends, np.int64),
             "ax": np.array(axes, np.int64)}  # fmt: skip
    inputs = ["c0", "st", "en", "ax"]
    if steps is not None:
        inits["sp"] = np.array(steps, np.int64)
        inputs.append("sp")
    return helper.make_node("Slice", inputs, ["y"], name="sl"), inits


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps", "channels"),
    [
        ([1, 2], [5, 7], [2, 3], None, 16),
        ([0, 1], [100, 6], [2, 3], None, 24),
        ([1, 0], [9, 9], [2, 3], [2, 3], 8),
        ([16, 1], [40, 4], [1, 2], None, 40),
    ],
    ids=["hw", "clipped_end", "steps", "channels"],
)
def test_slice(starts, ends, axes, steps, channels):
    node, inits = slice_node(starts, ends, axes, steps)
    run(node, [channels], hw=(9, 9), extra_inits=inits)


@pytest.mark.parametrize(
    "pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 0, 0, 3, 0, 0, 0, 0], [0, 0, 7, 0, 0, 0, 1, 7]]
)
def test_pad(pads):
    node = helper.make_node("Pad", ["c0", "p"], ["y"], name="pd")
    run(node, [16], extra_inits={"p": np.array(pads, np.int64)})


@pytest.mark.parametrize("shape", [[1, 16, 42, 1], [1, 16, 1, 42], [1, 16, 3, 14]])
def test_reshape_that_relabels_memory(shape):
    node = helper.make_node("Reshape", ["c0", "s"], ["y"], name="rs")
    run(node, [16], extra_inits={"s": np.array(shape, np.int64)})


def test_a_chain_of_copies_is_one_job():
    # conv -> pad -> slice: one NPU segment, so one PC chain of a conv task and two PPU tasks
    nodes, inits = convs([16], (6, 6))
    inits |= {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
              "st": np.array([1, 0], np.int64), "en": np.array([7, 8], np.int64),
              "ax": np.array([2, 3], np.int64)}  # fmt: skip
    nodes += [helper.make_node("Pad", ["c0", "p"], ["d"], name="pd"),
              helper.make_node("Slice", ["d", "st", "en", "ax"], ["y"], name="sl")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 4, 6, 6])], ["y"], inits)
    program = generate(model)
    assert len(program.tasks) == 3 and program.jobs == [0]
    results = simulate_all(model, feeds[0])
    assert len(results) == 3
    assert_exact(results)


@pytest.mark.parametrize("dtype", ["i8", "i16", "f16"])
def test_flatten_into_a_fully_connected_row(dtype):
    # conv (NC1HWC2) -> Flatten (row-major [1, C*H*W]: the PPU writes NCHW) -> Gemm
    nodes, inits = convs([20], (3, 4))
    inits |= {"wf": (RNG.standard_normal((10, 240)) * 0.1).astype(np.float32),
              "bf": (RNG.standard_normal(10) * 0.1).astype(np.float32)}  # fmt: skip
    nodes += [helper.make_node("Flatten", ["c0"], ["f"], name="flat"),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 4, 3, 4])], ["y"], inits, dtype=dtype)
    assert [op.name for op in model.main.body.blocks[0].ops if isinstance(op, npu.NpuOp)][1:4] == [
        "npu.conv2d", "npu.reshape", "npu.fully_connected"]  # fmt: skip
    program = generate(model)
    assert program.jobs == [0]  # conv, the flatten's copy, the fully connected row: one chain
    for feed in feeds:
        results = simulate_all(model, feed)
        assert [r.op.name for r in results] == ["npu.conv2d", "npu.reshape",
                                                "npu.fully_connected"]  # fmt: skip
        assert_exact(results)


@pytest.mark.parametrize(("channels", "hw"), [(16, (5, 7)), (20, (4, 3))])
def test_transpose_of_rows_and_columns(channels, hw):
    node = helper.make_node("Transpose", ["c0"], ["y"], name="tr", perm=[0, 1, 3, 2])
    model = run(node, [channels], hw=hw)
    assert len(generate(model).tasks) == 1 + hw[1]  # the conv, one copy per input column


def test_other_transposes_are_not_generated():
    nodes, inits = convs([8], (8, 8))
    node = helper.make_node("Transpose", ["c0"], ["y"], name="tr", perm=[0, 2, 3, 1])
    model, _ = compiled([*nodes, node], [("x", [1, 4, 8, 8])], ["y"], inits)
    [line] = generate(model).unsupported
    assert "only H <-> W" in line
