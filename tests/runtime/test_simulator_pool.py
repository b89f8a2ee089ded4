"""Bit-exactness of the PPU: small quantized ONNX poolings (max, average, global) through the
backend passes and code generation, run on the simulator and compared integer for integer
with the `npu` reference executor; int8 and int16, padded and strided windows, channels
not aligned to C2, and tiles of many tasks (a small CBUF)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

from backends.codegen import generate
from backends.pool_split import global_pool_split, scratch_bytes
from backends.targets import get_target
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.npu.placement import get_tasks
from tests.helpers.backend import conv
from tests.runtime.sim_harness import assert_exact, compiled, simulate, small_cbuf

RNG = np.random.default_rng(11)


def run_pool(op_type: str, channels: int, hw: tuple[int, int], target=None,
             plan_options: dict | None = None, **attrs) -> tuple[list, object]:  # fmt: skip
    """A 3x3 convolution (so that the pooling reads an NC1HWC2 tensor: the model input is
    planar NCHW, which PPU_RDMA cannot read) then the pooling."""
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]),
             helper.make_node(op_type, ["c"], ["y"], name="pool", **attrs)]  # fmt: skip
    inits = {"w": (RNG.standard_normal((channels, 4, 3, 3)) * 0.3).astype(np.float32),
             "b": (RNG.standard_normal(channels) * 0.2).astype(np.float32)}  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 4, *hw])], ["y"], inits, target=target,
                            **(plan_options or {}))  # fmt: skip
    program = generate(model, target)
    assert not program.unsupported, program.unsupported
    results = []
    for feed in feeds:
        results += simulate(model, feed, program, target=target)
    return results, model


POOLS = [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [3, 2], "strides": [1, 3], "pads": [0, 1, 2, 0]}),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    (
        "AveragePool",
        {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    ),
    ("AveragePool", {"kernel_shape": [5, 3], "strides": [3, 2]}),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
]
IDS = ["max2s2", "max3s2p1", "max_asym", "avg2s2", "avg3p1incl", "avg5x3s3x2", "gap", "gmp"]


@pytest.mark.parametrize(("op_type", "attrs"), POOLS, ids=IDS)
@pytest.mark.parametrize("channels", [16, 13, 40])
def test_pool_int8(op_type, attrs, channels):
    results, _ = run_pool(op_type, channels, (9, 10), **attrs)
    assert_exact(results, expected_ops=4)


@pytest.mark.parametrize(("op_type", "attrs"), POOLS, ids=IDS)
def test_pool_int16(op_type, attrs):
    results, _ = run_pool(op_type, 20, (8, 9), plan_options={"dtype": "i16"}, **attrs)
    assert_exact(results, expected_ops=4)


# ---------------------------------------------------------------------- tiles


@pytest.mark.parametrize(
    ("op_type", "channels", "hw", "attrs"),
    [
        (
            "MaxPool",
            40,
            (12, 12),
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
        ),
        (
            "AveragePool",
            40,
            (12, 12),
            {
                "kernel_shape": [3, 3],
                "strides": [1, 1],
                "pads": [1, 1, 1, 1],
                "count_include_pad": 1,
            },
        ),
        ("AveragePool", 24, (11, 9), {"kernel_shape": [2, 2], "strides": [2, 2]}),
        ("GlobalAveragePool", 48, (8, 8), {}),
        ("GlobalMaxPool", 48, (8, 8), {}),
    ],
    ids=["max", "avg_same", "avg2s2", "gap", "gmp"],
)
def test_pool_tiles_of_many_tasks(op_type, channels, hw, attrs):
    target = small_cbuf(4, 512)
    results, model = run_pool(op_type, channels, hw, target=target, **attrs)
    pool = next(op for op in model.main.body.blocks[0].ops if isinstance(op, npu.PoolOp))
    tasks = get_tasks(pool)
    assert len(tasks) > 1
    assert_exact(results, expected_ops=4)


def test_global_pool_splits_channels_on_a_tiny_cbuf():
    target = small_cbuf(4, 256)
    results, model = run_pool("GlobalAveragePool", 64, (6, 6), target=target)
    pool = next(op for op in model.main.body.blocks[0].ops if isinstance(op, npu.PoolOp))
    assert len({(c0, c1) for _, _, c0, c1 in get_tasks(pool)}) > 1
    assert_exact(results, expected_ops=4)


# ---------------------------------------------------------------------- not generated


def unsupported(nodes, channels: int = 8, hw: tuple[int, int] = (8, 8)) -> list[str]:
    inits = {"w": (RNG.standard_normal((channels, 4, 3, 3)) * 0.3).astype(np.float32),
             "b": (RNG.standard_normal(channels) * 0.2).astype(np.float32)}  # fmt: skip
    model, _ = compiled(nodes, [("x", [1, 4, *hw])], ["y"], inits)
    return generate(model).unsupported


def test_average_of_uneven_windows_is_not_generated():
    """count_include_pad = 0 with padding: per-position multipliers, which no PPU register
    carries."""
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["c"], ["y"], name="pool", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]  # fmt: skip
    [line] = unsupported(nodes)
    assert "per-position" in line


def test_an_op_without_code_generation_is_placed_on_the_cpu():
    """Code generation moves what it cannot cover to the CPU with its reason and renumbers
    the segments; the convolution before it keeps its tasks."""
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["c"], ["y"], name="pool", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]  # fmt: skip
    inits = {"w": (RNG.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32),
             "b": (RNG.standard_normal(8) * 0.2).astype(np.float32)}  # fmt: skip
    model, _ = compiled(nodes, [("x", [1, 4, 8, 8])], ["y"], inits)
    program = generate(model)
    ops = [op for op in model.main.body.blocks[0].ops if pl.TARGET in op.attributes]
    assert [op.name for op in ops] == ["npu.quantize", "npu.conv2d", "npu.pool", "npu.dequantize"]
    assert [pl.get_str(op, pl.TARGET) for op in ops] == ["cpu", "npu", "cpu", "cpu"]
    assert [pl.get_int(op, pl.SEGMENT) for op in ops] == [0, 1, 2, 2]
    reason = pl.get_str(ops[2], pl.REASON)
    assert (
        reason is not None and reason.startswith("code generation: ") and "per-position" in reason
    )
    assert {task.op_index for task in program.tasks} == {
        index for index, op in enumerate(model.main.body.blocks[0].ops) if op is ops[1]
    }


@pytest.mark.parametrize(("channels", "hw"), [(8, (4, 20)), (24, (56, 56)), (16, (3, 96)),
                                               (40, (20, 20))])  # fmt: skip
def test_wide_global_average_pooling_runs_in_two_passes(channels, hw):
    """Partial sums into the op's scratch (int16), then their pooling: bit-exact."""
    results, model = run_pool("GlobalAveragePool", channels, hw)
    (pool,) = [op for op in model.main.body.blocks[0].ops if isinstance(op, npu.PoolOp)]
    scratch = pl.get_int(pool, pl.SCRATCH_OFFSET)
    assert scratch is not None
    # plan-memory keeps the scratch apart from what the op reads and writes
    size = scratch_bytes(pool, get_target("rk3588"))
    assert size == -(-channels // 8) * 8 * 2 * math.prod(global_pool_split(*hw).partial)
    for value in (pool.input, pool.output):
        lo = pl.get_int(value.owner, pl.OFFSET)
        assert lo + pl.get_int(value.owner, pl.BYTES) <= scratch or scratch + size <= lo
    program = generate(model)
    index = list(model.main.body.blocks[0].ops).index(pool)
    assert sum(t.op_index == index for t in program.tasks) == 2 * len(get_tasks(pool))
    assert_exact(results)


def test_split_windows_keep_partial_sums_in_int16():
    """Hand-worked splits: 56 -> 4 x 14, 160 -> 10 x 16, 96 -> 6 x 16, 20 -> 2 x 10 with no
    padding; 40 -> 3 x 14 with 2 padding rows; at most 128 elements a window (|x - zp| <=
    255, 128 * 255 < 2**15); 640 x 640 has no two-pass form."""
    assert global_pool_split(56, 56).window == (4, 4)
    assert global_pool_split(56, 56).partial == (14, 14)
    assert global_pool_split(160, 160).window == (10, 10)
    assert global_pool_split(3, 96).window == (1, 6)
    assert global_pool_split(3, 96).partial == (3, 16)
    assert global_pool_split(20, 20).partial == (10, 10)
    assert global_pool_split(40, 40).pads == (2, 2)
    assert global_pool_split(16, 16) is None  # one pass does
    assert global_pool_split(640, 640) is None  # 40 x 40 windows: over 128 elements


def test_pool_of_a_planar_model_input_is_not_generated():
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2])]
    model, _ = compiled(nodes, [("x", [1, 8, 6, 6])], ["y"])
    [line] = generate(model).unsupported
    assert "NC1HWC2" in line
