"""The numbers of accuracy analysis against independent references: the metrics against
their written-out formulas; entire against the session's layers and onnxruntime's float
output computed here; single against quantize-dequantize done by hand; the golden fed the
normalized input when the model normalizes inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from compiler.analysis import accuracy_analysis, cosine, distance, euclidean
from compiler.interpreter import Interpreter
from dialects.npu import ops as npu
from runtime.session import Session
from tests.compiler.analysis.helpers import (
    MEAN,
    STD,
    Built,
    build_small,
    np_cosine,
    np_euclidean,
)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_small(tmp_path_factory.mktemp("plain"), normalized=False)


@pytest.fixture(scope="module")
def normalized(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_small(tmp_path_factory.mktemp("normalized"), normalized=True)


def analyse(built: Built, out: Path, samples: int = 1, dump: bool = False):
    return accuracy_analysis(built.float_model, built.build, built.quantized,
                             built.samples[:samples], out, dump=dump)  # fmt: skip


def by_label(report) -> dict[str, object]:
    return {row.label: row for row in report.rows}


# ---------------------------------------------------------------------- metrics


def test_metrics_match_the_written_out_formulas():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 5)).astype(np.float32)
    b = a + 0.3 * rng.standard_normal(a.shape).astype(np.float32)
    assert cosine(a, b) == pytest.approx(np_cosine(a, b), rel=1e-12)
    assert euclidean(a, b) == pytest.approx(np_euclidean(a, b), rel=1e-12)
    assert cosine(a, -a) == pytest.approx(-1.0)
    assert euclidean(a, a) == 0.0


def test_zero_tensors_and_mismatched_sizes():
    zero, one = np.zeros(4), np.ones(4)
    assert cosine(zero, zero) == 1.0  # nothing differs
    assert cosine(zero, one) == 0.0  # no common direction
    assert euclidean(zero, one) == pytest.approx(2.0)
    assert distance(one, None) is None
    assert distance(one, np.ones(5)) is None


# ---------------------------------------------------------------------- entire


def test_entire_rows_are_the_session_layers_against_the_golden(plain: Built, tmp_path: Path):
    report = analyse(plain, tmp_path)
    sample = plain.samples[0]
    layers: dict[str, np.ndarray] = {}
    Session(plain.build.container).run(sample, None, layers)
    golden = Interpreter(plain.float_model).run(sample, capture=True).tensors
    compared = [r for r in report.rows if r.op_type not in ("Input", "exDataConvert")]
    assert len(compared) >= 4  # conv, conv+add, pool, flatten, fc
    for row in compared:
        got = row.entire[0]
        assert got.cos == pytest.approx(np_cosine(golden[row.name], layers[row.name]), abs=1e-9)
        assert got.euc == pytest.approx(np_euclidean(golden[row.name], layers[row.name]),
                                        rel=1e-9, abs=1e-12)  # fmt: skip


def test_output_row_is_the_simulator_output_against_onnxruntime(plain: Built, tmp_path: Path):
    report = analyse(plain, tmp_path)
    sample = plain.samples[0]
    simulated = Session(plain.build.container).run(sample)["logits"]
    reference = ort.InferenceSession(plain.proto.SerializeToString()).run(None, sample)[0]
    (row,) = report.outputs
    assert row.name == "logits"
    # the golden is our float interpreter, within 1e-4 of onnxruntime (README, Results)
    assert row.entire[0].cos == pytest.approx(np_cosine(reference, simulated), abs=1e-6)
    assert row.entire[0].euc == pytest.approx(np_euclidean(reference, simulated), abs=1e-3)
    assert row.entire[0].cos > 0.99


# ---------------------------------------------------------------------- single


def test_single_equals_entire_on_the_first_layer(plain: Built, tmp_path: Path):
    """Both feed the first convolution the same quantized input: the same numbers."""
    report = analyse(plain, tmp_path)
    first = next(r for r in report.rows if r.op_type.startswith("Conv"))
    assert first.single[0] == first.entire[0]
    assert first.single[0].cos < 1.0  # a real quantization error, not a copy of the golden


def test_single_of_the_output_conversion_is_its_quantization_alone(plain: Built, tmp_path: Path):
    """The final dequantize fed the golden logits: quantize-dequantize by hand."""
    report = analyse(plain, tmp_path)
    golden = Interpreter(plain.float_model).run(plain.samples[0]).outputs["logits"]
    fc = next(op for op in plain.quantized.main.body.blocks[0].ops
              if isinstance(op, npu.FullyConnectedOp))  # fmt: skip
    params = fc.quant.params()
    scale, zp = float(params.scale), int(params.zero_point)
    x = np.asarray(golden, np.float64) / scale
    rounded = np.where(x >= 0, np.floor(x + 0.5), -np.floor(-x + 0.5))  # half away from 0
    by_hand = (np.clip(rounded + zp, -128, 127) - zp) * scale
    row = by_label(report)["[exDataConvert] logits"]
    assert row.single[0].cos == pytest.approx(np_cosine(golden, by_hand), abs=1e-9)
    assert row.single[0].euc == pytest.approx(np_euclidean(golden, by_hand), rel=1e-5)


def test_single_carries_no_upstream_error(plain: Built, tmp_path: Path):
    """The residual conv reads the first conv's output: entire gets it with the first
    layer's error, single gets the golden. On this model the difference is visible."""
    report = analyse(plain, tmp_path)
    add = by_label(report)["[ConvAdd] a2"]
    assert add.single[0].euc < add.entire[0].euc
    assert add.single[0].cos > add.entire[0].cos


