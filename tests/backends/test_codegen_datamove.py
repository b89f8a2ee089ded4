"""Golden register tests of the PPU copies (`backends/codegen/datamove.py`): a channel
concat and a slice, their PPU tasks' fields derived here by hand from shapes and offsets
(NC1HWC2 int8: C2 16, one 16-byte atom per (c1, h, w))."""

from __future__ import annotations

import numpy as np
from onnx import helper

from backends.codegen import ARENA, generate
from tests.backends.codegen_fixture import offset, ops_named, registers, relocated
from tests.helpers.backend import conv
from tests.helpers.npu import mantissa_shift
from tests.runtime.sim_harness import compiled

RNG = np.random.default_rng(31)


def convs(channels: list[int], hw: tuple[int, int]) -> tuple[list, dict]:
    nodes, inits = [], {}
    for i, c in enumerate(channels):
        nodes.append(conv("x", f"w{i}", f"c{i}", f"conv{i}", b=f"b{i}", pads=[1, 1, 1, 1]))
        inits[f"w{i}"] = (RNG.standard_normal((c, 4, 3, 3)) * 0.3).astype(np.float32)
        inits[f"b{i}"] = (RNG.standard_normal(c) * 0.2).astype(np.float32)
    return nodes, inits


def test_channel_concat_writes_each_input_at_its_surface():
    # conv0 (16 ch) ++ conv1 (8 ch) on 6x7: two PPU tasks. Each reads its whole input (line
    # stride 7, surface 42 atoms) and writes surfaces 0 and 1 of the output (42 atoms = 672
    # bytes apart). Different quantizations: the 1 x 1 average requantizes.
    nodes, inits = convs([16, 8], (6, 7))
    node = helper.make_node("Concat", ["c0", "c1"], ["y"], name="cat", axis=1)
    model, _ = compiled([*nodes, node], [("x", [1, 4, 6, 7])], ["y"], inits)
    conv0, conv1 = ops_named(model, "npu.conv2d")
    (cat,) = ops_named(model, "npu.concat")
    program = generate(model)
    assert not program.unsupported
    assert len(program.tasks) == 4  # two convolutions, two copies
    for task, source, channels, at in ((2, conv0, 16, 0), (3, conv1, 8, 672)):
        r = registers(program, task)
        assert r["PPU_RDMA.RDMA_CUBE_IN_CHANNEL"]["CUBE_IN_CHANNEL"] == channels - 1
        assert r["PPU_RDMA.RDMA_CUBE_IN_HEIGHT"]["CUBE_IN_HEIGHT"] == 5
        assert r["PPU_RDMA.RDMA_CUBE_IN_WIDTH"]["CUBE_IN_WIDTH"] == 6
        assert r["PPU_RDMA.RDMA_SRC_LINE_STRIDE"]["SRC_LINE_STRIDE"] == 7
        assert r["PPU_RDMA.RDMA_SRC_SURF_STRIDE"]["SRC_SURF_STRIDE"] == 42
        assert r["PPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 42
        kernel = r["PPU.POOLING_KERNEL_CFG"]
        assert set(kernel.values()) == {0}  # a 1 x 1 window, stride 1
        q_in, q_out = source.quant, cat.quant
        if q_in == q_out:
            assert r["PPU.OPERATION_MODE_CFG"]["POOLING_METHOD"] == 1
        else:
            mant, shift = mantissa_shift(q_in.scale / q_out.scale)
            assert r["PPU.OPERATION_MODE_CFG"]["POOLING_METHOD"] == 0
            assert r["PPU.RECIP_KERNEL_WIDTH"]["RECIP_KERNEL_WIDTH"] == mant
            assert r["PPU.RECIP_KERNEL_HEIGHT"]["RECIP_KERNEL_HEIGHT"] == shift
        moved = {k: v for k, v in relocated(program, task).items() if k.startswith("PPU")}
        assert moved == {  # (task 2's trailer also relocates PC.BASE_ADDRESS: task 3)
            "PPU_RDMA.RDMA_SRC_BASE_ADDR": (ARENA, offset(source)),
            "PPU.DST_BASE_ADDR": (ARENA, offset(cat) + at),
        }


def test_slice_reads_its_window_with_the_input_strides():
    # conv0 16 ch 9x9, rows [1, 5) x columns [2, 7): first atom (1 * 9 + 2) = 11 -> 176
    # bytes in; a 4 x 5 cube (fields 3, 4), line stride 9, surface 81; output surface 20.
    nodes, inits = convs([16], (9, 9))
    inits |= {"st": np.array([1, 2], np.int64), "en": np.array([5, 7], np.int64),
              "ax": np.array([2, 3], np.int64)}  # fmt: skip
    node = helper.make_node("Slice", ["c0", "st", "en", "ax"], ["y"], name="sl")
    model, _ = compiled([*nodes, node], [("x", [1, 4, 9, 9])], ["y"], inits)
    (conv0,), (sl,) = ops_named(model, "npu.conv2d"), ops_named(model, "npu.slice")
    program = generate(model)
    r = registers(program, 1)
    assert (r["PPU_RDMA.RDMA_CUBE_IN_HEIGHT"]["CUBE_IN_HEIGHT"],
            r["PPU_RDMA.RDMA_CUBE_IN_WIDTH"]["CUBE_IN_WIDTH"]) == (3, 4)  # fmt: skip
    assert r["PPU_RDMA.RDMA_SRC_LINE_STRIDE"]["SRC_LINE_STRIDE"] == 9
    assert r["PPU_RDMA.RDMA_SRC_SURF_STRIDE"]["SRC_SURF_STRIDE"] == 81
    assert (r["PPU.DATA_CUBE_OUT_HEIGHT"]["CUBE_OUT_HEIGHT"],
            r["PPU.DATA_CUBE_OUT_WIDTH"]["CUBE_OUT_WIDTH"]) == (3, 4)  # fmt: skip
    assert r["PPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 20
    assert relocated(program, 1) == {
        "PPU_RDMA.RDMA_SRC_BASE_ADDR": (ARENA, offset(conv0) + 176),
        "PPU.DST_BASE_ADDR": (ARENA, offset(sl)),
    }


def test_flatten_writes_the_row_major_layout():
    # conv0 20 ch 3x4 -> Flatten [1, 240]: one PPU task reading 20 x 3 x 4 (two surfaces of
    # 12 atoms) and writing NCHW: MISC_CTRL.NONALIGN, surface stride 3 * 4 = 12 elements.
    nodes, inits = convs([20], (3, 4))
    inits |= {"wf": (RNG.standard_normal((10, 240)) * 0.1).astype(np.float32),
              "bf": (RNG.standard_normal(10) * 0.1).astype(np.float32)}  # fmt: skip
    nodes += [helper.make_node("Flatten", ["c0"], ["f"], name="flat"),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]  # fmt: skip
    model, _ = compiled(nodes, [("x", [1, 4, 3, 4])], ["y"], inits)
    program = generate(model)
    assert not program.unsupported
    r = registers(program, 1)
    assert r["PPU.MISC_CTRL"]["NONALIGN"] == 1
    assert r["PPU_RDMA.RDMA_CUBE_IN_CHANNEL"]["CUBE_IN_CHANNEL"] == 19
    assert r["PPU_RDMA.RDMA_SRC_SURF_STRIDE"]["SRC_SURF_STRIDE"] == 12
    assert r["PPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 12
    assert (r["PPU.DATA_CUBE_OUT_HEIGHT"]["CUBE_OUT_HEIGHT"],
            r["PPU.DATA_CUBE_OUT_WIDTH"]["CUBE_OUT_WIDTH"]) == (2, 3)  # fmt: skip


def test_concat_of_3d_tensors_is_listed_not_failed():
    """yolov8n's detection head concatenates [1, C, N] tensors: not generated yet, listed
    (it crashed code generation once)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu_a"),
        helper.make_node("Relu", ["x"], ["b"], name="relu_b"),
        helper.make_node("Concat", ["a", "b"], ["y"], name="cat3", axis=1),
    ]
    model, _ = compiled(nodes, [("x", [1, 4, 6])], ["y"])
    program = generate(model)
    assert any('"cat3"' in line or "'cat3'" in line for line in program.unsupported)
