"""Streaming statistics of every float tensor of a model over a calibration set.

Memory is bounded by the histograms, never by the data: activations are reduced to their
statistics as each sample runs and dropped before the next one. Two passes, because a
fixed-range histogram needs the range first:

1. min, max and element count per tensor (all that `normal` needs);
2. only when an algorithm needs a distribution (`mmse`, `kl_divergence`): a histogram of
   `HISTOGRAM_BINS` equal bins over [min, max] of pass 1, so every value of pass 2 lands in a
   bin. The samples must therefore be the same in both passes (an iterable that can be
   iterated twice, such as a `CalibrationSet`, never a one-shot generator).

Non-finite values (inf, nan) are left out of the statistics: a range cannot hold them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sized
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from compiler.errors import CompilerError
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel

HISTOGRAM_BINS = 2048

Feed = Mapping[str, np.ndarray]  # one sample: {input name: array}


@dataclass
class TensorStatistics:
    """min, max and count of a tensor's finite values, and (after pass 2) their histogram:
    `HISTOGRAM_BINS` int64 counts over equal bins spanning [min, max] (float64 `edges`; the
    last bin holds max), and how many values are exactly 0 (`zeros`, also counted in the
    histogram): quantization represents 0 exactly, so the algorithms set exact zeros (ReLU
    outputs, padding) apart from the values near 0 they share a bin with."""

    name: str
    min: float = np.inf
    max: float = -np.inf
    count: int = 0
    histogram: np.ndarray | None = field(default=None, repr=False)
    zeros: int = 0

    @classmethod
    def from_array(cls, name: str, values: np.ndarray, histogram: bool = True) -> TensorStatistics:
        """The statistics of one array (both passes at once)."""
        stats = cls(name)
        stats.observe_range(values)
        if histogram:
            stats.observe_histogram(values)
        return stats

    def observe_range(self, values: np.ndarray) -> None:
        """Pass 1: fold `values` into min, max and count."""
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            return
        low, high = flat.min(), flat.max()
        if not (np.isfinite(low) and np.isfinite(high)):  # rare: pay for the filter only then
            flat = flat[np.isfinite(flat)]
            if flat.size == 0:
                return
            low, high = flat.min(), flat.max()
        self.min = min(self.min, float(low))
        self.max = max(self.max, float(high))
        self.count += int(flat.size)

    def observe_histogram(self, values: np.ndarray) -> None:
        """Pass 2: add `values` to the histogram over [min, max] of pass 1 (values outside
        it, inf and nan fall in no bin)."""
        if self.histogram is None:
            self.histogram = np.zeros(HISTOGRAM_BINS, np.int64)
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0 or self.count == 0:
            return
        if self.max > self.min:
            # float64 ends make numpy bin with float64 edges, the same as `edges`, whatever
            # the tensor's dtype (Python floats would give float32 edges for float32 data)
            span = (np.float64(self.min), np.float64(self.max))
            counts, _ = np.histogram(flat, bins=HISTOGRAM_BINS, range=span)
            self.histogram += counts
        else:  # a constant tensor: every finite value is min, in the first bin
            self.histogram[0] += int(np.count_nonzero(flat == self.min))
        if self.min <= 0.0 <= self.max:
            self.zeros += int(np.count_nonzero(flat == 0))

    @property
    def edges(self) -> np.ndarray:
        """The `HISTOGRAM_BINS + 1` bin edges (float64)."""
        return np.linspace(self.min, self.max, HISTOGRAM_BINS + 1)

    @property
    def centres(self) -> np.ndarray:
        edges = self.edges
        return (edges[:-1] + edges[1:]) / 2

    @property
    def zero_bin(self) -> int | None:
        """The bin holding 0 (None when 0 is outside [min, max])."""
        if not self.min <= 0.0 <= self.max:
            return None
        index = int(np.searchsorted(self.edges, 0.0, side="right")) - 1
        return min(max(index, 0), HISTOGRAM_BINS - 1)

    def nonzero_histogram(self) -> np.ndarray:
        """The histogram without the exact zeros (float64 counts)."""
        assert self.histogram is not None
        counts = self.histogram.astype(np.float64)
        if self.zero_bin is not None:
            counts[self.zero_bin] -= self.zeros
        return counts


def _is_float(values: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(values).dtype, np.floating)


def collect_statistics(
    model: IRModel,
    samples: Iterable[Feed],
    histograms: bool,
    names: Collection[str] | None = None,
    progress: bool = True,
) -> dict[str, TensorStatistics]:
    """Statistics of the float tensors of `model` over `samples` ({input name: array}, already
    normalised), by ONNX name: every tensor the interpreter produces and the model inputs, or
    only `names`. With `histograms`, a second pass over `samples` fills the histograms."""
    interpreter = Interpreter(model)
    total = len(samples) if isinstance(samples, Sized) else None
    if histograms and iter(samples) is samples:
        raise ValueError("histograms need two passes: give a re-iterable sample set")
    passes = 2 if histograms else 1
    capture: bool | Collection[str] = True if names is None else set(names)
    stats: dict[str, TensorStatistics] = {}
    with _bar(total, 1, passes, progress) as bar:
        for sample in samples:
            for name, values in _tensors(interpreter, sample, capture):
                stats.setdefault(name, TensorStatistics(name)).observe_range(values)
            del sample  # one sample in memory: drop it before the iterator reads the next
            bar.update()
    if not stats:
        raise CompilerError("calibration: the sample set is empty or has no float tensors")
    if histograms:
        _fill_histograms(interpreter, samples, stats, total, progress)
    return stats


def _fill_histograms(
    interpreter: Interpreter,
    samples: Iterable[Feed],
    stats: dict[str, TensorStatistics],
    total: int | None,
    progress: bool,
) -> None:
    """Pass 2: histograms of the tensors pass 1 recorded."""
    with _bar(total, 2, 2, progress) as bar:
        for sample in samples:
            for name, values in _tensors(interpreter, sample, set(stats)):
                if name in stats:
                    stats[name].observe_histogram(values)
            del sample
            bar.update()
    for s in stats.values():
        if s.histogram is None:  # all-nan tensors and the like
            s.histogram = np.zeros(HISTOGRAM_BINS, np.int64)


def _tensors(
    interpreter: Interpreter, sample: Feed, capture: bool | Collection[str]
) -> list[tuple[str, np.ndarray]]:
    """The float inputs of `sample` and the float tensors captured from running it."""
    wanted = None if capture is True else capture
    result = interpreter.run(sample, capture=capture)
    pairs = [(s.name, sample[s.name]) for s in interpreter.input_specs if s.name in sample]
    pairs += list(result.tensors.items())
    return [
        (name, np.asarray(values))
        for name, values in pairs
        if _is_float(values) and (wanted is None or name in wanted)
    ]


def _bar(total: int | None, number: int, passes: int, progress: bool) -> tqdm:
    """A progress bar updated by hand: wrapping the samples in tqdm would keep the previous
    sample alive in tqdm's generator while the next one loads."""
    return tqdm(
        total=total,
        unit="sample",
        desc=f"calibrating (pass {number}/{passes})",
        disable=not progress,
    )
