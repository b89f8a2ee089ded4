"""`lower-to-npu`, one ONNX op at a time: the `npu` op it becomes (kind, geometry, the
quantization parameters derived by hand from the measured ranges with RKNN's formulas, the
integer weights and bias) and what the `npu` reference executor then computes, against an
independent reference: a numpy formula or onnxruntime evaluated on the *dequantized*
operands, so that the only difference left is the one output rounding.

Tolerances. An op that only moves data (Slice, Pad, MaxPool, nearest Resize) must give the
input's integers exactly. An op that computes is compared in output integers: the reference
requantizes an exact integer accumulator with a 15-bit mantissa (relative error <= 2**-15,
so < 0.01 of an output step for |q| <= 256) and rounds once; the float reference rounds
once too, so the two can differ by one step, and only next to a rounding tie (within 0.01
of a step: the mantissa's error plus onnxruntime's float32 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from compiler.interpreter import Interpreter
from dialects.npu import ops as npu
from tests.helpers.compare import cosine
from tests.helpers.npu import (
    asym,
    body,
    const,
    dequantize,
    import_graph,
    integers,
    lower,
    measured_ranges,
    names,
    only,
    onnx_graph,
    ort,
    quantize,
    rha,
    samples,
)

RNG = np.random.default_rng(11)
INT64_MAX = 2**63 - 1
LOWERED = "lower-to-npu: 1 ops on the NPU, 0 stay float (CPU)"


def build(nodes, inputs, inits=None, outputs=("y",)):
    """(onnx proto, imported model, samples, ranges measured on those samples, lowered
    model, pass notes)."""
    proto = onnx_graph(nodes, inputs, list(outputs), inits)
    model = import_graph(proto)
    feeds = samples(model)
    ranges = measured_ranges(model, feeds)
    after, notes = lower(model, ranges)
    return proto, model, feeds, ranges, after, notes


def params(quant) -> tuple[float, int]:
    return quant.scale, quant.zero_point


def assert_params(quant, scale: float, zero_point: int, dtype: str = "i8") -> None:
    assert quant.element == dtype
    assert quant.scale == pytest.approx(scale, rel=1e-12)
    assert quant.zero_point == zero_point


def input_quantize(after, index: int = 0) -> npu.QuantizeOp:
    """The npu.quantize of graph input `index`."""
    arg = after.main.body.blocks[0].args[index]
    (found,) = [op for op in body(after) if isinstance(op, npu.QuantizeOp) and op.input is arg]
    return found


def run(after, feed) -> dict[str, np.ndarray]:
    """Every tensor of one run, as reals, by ONNX name (the quantized input under the
    input's name)."""
    result = Interpreter(after).run(feed, capture=True)
    return {**result.tensors, **result.outputs}


def assert_rounds_to(
    got_q: np.ndarray,
    want_real: np.ndarray,
    quant,
    margin: float = 0.01,
) -> None:
    """`got_q` is `want_real` quantized with `quant`'s parameters, except that next to a
    rounding tie (within `margin` of an output step) it may be the other neighbour."""
    scale, zero_point = params(quant)
    exact = np.asarray(want_real, np.float64) / scale + zero_point
    want_q = quantize(want_real, scale, zero_point)
    assert got_q.shape == want_q.shape
    diff = np.abs(got_q.astype(np.int64) - want_q)
    assert diff.max() <= 1, diff.max()
    near_tie = np.abs(np.abs(exact - np.floor(exact)) - 0.5) <= margin
    assert np.all(near_tie[diff != 0]), exact[(diff != 0) & ~near_tie]


# ---------------------------------------------------------------------- MAC array ops


def test_conv_transpose():
    w = (RNG.standard_normal((2, 3, 3, 3)) * 0.5).astype(np.float32)  # [C_in, C_out, kh, kw]
    b = RNG.standard_normal(3).astype(np.float32)
    node = helper.make_node(
        "ConvTranspose",
        ["x", "w", "b"],
        ["y"],
        "deconv",
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        output_padding=[1, 1],
    )
    proto, _, feeds, ranges, after, notes = build([node], [("x", (1, 2, 4, 4))], {"w": w, "b": b})
    assert names(after) == ["npu.quantize", "npu.conv_transpose", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op = only(after, npu.ConvTransposeOp)
    assert op.node_name == "deconv" and op.shape == (1, 3, 8, 8)
    assert npu.ints(op.strides) == [2, 2] and npu.ints(op.pads) == [1, 1, 1, 1]
    assert npu.ints(op.output_padding) == [1, 1] and npu.ints(op.dilations) == [1, 1]
    assert op.group.data == 1 and op.activation.data == "none"
    s_x, zp_x = asym(ranges["x"].lo, ranges["x"].hi)
    assert_params(input_quantize(after).quant, s_x, zp_x)
    assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))
    # symmetric per output channel: ConvTranspose's output channels are on axis 1
    s_w = np.abs(w).max(axis=(0, 2, 3)).astype(np.float64) / 127
    assert op.weight_quant.element == "i8" and op.weight_quant.channel_axis == 1
    np.testing.assert_allclose(op.weight_quant.params().scale, s_w, rtol=1e-12)
    assert not op.weight_quant.params().zero_point.any()
    w_q, b_q = const(after, op.weight), const(after, op.bias)
    assert w_q.dtype == np.int8 and b_q.dtype == np.int32
    np.testing.assert_array_equal(w_q, quantize(w, s_w.reshape(1, 3, 1, 1), 0))
    np.testing.assert_array_equal(b_q, rha(b / (s_x * s_w)))

    # numerics: onnxruntime's ConvTranspose on the dequantized input, weights and bias
    deq = {
        "w": dequantize(w_q, s_w.reshape(1, 3, 1, 1), 0).astype(np.float32),
        "b": dequantize(b_q, s_x * s_w, 0).astype(np.float32),
    }
    proto_q = onnx_graph([node], [("x", (1, 2, 4, 4))], ["y"], deq)
    for feed in feeds:
        tensors = run(after, feed)
        (want,) = ort(proto_q, {"x": tensors["x"]})
        assert_rounds_to(integers(tensors["y"], op.quant), want, op.quant)
        assert cosine(tensors["y"], ort(proto, feed)[0]) >= 0.99


