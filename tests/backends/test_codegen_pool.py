"""Golden register tests of PPU tasks (pooling): a convolution then a pooling compiled, the
pooling's command words decoded and compared with field values derived here by hand from
the shapes, windows, zero points and scales (the reading of each field is in
backends/registers/ppu_values.py). Nothing below is computed by the code under test."""

from __future__ import annotations

import numpy as np
from onnx import helper

from backends.codegen import ARENA, generate
from backends.registers import decode
from tests.backends.codegen_fixture import field_value, offset, ops_named, registers, relocated
from tests.helpers.backend import conv
from tests.helpers.npu import mantissa_shift
from tests.runtime.sim_harness import compiled

RNG = np.random.default_rng(9)
PPU_ENABLE = {"PPU_OP_EN": 1, "PPU_RDMA_OP_EN": 1}


def conv_then(node: helper.NodeProto, channels: int, hw: tuple[int, int]):
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]), node]
    inits = {"w": (RNG.standard_normal((channels, 4, 3, 3)) * 0.3).astype(np.float32),
             "b": (RNG.standard_normal(channels) * 0.2).astype(np.float32)}  # fmt: skip
    model, _ = compiled(nodes, [("x", [1, 4, *hw])], ["y"], inits)
    return model


def enabled(program, task: int) -> dict[str, int]:
    record = program.tasks[task]
    block, register, fields = decode(program.words[record.first_word + record.word_count - 1])
    assert (block, register) == ("CMD", "OP_ENABLE")
    return {name: value for name, value in fields.items() if value}


