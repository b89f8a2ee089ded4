"""Ranges narrowed to where their readers respond: the intervals of the saturating
activations (hand-derived), the narrowed range reaching the quantized IR, the lookup table
then tracking the float activation (against a plain numpy formula), and the cases where it
must not fire (another reader, a graph output, a non-saturating activation)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from compiler.quantization.saturation import saturation_interval
from dialects.npu import ops as npu
from dialects.onnx import OnnxOp
from tests.helpers.datasets import write_dataset

RNG = np.random.default_rng(11)
# Exactly on the int8 grids, so that only the conv output's requantization rounds: weights
# k/16 with |k| <= 127 and 127 in each output channel (per-channel scale 1/16); inputs
# multiples of 0.01 in [-1.28, 1.27], both ends present (scale 0.01, zero point 0).
WEIGHT = (RNG.integers(-127, 128, (4, 2, 1, 1)) / 16).astype(np.float32)
WEIGHT[:, 0, 0, 0] = 127 / 16


def conv_then(tmp_path: Path, activation: str, attrs: dict | None = None,
              extra_reader: bool = False, conv_is_output: bool = False) -> Path:  # fmt: skip
    """x -> Conv (1x1, 2 -> 4 channels) -> y -> `activation` -> z [, y -> Neg -> n]."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], "conv"),
        helper.make_node(activation, ["y"], ["z"], "act", **(attrs or {})),
    ]
    outputs = ["z"]
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["y"], ["n"], "neg"))
        outputs.append("n")
    if conv_is_output:
        outputs.append("y")
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(WEIGHT, "w")],
    )  # fmt: skip
    path = tmp_path / "model.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def dataset(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)  # the same samples in every test
    samples = []
    for _ in range(4):
        x = rng.integers(-128, 128, (1, 2, 6, 6)) / 100
        x.reshape(-1)[:2] = (-1.28, 1.27)
        samples.append(x.astype(np.float32))
    return write_dataset(tmp_path, samples)


def quantized(path: Path, tmp_path: Path):
    model = import_onnx(str(path))
    result = quantize_model(model, dataset(tmp_path), QuantizeOptions(progress=False))
    return model, result


def conv_output_range(model) -> tuple[float, float]:
    """The real range the quantized conv writes: (qmin - zp) * s .. (qmax - zp) * s."""
    conv = next(op for op in model.main.walk() if isinstance(op, npu.Conv2dOp))
    params = conv.quant.params()
    scale, zp = float(params.scale), int(params.zero_point)
    return (-128 - zp) * scale, (127 - zp) * scale


# ---------------------------------------------------------------------- intervals


def test_intervals_of_the_saturating_activations(tmp_path: Path):
    cases = {
        # HardSigmoid = clip(alpha x + beta, 0, 1): 0 below -beta/alpha, 1 above (1-beta)/alpha
        ("HardSigmoid", None): (-2.5, 2.5),
        ("HardSigmoid", (1 / 6, 0.5)): (-3.0, 3.0),
        ("HardSwish", None): (-3.0, math.inf),
        ("Relu", None): (0.0, math.inf),
    }
    for (kind, params), want in cases.items():
        attrs = {"alpha": params[0], "beta": params[1]} if params else None
        model = import_onnx(str(conv_then(tmp_path, kind, attrs)))
        op = next(o for o in model.main.walk() if isinstance(o, OnnxOp) and o.op_type == kind)
        got = saturation_interval(model, op)
        assert got is not None and got == pytest.approx(want), kind


def test_clip_interval_from_its_inputs(tmp_path: Path):
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], "clip")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_empty_tensor_value_info("y")],
        initializer=[numpy_helper.from_array(np.float32(-1.0), "lo"),
                     numpy_helper.from_array(np.float32(2.0), "hi")],
    )  # fmt: skip
    path = tmp_path / "clip.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    model = import_onnx(str(path))
    op = next(o for o in model.main.walk() if isinstance(o, OnnxOp) and o.op_type == "Clip")
    assert saturation_interval(model, op) == (-1.0, 2.0)


def test_sigmoid_does_not_saturate_exactly(tmp_path: Path):
    model = import_onnx(str(conv_then(tmp_path, "Sigmoid")))
    op = next(o for o in model.main.walk() if isinstance(o, OnnxOp) and o.op_type == "Sigmoid")
    assert saturation_interval(model, op) is None


# ---------------------------------------------------------------------- in the flow


def test_hardsigmoid_input_is_narrowed_and_tracks_the_float_gate(tmp_path: Path):
    path = conv_then(tmp_path, "HardSigmoid", {"alpha": 1 / 6, "beta": 0.5})
    model, result = quantized(path, tmp_path)
    stats = result.statistics["y"]
    assert stats.min < -3 and stats.max > 3  # the calibration saw far beyond [-3, 3]
    lo, hi = conv_output_range(model)
    assert lo == pytest.approx(-3.0, abs=0.03) and hi == pytest.approx(3.0, abs=0.03)
    assert any("ranges narrowed" in n for n in result.report.notes)
    assert gate_error(model, tmp_path) < 0.005  # half a step of 6/255 x slope 1/6 + output's


def gate_error(model, tmp_path: Path) -> float:
    """Max error of the gate against numpy's hard sigmoid of the float conv, on a
    calibration sample (inside the calibrated input range)."""
    x = np.load(tmp_path / "0.npy")
    conv = np.einsum("oc,bchw->bohw", WEIGHT[:, :, 0, 0].astype(np.float64), x)
    want = np.clip(conv / 6 + 0.5, 0.0, 1.0)
    got = Interpreter(model).run({"x": x}).outputs["z"]
    return float(np.abs(got - want).max())


def test_hardsigmoid_without_narrowing_would_lose_the_gate(tmp_path: Path):
    """The same gate when the conv output is also read elsewhere (not narrowed): the
    int8 step over the full range is coarse, so the gate error is several times larger."""
    path = conv_then(tmp_path, "HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, extra_reader=True)
    model, result = quantized(path, tmp_path)
    lo, hi = conv_output_range(model)
    stats, step = result.statistics["y"], (hi - lo) / 255
    assert lo <= stats.min + step and hi >= stats.max - step  # the full calibrated range
    assert not any("ranges narrowed" in n for n in result.report.notes)
    assert gate_error(model, tmp_path) > 0.008  # the same on a step over the full range


def test_graph_output_is_not_narrowed(tmp_path: Path):
    path = conv_then(tmp_path, "HardSwish", conv_is_output=True)
    model, result = quantized(path, tmp_path)
    lo, hi = conv_output_range(model)
    assert lo <= result.statistics["y"].min + (hi - lo) / 255


def test_hardswish_input_keeps_its_upper_end(tmp_path: Path):
    model, result = quantized(conv_then(tmp_path, "HardSwish"), tmp_path)
    lo, hi = conv_output_range(model)
    stats = result.statistics["y"]
    assert lo == pytest.approx(-3.0, abs=0.1) and hi >= stats.max - (hi - lo) / 255


def test_exported_cfg_shows_the_narrowed_range(tmp_path: Path):
    _, result = quantized(conv_then(tmp_path, "HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
                          tmp_path)  # fmt: skip
    entry = result.to_cfg().quantize_parameters["y"]
    assert entry.min[0] == pytest.approx(-2.5) and entry.max[0] == pytest.approx(2.5)
    assert entry.ori_min[0] < -2.5 and entry.ori_max[0] > 2.5  # what calibration measured