GEMM_CASES = {
    "plain": dict(trans_b=0, alpha=1.0, beta=1.0, bias=False),
    "transB-bias": dict(trans_b=1, alpha=1.0, beta=1.0, bias=True),
    "transB-bias-alpha-beta": dict(trans_b=1, alpha=0.5, beta=2.0, bias=True),
    "bias-row": dict(trans_b=0, alpha=1.0, beta=1.0, bias="row"),  # C [1, N]
}


@pytest.mark.parametrize("case", GEMM_CASES.values(), ids=GEMM_CASES.keys())
def test_gemm(case):
    k, n = 5, 3
    b = RNG.standard_normal((n, k) if case["trans_b"] else (k, n)).astype(np.float32)
    c = RNG.standard_normal((1, n) if case["bias"] == "row" else n).astype(np.float32)
    inits = {"b": b, **({"c": c} if case["bias"] else {})}
    node = helper.make_node(
        "Gemm",
        ["a", "b", *(["c"] if case["bias"] else [])],
        ["y"],
        "fc",
        transB=case["trans_b"],
        alpha=case["alpha"],
        beta=case["beta"],
    )
    _, _, feeds, ranges, after, notes = build([node], [("a", (2, k))], inits)
    assert names(after) == ["npu.quantize", "npu.fully_connected", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op = only(after, npu.FullyConnectedOp)
    assert op.node_name == "fc" and op.shape == (2, n) and op.activation.data == "none"
    s_a, zp_a = asym(ranges["a"].lo, ranges["a"].hi)
    assert_params(input_quantize(after).quant, s_a, zp_a)
    assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))
    # weight [N, K] = alpha * B^T (or B with transB); bias = beta * C
    weight = case["alpha"] * (b.astype(np.float64) if case["trans_b"] else b.T.astype(np.float64))
    s_w = np.abs(weight).max(axis=1) / 127
    np.testing.assert_allclose(op.weight_quant.params().scale, s_w, rtol=1e-12)
    assert op.weight_quant.channel_axis == 0
    w_q, b_q = const(after, op.weight), const(after, op.bias)
    assert w_q.shape == (n, k) and w_q.dtype == np.int8 and b_q.dtype == np.int32
    np.testing.assert_array_equal(w_q, quantize(weight, s_w[:, None], 0))
    bias = case["beta"] * c.astype(np.float64).reshape(-1) if case["bias"] else np.zeros(n)
    np.testing.assert_array_equal(b_q, rha(bias / (s_a * s_w)))

    for feed in feeds:
        tensors = run(after, feed)
        want = tensors["a"].astype(np.float64) @ dequantize(w_q, s_w[:, None], 0).T + dequantize(
            b_q, s_a * s_w, 0
        )
        assert_rounds_to(integers(tensors["y"], op.quant), want, op.quant)


