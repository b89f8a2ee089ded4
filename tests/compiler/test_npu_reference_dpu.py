"""The `npu` reference executor, bit for bit, against the numerics contract written out by
hand (DESIGN.md "Numerics contract" and the contract text of `dialects/npu/numerics.py`),
never by calling `numerics.py` for the expected value:

* the DPU output stage of a lowered convolution with a fused Relu, Clip (relu6), LeakyRelu,
  PRelu, and a fused residual add (with Relu before and/or Relu / Clip after it), on
  1x2x3x3 tensors whose parameters are fixed by the plan so that rounding ties happen on
  both signs, and the clamps are reached;
* the input normalisation: a model quantized with mean_values / std_values takes raw
  pixels, its `npu.quantize` carries mean and std and gives
  `clamp(round_half_away(((x - mean) / std) / scale) + zp)`.

Integers are compared exactly, from the executor's kernel (`build_kernel`) and through the
whole interpreter (exact real inputs, so the input quantize reproduces the integers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from compiler.calibration import InputPreprocess
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from passes.quantization_plan import QuantPlan, TensorRange, using_plan
from runtime.kernels.npu_ops import build_kernel
from tests.helpers.compare import cosine
from tests.helpers.datasets import write_dataset
from tests.helpers.npu import (
    QRANGE,
    asym,
    body,
    const,
    conv_acc,
    import_graph,
    integers,
    mantissa_shift,
    names,
    only,
    onnx_graph,
    ort,
    rha,
    round_shift,
)
from tests.passes.helpers import clone, run_passes

# ---------------------------------------------------------------------- hand-sized convs

S_X, ZP_X = 0.25, 3  # input
S_Y, ZP_Y = 0.0625, -5  # output
S_Z, ZP_Z = 0.125, -2  # residual: m_z = S_Z / S_Y = 2
PADS = [1, 1, 1, 1]


@dataclass(frozen=True)
class Setup:
    """A 1x2x3x3 conv's integers and per-channel weight scales (the float model's
    constants are exactly the integers times their scales)."""

    s_w: np.ndarray
    w_int: np.ndarray
    b_int: np.ndarray
    x_q: np.ndarray
    z_q: np.ndarray

    @property
    def w(self) -> np.ndarray:
        return (self.w_int * self.s_w.reshape(2, 1, 1, 1)).astype(np.float32)

    @property
    def b(self) -> np.ndarray:
        return (self.b_int * S_X * self.s_w).astype(np.float32)

    def multipliers(self) -> list[float]:
        return [S_X * s / S_Y for s in self.s_w]

    def accumulator(self) -> np.ndarray:
        """Σ (x - zp_x) * w + bias, by loops (padding is the zero point)."""
        return conv_acc(self.x_q, ZP_X, self.w_int, self.b_int, PADS)


def _small() -> Setup:
    """m = 1/4 and 0.4, small accumulators: rounding ties (channel 0: acc = 2 mod 4), and
    two corners at the int8 ends so that outputs saturate both ways. Seed picked so that
    the sample does all that (`test_the_small_setup_exercises_ties_and_saturation`)."""
    rng = np.random.default_rng(30)
    w_int = rng.integers(-6, 7, size=(2, 2, 3, 3))
    x_q = (rng.integers(-12, 13, size=(1, 2, 3, 3)) + ZP_X).astype(np.int8)
    x_q[0, 0, 0, 0], x_q[0, 1, 2, 2] = 127, -128
    z_q = rng.integers(-60, 61, size=(1, 2, 3, 3)).astype(np.int8)
    return Setup(np.array([0.0625, 0.1]), w_int, np.array([5, -7]), x_q, z_q)


def _wide() -> Setup:
    """m = 0.004 and 0.002 on accumulators of ~10**4 (full-range int8 inputs and weights),
    beside a residual of m_z = 2, 500x larger: the case the shared shift is about (the
    conv's multiplier must keep its 15 bits)."""
    rng = np.random.default_rng(4)
    w_int = rng.integers(-127, 128, size=(2, 2, 3, 3))
    x_q = rng.integers(-128, 128, size=(1, 2, 3, 3)).astype(np.int8)
    z_q = rng.integers(-20, 21, size=(1, 2, 3, 3)).astype(np.int8)
    return Setup(np.array([0.001, 0.0005]), w_int, np.array([1234, -4321]), x_q, z_q)


SETUPS = {"small": _small(), "wide": _wide()}


def fixed(scale: float, zero_point: int) -> TensorRange:
    lo, hi = (QRANGE["i8"][0] - zero_point) * scale, (QRANGE["i8"][1] - zero_point) * scale
    return TensorRange(lo, hi, nx.QuantParams("i8", np.float64(scale), np.int64(zero_point)))


def conv_model(setup: Setup, activation: list, residual: bool = False, post: list | None = None):
    """Conv(x, w, b, pads 1) -> activation nodes -> [Add z -> post nodes] -> y, fused by
    fuse-activation (and fuse-add), lowered with the parameters fixed by the plan."""
    stages = [*activation, *(["Add"] if residual else []), *(post or [])]
    nodes, inits, current = [], {"w": setup.w, "b": setup.b}, "c"
    nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["c"], "conv", pads=PADS))
    for index, stage in enumerate(stages):
        kind, attrs = (stage, {}) if isinstance(stage, str) else stage
        out = "y" if index == len(stages) - 1 else f"t{index}"
        inputs = [current]
        if kind == "Add":
            inputs.append("z")
        elif kind == "Clip":
            inits |= {f"lo{index}": np.array(attrs["min"], np.float32),
                      f"hi{index}": np.array(attrs["max"], np.float32)}  # fmt: skip
            inputs += [f"lo{index}", f"hi{index}"]
            attrs = {}
        elif kind == "PRelu":
            inits[f"slope{index}"] = np.array(attrs["slope"], np.float32).reshape(2, 1, 1)
            inputs.append(f"slope{index}")
            attrs = {}
        nodes.append(helper.make_node(kind, inputs, [out], f"n{index}", **attrs))
        current = out
    if not stages:
        nodes[0].output[0] = "y"
    graph_inputs = [("x", (1, 2, 3, 3)), *([("z", (1, 2, 3, 3))] if residual else [])]
    model = import_graph(onnx_graph(nodes, graph_inputs, ["y"], inits),
                         "fuse-activation,fuse-add")  # fmt: skip
    plan = QuantPlan(
        {"x": fixed(S_X, ZP_X), "y": fixed(S_Y, ZP_Y), "z": fixed(S_Z, ZP_Z)},
        weight_params={"w": nx.QuantParams("i8", setup.s_w.copy(), np.zeros(2, np.int64), 0)},
    )
    after = clone(model)
    with using_plan(plan):
        run_passes(after, "lower-to-npu,dce")
    return after


