"""`assign-layout`: NC1HWC2 with the chip's C2 on 4-D NPU results, NCHW on 4-D CPU results,
UNDEFINED off 4-D, the model's inputs (NHWC for 1, 3 or 4 channels) and outputs in the
function's argument / result attributes beside `onnx.name`; and the error without
partition-cpu. Layouts change no value: the interpreter's outputs are the same after it.

C2 by hand (sdk_inventory §5.2 table 5-1, 16 bytes per C2 block on RK3588, 8 on RK3566):
RK3588 int8 16, int16 8, float16 8; RK3566 int8 8, float16 4.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from xdsl.dialects.builtin import Float32Type, IntegerType, Signedness, TensorType, i64

from compiler.errors import CompilerError
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.npu import placement as pl
from passes.assign_layout import boundary_layout
from tests.helpers.backend import conv, lowered, placed
from tests.helpers.npu import names, samples
from tests.passes.helpers import clone, run_passes

RNG = np.random.default_rng(12)
SAME = {"pads": [1, 1, 1, 1]}


def weights(out_channels: int, in_channels: int) -> np.ndarray:
    return RNG.standard_normal((out_channels, in_channels, 3, 3)).astype(np.float32)


def conv_flatten_fc(channels: int = 3, **plan) -> IRModel:
    """x [1, C, 8, 8] -> Conv "conv1" (4) -> Flatten "flat" -> Gemm "fc" (3) -> y [1, 3]; and
    the conv's output "c1" is a model output too."""
    nodes = [
        conv("x", "w1", "c1", "conv1", **SAME),
        helper.make_node("Flatten", ["c1"], ["f"], "flat"),
        helper.make_node("Gemm", ["f", "wfc"], ["y"], "fc", transB=1),
    ]
    inits = {"w1": weights(4, channels), "wfc": RNG.standard_normal((3, 256)).astype(np.float32)}
    return lowered(nodes, [("x", (1, channels, 8, 8))], ["y", "c1"], inits, **plan)


def layouts(model: IRModel) -> list[tuple[str | None, int | None]]:
    return [(pl.get_str(op, pl.LAYOUT), pl.get_int(op, pl.C2)) for op in placed(model)]


def boundary(model: IRModel) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The function's argument and result attributes as plain dictionaries."""
    func = model.main
    return ([{k: v.data for k, v in d.data.items()} for d in func.arg_attrs.data],
            [{k: v.data for k, v in d.data.items()} for d in func.res_attrs.data])  # fmt: skip


def test_layouts_on_rk3588_int8():
    model = conv_flatten_fc()
    before = clone(model)
    run_passes(model, "partition-cpu,assign-layout")
    assert names(model) == ["npu.quantize", "npu.conv2d", "npu.dequantize", "npu.reshape",
                            "npu.fully_connected", "npu.dequantize", "func.return"]  # fmt: skip
    assert layouts(model) == [
        ("NCHW", None),  # the input's quantize runs on the CPU
        ("NC1HWC2", 16),  # conv1, int8 on RK3588
        ("NCHW", None),  # dequantize of the output c1 (CPU)
        ("UNDEFINED", None),  # Flatten: [1, 256]
        ("UNDEFINED", None),  # fc: [1, 3]
        ("UNDEFINED", None),  # dequantize of y (CPU)
    ]
    args, results = boundary(model)
    assert args == [{"onnx.name": "x", "backend.layout": "NHWC"}]  # 3 channels: NHWC
    assert results == [{"onnx.name": "y", "backend.layout": "UNDEFINED"},
                       {"onnx.name": "c1", "backend.layout": "NCHW"}]  # fmt: skip
    feed = samples(before)[0]
    want, got = Interpreter(before).run(feed).outputs, Interpreter(model).run(feed).outputs
    for name in ("y", "c1"):
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize(
    ("target", "plan", "c2"),
    [
        ("rk3566", {}, 8),
        ("rv1106", {}, 16),
        ("rk3588", {"dtype": "i16"}, 8),
        ("rk3588", {"dtype": "f16"}, 8),
        ("rk3566", {"dtype": "f16"}, 4),
    ],
)
def test_c2_follows_the_chip_and_dtype(target: str, plan: dict, c2: int):
    model = conv_flatten_fc(**plan)
    run_passes(model, f"partition-cpu{{target={target}}},assign-layout")
    assert layouts(model)[1] == ("NC1HWC2", c2)


@pytest.mark.parametrize(
    ("channels", "layout"),
    [(1, "NHWC"), (3, "NHWC"), (4, "NHWC"), (2, "NCHW"), (5, "NCHW"), (16, "NCHW")],
)
def test_model_input_layout_by_channels(channels: int, layout: str):
    model = conv_flatten_fc(channels)
    run_passes(model, "partition-cpu,assign-layout")
    args, _ = boundary(model)
    assert args == [{"onnx.name": "x", "backend.layout": layout}]


def test_boundary_layouts_by_rank_and_dtype():
    def t(element, *shape: int) -> TensorType:
        return TensorType(element, list(shape))

    u8 = IntegerType(8, Signedness.UNSIGNED)
    assert boundary_layout(t(Float32Type(), 1, 3, 8, 8), True) == "NHWC"
    assert boundary_layout(t(u8, 1, 3, 8, 8), True) == "NHWC"
    assert boundary_layout(t(i64, 1, 3, 8, 8), True) == "NCHW"  # sdk §5.3: int64 4-D: NCHW
    assert boundary_layout(t(Float32Type(), 1, 3, 8, 8), False) == "NCHW"  # outputs: NCHW
    assert boundary_layout(t(Float32Type(), 1, 3, 8), True) == "UNDEFINED"
    assert boundary_layout(t(Float32Type(), 2, 10), False) == "UNDEFINED"


def test_an_npu_op_placed_on_the_cpu_is_nchw_and_loses_its_c2():
    model = conv_flatten_fc()
    run_passes(model, "partition-cpu,assign-layout")
    run_passes(model, 'partition-cpu{op_target="conv1:cpu"},assign-layout')
    assert layouts(model)[1] == ("NCHW", None)
    assert pl.C2 not in placed(model)[1].attributes


def test_needs_partition_cpu_first():
    model = conv_flatten_fc()
    with pytest.raises(CompilerError, match=r"assign-layout needs partition-cpu first: "
                       r"npu.quantize .* has no backend.target"):  # fmt: skip
        run_passes(model, "assign-layout")


def test_layouts_survive_the_text_round_trip(tmp_path):
    model = conv_flatten_fc()
    run_passes(model, "partition-cpu{target=rk3566},assign-layout")
    model.save(tmp_path / "m.mlir")
    loaded = IRModel.load(tmp_path / "m.mlir")
    assert layouts(loaded) == layouts(model) and boundary(loaded) == boundary(model)
    assert [s.name for s in loaded.inputs] == ["x"]  # onnx.name still read
