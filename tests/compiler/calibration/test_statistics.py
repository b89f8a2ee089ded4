"""Streaming statistics: min/max/count/histogram per float tensor over a sample set, equal to
numpy's on the concatenated activations; two passes over a re-iterable set, one sample
alive at a time."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import pytest
from onnx import helper

from compiler.calibration import (
    HISTOGRAM_BINS,
    TensorStatistics,
    collect_statistics,
    load_calibration_set,
)
from compiler.errors import CompilerError
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from tests.helpers.datasets import write_dataset
from tests.passes.helpers import model_from_nodes
from tests.zoo import BY_NAME, model_path, zoo_file

SCALE = np.array([0.5, -2.0, 3.0], np.float32).reshape(3, 1, 1)


def tiny_model() -> IRModel:
    """r = Relu(x); m = r * SCALE; d = m - x; i = ArgMax(x) (int64: not recorded)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Mul", ["r", "scale"], ["m"]),
        helper.make_node("Sub", ["m", "x"], ["d"]),
        helper.make_node("ArgMax", ["x"], ["i"], axis=1),
    ]
    return model_from_nodes(nodes, [("x", [1, 3, 4, 5])], ["d", "i"], {"scale": SCALE})


def expected_tensors(x: np.ndarray) -> dict[str, np.ndarray]:
    """The float tensors of `tiny_model`, computed with numpy."""
    r = np.maximum(x, 0)
    m = r * SCALE
    return {"x": x, "r": r, "m": m, "d": m - x}


def random_samples(count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((1, 3, 4, 5)).astype(np.float32)} for _ in range(count)]


def numpy_histogram(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """numpy's histogram with float64 edges over [lo, hi]."""
    return np.histogram(values, HISTOGRAM_BINS, range=(np.float64(lo), np.float64(hi)))[0]


def test_statistics_equal_numpy_on_the_concatenated_activations():
    samples = random_samples(5)
    stats = collect_statistics(tiny_model(), samples, histograms=True, progress=False)
    assert set(stats) == {"x", "r", "m", "d"}  # ArgMax's int64 output is skipped
    for name in stats:
        values = np.concatenate([expected_tensors(s["x"])[name].ravel() for s in samples])
        got = stats[name]
        assert got.name == name
        assert got.count == values.size
        assert got.min == values.min() and got.max == values.max()
        assert got.histogram is not None and got.histogram.sum() == values.size
        np.testing.assert_array_equal(got.histogram, numpy_histogram(values, got.min, got.max))
        assert got.zeros == np.count_nonzero(values == 0)


def test_without_histograms_one_pass_and_no_histogram():
    stats = collect_statistics(tiny_model(), random_samples(2), histograms=False, progress=False)
    assert all(s.histogram is None for s in stats.values())
    assert stats["r"].min == 0.0


def test_only_the_named_tensors():
    stats = collect_statistics(
        tiny_model(), random_samples(2), histograms=True, names={"x", "m"}, progress=False
    )
    assert set(stats) == {"x", "m"}


class CountingSource:
    """A re-iterable sample source that counts its passes and checks, whenever it makes a
    sample, that no sample it made before is still alive."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.passes = 0
        self.made: list[weakref.ref] = []
        self.most_alive = 0

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        self.passes += 1
        rng = np.random.default_rng(0)
        for _ in range(self.count):
            alive = sum(ref() is not None for ref in self.made)
            self.most_alive = max(self.most_alive, alive)
            array = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)  # made on demand
            self.made.append(weakref.ref(array))
            yield {"x": array}
            del array  # the source itself keeps nothing


def test_streaming_one_pass_each_and_one_sample_alive():
    source = CountingSource(6)
    stats = collect_statistics(tiny_model(), source, histograms=True, progress=False)
    assert source.passes == 2
    assert source.most_alive == 0  # the previous sample was dropped before the next one
    assert stats["x"].count == 6 * 60
    one_pass = CountingSource(3)
    collect_statistics(tiny_model(), one_pass, histograms=False, progress=False)
    assert one_pass.passes == 1


def test_a_one_shot_generator_cannot_give_histograms():
    samples = iter(random_samples(2))
    with pytest.raises(ValueError, match="re-iterable"):
        collect_statistics(tiny_model(), samples, histograms=True, progress=False)
    stats = collect_statistics(tiny_model(), iter(random_samples(2)), False, progress=False)
    assert stats["x"].count == 2 * 60


def test_non_finite_values_are_left_out():
    model = model_from_nodes([helper.make_node("Log", ["x"], ["y"])], [("x", [1, 4])], ["y"])
    samples = [{"x": np.array([[0.0, 1.0, np.e, -1.0]], np.float32)}]  # -inf, 0, 1, nan
    stats = collect_statistics(model, samples, histograms=True, progress=False)
    assert stats["y"].count == 2
    assert (stats["y"].min, stats["y"].max) == (0.0, pytest.approx(1.0))
    assert stats["y"].histogram.sum() == 2


def test_a_constant_tensor():
    stats = TensorStatistics.from_array("c", np.full(10, 2.5, np.float32))
    assert (stats.min, stats.max, stats.count) == (2.5, 2.5, 10)
    assert stats.histogram is not None and stats.histogram[0] == 10


def test_zero_bin_holds_the_exact_zeros():
    values = np.array([-1.0, 0.0, 0.0, 0.0, 3.0])
    stats = TensorStatistics.from_array("z", values)
    assert stats.zeros == 3
    edges = stats.edges
    assert edges[stats.zero_bin] <= 0.0 < edges[stats.zero_bin + 1]
    assert stats.histogram[stats.zero_bin] == 3
    assert stats.nonzero_histogram().sum() == 2


def test_progress_bar_names_the_passes(capsys):
    collect_statistics(tiny_model(), random_samples(2), histograms=True, progress=True)
    err = capsys.readouterr().err
    assert "calibrating (pass 1/2)" in err and "calibrating (pass 2/2)" in err


def test_an_empty_sample_set():
    with pytest.raises(CompilerError, match="the sample set is empty"):
        collect_statistics(tiny_model(), [], histograms=False, progress=False)


def test_digits_cnn_with_a_dataset_txt_of_npy_files(tmp_path):
    model = import_onnx(model_path(BY_NAME["digits_cnn"]))
    calib = zoo_file("digits/data16/calib")
    listing = write_dataset(tmp_path, (np.load(calib / f"{k:04d}.npy") for k in range(4)), "s")
    samples = load_calibration_set(listing, model.inputs)
    stats = collect_statistics(model, samples, histograms=True, progress=False)
    first = next(iter(samples))
    captured = Interpreter(model).run(first, capture=True).tensors
    floats = {n for n, v in captured.items() if np.issubdtype(v.dtype, np.floating)}
    assert floats and set(stats) == floats | {model.inputs[0].name}
    for name, s in stats.items():
        assert s.count > 0 and s.min <= s.max, name
        assert s.histogram is not None and s.histogram.sum() == s.count, name
    x = np.concatenate([np.load(calib / f"{k:04d}.npy").ravel() for k in range(4)])
    assert (stats["input"].min, stats["input"].max) == (x.min(), x.max())