def requantize(acc: np.ndarray, m_of: dict[int, tuple[int, int]]) -> np.ndarray:
    """round_shift(acc * M[oc], S[oc]) + zp_y per element, unclamped (Python integers)."""
    out = np.empty(acc.shape, np.int64)
    for index in np.ndindex(acc.shape):
        mant, shift = m_of[index[1]]
        out[index] = round_shift(int(acc[index]) * mant, shift) + ZP_Y
    return out


def saturate(y: np.ndarray) -> np.ndarray:
    return np.clip(y, *QRANGE["i8"]).astype(np.int8)


def q_bound(real: float) -> int:
    """An activation bound in the output domain: quantized like any real value."""
    return int(np.clip(rha(real / S_Y) + ZP_Y, *QRANGE["i8"]))


def run_both(conv: npu.Conv2dOp, after, setup: Setup, residual: bool) -> list[np.ndarray]:
    """The conv's output integers from its kernel and through the whole interpreter."""
    w_q, b_q = const(after, conv.weight), const(after, conv.bias)
    np.testing.assert_array_equal(w_q, setup.w_int)  # the plan's weight scales were used
    np.testing.assert_array_equal(b_q, setup.b_int)
    operands = [setup.x_q, w_q, b_q, *([setup.z_q] if residual else [])]
    direct = build_kernel(conv, after.weights)(*operands)
    feeds = {"x": ((setup.x_q.astype(np.float64) - ZP_X) * S_X).astype(np.float32)}
    if residual:
        feeds["z"] = ((setup.z_q.astype(np.float64) - ZP_Z) * S_Z).astype(np.float32)
    real = Interpreter(after).run(feeds).outputs["y"]
    return [direct, integers(real, conv.quant)]


