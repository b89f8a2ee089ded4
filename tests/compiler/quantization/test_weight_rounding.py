"""Weight rounding on the calibration data (GPTQ): the algorithm on hand-worked and
synthetic numbers against a plain numpy objective, the rounded integers reaching the lowered
IR, and the cases where it must not fire."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main
from compiler.errors import CompilerError
from compiler.examples import TINY_CNN, TINY_CNN_INPUT
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import (
    QuantizeOptions,
    quantize_model,
)
from compiler.quantization.weight_rounding import gptq, inverse_upper_factor
from dialects.npu import numerics as nx
from dialects.npu.ops import Conv2dOp
from passes.lower_to_npu import _rounded_weights
from passes.quantization_plan import QuantPlan, RoundedWeights
from tests.compiler.quantization.test_quantize_cli import dataset  # noqa: F401 (fixture)
from tests.compiler.test_cli import reference_probs


def output_error(w: np.ndarray, q: np.ndarray, scale: np.ndarray, x: np.ndarray) -> float:
    """||(W - Q*scale) X||^2 for W [rows, columns] and inputs X [samples, columns]."""
    return float(np.sum(((w - q * scale[:, None]) @ x.T) ** 2))


def nearest(w: np.ndarray, scale: np.ndarray, qmax: int) -> np.ndarray:
    return np.clip(nx.round_half_away(w / scale[:, None]), -qmax, qmax)


def test_hand_worked_two_columns():
    # H = [[1, .5], [.5, 1]]: H^-1 = [[4/3, -2/3], [-2/3, 4/3]], its upper Cholesky factor
    # U = [[sqrt(4/3), -1/sqrt(3)], [0, 1]]. Column 0: 0.6 -> 1, error (0.6 - 1) / sqrt(4/3);
    # column 1 becomes 0.6 - error * (-1/sqrt(3)) = 0.6 - 0.2 = 0.4 -> 0. Nearest gives
    # [1, 1]: output error e H e^T = 0.48 against 0.28 for [1, 0].
    q = gptq(np.array([[[0.6, 0.6]]]), np.array([[[1.0, 0.5], [0.5, 1.0]]]),
             np.array([[1.0]]), qmax=127, damping=0.0)  # fmt: skip
    assert q.tolist() == [[[1, 0]]]


def test_inverse_upper_factor_by_hand_and_against_numpy():
    # H = [[1, .5], [.5, 1]]: H^-1 = [[4/3, -2/3], [-2/3, 4/3]] = U^T U, U = [[a, b], [0, d]]:
    # a^2 = 4/3, a b = -2/3 -> b = -1/sqrt(3), b^2 + d^2 = 4/3 -> d = 1
    h = np.array([[[1.0, 0.5], [0.5, 1.0]]])
    np.testing.assert_allclose(inverse_upper_factor(h)[0],
                               [[np.sqrt(4 / 3), -1 / np.sqrt(3)], [0.0, 1.0]], atol=1e-15)  # fmt: skip
    # sizes over the halving block (256), two groups: the factor of numpy's inverse
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 900, 600)) * rng.uniform(0.05, 3.0, 600)
    h = x.transpose(0, 2, 1) @ x + 0.1 * np.eye(600)
    want = np.linalg.cholesky(np.linalg.inv(h)).transpose(0, 2, 1)
    got = inverse_upper_factor(h)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    assert np.array_equal(got, np.triu(got))


def test_uncorrelated_inputs_round_to_nearest():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(1, 6, 10))
    hessian = np.diag(rng.uniform(0.5, 2.0, 10))[None]
    scale = np.abs(w).max(axis=2) / 127
    q = gptq(w, hessian, scale, qmax=127)
    assert np.array_equal(q[0], nearest(w[0], scale[0], 127))


@pytest.mark.parametrize("qmax", [127, 7], ids=["int8", "int4"])
def test_correlated_inputs_lower_output_error(qmax: int):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 32)) @ rng.normal(size=(32, 32))  # correlated columns
    w = rng.normal(size=(16, 32))
    scale = np.abs(w).max(axis=1) / qmax
    q = gptq(w[None], (x.T @ x)[None], scale[None], qmax=qmax)[0]
    assert np.abs(q).max() <= qmax
    ours, rounded = output_error(w, q, scale, x), output_error(w, nearest(w, scale, qmax), scale, x)
    assert ours < 0.7 * rounded


def test_dead_input_is_rounded_to_nearest():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8))
    x[:, 5] = 0.0  # never excited on the samples
    w = rng.normal(size=(4, 8))
    scale = np.abs(w).max(axis=1) / 127
    q = gptq(w[None], (x.T @ x)[None], scale[None], qmax=127)[0]
    assert np.array_equal(q[:, 5], nearest(w, scale, 127)[:, 5])


def test_groups_are_rounded_independently():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 2, 9))
    x = [rng.normal(size=(50, 9)) @ rng.normal(size=(9, 9)) for _ in range(3)]
    hessians = np.stack([xi.T @ xi for xi in x])
    scale = np.abs(w).max(axis=2) / 127
    together = gptq(w, hessians, scale, qmax=127)
    for g in range(3):
        alone = gptq(w[g : g + 1], hessians[g : g + 1], scale[g : g + 1], qmax=127)
        assert np.array_equal(together[g], alone[0])


# ---------------------------------------------------------------------- in the flow


def conv_weights(model) -> list[np.ndarray]:
    weights = model.weights
    found = []
    for op in model.main.walk():
        if isinstance(op, Conv2dOp):
            found.append(weights[op.weight.owner.value])
    return found


def quantized(dataset_path: Path, **options) -> object:
    model = import_onnx(str(TINY_CNN))
    quantize_model(model, dataset_path, QuantizeOptions(progress=False, **options))
    return model


def test_rounded_integers_reach_the_lowered_convs(dataset: Path):  # noqa: F811
    near, data = quantized(dataset), quantized(dataset, weight_rounding="gptq")
    near_w, data_w = conv_weights(near), conv_weights(data)
    assert near_w and len(near_w) == len(data_w)
    assert any(not np.array_equal(a, b) for a, b in zip(near_w, data_w, strict=True))
    for a, b in zip(near_w, data_w, strict=True):
        assert a.dtype == b.dtype == np.int8 and a.shape == b.shape
    x = np.load(TINY_CNN_INPUT)
    got = next(iter(Interpreter(data).run({"input": x}).outputs.values()))
    want = reference_probs(x)
    assert np.argmax(got) == np.argmax(want) and np.abs(got - want).max() < 0.1


def test_per_tensor_weights_are_rounded_on_their_one_grid(dataset: Path):  # noqa: F811
    near = conv_weights(quantized(dataset, per_channel=False, weight_rounding="nearest"))
    data_model = quantized(dataset, per_channel=False, weight_rounding="gptq")
    data = conv_weights(data_model)
    assert any(not np.array_equal(a, b) for a, b in zip(near, data, strict=True))
    for op in data_model.main.walk():
        if isinstance(op, Conv2dOp):
            assert op.weight_quant.params().axis is None  # one scale per tensor


def test_int16_and_float16_weights_are_not_rounded_on_data(dataset: Path):  # noqa: F811
    for options in ({"dtype": "i16"}, {"dtype": "f16"}):
        plain = conv_weights(quantized(dataset, **options))
        data = conv_weights(quantized(dataset, weight_rounding="gptq", **options))
        assert all(np.array_equal(a, b) for a, b in zip(plain, data, strict=True))


def test_needs_the_dataset():
    model = import_onnx(str(TINY_CNN))
    with pytest.raises(CompilerError, match="needs the calibration dataset"):
        quantize_model(model, None, QuantizeOptions(dtype="f16", weight_dtype="i4",
                                                    target="rk3576", weight_rounding="gptq"))  # fmt: skip


def test_unknown_rounding_is_refused(dataset: Path):  # noqa: F811
    with pytest.raises(CompilerError, match="weight rounding 'stochastic'"):
        quantized(dataset, weight_rounding="stochastic")


def test_lowering_ignores_rounding_made_for_other_weights():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    params = nx.weight_params(w, "i8", True)
    rounded = RoundedWeights(w, nx.quantize(w, params), params)
    plan = QuantPlan({}, rounded_weights={"w": rounded})
    assert _rounded_weights(plan, "w", w, "i8", 0)[0] is params
    assert _rounded_weights(plan, "w", w + 1, "i8", 0) == (None, None)  # weights changed
    assert _rounded_weights(plan, "w", w, "i4", 0) == (None, None)  # another dtype
    assert _rounded_weights(plan, "w", w, "i8", 1) == (None, None)  # another axis
    per_tensor = QuantPlan({}, per_channel=False, rounded_weights={"w": rounded})
    assert _rounded_weights(per_tensor, "w", w, "i8", 0) == (None, None)


def test_cli_one_line_error_without_dataset(tmp_path: Path, capsys):
    code = main(["quantize", str(TINY_CNN), "--dtype", "float16", "--weight-dtype", "int4",
                 "--target", "rk3576", "--weight-rounding", "gptq", "--no-progress",
                 "-o", str(tmp_path / "q.mlir")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "needs the calibration dataset" in err
    assert "Traceback" not in err and not (tmp_path / "q.mlir").exists()


def test_auto_rounds_int4_weights_on_data_and_int8_to_nearest(dataset: Path):  # noqa: F811
    int4 = {"dtype": "f16", "weight_dtype": "i4", "target": "rk3576"}
    auto4 = conv_weights(quantized(dataset, **int4))
    near4 = conv_weights(quantized(dataset, weight_rounding="nearest", **int4))
    data4 = conv_weights(quantized(dataset, weight_rounding="gptq", **int4))
    assert len(auto4) == len(data4) > 0
    assert all(np.array_equal(a, b) for a, b in zip(auto4, data4, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(auto4, near4, strict=True))
    auto8 = conv_weights(quantized(dataset))
    near8 = conv_weights(quantized(dataset, weight_rounding="nearest"))
    assert all(np.array_equal(a, b) for a, b in zip(auto8, near8, strict=True))


def test_auto_without_dataset_rounds_int4_to_nearest():
    model = import_onnx(str(TINY_CNN))
    options = QuantizeOptions(dtype="f16", weight_dtype="i4", target="rk3576", progress=False)
    quantize_model(model, None, options)  # w4a16 needs no dataset, as in RKNN
    assert conv_weights(model)
