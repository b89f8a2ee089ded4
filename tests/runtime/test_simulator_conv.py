"""Bit-exactness: small quantized ONNX convolutions and fully connected layers, through the
backend passes and code generation, run on the register-level simulator and compared
integer for integer with the `npu` reference executor (`runtime/kernels/npu_ops.py`) on the
same IR: every convolution variant (1x1, strided, padded, dilated, depthwise, grouped,
1-channel input, unaligned channels), every DPU activation, the residual add, per-tensor
and per-channel weights, int8 and int16, and tiles of many tasks (a small CBUF)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from backends.codegen import generate
from dialects.npu.placement import get_tasks
from tests.helpers.backend import conv
from tests.runtime.sim_harness import assert_exact, compiled, simulate, small_cbuf

RNG = np.random.default_rng(5)


def f32(*shape: int, scale: float = 0.2) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def run_conv(cin: int, cout: int, hw: tuple[int, int], k: int = 3, act: list | None = None,
             target=None, **attrs) -> list:  # fmt: skip
    """Conv (+ activation nodes `act`, reading "c", writing "y") on a [1, cin, *hw] input."""
    group = attrs.get("group", 1)
    nodes = [conv("x", "w", "c" if act else "y", "conv", b="b", **attrs), *(act or [])]
    inits = {"w": f32(cout, cin // group, k, k), "b": f32(cout)}
    model, feeds = compiled(nodes, [("x", [1, cin, *hw])], ["y"], inits, target=target)
    results = []
    for feed in feeds:
        results += simulate(model, feed, target=target)
    return results


# ---------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("cin", "cout", "hw", "k", "attrs"),
    [
        (16, 32, (6, 6), 1, {}),  # 1x1
        (8, 16, (9, 9), 3, {"pads": [1, 1, 1, 1]}),  # 3x3 same
        (8, 16, (10, 11), 3, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),  # stride 2
        (4, 8, (9, 7), 3, {"pads": [0, 2, 1, 0], "strides": [1, 2]}),  # asymmetric pads/strides
        (8, 8, (11, 11), 3, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),  # dilated
        (4, 8, (8, 8), 5, {"pads": [2, 2, 2, 2], "strides": [3, 3]}),  # 5x5 stride 3
        (1, 8, (8, 8), 3, {"pads": [1, 1, 1, 1]}),  # one input channel
        (13, 29, (7, 7), 3, {"pads": [1, 1, 1, 1]}),  # channels not aligned
        (40, 20, (5, 5), 3, {"pads": [1, 1, 1, 1]}),  # two input channel groups (C1 = 3)
    ],
    ids=["1x1", "3x3", "stride2", "asymmetric", "dilated", "5x5s3", "1ch", "13to29", "40to20"],
)
def test_conv_geometry(cin, cout, hw, k, attrs):
    assert_exact(run_conv(cin, cout, hw, k, **attrs))


@pytest.mark.parametrize(
    ("channels", "attrs"),
    [
        (16, {"pads": [1, 1, 1, 1]}),
        (24, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
        (70, {"pads": [0, 0, 0, 0]}),  # two depthwise weight groups of 64
        (32, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ],
    ids=["dw16", "dw24s2", "dw70", "dw32dil"],
)
def test_depthwise(channels, attrs):
    assert_exact(run_conv(channels, channels, (9, 9), 3, group=channels, **attrs))


@pytest.mark.parametrize(("cin", "cout", "group"), [(8, 12, 2), (16, 48, 4), (6, 12, 3)])
def test_grouped(cin, cout, group):
    assert_exact(run_conv(cin, cout, (7, 7), 3, group=group, pads=[1, 1, 1, 1]))


def test_chain_of_convolutions_reads_its_own_nc1hwc2_output():
    # conv1's output (NC1HWC2, written by the simulator) is conv2's and the depthwise's input
    nodes = [
        conv("x", "w1", "a", "conv1", b="b1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"], "relu"),
        conv("r", "w2", "d", "dw", b="b2", pads=[1, 1, 1, 1], group=20),
        conv("d", "w3", "y", "conv3", b="b3"),
    ]
    inits = {"w1": f32(20, 3, 3, 3), "b1": f32(20), "w2": f32(20, 1, 3, 3), "b2": f32(20),
             "w3": f32(17, 20, 1, 1), "b3": f32(17)}  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 3, 12, 12])], ["y"], inits)
    program = generate(model)
    assert len(program.jobs) == 1 and len(program.tasks) == 3  # one chain of three tasks
    assert_exact(simulate(model, feeds[0], program), expected_ops=3)


# ---------------------------------------------------------------------- activations


@pytest.mark.parametrize(
    "act",
    [
        [helper.make_node("Relu", ["c"], ["y"], "relu")],
        [helper.make_node("Clip", ["c", "lo", "hi"], ["y"], "clip")],
        [helper.make_node("Clip", ["c", "nlo", "nhi"], ["y"], "clip")],
        [helper.make_node("LeakyRelu", ["c"], ["y"], "leaky", alpha=0.1)],
        [helper.make_node("PRelu", ["c", "slope"], ["y"], "prelu")],
    ],
    ids=["relu", "clip", "clip_negative", "leaky", "prelu"],
)
def test_activations(act):
    nodes = [conv("x", "w", "c", "conv", b="b", pads=[1, 1, 1, 1]), *act]
    # calibration measures the clipped range, widened to hold 0: clip(0.05, 0.4) bites below
    # the output's range [0, 0.4], clip(-0.4, -0.05) above [-0.4, 0]
    inits = {"w": f32(12, 6, 3, 3), "b": f32(12), "lo": np.array(0.05, np.float32),
             "hi": np.array(0.4, np.float32), "nlo": np.array(-0.4, np.float32),
             "nhi": np.array(-0.05, np.float32), "slope": f32(12, 1, 1, scale=0.3)}  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 6, 8, 8])], ["y"], inits)
    (conv_op,) = [op for op in model.main.body.blocks[0].ops if op.name == "npu.conv2d"]
    assert conv_op.activation.data == act[0].op_type.lower().replace("leakyrelu", "leaky")
    for feed in feeds:
        assert_exact(simulate(model, feed))


@pytest.mark.parametrize("relu", [False, True])
def test_per_tensor_weights_use_the_output_converter(relu):
    act = [helper.make_node("Relu", ["c"], ["y"], "relu")] if relu else []
    nodes = [conv("x", "w", "c" if relu else "y", "conv", b="b", pads=[1, 1, 1, 1]), *act]
    model, feeds = compiled(nodes, [("x", [1, 5, 8, 8])], ["y"],
                            {"w": f32(10, 5, 3, 3), "b": f32(10)}, per_channel=False)  # fmt: skip
    for feed in feeds:
        assert_exact(simulate(model, feed))


# ---------------------------------------------------------------------- residual


def residual_model(post: list, pre_relu: bool = True, z_from_npu: bool = False, **plan):
    """y = post(conv2(act(conv1(x))) + z): z is the quantized input (NCHW, from the CPU) or
    conv1's output (NC1HWC2, from the NPU)."""
    z = "a" if z_from_npu else "x"
    nodes = [conv("x", "w1", "a", "conv1", b="b1", pads=[1, 1, 1, 1])]
    source = "a"
    if pre_relu:
        nodes.append(helper.make_node("Relu", ["a"], ["ar"], "relu1"))
        source = "ar"
    nodes += [conv(source, "w2", "c", "conv2", b="b2", pads=[1, 1, 1, 1])]
    nodes += [helper.make_node("Relu", ["c"], ["cr"], "relu2"),
              helper.make_node("Add", ["cr", z], ["s"], "add")]  # fmt: skip
    nodes += post or [helper.make_node("Identity", ["s"], ["y"], "id")]
    inits = {"w1": f32(16, 16, 3, 3), "b1": f32(16), "w2": f32(16, 16, 3, 3), "b2": f32(16),
             "lo": np.array(0.0, np.float32), "hi": np.array(0.8, np.float32)}  # fmt: skip
    return compiled(nodes, [("x", [1, 16, 7, 7])], ["y"], inits,
                    passes="fuse-activation,fuse-add,canonicalize", **plan)  # fmt: skip