def test_the_small_setup_exercises_ties_and_saturation():
    setup = SETUPS["small"]
    acc = setup.accumulator()
    plain = requantize(acc, {o: mantissa_shift(m) for o, m in enumerate(setup.multipliers())})
    inside = (plain >= -128) & (plain <= 127)
    # channel 0 has m = 1/4: acc = 2 (mod 8) is a tie k + 0.5 with k even, where rounding
    # half away from zero and half to even disagree; on both signs, inside the int8 range
    ties = acc[:, 0][inside[:, 0] & (np.abs(acc[:, 0]) % 8 == 2)]
    assert (ties > 0).any() and (ties < 0).any()
    assert plain.max() > 127 and plain.min() < -128  # both int8 ends are reached
    assert inside.sum() >= 10 and (plain[inside] < ZP_Y).sum() >= 3  # negatives for leaky


def test_the_multipliers_by_hand():
    # m = 0.25: frexp -> 0.5 * 2**-1 -> M = 2**14, S = 16;  m = 0.4 -> M = round(0.8 * 2**15)
    assert mantissa_shift(0.25) == (16384, 16)
    assert mantissa_shift(0.4) == (26214, 16)
    # m = 0.004 = 0.512 * 2**-7 -> M = round(0.512 * 2**15) = 16777, S = 22
    assert mantissa_shift(0.004) == (16777, 22)


# ---------------------------------------------------------------------- DPU activations

ACTIVATIONS = {
    "none": ([], "none", []),
    "relu": (["Relu"], "relu", []),
    "relu6": ([("Clip", {"min": 0.0, "max": 6.0})], "clip", [0.0, 6.0]),
    "clip": ([("Clip", {"min": -1.5, "max": 2.0})], "clip", [-1.5, 2.0]),
    "leaky": ([("LeakyRelu", {"alpha": 0.3})], "leaky", [0.3]),
    "prelu": ([("PRelu", {"slope": [0.15, 0.45]})], "prelu", [0.15, 0.45]),
}


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_conv_activation_bit_exact(kind, setup):
    activation, expected_kind, expected_params = ACTIVATIONS[kind]
    after = conv_model(setup, activation)
    assert names(after) == ["npu.quantize", "npu.conv2d", "npu.dequantize", "func.return"]
    conv = only(after, npu.Conv2dOp)
    assert conv.activation.data == expected_kind
    assert npu.floats(conv.act_params) == pytest.approx(expected_params, rel=1e-7)
    assert conv.residual is None and npu.ints(conv.pads) == PADS
    assert (conv.quant.scale, conv.quant.zero_point) == (S_Y, ZP_Y)

    acc = setup.accumulator()
    ms = setup.multipliers()
    m_of = {o: mantissa_shift(m) for o, m in enumerate(ms)}
    if kind == "relu":  # Relu(conv) requantized: a negative accumulator gives the zero point
        want = requantize(np.maximum(acc, 0), m_of)
    elif kind in ("relu6", "clip"):  # a clamp between the bounds quantized as values
        lo, hi = expected_params
        want = np.clip(requantize(acc, m_of), q_bound(lo), q_bound(hi))
    elif kind in ("leaky", "prelu"):
        # a negative accumulator takes its own mantissa round(m * alpha * 2**S), same S
        alphas = expected_params * 2 if kind == "leaky" else expected_params
        alpha_of = {o: (int(rha(ms[o] * a * 2.0 ** m_of[o][1])), m_of[o][1])
                    for o, a in enumerate(alphas)}  # fmt: skip
        want = np.where(acc < 0, requantize(acc, alpha_of), requantize(acc, m_of))
    else:
        want = requantize(acc, m_of)
    want = saturate(want)
    for got in run_both(conv, after, setup, residual=False):
        np.testing.assert_array_equal(got, want)
    if kind == "relu6" and setup is SETUPS["small"]:
        assert (want == q_bound(6.0)).any() and (want == ZP_Y).any()  # both bounds bite


# ---------------------------------------------------------------------- residual add


