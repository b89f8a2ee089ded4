"""`partition-cpu`: the placement (backend.target), the runs of same-target ops
(backend.segment), the reasons and the report on small lowered graphs: conversions at the
model's edges and around float ops on the CPU, op_target by tensor / node / fused name,
dtypes a chip does not compute, the module's backend.chip; and where it must not put an op
on the CPU. Placement changes no value: the interpreter's outputs are the same after it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.errors import CompilerError
from compiler.interpreter import Interpreter
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from passes.partition_cpu import parse_op_target
from tests.helpers.backend import conv, lowered, partition, placed, segments, targets
from tests.helpers.npu import body, names, only, samples
from tests.passes.helpers import clone, model_from_nodes, run_passes

RNG = np.random.default_rng(11)
W1 = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
W2 = RNG.standard_normal((5, 4, 3, 3)).astype(np.float32)
INITS = {"w1": W1, "w2": W2}
X = ("x", (1, 3, 8, 8))
SAME = {"pads": [1, 1, 1, 1]}
EDGE = "(RKNN converts at the NPU's edges on the CPU)"


def conv_pool_conv(**plan):
    """x -> Conv+Relu "conv1" (c1, the Relu "relu1" fused) -> MaxPool "pool" -> Conv
    "conv2" -> y."""
    nodes = [
        conv("x", "w1", "c1", "conv1", **SAME),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("MaxPool", ["r1"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        conv("p", "w2", "y", "conv2", **SAME),
    ]
    return lowered(nodes, [X], ["y"], INITS, **plan)


def float_op_between():
    """x -> Conv "conv1" -> Floor "floor" (no NPU lowering) -> Conv "conv2" -> y."""
    nodes = [
        conv("x", "w1", "c1", "conv1", **SAME),
        helper.make_node("Floor", ["c1"], ["f"], "floor"),
        conv("f", "w2", "y", "conv2", **SAME),
    ]
    return lowered(nodes, [X], ["y"], INITS)


# ---------------------------------------------------------------------- placement, segments


def test_npu_chain_with_its_conversions_on_the_cpu():
    model = conv_pool_conv()
    before = clone(model)
    notes = partition(model)
    assert names(model) == ["npu.quantize", "npu.conv2d", "npu.pool", "npu.conv2d",
                            "npu.dequantize", "func.return"]  # fmt: skip
    assert targets(model) == ["cpu", "npu", "npu", "npu", "cpu"]
    assert segments(model) == [0, 1, 1, 1, 2]
    quantize, conv1, _, _, dequantize = placed(model)
    assert pl.get_str(quantize, pl.REASON) == f"quantizes a model input {EDGE}"
    assert pl.get_str(dequantize, pl.REASON) == f"dequantizes a model output {EDGE}"
    assert pl.get_str(conv1, pl.REASON) is None
    assert pl.get_str(model.module, pl.CHIP) == "rk3588"  # the default target
    assert notes[0] == "partition-cpu: 3 ops on the NPU in 1 segment, 2 on the CPU"
    assert notes[1:] == [
        f"partition-cpu: CPU: npu.quantize '(unnamed)' -> 'x': quantizes a model input {EDGE}",
        f"partition-cpu: CPU: npu.dequantize '(unnamed)' -> 'y': dequantizes a model output {EDGE}",
    ]
    # constants and the return carry no placement
    for op in model.main.body.blocks[0].ops:
        if op.name in ("onnx.Constant", "func.return"):
            assert pl.TARGET not in op.attributes and pl.SEGMENT not in op.attributes
    # placement changes no value
    feed = samples(before)[0]
    np.testing.assert_array_equal(Interpreter(model).run(feed).outputs["y"],
                                  Interpreter(before).run(feed).outputs["y"])  # fmt: skip


def test_a_float_op_splits_the_npu_work_in_two_segments():
    model = float_op_between()
    notes = partition(model)
    assert names(model) == ["npu.quantize", "npu.conv2d", "npu.dequantize", "onnx.Floor",
                            "npu.quantize", "npu.conv2d", "npu.dequantize", "func.return"]  # fmt: skip
    assert targets(model) == ["cpu", "npu", "cpu", "cpu", "cpu", "npu", "cpu"]
    assert segments(model) == [0, 1, 2, 2, 2, 3, 4]
    _, _, dequantize, floor, quantize, _, _ = placed(model)
    assert pl.get_str(dequantize, pl.REASON) == f'dequantizes for CPU op Floor "floor" {EDGE}'
    assert pl.get_str(floor, pl.REASON) == "float Floor: lower-to-npu left it for the CPU"
    assert pl.get_str(quantize, pl.REASON) == (
        f'quantizes the result of CPU op Floor "floor" {EDGE}'
    )
    assert notes[0] == "partition-cpu: 2 ops on the NPU in 2 segments, 5 on the CPU"
    assert len(notes) == 6  # the summary and one line per CPU op
    assert 'partition-cpu: CPU: Floor "floor": float Floor: lower-to-npu left it' in notes[3]


def test_softmax_after_the_npu_takes_the_dequantize_with_it():
    nodes = [conv("x", "w1", "c1", "conv1", **SAME),
             helper.make_node("Softmax", ["c1"], ["y"], "soft", axis=1)]  # fmt: skip
    model = lowered(nodes, [X], ["y"], INITS)
    partition(model)
    assert names(model)[:-1] == ["npu.quantize", "npu.conv2d", "npu.dequantize", "onnx.Softmax"]
    assert targets(model) == ["cpu", "npu", "cpu", "cpu"]
    assert segments(model) == [0, 1, 2, 2]


def test_a_quantized_constant_is_computed_on_the_cpu():
    # Mul(c1, 0.5): lowering quantizes the constant; that value exists before the model runs,
    # so the conversion is not NPU work (code generation reads a scalar into its reader's
    # registers); the multiply stays on the NPU in the convolution's segment
    nodes = [conv("x", "w1", "c1", "conv1", **SAME),
             helper.make_node("Mul", ["c1", "k"], ["y"], "half")]  # fmt: skip
    model = lowered(nodes, [X], ["y"], {**INITS, "k": np.array(0.5, np.float32)})
    partition(model)
    assert names(model)[:-1] == ["npu.quantize", "npu.conv2d", "npu.quantize", "npu.eltwise",
                                 "npu.dequantize"]  # fmt: skip
    assert targets(model) == ["cpu", "npu", "cpu", "npu", "cpu"]
    constant = placed(model)[2]
    assert pl.get_str(constant, pl.REASON) == f"quantizes a constant {EDGE}"


def test_a_model_that_was_not_lowered_runs_on_the_cpu():
    model = model_from_nodes([conv("x", "w1", "y", "conv1")], [X], ["y"], INITS)
    notes = partition(model)
    assert targets(model) == ["cpu"] and segments(model) == [0]
    assert notes[0] == "partition-cpu: 0 ops on the NPU in 0 segments, 1 on the CPU"


# ---------------------------------------------------------------------- op_target


@pytest.mark.parametrize(
    "name",
    ["y", "conv2"],  # the output tensor name, the node name
)
def test_op_target_by_tensor_or_node_name(name: str):
    model = conv_pool_conv()
    notes = partition(model, f'op_target="{name}:cpu"')
    assert names(model)[3] == "npu.conv2d"
    assert targets(model) == ["cpu", "npu", "npu", "cpu", "cpu"]
    assert segments(model) == [0, 1, 1, 2, 2]
    conv2 = placed(model)[3]
    assert pl.get_str(conv2, pl.REASON) == "op_target places it on the CPU"
    assert notes[0] == "partition-cpu: 2 ops on the NPU in 1 segment, 3 on the CPU"
    assert "partition-cpu: CPU: npu.conv2d 'conv2' -> 'y': op_target places it on the CPU" in notes


def test_op_target_by_a_fused_node_name_and_in_the_middle():
    """The Relu "relu1" was fused into conv1: naming it moves conv1. A CPU op between NPU
    ops makes three NPU-side segments out of one (no conversions: it reads and writes the
    quantized values)."""
    model = conv_pool_conv()
    partition(model, 'op_target="relu1:cpu","pool:npu"')
    assert targets(model) == ["cpu", "cpu", "npu", "npu", "cpu"]
    assert segments(model) == [0, 0, 1, 1, 2]
    model = conv_pool_conv()
    notes = partition(model, 'op_target="pool:cpu"')
    assert targets(model) == ["cpu", "npu", "cpu", "npu", "cpu"]
    assert segments(model) == [0, 1, 2, 3, 4]
    assert notes[0] == "partition-cpu: 2 ops on the NPU in 2 segments, 3 on the CPU"


def test_op_target_naming_no_op_is_reported():
    model = conv_pool_conv()
    notes = partition(model, 'op_target="nothing:cpu","conv2:npu","y:cpu"')
    assert targets(model) == ["cpu", "npu", "npu", "cpu", "cpu"]  # cpu wins for conv2 / y
    assert [n for n in notes if "names no op" in n] == [
        "partition-cpu: op_target 'nothing' names no op (fused away or misspelt?)"
    ]


def test_op_target_npu_on_a_float_op_is_reported_and_ignored():
    model = float_op_between()
    notes = partition(model, 'op_target="floor:npu"')
    assert targets(model)[3] == "cpu"
    assert any('op_target asks for the NPU, but Floor "floor" is a float op' in n for n in notes)


def test_op_target_entries():
    assert parse_op_target(("a:cpu", "b:NPU,c", "onnx::Conv_3", "/fc/Gemm:cpu", "d:auto")) == {
        "a": "cpu", "b": "npu", "c": "cpu", "onnx::Conv_3": "cpu", "/fc/Gemm": "cpu",
        "d": "auto",
    }  # fmt: skip
    with pytest.raises(CompilerError, match="no GPU backend"):
        parse_op_target(("x:gpu",))


# ---------------------------------------------------------------------- the chip


def test_a_dtype_the_chip_does_not_compute_goes_to_the_cpu():
    """conv2 in float16 (a per-layer override): RV1106's NPU has no float16 (its rows of the
    alignment table are Int8 / Int16 only), so conv2 and the requantize into float16 run on
    the CPU; on RK3588 they stay on the NPU."""
    model = conv_pool_conv(overrides={"y": "f16"})
    assert names(model)[3:5] == ["npu.requantize", "npu.conv2d"]
    on_rk3588 = clone(model)
    notes = partition(model, "target=rv1106")
    reason = "rv1106 NPU does not compute f16 activations (it computes i8, i16)"
    assert targets(model) == ["cpu", "npu", "npu", "cpu", "cpu", "cpu"]
    requantize, conv2 = placed(model)[3:5]
    assert pl.get_str(requantize, pl.REASON) == reason
    assert pl.get_str(conv2, pl.REASON) == reason
    assert f"partition-cpu: CPU: npu.conv2d 'conv2' -> 'y': {reason}" in notes
    assert pl.get_str(model.module, pl.CHIP) == "rv1106"
    partition(on_rk3588)
    assert targets(on_rk3588) == ["cpu", "npu", "npu", "npu", "npu", "cpu"]


def test_int4_weights_run_where_the_chip_pairs_them():
    """w4a16 (int4 weights, float16 activations) is RK3576's alone."""
    model = lowered([conv("x", "w1", "y", "conv1")], [X], ["y"], INITS, dtype="f16",
                    weight_dtype="i4")  # fmt: skip
    on_rk3576 = clone(model)
    partition(model)
    conv1 = only(model, npu.Conv2dOp)
    assert pl.get_str(conv1, pl.TARGET) == "cpu"
    assert pl.get_str(conv1, pl.REASON).startswith(
        "rk3588 NPU does not pair i4 weights with f16 activations"
    )
    partition(on_rk3576, "target=rk3576")
    assert pl.get_str(only(on_rk3576, npu.Conv2dOp), pl.TARGET) == "npu"


def test_chip_aliases_give_the_canonical_name_and_unknown_ones_fail():
    model = conv_pool_conv()
    partition(model, "target=RK3568")
    assert pl.get_str(model.module, pl.CHIP) == "rk3566"
    with pytest.raises(CompilerError, match="unknown target 'rk9999'"):
        partition(model, "target=rk9999")


def test_running_again_replaces_the_placement():
    model = conv_pool_conv()
    partition(model, 'op_target="conv2:cpu"')
    partition(model)
    assert targets(model) == ["cpu", "npu", "npu", "npu", "cpu"]
    assert all(pl.REASON not in op.attributes for op in placed(model)[1:4])


def test_placement_survives_the_text_round_trip(tmp_path):
    from compiler.ir_model import IRModel

    model = float_op_between()
    run_passes(model, "partition-cpu{target=rk3566}")
    model.save(tmp_path / "m.mlir")
    loaded = IRModel.load(tmp_path / "m.mlir")
    assert targets(loaded) == targets(model) and segments(loaded) == segments(model)
    assert pl.get_str(loaded.module, pl.CHIP) == "rk3566"
    assert [pl.get_str(op, pl.REASON) for op in body(loaded)] == [
        pl.get_str(op, pl.REASON) for op in body(model)
    ]