# what follows a residual add in residual_model: nothing, relu, a clip from 0 (to 0.8)
POST_ACTIVATIONS = pytest.mark.parametrize(
    "post",
    [
        [],
        [helper.make_node("Relu", ["s"], ["y"], "relu3")],
        [helper.make_node("Clip", ["s", "lo", "hi"], ["y"], "clip3")],
    ],
    ids=["none", "relu", "clip0"],
)


@POST_ACTIVATIONS
@pytest.mark.parametrize("z_from_npu", [False, True], ids=["z_cpu", "z_npu"])
def test_residual_add(post, z_from_npu):
    model, feeds = residual_model(post, z_from_npu=z_from_npu)
    fused = [op for op in model.main.body.blocks[0].ops
             if op.name == "npu.conv2d" and op.residual is not None]  # fmt: skip
    assert len(fused) == 1
    for feed in feeds:
        assert_exact(simulate(model, feed))


def test_residual_add_per_tensor_weights():
    model, feeds = residual_model([], per_channel=False)
    assert_exact(simulate(model, feeds[0]))


# ---------------------------------------------------------------------- fully connected


@pytest.mark.parametrize(("rows", "k", "n"), [(1, 40, 10), (3, 17, 33), (2, 64, 16)])
def test_fully_connected(rows, k, n):
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)]
    model, feeds = compiled(nodes, [("x", [rows, k])], ["y"], {"w": f32(n, k), "b": f32(n)})
    assert len(generate(model).tasks) == rows
    for feed in feeds:
        assert_exact(simulate(model, feed))