def test_matmul_with_constant_weight():
    w = RNG.standard_normal((6, 3)).astype(np.float32)  # [K, N]
    node = helper.make_node("MatMul", ["x", "w"], ["y"], "mm")
    _, _, feeds, ranges, after, notes = build([node], [("x", (1, 4, 6))], {"w": w})
    assert names(after) == ["npu.quantize", "npu.fully_connected", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op = only(after, npu.FullyConnectedOp)
    assert op.shape == (1, 4, 3) and op.node_name == "mm"
    s_w = np.abs(w.astype(np.float64)).max(axis=0) / 127  # per column of W = output channel
    np.testing.assert_allclose(op.weight_quant.params().scale, s_w, rtol=1e-12)
    w_q, b_q = const(after, op.weight), const(after, op.bias)
    np.testing.assert_array_equal(w_q, quantize(w.T, s_w[:, None], 0))  # [N, K]
    np.testing.assert_array_equal(b_q, np.zeros(3, np.int32))
    assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))
    for feed in feeds:
        tensors = run(after, feed)
        want = tensors["x"].astype(np.float64) @ dequantize(w_q, s_w[:, None], 0).T
        assert_rounds_to(integers(tensors["y"], op.quant), want, op.quant)


# ---------------------------------------------------------------------- element-wise

ELTWISE = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Max": np.maximum,
    "Min": np.minimum,
}


@pytest.mark.parametrize("b_shape", [(1, 2, 3, 4), (1, 2, 1, 4)], ids=["same", "broadcast"])
@pytest.mark.parametrize("op_type", ELTWISE)
def test_eltwise_of_two_tensors(op_type, b_shape):
    node = helper.make_node(op_type, ["a", "b"], ["y"], "ew")
    _, _, feeds, ranges, after, notes = build([node], [("a", (1, 2, 3, 4)), ("b", b_shape)])
    assert sorted(names(after)) == sorted(
        ["npu.quantize", "npu.quantize", "npu.eltwise", "npu.dequantize", "func.return"]
    )
    assert LOWERED in notes
    op = only(after, npu.EltwiseOp)
    assert op.kind.data == op_type.lower() and op.activation.data == "none"
    assert op.node_name == "ew" and op.shape == (1, 2, 3, 4)
    qa, qb = input_quantize(after, 0), input_quantize(after, 1)
    assert op.lhs is qa.output and op.rhs is qb.output
    assert_params(qa.quant, *asym(ranges["a"].lo, ranges["a"].hi))
    assert_params(qb.quant, *asym(ranges["b"].lo, ranges["b"].hi))
    assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))
    for feed in feeds:
        result = Interpreter(after).run(feed, capture=True)
        a, b = result.tensors["a"], result.tensors["b"]
        want = ELTWISE[op_type](a.astype(np.float64), b.astype(np.float64))
        got = integers(result.outputs["y"], op.quant)
        assert_rounds_to(got, want, op.quant)


# ---------------------------------------------------------------------- data movement