def test_max_pool_3x3_stride_2_padded():
    # 16 channels, 9x10 (the conv keeps its size: pads 1), MaxPool 3x3 stride 2 pads 1:
    # output (9 + 2 - 3) // 2 + 1 = 5 rows, (10 + 2 - 3) // 2 + 1 = 5 columns. One task.
    # Output rows 0..4 read input rows -1..9, clipped to [0, 9): the band's own top pad 1,
    # bottom pad 4 * 2 - 1 + 3 - 9 = 1. NC1HWC2 int8 (C2 16): line stride 10 atoms,
    # surface stride 9 * 10 = 90 in, 5 * 5 = 25 out. Max pads with -128.
    model = conv_then(helper.make_node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[3, 3],
                                       strides=[2, 2], pads=[1, 1, 1, 1]), 16, (9, 10))  # fmt: skip
    (conv_op,), (pool,) = ops_named(model, "npu.conv2d"), ops_named(model, "npu.pool")
    program = generate(model)
    assert not program.unsupported
    assert len(program.tasks) == 2 and program.jobs == [0]  # one chain: conv, then pool
    assert enabled(program, 1) == PPU_ENABLE
    r = registers(program, 1)
    assert r["PPU_RDMA.RDMA_CUBE_IN_WIDTH"]["CUBE_IN_WIDTH"] == 9
    assert r["PPU_RDMA.RDMA_CUBE_IN_HEIGHT"]["CUBE_IN_HEIGHT"] == 8
    assert r["PPU_RDMA.RDMA_CUBE_IN_CHANNEL"]["CUBE_IN_CHANNEL"] == 15
    assert r["PPU_RDMA.RDMA_SRC_LINE_STRIDE"]["SRC_LINE_STRIDE"] == 10
    assert r["PPU_RDMA.RDMA_SRC_SURF_STRIDE"]["SRC_SURF_STRIDE"] == 90
    assert r["PPU_RDMA.RDMA_DATA_FORMAT"]["IN_PRECISION"] == 0
    assert r["PPU.DATA_CUBE_IN_WIDTH"]["CUBE_IN_WIDTH"] == 9
    assert r["PPU.DATA_CUBE_OUT_WIDTH"]["CUBE_OUT_WIDTH"] == 4
    assert r["PPU.DATA_CUBE_OUT_HEIGHT"]["CUBE_OUT_HEIGHT"] == 4
    assert r["PPU.DATA_CUBE_OUT_CHANNEL"]["CUBE_OUT_CHANNEL"] == 15
    mode = r["PPU.OPERATION_MODE_CFG"]
    assert (mode["POOLING_METHOD"], mode["FLYING_MODE"]) == (1, 1)  # max, from memory
    kernel = r["PPU.POOLING_KERNEL_CFG"]
    assert (kernel["KERNEL_WIDTH"], kernel["KERNEL_HEIGHT"]) == (2, 2)  # 3 - 1
    assert (kernel["KERNEL_STRIDE_WIDTH"], kernel["KERNEL_STRIDE_HEIGHT"]) == (1, 1)  # 2 - 1
    pads = r["PPU.POOLING_PADDING_CFG"]
    assert (pads["PAD_TOP"], pads["PAD_LEFT"], pads["PAD_BOTTOM"], pads["PAD_RIGHT"]) == (1,) * 4
    assert r["PPU.PADDING_VALUE_1_CFG"]["PAD_VALUE_0"] == 0xFFFF_FF80  # -128
    assert r["PPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 25
    assert r["PPU.DATA_FORMAT"]["PROC_PRECISION"] == 0
    assert relocated(program, 1) == {
        "PPU_RDMA.RDMA_SRC_BASE_ADDR": (ARENA, offset(conv_op)),
        "PPU.DST_BASE_ADDR": (ARENA, offset(pool)),  # the CPU dequantize reads it: internal
    }


def test_average_pool_2x2_carries_the_contract_multiplier():
    # AveragePool 2x2 stride 2 on 8x8: 4 elements a window, m = s_in / (s_out * 4) as the
    # DPU's 15-bit fixed point (M, S); RECIP_KERNEL_WIDTH = M, RECIP_KERNEL_HEIGHT = S,
    # PAD_VALUE_0 = the input zero point, INDEX_ADD = the output zero point (28 bits).
    model = conv_then(helper.make_node("AveragePool", ["c"], ["y"], name="pool",
                                       kernel_shape=[2, 2], strides=[2, 2]), 16, (8, 8))  # fmt: skip
    (conv_op,), (pool,) = ops_named(model, "npu.conv2d"), ops_named(model, "npu.pool")
    program = generate(model)
    r = registers(program, 1)
    s_in, zp_in = conv_op.quant.scale, conv_op.quant.zero_point
    s_out, zp_out = pool.quant.scale, pool.quant.zero_point
    mant, shift = mantissa_shift(s_in / (s_out * 4))
    assert r["PPU.OPERATION_MODE_CFG"]["POOLING_METHOD"] == 0  # average
    assert r["PPU.RECIP_KERNEL_WIDTH"]["RECIP_KERNEL_WIDTH"] == mant
    assert r["PPU.RECIP_KERNEL_HEIGHT"]["RECIP_KERNEL_HEIGHT"] == shift
    assert r["PPU.PADDING_VALUE_1_CFG"]["PAD_VALUE_0"] == field_value(zp_in)
    assert r["PPU.DATA_FORMAT"]["INDEX_ADD"] == field_value(zp_out, 28)
    kernel = r["PPU.POOLING_KERNEL_CFG"]
    assert (kernel["KERNEL_WIDTH"], kernel["KERNEL_STRIDE_WIDTH"]) == (1, 1)
    assert r["PPU.DATA_CUBE_OUT_WIDTH"]["CUBE_OUT_WIDTH"] == 3  # 4 - 1


def test_global_average_pool_is_one_window_of_the_whole_plane():
    model = conv_then(helper.make_node("GlobalAveragePool", ["c"], ["y"], name="pool"), 8, (5, 6))
    program = generate(model)
    r = registers(program, 1)
    kernel = r["PPU.POOLING_KERNEL_CFG"]
    assert (kernel["KERNEL_HEIGHT"], kernel["KERNEL_WIDTH"]) == (4, 5)  # 5 x 6 window
    assert r["PPU.DATA_CUBE_OUT_WIDTH"]["CUBE_OUT_WIDTH"] == 0
    assert r["PPU.DATA_CUBE_OUT_HEIGHT"]["CUBE_OUT_HEIGHT"] == 0
    assert r["PPU.DST_SURF_STRIDE"]["DST_SURF_STRIDE"] == 1