def test_fully_connected_with_relu():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc", transB=1),
             helper.make_node("Relu", ["g"], ["y"], "relu")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 50])], ["y"], {"w": f32(20, 50), "b": f32(20)})
    assert_exact(simulate(model, feeds[0]))


# ---------------------------------------------------------------------- many tasks


def test_row_bands_with_a_small_cbuf():
    target = small_cbuf(banks=4, bank_bytes=512)
    results = run_conv(8, 16, (20, 12), 3, target=target, pads=[1, 1, 1, 1])
    (op,) = {r.op for r in results}
    assert len(get_tasks(op)) > 4  # banded: padding only on the first and last bands
    assert_exact(results)


def test_strided_dilated_bands_with_a_small_cbuf():
    target = small_cbuf(banks=6, bank_bytes=256)
    results = run_conv(8, 8, (23, 9), 3, target=target, pads=[3, 1, 2, 1], strides=[2, 1],
                       dilations=[2, 1])  # fmt: skip
    assert len(get_tasks(results[0].op)) > 2
    assert_exact(results)


def test_channel_groups_with_a_small_cbuf():
    # 64 x 32 x 3 x 3 weights (18 KiB) do not fit 3 banks of 4 KiB: channel groups of 16
    target = small_cbuf(banks=4, bank_bytes=4096)
    results = run_conv(32, 64, (6, 6), 3, target=target, pads=[1, 1, 1, 1])
    tasks = get_tasks(results[0].op)
    assert len({(c0, c1) for _, _, c0, c1 in tasks}) > 1
    assert_exact(results)


def test_depthwise_tasks_with_a_small_cbuf():
    results = run_conv(48, 48, (10, 10), 3, target=small_cbuf(banks=3, bank_bytes=256),
                       group=48, pads=[1, 1, 1, 1])  # fmt: skip
    tasks = get_tasks(results[0].op)
    assert len({(c0, c1) for _, _, c0, c1 in tasks}) > 1 and len(tasks) > 3
    assert_exact(results)


def test_grouped_tasks_with_a_small_cbuf():
    # a group's 16 x 16 x 3 x 3 weights take 3 banks of 1 KiB: one group per task, 2 rows
    results = run_conv(32, 32, (16, 16), 3, target=small_cbuf(banks=4, bank_bytes=1024),
                       group=2, pads=[1, 1, 1, 1])  # fmt: skip
    tasks = get_tasks(results[0].op)
    assert len({(c0, c1) for _, _, c0, c1 in tasks}) == 2 and len(tasks) > 4
    assert_exact(results)


def test_fully_connected_channel_groups_with_a_small_cbuf():
    target = small_cbuf(banks=3, bank_bytes=1024)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)]
    model, feeds = compiled(nodes, [("x", [2, 64])], ["y"], {"w": f32(100, 64), "b": f32(100)},
                            target=target)  # fmt: skip
    (fc,) = [op for op in model.main.body.blocks[0].ops if op.name == "npu.fully_connected"]
    assert len(get_tasks(fc)) > 2
    assert_exact(simulate(model, feeds[0], target=target))


def test_residual_bands_with_a_small_cbuf():
    target = small_cbuf(banks=4, bank_bytes=1024)
    model, feeds = residual_model([helper.make_node("Relu", ["s"], ["y"], "relu3")],
                                  z_from_npu=True)  # fmt: skip
    from tests.runtime.sim_harness import retile

    retile(model, target)
    assert_exact(simulate(model, feeds[0], target=target))


# ---------------------------------------------------------------------- int16


@pytest.mark.parametrize(
    "attrs", [{"pads": [1, 1, 1, 1]}, {"pads": [1, 1, 1, 1], "group": 12}], ids=["conv", "dw"]
)
def test_int16(attrs):
    group = attrs.get("group", 1)
    nodes = [conv("x", "w", "c", "conv", b="b", **attrs),
             helper.make_node("Relu", ["c"], ["y"], "relu")]  # fmt: skip
    model, feeds = compiled(nodes, [("x", [1, 12, 7, 7])], ["y"],
                            {"w": f32(12, 12 // group, 3, 3), "b": f32(12)}, dtype="i16")  # fmt: skip
    (op,) = [o for o in model.main.body.blocks[0].ops if o.name == "npu.conv2d"]
    assert op.quant.element == "i16"
    assert_exact(simulate(model, feeds[0]))


def test_int16_fully_connected_and_residual():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)]
    model, feeds = compiled(nodes, [("x", [1, 24])], ["y"], {"w": f32(9, 24), "b": f32(9)},
                            dtype="i16")  # fmt: skip
    assert_exact(simulate(model, feeds[0]))
    model, feeds = residual_model([helper.make_node("Relu", ["s"], ["y"], "relu3")],
                                  z_from_npu=True, dtype="i16")  # fmt: skip
    assert_exact(simulate(model, feeds[0]))