def shared(ms: list[float]) -> tuple[list[int], int]:
    """Multipliers that add before one shift: the shift the smallest needs for its 15-bit
    mantissa, every term rounded at that shift (all of them fit 32 bits here)."""
    _, shift = mantissa_shift(min(m for m in ms if m > 0))
    mantissas = [int(rha(m * 2.0**shift)) for m in ms]
    assert max(abs(m) for m in mantissas) <= 2**31 - 1
    return mantissas, shift


def test_residual_shift_by_hand():
    # m = 0.25 (M 2**14 at S 16) beside the residual's 2.0 -> 2.0 * 2**16
    assert shared([0.25, 2.0]) == ([16384, 131072], 16)
    assert shared([0.4, 2.0]) == ([26214, 131072], 16)
    # the wide case: the conv's 0.004 sets S = 22; the residual gets 2 * 2**22
    assert shared([0.004, 2.0]) == ([16777, 8388608], 22)


RESIDUAL_CASES = {
    "add": ([], None),
    "relu-add": (["Relu"], None),
    "add-relu": ([], ["Relu"]),
    "relu-add-relu6": (["Relu"], [("Clip", {"min": 0.0, "max": 6.0})]),
}


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
@pytest.mark.parametrize(("activation", "post"), RESIDUAL_CASES.values(),
                         ids=RESIDUAL_CASES.keys())  # fmt: skip
def test_conv_residual_add_bit_exact(activation, post, setup):
    after = conv_model(setup, activation, residual=True, post=post)
    assert names(after) == ["npu.quantize", "npu.quantize", "npu.conv2d", "npu.dequantize",
                            "func.return"]  # fmt: skip
    conv = only(after, npu.Conv2dOp)
    arg_z = after.main.body.blocks[0].args[1]
    assert conv.residual is not None and conv.residual.owner.input is arg_z
    assert conv.residual.owner.quant.scale == S_Z and conv.residual.owner.quant.zero_point == ZP_Z
    assert conv.activation.data == ("relu" if activation else "none")
    assert conv.post_activation.data == ("none" if not post else "relu" if post == ["Relu"]
                                         else "clip")  # fmt: skip

    acc = setup.accumulator()
    if activation:
        acc = np.maximum(acc, 0)  # Relu before the add
    want = np.empty(acc.shape, np.int64)
    for o, m in enumerate(setup.multipliers()):
        (m_acc, m_z), shift = shared([m, S_Z / S_Y])
        for n, i, j in np.ndindex(acc[:, o].shape):
            total = int(acc[n, o, i, j]) * m_acc + (int(setup.z_q[n, o, i, j]) - ZP_Z) * m_z
            want[n, o, i, j] = round_shift(total, shift) + ZP_Y
    if post == ["Relu"]:
        want = np.maximum(want, ZP_Y)
    elif post:
        want = np.clip(want, q_bound(0.0), q_bound(6.0))
    want = saturate(want)
    for got in run_both(conv, after, setup, residual=True):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------- mean / std

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _normalised(raw: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * raw.ndim
    shape[axis] = 3
    mean = np.array(MEAN).reshape(shape)
    std = np.array(STD).reshape(shape)
    return (raw.astype(np.float64) - mean) / std


def _pixel_model(layout: str):
    """x (raw pixels, NCHW or NHWC) -> [Transpose] -> Conv 1x1 -> y."""
    w = np.random.default_rng(1).standard_normal((2, 3, 1, 1)).astype(np.float32)
    nodes, source = [], "x"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["x"], ["t"], "to_nchw", perm=[0, 3, 1, 2]))
        source = "t"
    nodes.append(helper.make_node("Conv", [source, "w"], ["y"], "conv"))
    shape = (1, 3, 4, 5) if layout == "NCHW" else (1, 4, 5, 3)
    return onnx_graph(nodes, [("x", shape)], ["y"], {"w": w}), shape


def _pixel_dataset(tmp_path: Path, shape, count: int = 2) -> Path:
    rng = np.random.default_rng(3)
    # calibration pixels in [40, 210]: the test's 0 and 255 lie outside the range
    samples = [rng.integers(40, 211, size=shape).astype(np.float32) for _ in range(count)]
    return write_dataset(tmp_path, samples, "p")


