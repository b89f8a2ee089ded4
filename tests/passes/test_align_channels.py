"""`align-channels`: padded weight copies up to the chip's channel alignment.

Expectations by hand from sdk_inventory §5.4 (RKNN user guide tables 8-1..8-4), as
(weight rows, input channels the padded weights read):

    RK3588 int8: conv in 32, conv out 32, depthwise 64   RK3566 int8: in 32, out 16, dw 32
    RK3588 int16: conv in 32, conv out 16                RK3566 int16: in 16, out 8

The op keeps its logical weights and result; the padded arrays are in the weight table and
the op refers to them. The numeric check runs them: `materialize` rewrites each aligned op
into what the NPU computes (input channels padded with copies of real channels, the op over
the padded arrays, a depthwise op with as many groups as padded channels, the logical
channels sliced back), and the reference interpreter must give bit-identical integers
before and after.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from xdsl.dialects.builtin import IntAttr
from xdsl.ir import Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.dtypes import tensor_type_of
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.npu.attributes import QuantAttr
from dialects.npu.placement import (
    PADDED_BIAS,
    PADDED_WEIGHT,
    PADDED_WEIGHT_QUANT,
    WEIGHT_IN_CHANNELS,
    WEIGHT_OUT_CHANNELS,
)
from dialects.onnx import ConstantOp
from dialects.weights import WeightRefAttr, using_weights
from runtime.kernels import quantized as qk
from tests.helpers.backend import conv, lowered
from tests.helpers.npu import body, const, samples
from tests.passes.helpers import clone, run_passes
from tests.zoo import BY_NAME, model_path, zoo_file

RNG = np.random.default_rng(13)
SAME = {"pads": [1, 1, 1, 1]}


def f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def conv_case(c_in: int, c_out: int, k: int = 3, hw: int = 8, **attrs) -> IRModel:
    w = f32(c_out, c_in // attrs.get("group", 1), k, k)
    node = conv("x", "w", "y", "conv", "b", **attrs)
    return lowered([node], [("x", (1, c_in, hw, hw))], ["y"], {"w": w, "b": f32(c_out)})


def relu_residual_case() -> IRModel:
    """Conv 13 -> 13 + Relu + Add(x): one npu.conv2d with a residual after fuse-add."""
    nodes = [
        conv("x", "w", "c", "conv", "b", **SAME),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("Add", ["r", "x"], ["y"], "add"),
    ]
    return lowered(nodes, [("x", (1, 13, 6, 6))], ["y"], {"w": f32(13, 13, 3, 3), "b": f32(13)},
                   passes="fuse-activation,fuse-add")  # fmt: skip


def fc_case(n: int, k: int = 20) -> IRModel:
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)
    return lowered([node], [("x", (2, k))], ["y"], {"w": f32(n, k), "b": f32(n)})


CASES = {
    # name: (model, {chip: (weight rows, weight input channels)})
    "1x1": (lambda: conv_case(8, 24, k=1), {"rk3588": (32, 32), "rk3566": (32, 32)}),
    "3x3-stride-2": (lambda: conv_case(5, 6, hw=9, strides=[2, 2], **SAME),
                     {"rk3588": (32, 32), "rk3566": (16, 32)}),
    "depthwise": (lambda: conv_case(13, 13, group=13, **SAME),
                  {"rk3588": (64, 64), "rk3566": (32, 32)}),
    "1-channel-input": (lambda: conv_case(1, 16, **SAME), {"rk3588": (32, 32), "rk3566": (16, 32)}),
    "13-to-29": (lambda: conv_case(13, 29, **SAME), {"rk3588": (32, 32), "rk3566": (32, 32)}),
    "relu-residual": (relu_residual_case, {"rk3588": (32, 32), "rk3566": (16, 32)}),
    "fully-connected": (lambda: fc_case(10), {"rk3588": (32, 20), "rk3566": (16, 20)}),
}  # fmt: skip


def aligned(model: IRModel, chip: str = "rk3588", options: str = "") -> list[str]:
    return run_passes(model, f"partition-cpu{{target={chip} {options}}},align-channels").notes


def weighted(model: IRModel) -> npu.Conv2dOp | npu.FullyConnectedOp:
    (op,) = [o for o in body(model) if isinstance(o, (npu.Conv2dOp, npu.FullyConnectedOp))]
    return op


# ---------------------------------------------------------------------- running the padding


def _pad_channels(value: SSAValue, channels: int, before: Operation) -> SSAValue:
    """`value` with channels appended that hold copies of its own channels (real data,
    not the zero point: zero weight columns must cancel whatever is there)."""
    shape = list(npu.in_shape(value))
    copies = -(-channels // shape[1])
    quant, element = npu.quant_of(value), value.type.element_type
    concat = npu.ConcatOp.create(
        operands=[value] * copies,
        result_types=[npu.result_type([shape[0], shape[1] * copies, *shape[2:]], element)],
        properties={"quant": quant, "axis": IntAttr(1)},
    )
    shape[1] = channels
    cut = npu.SliceOp.create(
        operands=[concat.output],
        result_types=[npu.result_type(shape, element)],
        properties={"quant": quant, "starts": npu.int_array([0] * len(shape)),
                    "ends": npu.int_array(shape), "steps": npu.int_array([1] * len(shape))},
    )  # fmt: skip
    Rewriter.insert_op([concat, cut], InsertPoint.before(before))
    return cut.output


def _materialize(op: npu.Conv2dOp | npu.FullyConnectedOp, model: IRModel) -> None:
    rows, cin = pl.get_int(op, WEIGHT_OUT_CHANNELS), pl.get_int(op, WEIGHT_IN_CHANNELS)
    constants = []
    for key in (PADDED_WEIGHT, PADDED_BIAS):
        ref = op.attributes[key]
        assert isinstance(ref, WeightRefAttr)
        constants.append(ConstantOp(ref, tensor_type_of(model.weights[ref])))
    Rewriter.insert_op(constants, InsertPoint.before(op))
    properties = {**op.properties, "weight_quant": op.attributes[PADDED_WEIGHT_QUANT]}
    x = op.input
    out_shape = list(op.shape)
    if isinstance(op, npu.Conv2dOp):
        out_shape[1] = rows
        if cin > npu.in_shape(x)[1]:
            x = _pad_channels(x, cin, op)
        if op.group.data != 1:  # depthwise: one group per padded channel
            properties["group"] = IntAttr(rows)
    else:
        out_shape[-1] = rows
    operands = [x, constants[0].output, constants[1].output]
    if isinstance(op, npu.Conv2dOp) and op.residual is not None:
        operands.append(_pad_channels(op.residual, rows, op))
    padded = type(op).create(operands=operands, properties=properties,
                             result_types=[npu.result_type(out_shape, op.output.type.element_type)])  # fmt: skip
    logical = npu.SliceOp.create(
        operands=[padded.output],
        result_types=[op.output.type],
        properties={"quant": op.quant, "starts": npu.int_array([0] * len(out_shape)),
                    "ends": npu.int_array(op.shape), "steps": npu.int_array([1] * len(out_shape))},
    )  # fmt: skip
    logical.set_names(op.node_name, op.output_names)
    Rewriter.insert_op([padded, logical], InsertPoint.before(op))
    op.output.replace_all_uses_with(logical.output)
    op.parent_block().erase_op(op)


def materialize(model: IRModel) -> IRModel:
    """A copy in which every aligned op computes on its padded arrays (module doc)."""
    out = clone(model)
    with using_weights(out.weights):
        for op in list(body(out)):
            if PADDED_WEIGHT in op.attributes:
                _materialize(op, out)
    out.module.verify()
    return out


def assert_bit_identical(before: IRModel, after: IRModel, feeds: list[dict]) -> None:
    first, second = Interpreter(before), Interpreter(after)
    for feed in feeds:
        want, got = first.run(feed, capture=True), second.run(feed, capture=True)
        for name, value in want.outputs.items():
            np.testing.assert_array_equal(got.outputs[name], value, err_msg=name)
        for name, value in want.tensors.items():  # every quantized tensor, as its reals
            np.testing.assert_array_equal(got.tensors[name], value, err_msg=name)


# ---------------------------------------------------------------------- the cases


@pytest.mark.parametrize("chip", ["rk3588", "rk3566"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_padded_weights_compute_the_same(case: str, chip: str):
    make, expected = CASES[case]
    model = make()
    before = clone(model)
    notes = aligned(model, chip)
    op = weighted(model)
    rows, cin = expected[chip]
    assert (pl.get_int(op, WEIGHT_OUT_CHANNELS), pl.get_int(op, WEIGHT_IN_CHANNELS)) == (rows, cin)
    assert notes[-1].startswith(f"align-channels: padded the weights of 1 ops to {chip}'s")
    # the op itself is unchanged: logical weights, logical result
    assert str(weighted(before).output.type) == str(op.output.type)
    w, b = const(model, op.weight), const(model, op.bias)
    np.testing.assert_array_equal(w, const(before, weighted(before).weight))
    w_pad = model.weights[op.attributes[PADDED_WEIGHT]]
    b_pad = model.weights[op.attributes[PADDED_BIAS]]
    depthwise = isinstance(op, npu.Conv2dOp) and op.group.data != 1
    columns = w.shape[1] if depthwise or w.ndim == 2 else cin
    assert w_pad.shape == (rows, columns, *w.shape[2:]) and w_pad.dtype == w.dtype
    assert b_pad.shape == (rows,) and b_pad.dtype == b.dtype == np.int32
    corner = tuple(slice(0, n) for n in w.shape)
    np.testing.assert_array_equal(w_pad[corner], w)
    assert np.count_nonzero(w_pad) == np.count_nonzero(w)  # the rest is zero
    np.testing.assert_array_equal(b_pad[: b.size], b)
    assert not b_pad[b.size :].any()
    quant = op.attributes[PADDED_WEIGHT_QUANT]
    assert isinstance(quant, QuantAttr) and quant.channel_axis == 0
    scales = quant.params().scale
    np.testing.assert_array_equal(scales[: w.shape[0]], op.weight_quant.params().scale)
    assert (scales[w.shape[0] :] == 1.0).all() and not quant.params().zero_point.any()
    # run the padded arrays: the same integers
    assert_bit_identical(before, materialize(model), samples(before, count=3))


def test_padded_input_channels_add_nothing_whatever_they_hold():
    """The padding channels of an NC1HWC2 input need not be the zero point: zero weight
    columns cancel any value there, and zero rows (with zero bias) accumulate 0."""
    model = conv_case(13, 29, **SAME)
    aligned(model)
    op = weighted(model)
    w, b = const(model, op.weight), const(model, op.bias)
    w_pad = model.weights[op.attributes[PADDED_WEIGHT]]
    b_pad = model.weights[op.attributes[PADDED_BIAS]]
    x = RNG.integers(-128, 128, (1, 13, 8, 8))
    x_pad = RNG.integers(-128, 128, (1, 32, 8, 8))  # random "padding" channels
    x_pad[:, :13] = x
    geometry = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1}
    acc = qk.conv_accumulate(x, 5, w, b, **geometry)
    acc_pad = qk.conv_accumulate(x_pad, 5, w_pad, b_pad, **geometry)
    np.testing.assert_array_equal(acc_pad[:, :29], acc)
    assert not acc_pad[:, 29:].any()


def test_int16_aligns_to_its_own_table():
    """int16 13 -> 13: RK3588 conv out 16, in 32; RK3566 out 8 (-> 16), in 16."""
    for chip, expected in (("rk3588", (16, 32)), ("rk3566", (16, 16))):
        model = lowered([conv("x", "w", "y", "conv", "b", **SAME)], [("x", (1, 13, 6, 6))],
                        ["y"], {"w": f32(13, 13, 3, 3), "b": f32(13)}, dtype="i16")  # fmt: skip
        before = clone(model)
        aligned(model, chip)
        op = weighted(model)
        assert (pl.get_int(op, WEIGHT_OUT_CHANNELS), pl.get_int(op, WEIGHT_IN_CHANNELS)) == expected
        assert model.weights[op.attributes[PADDED_WEIGHT]].dtype == np.int16
        assert_bit_identical(before, materialize(model), samples(before, count=2))


def test_per_tensor_and_float16_parameters_stay_as_they_are():
    model = lowered([conv("x", "w", "y", "conv", "b", **SAME)], [("x", (1, 13, 6, 6))], ["y"],
                    {"w": f32(29, 13, 3, 3), "b": f32(29)}, per_channel=False)  # fmt: skip
    aligned(model)
    op = weighted(model)
    assert op.attributes[PADDED_WEIGHT_QUANT] == op.weight_quant
    assert op.weight_quant.channel_axis is None
    # float16 (RK3588 f16: conv out 16, in 32): weights float16, bias float32, zeros padded
    model = lowered([conv("x", "w", "y", "conv", "b", **SAME)], [("x", (1, 13, 6, 6))], ["y"],
                    {"w": f32(29, 13, 3, 3), "b": f32(29)}, dtype="f16")  # fmt: skip
    before = clone(model)
    aligned(model)
    op = weighted(model)
    assert (pl.get_int(op, WEIGHT_OUT_CHANNELS), pl.get_int(op, WEIGHT_IN_CHANNELS)) == (32, 32)
    assert op.attributes[PADDED_WEIGHT_QUANT] == op.weight_quant == QuantAttr("f16")
    assert model.weights[op.attributes[PADDED_WEIGHT]].dtype == np.float16
    assert model.weights[op.attributes[PADDED_BIAS]].dtype == np.float32
    # float sums over more (zero) terms may round differently in the last float32 bit,
    # which float16 output rounding nearly always hides
    feed = samples(before)[0]
    want = Interpreter(before).run(feed).outputs["y"]
    got = Interpreter(materialize(model)).run(feed).outputs["y"]
    np.testing.assert_allclose(got, want, rtol=2**-10, atol=0)


# ---------------------------------------------------------------------- where it must not fire


NOT_FIRING = {
    "aligned-conv-32": lambda: conv_case(32, 32, **SAME),  # RK3588 int8: in 32, out 32
    "aligned-depthwise-64": lambda: conv_case(64, 64, group=64, hw=4, **SAME),  # dw 64
    "aligned-fc-32": lambda: fc_case(32),  # out 32
    "grouped-conv": lambda: conv_case(4, 4, group=2, **SAME),  # neither group 1 nor depthwise
    "conv-transpose": lambda: lowered(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], "deconv")],
        [("x", (1, 3, 4, 4))], ["y"], {"w": f32(3, 5, 2, 2)}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(NOT_FIRING))
def test_nothing_changes(case: str):
    model = NOT_FIRING[case]()
    run_passes(model, "partition-cpu")
    text, table = str(model.module), dict(model.weights.arrays)
    notes = run_passes(model, "align-channels").notes
    assert str(model.module) == text and model.weights.arrays.keys() == table.keys()
    assert notes == ["align-channels: padded the weights of 0 ops to rk3588's channel "
                     "alignment (0 zero weights added)"]  # fmt: skip


def test_ops_on_the_cpu_keep_their_weights():
    model = conv_case(13, 29, **SAME)
    aligned(model, options='op_target="conv:cpu"')
    assert not any(k.startswith("backend.") and k not in (pl.TARGET, pl.SEGMENT, pl.REASON)
                   for k in weighted(model).attributes)  # fmt: skip


def test_running_twice_pads_once():
    model = conv_case(13, 29, **SAME)
    aligned(model)
    text, keys = str(model.module), set(model.weights.arrays)
    notes = run_passes(model, "align-channels").notes
    assert str(model.module) == text and set(model.weights.arrays) == keys
    assert "padded the weights of 0 ops" in notes[0]


def test_without_partition_the_chip_is_rk3588():
    model = conv_case(13, 13, **SAME)
    run_passes(model, "align-channels")
    op = weighted(model)
    assert (pl.get_int(op, WEIGHT_OUT_CHANNELS), pl.get_int(op, WEIGHT_IN_CHANNELS)) == (32, 32)


def test_padded_weights_are_named_after_the_logical_ones():
    model = conv_case(13, 29, **SAME)
    aligned(model)
    op = weighted(model)
    w_name = op.weight.owner.output_names[0]
    assert op.attributes[PADDED_WEIGHT] == WeightRefAttr(f"{w_name}_aligned")


def test_padded_weights_are_saved_with_the_model(tmp_path):
    model = conv_case(13, 29, **SAME)
    aligned(model)
    model.save(tmp_path / "m.mlir")
    loaded = IRModel.load(tmp_path / "m.mlir")
    op = weighted(loaded)
    assert op.attributes[PADDED_WEIGHT].handle in loaded.weights


# ---------------------------------------------------------------------- the zoo


@pytest.mark.parametrize(
    ("name", "chip"),
    [("digits_cnn", "rk3588"), ("digits_cnn", "rk3566"), ("digits_resnet", "rk3566")],
)
def test_zoo_digits_padded_weights_compute_the_same(name: str, chip: str):
    """The quantized digits models, every aligned conv / fc (residual convs in the resnet)
    run on their padded arrays: bit-identical on real samples."""
    zm = BY_NAME[name]
    folder = "data32" if "resnet" in name else "data16"
    model = import_onnx(str(model_path(zm)))
    quantize_model(model, zoo_file(f"digits/{folder}/dataset.txt"),
                   QuantizeOptions(progress=False))  # fmt: skip
    before = clone(model)
    notes = run_passes(model, f"partition-cpu{{target={chip}}},assign-layout,align-channels").notes
    padded = [op for op in body(model) if PADDED_WEIGHT in op.attributes]
    assert padded and any(f"padded the weights of {len(padded)} ops" in n for n in notes)
    xs = np.load(zoo_file(f"digits/{folder}/test_x.npy"))[:4].astype(np.float32)
    feeds = [{model.inputs[0].name: x[None]} for x in xs]
    assert_bit_identical(before, materialize(model), feeds)