def test_slice_keeps_the_input_parameters():
    inits = {
        "starts": np.array([-2, 1, 0], np.int64),
        "ends": np.array([INT64_MAX, 5, 6], np.int64),
        "axes": np.array([1, 2, 3], np.int64),
        "steps": np.array([1, 2, 3], np.int64),
    }
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"], "cut")
    proto, _, feeds, _, after, notes = build([node], [("x", (1, 3, 6, 6))], inits)
    assert names(after) == ["npu.quantize", "npu.slice", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op, quantize_x = only(after, npu.SliceOp), input_quantize(after)
    # full rank, normalised: axis 1 from -2 -> 1, an end past the size -> the size
    assert npu.ints(op.starts) == [0, 1, 1, 0]
    assert npu.ints(op.ends) == [1, 3, 5, 6]
    assert npu.ints(op.steps) == [1, 1, 2, 3]
    assert op.shape == (1, 2, 2, 2) and op.quant == quantize_x.quant
    s_x = quantize_x.quant.scale
    for feed in feeds:
        tensors = run(after, feed)
        x_q = integers(tensors["x"], quantize_x.quant)
        np.testing.assert_array_equal(integers(tensors["y"], op.quant), x_q[:, 1:3, 1:5:2, 0:6:3])
        (want,) = ort(proto, feed)  # the float op: only the input's rounding is left
        assert np.abs(tensors["y"] - want).max() <= s_x / 2 * (1 + 1e-5)


@pytest.mark.parametrize("with_value", [False, True], ids=["default", "explicit-zero"])
def test_pad_constant_keeps_the_input_parameters(with_value):
    pads = [0, 0, 1, 2, 0, 0, 2, 1]
    inits = {
        "pads": np.array(pads, np.int64),
        **({"v": np.array(0.0, np.float32)} if with_value else {}),
    }
    node = helper.make_node(
        "Pad", ["x", "pads", *(["v"] if with_value else [])], ["y"], "pad", mode="constant"
    )
    proto, _, feeds, _, after, notes = build([node], [("x", (1, 2, 3, 3))], inits)
    assert names(after) == ["npu.quantize", "npu.pad", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op, quantize_x = only(after, npu.PadOp), input_quantize(after)
    assert npu.ints(op.pads) == pads and op.value.value.data == 0.0
    assert op.shape == (1, 2, 6, 6) and op.quant == quantize_x.quant
    s_x, zp_x = params(quantize_x.quant)
    widths = [(0, 0), (0, 0), (1, 2), (2, 1)]
    for feed in feeds:
        tensors = run(after, feed)
        x_q = integers(tensors["x"], quantize_x.quant)
        y_q = integers(tensors["y"], op.quant)
        np.testing.assert_array_equal(y_q, np.pad(x_q, widths, constant_values=zp_x))
        (want,) = ort(proto, feed)
        assert np.abs(tensors["y"] - want).max() <= s_x / 2 * (1 + 1e-5)
        assert not tensors["y"][:, :, 0, :].any()  # the padding is exactly the real 0


RESIZE_CASES = {
    "nearest-asymmetric-floor": ("nearest", "asymmetric", "floor"),
    "nearest-half_pixel": ("nearest", "half_pixel", "round_prefer_floor"),
    "linear-half_pixel": ("linear", "half_pixel", None),
    "linear-align_corners": ("linear", "align_corners", None),
}


@pytest.mark.parametrize(
    ("mode", "ctm", "nearest_mode"), RESIZE_CASES.values(), ids=RESIZE_CASES.keys()
)
def test_resize(mode, ctm, nearest_mode):
    extra = {"nearest_mode": nearest_mode} if nearest_mode else {}
    node = helper.make_node(
        "Resize",
        ["x", "", "scales"],
        ["y"],
        "up",
        mode=mode,
        coordinate_transformation_mode=ctm,
        **extra,
    )
    inits = {"scales": np.array([1, 1, 2, 2], np.float32)}
    proto, _, feeds, ranges, after, notes = build([node], [("x", (1, 2, 3, 4))], inits)
    assert names(after) == ["npu.quantize", "npu.resize", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op, quantize_x = only(after, npu.ResizeOp), input_quantize(after)
    assert op.mode.data == mode and op.coordinate_transformation_mode.data == ctm
    assert op.shape == (1, 2, 6, 8)
    if nearest_mode:
        assert op.nearest_mode.data == nearest_mode
        assert op.quant == quantize_x.quant  # nearest picks input values: no requantize
    else:
        assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))
    s_x, s_y = quantize_x.quant.scale, op.quant.scale
    for feed in feeds:
        tensors = run(after, feed)
        x_q = integers(tensors["x"], quantize_x.quant)
        y_q = integers(tensors["y"], op.quant)
        if mode == "nearest":
            # at scale 2 both modes pick source pixel i // 2
            np.testing.assert_array_equal(y_q, x_q.repeat(2, axis=2).repeat(2, axis=3))
        else:
            (want,) = ort(proto, {"x": tensors["x"]})  # on the dequantized input
            assert_rounds_to(y_q, want, op.quant)
        # against the float op: linear interpolation is a convex combination, so the
        # input's rounding (s_x / 2) passes through; then one output rounding (s_y / 2, and
        # up to s_y / 2 more where the range's end is not a grid point)
        (want,) = ort(proto, feed)
        bound = s_x / 2 + (0 if mode == "nearest" else s_y)
        assert np.abs(tensors["y"] - want).max() <= bound * (1 + 1e-5)


# ---------------------------------------------------------------------- pooling


def window_reduce(x: np.ndarray, kernel, strides, pads, fill, reduce) -> np.ndarray:
    """`reduce` over each window of a padded NCHW array (pads [top, left, bottom, right])."""
    top, left, bottom, right = pads
    xp = np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)], constant_values=fill)
    oh = (xp.shape[2] - kernel[0]) // strides[0] + 1
    ow = (xp.shape[3] - kernel[1]) // strides[1] + 1
    out = np.empty((*x.shape[:2], oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            window = xp[
                :,
                :,
                i * strides[0] : i * strides[0] + kernel[0],
                j * strides[1] : j * strides[1] + kernel[1],
            ]
            out[:, :, i, j] = reduce(window)
    return out


@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool(include_pad):
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        "avg",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        count_include_pad=include_pad,
    )
    _, _, feeds, ranges, after, notes = build([node], [("x", (1, 2, 5, 5))])
    assert names(after) == ["npu.quantize", "npu.pool", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op = only(after, npu.PoolOp)
    assert op.kind.data == "avg" and op.global_pool.data == 0
    assert npu.ints(op.kernel_shape) == [3, 3] and npu.ints(op.strides) == [2, 2]
    assert npu.ints(op.pads) == [1, 1, 1, 1] and op.count_include_pad.data == include_pad
    assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))  # its own parameters
    for feed in feeds:
        tensors = run(after, feed)
        x = tensors["x"].astype(np.float64)
        sums = window_reduce(x, (3, 3), (2, 2), (1, 1, 1, 1), 0.0, lambda w: w.sum(axis=(2, 3)))
        ones = np.ones((1, 1, 5, 5))
        counts = window_reduce(
            ones, (3, 3), (2, 2), (1, 1, 1, 1), float(include_pad), lambda w: w.sum(axis=(2, 3))
        )
        assert_rounds_to(integers(tensors["y"], op.quant), sums / counts, op.quant)


