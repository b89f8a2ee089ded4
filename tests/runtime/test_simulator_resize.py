"""`npu.resize` nearest by an integer factor as a depthwise transposed convolution
(backends/codegen/resize.py): golden register fields derived by hand, bit-exactness of the
simulator against the `npu` reference executor (ONNX Resize semantics), many tasks on a
small CBUF, and the forms that stay on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from backends.codegen import generate
from dialects.npu import placement as pl
from dialects.npu.placement import get_tasks
from tests.backends.codegen_fixture import ops_named, registers, relocated
from tests.runtime.sim_harness import assert_exact, compiled, simulate, small_cbuf


def resize_model(channels: int, hw: tuple[int, int], scales: tuple[float, float],
                 mode: str = "nearest", ctm: str = "asymmetric", nearest: str = "floor",
                 target=None, **plan):  # fmt: skip
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], "up", mode=mode,
                            coordinate_transformation_mode=ctm, nearest_mode=nearest)  # fmt: skip
    inits = {"scales": np.array([1, 1, *scales], np.float32)}
    return compiled([node], [("x", [1, channels, *hw])], ["y"], inits, target=target, **plan)


def test_golden_fields_of_a_2x_upsampling():
    # 1x20x5x6 -> 10x12: depthwise (CONV_MODE 3), DECONV with one inserted row and column,
    # a 2x2 kernel, padding k - 1 = 1 above and left; weights all 1; the table's bias is
    # -zp * 4 and the output converter the identity (16384 / 2**14)
    model, _ = resize_model(20, (5, 6), (2, 2))
    (quant,), (op,) = ops_named(model, "npu.quantize"), ops_named(model, "npu.resize")
    assert op.quant == quant.quant
    program = generate(model)
    assert program.unsupported == [] and len(program.tasks) == 1
    r = registers(program, 0)
    assert r["CNA.CONV_CON1"]["DECONV"] == 1 and r["CNA.CONV_CON1"]["CONV_MODE"] == 3
    con3 = r["CNA.CONV_CON3"]
    assert (con3["DECONV_Y_STRIDE"], con3["DECONV_X_STRIDE"]) == (1, 1)
    assert (con3["CONV_Y_STRIDE"], con3["CONV_X_STRIDE"]) == (1, 1)
    assert (r["CNA.PAD_CON0"]["PAD_TOP"], r["CNA.PAD_CON0"]["PAD_LEFT"]) == (1, 1)
    assert r["CNA.PAD_CON1"]["PAD_VALUE"] == quant.quant.zero_point
    size2 = r["CNA.WEIGHT_SIZE2"]
    assert (size2["WEIGHT_HEIGHT"], size2["WEIGHT_WIDTH"], size2["WEIGHT_KERNELS"]) == (2, 2, 1)
    assert (r["CNA.DATA_SIZE0"]["DATAIN_HEIGHT"], r["CNA.DATA_SIZE0"]["DATAIN_WIDTH"]) == (5, 6)
    assert r["CNA.DATA_SIZE3"]["DATAOUT_ATOMICS"] == 120
    # depthwise packing [C1][2][2][64]: the 20 channels' 4 taps are 1, the padding lanes 0
    relocations = relocated(program, 0)
    _, base = relocations["CNA.DCOMP_ADDR0"]
    packed = np.frombuffer(program.weight_blob, np.int8, 4 * 64, base).reshape(4, 64)
    assert (packed[:, :20] == 1).all() and (packed[:, 20:] == 0).all()
    # the tensor path: one int32 bias per channel (32 of them: 20 up to the C2 of 16)
    _, table = relocations["DPU_RDMA.RDMA_BS_BASE_ADDR"]
    bias = np.frombuffer(program.weight_blob, "<i4", 32, table)
    zp = quant.quant.zero_point
    np.testing.assert_array_equal(bias, [-4 * zp] * 20 + [0] * 12)
    cvt = (r["DPU.OUT_CVT_SCALE"]["OUT_CVT_SCALE"], r["DPU.OUT_CVT_SHIFT"]["OUT_CVT_SHIFT"])
    assert cvt[0] == 2 ** cvt[1]
    assert r["DPU.OUT_CVT_OFFSET"]["OUT_CVT_OFFSET"] == zp


@pytest.mark.parametrize(
    ("channels", "hw", "scales", "ctm", "nearest"),
    [
        (16, (5, 6), (2, 2), "asymmetric", "floor"),  # the zoo's form
        (20, (4, 5), (3, 3), "half_pixel", "round_prefer_floor"),
        (8, (4, 4), (2, 3), "pytorch_half_pixel", "round_prefer_ceil"),
        (3, (6, 5), (4, 2), "asymmetric", "floor"),
    ],
    ids=["2x", "3x_half_pixel", "2x3_pytorch", "4x2_3ch"],
)
def test_bit_exact(channels, hw, scales, ctm, nearest):
    model, feeds = resize_model(channels, hw, scales, ctm=ctm, nearest=nearest)
    assert generate(model).unsupported == []
    for feed in feeds:
        assert_exact(simulate(model, feed), expected_ops=1)


def test_int16():
    model, feeds = resize_model(8, (4, 5), (2, 2), dtype="i16")
    (op,) = ops_named(model, "npu.resize")
    assert op.quant.element == "i16"
    assert_exact(simulate(model, feeds[0]), expected_ops=1)


def test_row_bands_and_channel_groups_on_a_small_cbuf():
    # 1x48x16x8, 2x: one planar input row is 8 x 48 = 384 B; 4 banks of 512 B leave 3
    # (after one weight bank) for data: 4 input rows a band at most, so several bands
    target = small_cbuf(banks=4, bank_bytes=512)
    model, feeds = resize_model(48, (16, 8), (2, 2), target=target)
    (op,) = ops_named(model, "npu.resize")
    tasks = get_tasks(op)
    assert len({(y0, y1) for y0, y1, _, _ in tasks}) > 2
    program = generate(model, target)
    for index, (y0, _, _, _) in enumerate(tasks):
        # a band starting at an even output row reads from input row y0 / 2 with the one
        # inserted row above it as padding; the tile pass cuts bands at even rows here
        assert y0 % 2 == 0
        assert registers(program, index)["CNA.PAD_CON0"]["PAD_TOP"] == 1
    for feed in feeds:
        assert_exact(simulate(model, feed, program, target))


@pytest.mark.parametrize(
    ("scales", "mode", "ctm", "nearest", "reason"),
    [
        ((2, 2), "linear", "half_pixel", "floor", "linear resize"),
        ((1.5, 1.5), "nearest", "asymmetric", "floor", "not an integer upsampling"),
        ((2, 2), "nearest", "asymmetric", "round_prefer_ceil", "coordinates"),
        ((2, 2), "nearest", "align_corners", "floor", "coordinates"),
    ],
    ids=["linear", "1.5x", "asymmetric_ceil", "align_corners"],
)
def test_other_resizes_stay_on_the_cpu(scales, mode, ctm, nearest, reason):
    model, _ = resize_model(8, (4, 4), scales, mode=mode, ctm=ctm, nearest=nearest)
    (op,) = ops_named(model, "npu.resize")
    program = generate(model)
    assert len(program.unsupported) == 1 and reason in program.unsupported[0]
    assert pl.get_str(op, pl.TARGET) == "cpu"
