"""The hybrid-quantization proposal: which tensors to compute in a wider dtype (int16, or
float16) so that the model's outputs reach a cosine target against the float model, at the
least predicted latency.

RKNN's proposal keeps layers in float16 by their single-layer error and says nothing of
what they cost. Ours measures the outputs instead of guessing, on calibration statistics
measured once: each candidate set is quantized again from them and run by the bit-exact
reference executor (which the simulator equals bit for bit), and what a tensor costs comes
from the cycle model on two built containers (all-int8 and all-wide).

1. The all-int8 outputs' cosine; if it meets the target, nothing is proposed. Then the
   wide dtype: int16 if the all-int16 model meets the target, else float16 (int16 keeps
   the calibrated ranges, which an input beyond them clips; float16 has none); if neither
   does, everything is proposed in float16, with a note.
2. Every tensor gets a score from one run of each model: the relative error it adds to
   what its inputs already carried (int8 against float, per tensor), per microsecond it
   costs to widen.
3. Binary search: the largest number of the lowest-scored tensors that can stay int8 while
   the outputs still meet the target (the others widened); a few runs. Done for two
   orders: by score, and by graph position from the end (RKNN's experience: early layers
   matter most; a widened prefix is one region, with dtype conversions only at its edges).
4. Refinement: each widened tensor, most expensive first, is tried back in int8 and left
   there if the target still holds (`max_runs`, shared by the orders, bounds these runs).
   Of the two sets,
   the one with the lower predicted latency (built, conversions included) is proposed.
   What a tensor's widening gains is the cosine lost when it alone goes back to int8.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm
from xdsl.ir import SSAValue

from compiler.build import BuildResult, build_model
from compiler.calibration import load_calibration_set
from compiler.calibration.dataset import InputPreprocess
from compiler.calibration.statistics import TensorStatistics
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from compiler.pipeline import PipelineReport
from compiler.quantization.cfg import QuantizationCfg
from compiler.quantization.quantize import Prepared, QuantizeOptions, quantize_optimized
from dialects.npu import ops as npu
from dialects.onnx import ConstantOp, OnnxOp
from passes.strip_qdq import QdqParameters
from runtime.perf import perf_report

MIN_COST_US = 0.01  # a widened tensor whose op costs nothing measurable still counts a bit


@dataclass(frozen=True)
class Feed:
    """One sample: the raw input the quantized model takes and the normalized one the
    float model takes (equal without mean/std)."""

    raw: dict[str, np.ndarray]
    normalized: dict[str, np.ndarray]


@dataclass
class ProposalStep:
    """One widened tensor of the proposal."""

    tensor: str
    dtype: str
    gain: float  # the outputs' cosine lost if it alone went back to int8
    cost_us: float  # predicted time its widening adds (cycle model, its producer op)
    cosine_without: float  # the outputs' cosine without it (the others widened)


@dataclass
class Proposal:
    overrides: dict[str, str]  # tensor -> our dtype name (i16 | f16)
    steps: list[ProposalStep]
    int8_cosine: float
    cosine: float
    target_cosine: float
    int8_time_us: float = 0.0
    time_us: float = 0.0
    float16_cosine: float = 0.0  # the whole model in float16, for comparison
    float16_time_us: float = 0.0
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)

    def layer_notes(self) -> dict[str, str]:
        """Per chosen tensor, for the cfg: the cosine reached and the time it costs."""
        return {s.tensor: f"gains {s.gain:+.5f} cosine (outputs {self.cosine:.5f}), costs "
                          f"{s.cost_us:.1f} us" for s in self.steps}  # fmt: skip


def proposal_feeds(dataset: Path | str, model: IRModel,
                   preprocess: Sequence[InputPreprocess | None] | None,
                   count: int) -> list[Feed]:  # fmt: skip
    """The first `count` samples of `dataset`, raw and normalized (each file read once)."""
    samples = load_calibration_set(dataset, model.inputs, preprocess)
    feeds = []
    for sample in samples.samples[:count]:
        raw = samples.load_raw(sample)
        feeds.append(Feed(raw, samples.normalized(raw)))
    return feeds


def output_cosine(got: Sequence[dict[str, np.ndarray]],
                  expected: Sequence[dict[str, np.ndarray]]) -> float:  # fmt: skip
    """The worst cosine over samples and outputs: every sample must meet a target, not
    their sum (a sample with large outputs would hide the others)."""
    return min(_cosine(one[name], reference)
               for one, golden in zip(got, expected, strict=True)
               for name, reference in golden.items())  # fmt: skip


def _cosine(got: np.ndarray, expected: np.ndarray) -> float:
    a, b = np.ravel(got).astype(np.float64), np.ravel(expected).astype(np.float64)
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denominator) if denominator else float(np.array_equal(a, b))


class ProposalSearch:
    """One model (prepared: float-optimized, not lowered), its statistics and feeds."""

    def __init__(self, prepared: IRModel, statistics: dict[str, TensorStatistics],
                 options: QuantizeOptions, feeds: Sequence[Feed],
                 wides: tuple[str, ...] = ("i16", "f16"), max_runs: int = 120,
                 progress: bool = False) -> None:  # fmt: skip
        # the search compares precisions with nearest weight rounding: rounding on the data
        # per candidate would cost a pass over the samples each; the final build may use it
        self.options = replace(options, weight_rounding="nearest")
        self.prepared, self.statistics = prepared, statistics
        self.feeds, self.wides, self.max_runs = list(feeds), wides, max_runs
        self.wide = wides[0]
        self.bar = tqdm(desc="proposal", unit="run", disable=not progress)
        golden = Interpreter(prepared)
        self.golden = [golden.run(f.normalized).outputs for f in self.feeds]
        self.evaluations = 0

    # ------------------------------------------------------------------ measuring
    def build(self, overrides: dict[str, str], dtype: str | None = None) -> BuildResult:
        """`prepared` built with these overrides (and activation dtype)."""
        cfg = QuantizationCfg(custom_quantize_layers=dict(overrides))
        options = replace(self.options, cfg=cfg, progress=False,
                          dtype=dtype or self.options.dtype)  # fmt: skip
        return build_model(self.prepared.clone(), None, options, self.statistics)

    def quantized(self, overrides: dict[str, str], dtype: str | None = None) -> IRModel:
        """`prepared` quantized with these overrides (and activation dtype); the float
        passes are not run again."""
        model = self.prepared.clone()
        cfg = QuantizationCfg(custom_quantize_layers=dict(overrides))
        options = replace(self.options, cfg=cfg, progress=False,
                          dtype=dtype or self.options.dtype)  # fmt: skip
        prepared = Prepared(model, QdqParameters(), [PipelineReport(), PipelineReport()])
        quantize_optimized(prepared, None, options, self.statistics)
        return model

    @functools.cached_property
    def int8_model(self) -> IRModel:
        """The model quantized without overrides (read by the candidates and the ranking)."""
        return self.quantized({})

    def cosine(self, overrides: dict[str, str], dtype: str | None = None) -> float:
        """The outputs' cosine with `overrides` (and activation dtype), on the reference
        executor."""
        self.evaluations += 1
        self.bar.update()
        interpreter = Interpreter(self.quantized(overrides, dtype))
        got = [interpreter.run(f.raw).outputs for f in self.feeds]
        return output_cosine(got, self.golden)

    def op_times(self, build: BuildResult) -> dict[str, float]:
        """Predicted time per tensor name, of the op producing it (cycle model)."""
        report = perf_report(build.container)
        ops = {entry["index"]: entry for entry in build.container.metadata["ops"]}
        times: dict[str, float] = {}
        for row in report.rows:
            for name in ops.get(row.id, {}).get("outputs", []):
                times[name] = row.time_us
        return times

    # ------------------------------------------------------------------ searching
    def run(self, target_cosine: float) -> Proposal:
        narrow = self.build({})
        baseline = self.cosine({})
        proposal = Proposal({}, [], baseline, baseline, target_cosine,
                            perf_report(narrow.container).total_time_us)  # fmt: skip
        proposal.time_us = proposal.int8_time_us
        if baseline >= target_cosine:
            proposal.notes.append("the all-int8 model meets the target: nothing to widen")
        else:
            candidates = self._candidates()
            self._choose_wide(candidates, target_cosine, proposal)
            costs = self._costs(narrow)
            chosen = self._search(candidates, target_cosine, costs, proposal)
            self._finish(chosen, costs, proposal)
        proposal.float16_cosine = self.cosine({}, dtype="f16")
        float16 = self.build({}, dtype="f16")
        proposal.float16_time_us = perf_report(float16.container).total_time_us
        proposal.evaluations = self.evaluations
        return proposal

    def _choose_wide(self, candidates: list[str], target: float, proposal: Proposal) -> None:
        """The first of `wides` whose all-wide model meets the target: int16 keeps the int8
        ranges (more resolution), float16 has none (an input beyond the calibrated
        ranges clips in int16, not in float16)."""
        for wide in self.wides:
            self.wide = wide
            if self.cosine(self._wide(candidates)) >= target:
                return
            proposal.notes.append(f"all {len(candidates)} tensors in {wide} miss the target")

    def _search(self, candidates: list[str], target: float, costs: dict[str, float],
                proposal: Proposal) -> list[str]:  # fmt: skip
        if self.cosine(self._wide(candidates)) < target:
            proposal.notes.append("every tensor is proposed")
            return candidates
        # two orders of "least useful first": by the error a tensor adds per microsecond,
        # and from the last layer back (a widened prefix of the graph is one region: it
        # needs conversions only at its edges, where scattered tensors need them each)
        orders = {"error per microsecond": self._ranked(candidates, costs),
                  "graph order": candidates[::-1]}  # fmt: skip
        budget = self.max_runs // len(orders)  # refinement runs per order
        found = {label: self._refined(order[self._narrowest(order, target):], costs, target,
                                      proposal, budget)
                 for label, order in orders.items()}  # fmt: skip
        times = {label: perf_report(self.build(self._wide(chosen)).container).total_time_us
                 for label, chosen in found.items()}  # fmt: skip
        best = min(found, key=lambda label: (times[label], len(found[label])))
        proposal.notes.append("orders tried: " + ", ".join(
            f"{label} {len(found[label])} tensors {times[label] / 1000:.2f} ms"
            for label in found) + f"; kept {best}")  # fmt: skip
        return found[best]

    def _refined(self, chosen: list[str], costs: dict[str, float], target: float,
                 proposal: Proposal, budget: int) -> list[str]:  # fmt: skip
        """Each chosen tensor, most expensive first, back in int8 if the target holds (at
        most `budget` runs)."""
        stop = self.evaluations + budget
        for tensor in sorted(chosen, key=lambda t: costs.get(t, MIN_COST_US), reverse=True):
            if self.evaluations >= stop:
                proposal.notes.append(f"refinement stopped after {budget} runs")
                break
            rest = [t for t in chosen if t != tensor]
            if rest and self.cosine(self._wide(rest)) >= target:
                chosen = rest
        return chosen

    def _finish(self, chosen: list[str], costs: dict[str, float], proposal: Proposal) -> None:
        proposal.overrides = self._wide(chosen)
        proposal.cosine = self.cosine(proposal.overrides)
        for tensor in chosen:
            without = self.cosine(self._wide([t for t in chosen if t != tensor]))
            cost = costs.get(tensor, MIN_COST_US)
            step = ProposalStep(tensor, self.wide, proposal.cosine - without, cost, without)
            proposal.steps.append(step)
        final = self.build(proposal.overrides)
        proposal.time_us = perf_report(final.container).total_time_us
        if proposal.cosine < proposal.target_cosine:
            proposal.notes.append(f"target {proposal.target_cosine} not reached: "
                                  f"{proposal.cosine:.5f}")  # fmt: skip

    def _wide(self, tensors: Iterable[str]) -> dict[str, str]:
        return {t: self.wide for t in tensors}

    def _narrowest(self, order: list[str], target: float) -> int:
        """The largest k such that the first k of `order` in int8 (the rest widened) still
        meet the target (k = 0 does: the caller checked all-wide)."""
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.cosine(self._wide(order[mid:])) >= target:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _costs(self, narrow: BuildResult) -> dict[str, float]:
        wide = self.build({}, dtype=self.wide)
        narrow_t, wide_t = self.op_times(narrow), self.op_times(wide)
        return {name: max(wide_t.get(name, 0.0) - t, MIN_COST_US) for name, t in narrow_t.items()}

    def _candidates(self) -> list[str]:
        """Tensors the calibration measured that the int8 model quantizes."""
        quantized = self.int8_model
        names = {n for op in quantized.main.body.blocks[0].ops
                 if isinstance(op, npu.NpuOp) and op.quant.element != "f32"
                 for n in op.output_names}  # fmt: skip
        return [t for t in self.statistics if t in names]

    def _ranked(self, candidates: list[str], costs: dict[str, float]) -> list[str]:
        """Least useful first: the error a tensor adds in int8, per microsecond it costs."""
        added = self._added_error(candidates)
        return sorted(candidates, key=lambda t: added.get(t, 0.0) / costs.get(t, MIN_COST_US))

    def _added_error(self, candidates: list[str]) -> dict[str, float]:
        """Per tensor: its relative error (int8 against float, one run of each) minus the
        largest of its inputs'."""
        quantized = Interpreter(self.int8_model)
        got = quantized.run(self.feeds[0].raw, capture=True).tensors
        expected = Interpreter(self.prepared).run(self.feeds[0].normalized, capture=True).tensors
        error = {n: _relative_error(got[n], expected[n]) for n in got if n in expected}
        inputs = _input_names(self.prepared)
        return {t: max(error.get(t, 0.0) - max((error.get(i, 0.0) for i in inputs.get(t, ())),
                                               default=0.0), 0.0)
                for t in candidates}  # fmt: skip


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    if got.shape != expected.shape:
        return 0.0
    scale = float(np.linalg.norm(expected))
    return float(np.linalg.norm(got.astype(np.float64) - expected)) / scale if scale else 0.0


def _input_names(model: IRModel) -> dict[str, list[str]]:
    """Per tensor of the float graph, the names of the tensors its producer reads."""
    names: dict[SSAValue, str] = {}
    for arg, spec in zip(model.main.body.blocks[0].args, model.inputs, strict=True):
        names[arg] = spec.name
    inputs: dict[str, list[str]] = {}
    for op in model.main.body.blocks[0].ops:
        if not isinstance(op, OnnxOp) or isinstance(op, ConstantOp):
            continue
        read = [names[v] for v in op.operands if v in names]
        for result, name in zip(op.results, op.output_names, strict=False):
            names[result] = name
            inputs[name] = read
    return inputs
