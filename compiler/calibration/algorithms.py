"""Quantization ranges from calibration statistics: RKNN-Toolkit2's `quantized_algorithm`
values (user guide §6.1.6, formulas 6-6 to 6-9) for asymmetric per-tensor activations.

- `normal`: [min, max]. No clipping error; outliers stretch the scale.
- `mmse`: the range minimising the quantize-dequantize squared error over the histogram (bin
  centres weighted by their counts, through `dialects.npu.numerics`).
- `kl_divergence`: TensorRT's entropy calibration, adapted to asymmetric ranges: the range
  whose quantized distribution Q is closest to the clipped reference P in KL(P || Q).

The searched range is two-sided for a tensor with values of both signs and one-sided
otherwise (a tensor with min >= 0, after a ReLU say, has its lower end at 0 in any case:
`asymmetric_params` widens every range to hold 0, so only the upper end is searched; and
symmetrically for max <= 0). Both searches are coordinate descents: the upper end with the
lower one fixed, then the lower end, repeated; each end moves over the histogram's bin edges,
coarse to fine (`_search_end`). A full 2-D grid would cost the square of the candidates for
little gain: the error of one end depends on the other only through the scale.

Exact zeros (ReLU outputs, padding) are left out of both searches: 0 is exactly
representable in every range, so they cost no error and carry no information about the range
(counted in the histogram's 0 bin, they would stand for values near 0 and skew both).

The histogram spans [min, max] in 2048 bins, so the precision of a clipped end is a bin and
a range clipped to a small fraction of the span is judged on few bins; see `mmse_range` and
`kl_range`. The returned range is the clipping range itself, not widened to 0
(`asymmetric_params` does that), so that `normal` returns exactly [min, max].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compiler.calibration.statistics import HISTOGRAM_BINS, TensorStatistics
from compiler.errors import CompilerError
from dialects.npu.numerics import QuantParams, asymmetric_params, dequantize, qrange, quantize

ALGORITHMS = ("normal", "mmse", "kl_divergence")

# Each end is searched on the histogram's bin edges, coarse to fine: about 32 edges spread
# over the end's side, then 16 around the best at 1/8 of the stride, and so on down to single
# edges (~65 candidates per end and round instead of ~1000). Each candidate costs a call of
# `asymmetric_params` (~10-25 us, scalar) besides its share of the vectorised error, so the
# count matters; the grid stays fine enough that the errors are smooth at its scale.
COARSE_CANDIDATES = 32
REFINE = 8  # stride divisor from one level to the next
# upper, lower, upper, lower: the second round follows the scale change of the first (an end
# moved by up to 12 % there, measured); a third round changed nothing on the test tensors
ROUNDS = 2

# KL compares bins within a level, so a candidate keeps at least this many histogram bins per
# quantization level (TensorRT's limit too: 128 bins for 128 levels); with fewer, merging
# loses nothing and KL cannot see the clipping. So an int8 range is clipped to 1/8 of the
# observed span at most, and a dtype with more levels than bins (int16) keeps [min, max].
KL_MIN_BINS_PER_LEVEL = 1
# KL does not charge for how far clipped values move: a histogram with atoms (ReLU6's
# spike at 6, a constant channel) makes a candidate that piles the clipped mass onto an atom
# look cheap (mobilenetv2: [0, 0.94] for a [0, 6] tensor, 39 % of it clipped). Candidates
# may clip at most this share of the non-zero values.
KL_MAX_CLIPPED = 1e-4
KL_EPSILON = 1e-4  # Q's floor where P > 0, in samples (as MXNet's smoothing): finite KL

# Candidates are evaluated in blocks of about this many (candidate, bin) pairs: temporaries of
# 256 KB stay in the allocator's reused memory, where whole (128, 2048) blocks came as fresh
# pages each time and ran 2-3x slower (page faults), measured.
BLOCK_ELEMENTS = 32768

Range = tuple[float, float]
Cost = Callable[[np.ndarray, np.ndarray], np.ndarray]


def choose_range(stats: TensorStatistics, algorithm: str, dtype: str) -> Range:
    """The float range [lo, hi] to quantize the tensor of `stats` to `dtype` ("i8", "u8",
    "i16") with `algorithm` (one of ALGORITHMS). `mmse` and `kl_divergence` need the
    histogram (`collect_statistics(..., histograms=True)`). A tensor that had no finite value
    gets (0, 0)."""
    if algorithm not in ALGORITHMS:
        raise CompilerError(
            f"unknown quantization algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
        )
    try:
        qrange(dtype)
    except ValueError as exc:
        raise CompilerError(f"calibration: {exc}") from None
    if stats.count == 0:
        return 0.0, 0.0
    if algorithm == "normal" or stats.max <= stats.min:
        return float(stats.min), float(stats.max)
    if stats.histogram is None:
        raise ValueError(f"{algorithm} needs the histogram of {stats.name!r} (pass 2)")
    if algorithm == "mmse":
        return mmse_range(stats, dtype)
    return kl_range(stats, dtype)


def stacked_params(los: np.ndarray, his: np.ndarray, dtype: str) -> QuantParams:
    """The asymmetric parameters of K candidate ranges as one QuantParams along axis 0, so
    that `quantize` evaluates all candidates on a (K, N) array at once."""
    params = [asymmetric_params(lo, hi, dtype) for lo, hi in zip(los, his, strict=True)]
    scales = np.array([p.scale for p in params], np.float64)
    zero_points = np.array([p.zero_point for p in params], np.int64)
    return QuantParams(dtype, scales, zero_points, axis=0)


def _descend(lo: float, hi: float, search: Callable[[float, float, str], Range]) -> Range:
    """Coordinate descent over the ends that can move (see the module doc)."""
    sides = [side for side, moves in (("hi", hi > 0), ("lo", lo < 0)) if moves]
    for _ in range(ROUNDS if len(sides) == 2 else 1):
        for side in sides:
            lo, hi = search(lo, hi, side)
    return lo, hi


def _pick(cost: Cost, side: str, lo: float, hi: float, candidates: np.ndarray) -> Range:
    """The candidate for end `side` (the other end fixed) of least cost."""
    fixed = np.full(candidates.shape, lo if side == "hi" else hi)
    los, his = (fixed, candidates) if side == "hi" else (candidates, fixed)
    rows = max(1, BLOCK_ELEMENTS // HISTOGRAM_BINS)
    costs = [cost(los[i : i + rows], his[i : i + rows]) for i in range(0, len(los), rows)]
    best = int(np.argmin(np.concatenate(costs)))
    return float(los[best]), float(his[best])


def _end_candidates(edges: np.ndarray, side: str) -> np.ndarray:
    """The bin edges an end can move to, ascending: those above 0 for the upper end (below 0
    for the lower), the unclipped end included."""
    return edges[1:][edges[1:] > 0] if side == "hi" else edges[:-1][edges[:-1] < 0]


def _search_end(cost: Cost, side: str, lo: float, hi: float, candidates: np.ndarray) -> Range:
    """Coarse to fine over the ascending `candidates` for end `side`: a grid of stride s,
    then the window of +- s around the best at stride s / REFINE, down to stride 1."""
    end = candidates.size - 1 if side == "hi" else 0  # the unclipped end is a candidate
    stride = max(1, -(-candidates.size // COARSE_CANDIDATES))
    picks = np.union1d(np.arange(0, candidates.size, stride), [end])
    while True:
        lo, hi = _pick(cost, side, lo, hi, candidates[picks])
        if stride == 1:
            return lo, hi
        best = int(np.searchsorted(candidates, hi if side == "hi" else lo))
        finer = max(1, stride // REFINE)
        start, stop = max(0, best - stride + finer), min(candidates.size, best + stride)
        picks, stride = np.union1d(np.arange(start, stop, finer), [best]), finer


# ---------------------------------------------------------------------- mmse


def mmse_range(stats: TensorStatistics, dtype: str) -> Range:
    """argmin over [lo, hi] of sum_i count_i * (c_i - dequantize(quantize(c_i)))^2, c_i the
    bin centres. Centres stand for the values of their bin: exact to within a bin width,
    which is below a quantization step unless the range is clipped below 1/8 of the span."""
    counts = stats.nonzero_histogram()  # exact zeros have no error in any range
    keep = counts > 0  # empty bins cost nothing: skip them
    centres = stats.centres[keep]
    weights = counts[keep]

    def cost(los: np.ndarray, his: np.ndarray) -> np.ndarray:
        return quantization_error(centres, weights, los, his, dtype)

    def search(lo: float, hi: float, side: str) -> Range:
        return _search_end(cost, side, lo, hi, _end_candidates(stats.edges, side))

    return _descend(stats.min, stats.max, search)


def quantization_error(
    values: np.ndarray, weights: np.ndarray, los: np.ndarray, his: np.ndarray, dtype: str
) -> np.ndarray:
    """The weighted squared quantize-dequantize error of `values` for each candidate range
    (los[k], his[k]): shape (K,)."""
    params = stacked_params(los, his, dtype)
    grid = np.broadcast_to(values, (len(los), values.size))
    error = dequantize(quantize(grid, params), params).astype(np.float64) - grid
    return (error * error) @ weights


# ---------------------------------------------------------------------- kl_divergence


def kl_range(stats: TensorStatistics, dtype: str) -> Range:
    """TensorRT's entropy calibration on the [min, max] histogram, with candidate ends on bin
    edges. For a candidate [edge_a, edge_b]: P = the bins a..b-1 with the mass outside added
    to the first and last of them (what clipping does); Q = the same bins without the
    outliers, merged per quantization level (the bins whose centres quantize to the same
    integer under the candidate's parameters: `numerics.quantize`, so the zero point's offset
    and the range's widening to 0 are those of the real quantizer) and spread back evenly
    over each level's bins where P is non-zero. The range minimising KL(P || Q) wins.

    TensorRT's original is symmetric on |x| with 128 levels; here each end moves on its own
    (one-sided for tensors of one sign), with the dtype's full level count. Candidates must
    keep `KL_MIN_BINS_PER_LEVEL` bins per level (counted over the bins P keeps, and over
    the range widened to 0): below that merging loses nothing and KL tends to 0 whatever
    the clipping; and may clip at most `KL_MAX_CLIPPED` of the non-zero values."""
    qmin, qmax = qrange(dtype)
    levels = qmax - qmin + 1
    if KL_MIN_BINS_PER_LEVEL * levels > HISTOGRAM_BINS:
        return float(stats.min), float(stats.max)
    edges = stats.edges
    counts = stats.nonzero_histogram()  # exact zeros: one atom, the same in P and in Q
    min_width = KL_MIN_BINS_PER_LEVEL * levels * (edges[1] - edges[0])

    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    total = max(cumulative[-1], 1.0)

    def cost(los: np.ndarray, his: np.ndarray) -> np.ndarray:
        a = np.rint((los - stats.min) / (edges[1] - edges[0])).astype(np.int64)
        b = np.rint((his - stats.min) / (edges[1] - edges[0])).astype(np.int64)
        divergence = kl_divergence(counts, stats.centres, a, b, dtype, edges)
        too_narrow = np.maximum(his, 0) - np.minimum(los, 0) < min_width * (1 - 1e-9)
        too_narrow |= (b - a) < KL_MIN_BINS_PER_LEVEL * levels  # the bins P keeps
        clipped = (cumulative[a] + cumulative[-1] - cumulative[b]) / total
        return np.where(too_narrow | (clipped > KL_MAX_CLIPPED), np.inf, divergence)

    def search(lo: float, hi: float, side: str) -> Range:
        return _search_end(cost, side, lo, hi, _end_candidates(edges, side))

    return _descend(stats.min, stats.max, search)


def kl_divergence(
    histogram: np.ndarray,
    centres: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    dtype: str,
    edges: np.ndarray,
) -> np.ndarray:
    """KL(P || Q) for the candidates keeping bins a[k] .. b[k]-1 (see `kl_range`): (K,).
    Only the columns some candidate keeps are computed."""
    hist = histogram.astype(np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(hist)])
    first, stop = int(a.min()), int(b.max())
    columns = np.arange(first, stop)
    inside = (columns >= a[:, None]) & (columns < b[:, None])
    kept = np.where(inside, hist[first:stop], 0.0)
    p = kept.copy()
    rows = np.arange(len(a))
    p[rows, a - first] += cumulative[a]  # clipped below: lands on the lowest level kept
    p[rows, b - 1 - first] += cumulative[-1] - cumulative[b]  # clipped above
    params = stacked_params(edges[a], edges[b], dtype)
    q = _merged(kept, p > 0, centres[first:stop], params)
    return _kl(p, q, floor=KL_EPSILON / max(cumulative[-1], 1.0))


def _merged(
    kept: np.ndarray, nonzero: np.ndarray, centres: np.ndarray, q: QuantParams
) -> np.ndarray:
    """Q: each level's mass (bins whose centres quantize alike) spread evenly over its bins
    where P is non-zero. Bins outside a candidate hold no mass and P is zero there, so they
    add nothing to any level."""
    qmin, qmax = qrange(q.dtype)
    levels = qmax - qmin + 1
    level = quantize(np.broadcast_to(centres, kept.shape), q).astype(np.int64) - qmin
    key = (level + levels * np.arange(len(kept))[:, None]).ravel()
    mass = np.bincount(key, weights=kept.ravel(), minlength=len(kept) * levels)
    share = np.bincount(key, weights=nonzero.ravel(), minlength=len(kept) * levels)
    spread = (mass / np.maximum(share, 1.0))[key].reshape(kept.shape)
    return np.where(nonzero, spread, 0.0)


def _kl(p: np.ndarray, q: np.ndarray, floor: float) -> np.ndarray:
    """Row-wise KL(p || q) of unnormalised rows; q gets `floor` (a fraction of the total)
    where p > 0 and q = 0, so clipping into an empty level costs much but not infinity."""
    p = p / p.sum(axis=1, keepdims=True)
    q = q / np.maximum(q.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
    ratio = np.divide(p, np.maximum(q, floor), out=np.ones_like(p), where=p > 0)
    return (p * np.log(ratio)).sum(axis=1)  # p = 0 terms: ratio 1, log 0