@pytest.mark.parametrize(("layout", "axis"), [("NCHW", 1), ("NHWC", 3)])
def test_quantize_normalises_raw_pixels(tmp_path, layout, axis):
    proto, shape = _pixel_model(layout)
    dataset = _pixel_dataset(tmp_path, shape)
    options = QuantizeOptions(progress=False, preprocess=[InputPreprocess(MEAN, STD)])
    result = quantize_model(import_onnx(proto), dataset, options)
    model = result.model
    quantize = next(op for op in body(model) if isinstance(op, npu.QuantizeOp))
    assert quantize.input is model.main.body.blocks[0].args[0]
    assert npu.floats(quantize.mean) == MEAN and npu.floats(quantize.std) == STD
    assert quantize.channel_axis.data == axis
    # parameters: RKNN's formulas on the range of the *normalised* calibration samples
    calibration = [_normalised(np.load(tmp_path / f"p{i}.npy"), axis) for i in range(2)]
    scale, zero_point = asym(min(c.min() for c in calibration), max(c.max() for c in calibration))
    assert quantize.quant.element == "i8"
    assert quantize.quant.scale == pytest.approx(scale, rel=1e-6)
    assert quantize.quant.zero_point == zero_point

    # integers: round half away of ((x - mean) / std) / scale, plus zp, clamped
    raw = np.random.default_rng(9).integers(0, 256, size=shape).astype(np.float32)
    raw.flat[0], raw.flat[1] = 0.0, 255.0
    s, zp = quantize.quant.scale, quantize.quant.zero_point
    want = np.clip(rha(_normalised(raw, axis) / s) + zp, -128, 127)
    assert want.min() == -128 or want.max() == 127  # the clamp is exercised
    got = build_kernel(quantize, model.weights)(raw)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, want)
    captured = Interpreter(model).run({"x": raw}, capture=True)
    np.testing.assert_array_equal(integers(captured.tensors["x"], quantize.quant), want)

    # the quantized model on raw pixels ~ the float model on normalised ones (on a
    # calibration sample: nothing clipped)
    pixels = np.load(tmp_path / "p0.npy")
    (float_y,) = ort(proto, {"x": _normalised(pixels, axis).astype(np.float32)})
    assert cosine(Interpreter(model).run({"x": pixels}).outputs["y"], float_y) >= 0.99


def test_cpu_op_reading_a_normalised_input_sees_normalised_values(tmp_path):
    # x -> Softmax (no NPU lowering: stays float) -> s -> Conv -> y
    w = np.random.default_rng(1).standard_normal((2, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Softmax", ["x"], ["s"], "soft", axis=1),
             helper.make_node("Conv", ["s", "w"], ["y"], "conv")]  # fmt: skip
    shape = (1, 3, 4, 5)
    proto = onnx_graph(nodes, [("x", shape)], ["y"], {"w": w})
    options = QuantizeOptions(progress=False, preprocess=[InputPreprocess(MEAN, STD)])
    result = quantize_model(import_onnx(proto), _pixel_dataset(tmp_path, shape), options)
    assert any('CPU: Softmax "soft"' in n for n in result.report.notes)
    raw = np.load(tmp_path / "p0.npy")  # a calibration sample: nothing clipped
    captured = Interpreter(result.model).run({"x": raw}, capture=True)
    softmax = helper.make_node("Softmax", ["x"], ["s"], "soft", axis=1)
    (want,) = ort(onnx_graph([softmax], [("x", shape)], ["s"]),
                  {"x": _normalised(raw, 1).astype(np.float32)})  # fmt: skip
    # "s" as captured is the conv's quantized input (within s_s / 2 of the softmax). The
    # softmax itself is exact if it gets the normalised input in float, and within s_x / 4
    # if it gets it through npu.quantize / npu.dequantize (a softmax output moves by at
    # most half of its input's largest move, here s_x / 2)
    calibration = [_normalised(np.load(tmp_path / f"p{i}.npy"), 1) for i in range(2)]
    s_x, _ = asym(min(c.min() for c in calibration), max(c.max() for c in calibration))
    (quantize_s,) = [op for op in body(result.model) if isinstance(op, npu.QuantizeOp)
                     and op.output_names == ["s"]]  # fmt: skip
    bound = s_x / 4 + quantize_s.quant.scale / 2
    assert np.abs(captured.tensors["s"] - want).max() <= bound * (1 + 1e-5)