# ---------------------------------------------------------------------- normalization


def test_golden_gets_the_normalized_input(normalized: Built, tmp_path: Path):
    report = analyse(normalized, tmp_path, dump=True)
    raw = normalized.samples[0]["x"]
    by_hand = (raw - np.array(MEAN, np.float32).reshape(1, 3, 1, 1)) / np.array(
        STD, np.float32
    ).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(np.load(tmp_path / "golden" / "x.npy"), by_hand, rtol=1e-6)
    # the quantized input against the golden: a quantization step, not raw vs normalized
    row = by_label(report)["[exDataConvert] x"]
    assert row.entire[0].cos > 0.999
    assert np_cosine(raw, by_hand) < 0.9  # what feeding the golden raw data would give
    assert report.outputs[0].entire[0].cos > 0.99


# ---------------------------------------------------------------------- samples


def test_several_samples_give_per_sample_rows_and_means(plain: Built, tmp_path: Path):
    report = analyse(plain, tmp_path, samples=2)
    assert report.samples == 2
    for row in report.rows:
        assert len(row.entire) == len(row.single) == 2
        if row.entire[0] is not None:
            mean = (row.entire[0].cos + row.entire[1].cos) / 2
            assert row.entire_mean.cos == pytest.approx(mean)
    conv = next(r for r in report.rows if r.op_type.startswith("Conv"))
    assert conv.entire[0] != conv.entire[1]  # two inputs, two results


def test_empty_sample_list_is_an_error(plain: Built, tmp_path: Path):
    from compiler.errors import CompilerError

    with pytest.raises(CompilerError, match="at least one"):
        accuracy_analysis(plain.float_model, plain.build, plain.quantized, [], tmp_path)


def test_rows_carry_dtype_and_time_estimates(plain: Built, tmp_path: Path):
    report = analyse(plain, tmp_path)
    conv = next(r for r in report.rows if r.op_type.startswith("Conv"))
    assert conv.dtype == "INT8" and conv.target == "NPU"
    assert conv.time_us > 0
    # int16 moves twice the bytes and has half the output-channel atoms: never cheaper
    assert conv.int16_us >= conv.time_us and conv.float16_us >= conv.time_us
    quantize = by_label(report)["[exDataConvert] x"]
    assert quantize.target == "CPU" and quantize.int16_us is None