def test_global_average_pool():
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"], "gap")
    _, _, feeds, ranges, after, notes = build([node], [("x", (1, 3, 4, 5))])
    assert names(after) == ["npu.quantize", "npu.pool", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op = only(after, npu.PoolOp)
    assert op.kind.data == "avg" and op.global_pool.data == 1 and op.shape == (1, 3, 1, 1)
    assert npu.ints(op.kernel_shape) == [4, 5] and npu.ints(op.pads) == [0, 0, 0, 0]
    assert_params(op.quant, *asym(ranges["y"].lo, ranges["y"].hi))
    for feed in feeds:
        tensors = run(after, feed)
        want = tensors["x"].astype(np.float64).mean(axis=(2, 3), keepdims=True)
        assert_rounds_to(integers(tensors["y"], op.quant), want, op.quant)


@pytest.mark.parametrize(
    ("kernel", "strides", "pads"),
    [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1))],
    ids=["k2s2", "k3s2-padded"],
)
def test_max_pool_keeps_the_input_parameters(kernel, strides, pads):
    node = helper.make_node(
        "MaxPool",
        ["x"],
        ["y"],
        "max",
        kernel_shape=list(kernel),
        strides=list(strides),
        pads=list(pads),
    )
    proto, _, feeds, _, after, notes = build([node], [("x", (1, 2, 5, 5))])
    assert names(after) == ["npu.quantize", "npu.pool", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op, quantize_x = only(after, npu.PoolOp), input_quantize(after)
    assert op.kind.data == "max" and npu.ints(op.pads) == list(pads)
    assert op.quant == quantize_x.quant  # output parameters = input parameters
    assert not any(isinstance(o, npu.RequantizeOp) for o in body(after))
    s_x = quantize_x.quant.scale
    for feed in feeds:
        tensors = run(after, feed)
        x_q = integers(tensors["x"], quantize_x.quant)
        # padding never wins a max: pad with a value below every int8
        want = window_reduce(x_q, kernel, strides, pads, -1000, lambda w: w.max(axis=(2, 3)))
        np.testing.assert_array_equal(integers(tensors["y"], op.quant), want)
        (float_want,) = ort(proto, feed)
        assert np.abs(tensors["y"] - float_want).max() <= s_x / 2 * (1 + 1e-5)


def test_max_pool_with_an_unused_indices_output():
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], "max", kernel_shape=[2, 2],
                            strides=[2, 2])  # fmt: skip
    _, _, feeds, _, after, notes = build([node], [("x", (1, 2, 4, 4))])
    assert names(after) == ["npu.quantize", "npu.pool", "npu.dequantize", "func.return"]
    assert LOWERED in notes
    op, quantize_x = only(after, npu.PoolOp), input_quantize(after)
    assert op.kind.data == "max" and op.quant == quantize_x.quant
    for feed in feeds:
        tensors = run(after, feed)
        x_q = integers(tensors["x"], quantize_x.quant)
        want = x_q.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))
        np.testing.assert_array_equal(integers(tensors["y"], op.quant), want)
