"""The quantization flow: float model -> quantized `npu` IR.

0. A pre-quantized (QDQ) model gives up its QuantizeLinear/DequantizeLinear parameters
   (`strip-qdq`); they are fixed and need no dataset.
1. Float optimization (`float-pipeline` at the optimization level) and
   `split-lut-activations`, so every tensor a lookup table reads exists and can be measured.
2. Calibration on the dataset (`compiler.calibration`): statistics per float tensor, a range
   per tensor by the algorithm.
3. Ranges narrowed to where their readers respond (`saturation.py`: a HardSigmoid's input
   to [-3, 3], ...), then shared where an op must not requantize: a Concat's inputs take
   its output's range when the Concat is their only reader (RKNN does the same), so the
   concat copies bytes.
4. With `weight_rounding="gptq"` (or "auto" and int4 weights), the weights rounded on the data
   (`weight_rounding.py`) instead of to nearest.
5. The plan (dtypes, weights method, per-layer overrides, the config's fixed parameters,
   the input mean/std, the rounded weights) and `lower-to-npu`, then dead code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xdsl.dialects.func import ReturnOp
from xdsl.ir import BlockArgument

from backends.targets import DEFAULT_TARGET, get_target, targets_supporting
from compiler.calibration import (
    InputPreprocess,
    channel_axis,
    choose_range,
    collect_statistics,
    load_calibration_set,
)
from compiler.calibration.statistics import TensorStatistics
from compiler.errors import CompilerError
from compiler.ir_model import IRModel
from compiler.pipeline import PipelineReport, parse_pipeline, run_pipeline
from compiler.quantization.cfg import QuantizationCfg, TensorQuantization
from compiler.quantization.saturation import clip_to_saturation
from compiler.quantization.weight_rounding import ROUNDINGS, round_weights
from dialects.npu import numerics as nx
from dialects.onnx import OnnxOp
from passes.quantization_plan import (
    InputNormalization,
    QuantPlan,
    RoundedWeights,
    TensorRange,
    using_plan,
)
from passes.strip_qdq import QdqParameters, recording_qdq

# RKNN's quantized_dtype names -> (activation dtype, weight dtype)
RKNN_QUANTIZED_DTYPES: dict[str, tuple[str, str | None]] = {
    "asymmetric_quantized-8": ("i8", None),
    "w8a8": ("i8", None),
    "asymmetric_quantized-16": ("i16", None),
    "w16a16i": ("i16", None),
    "float16": ("f16", None),
    "w4a16": ("f16", "i4"),
    "w4a8": ("i8", "i4"),
}
DTYPES = ("i8", "i16", "f16")
# A graph-output Concat whose inputs' ranges differ more than this computes in float16:
# one int8 scale for both would leave the smaller input under 8 - log2(16) = 4 bits.
CONCAT_SPAN_RATIO = 16.0


@dataclass
class QuantizeOptions:
    dtype: str = "i8"  # activations: i8 | i16 | f16 (no calibration)
    weight_dtype: str | None = None  # i4 for int4 weights
    algorithm: str = "normal"
    per_channel: bool = True
    # "nearest", "gptq" (on the calibration data, weight_rounding.py) or "auto" (gptq for
    # int4 weights given a dataset)
    weight_rounding: str = "auto"
    optimization_level: int = 3
    preprocess: list[InputPreprocess | None] | None = None
    cfg: QuantizationCfg | None = None
    progress: bool = True
    target: str = DEFAULT_TARGET
    cpu_ops: frozenset[str] = frozenset()  # op_target: ONNX tensor or node names kept float


@dataclass
class QuantizeResult:
    model: IRModel
    ranges: dict[str, TensorRange] = field(default_factory=dict)
    statistics: dict[str, TensorStatistics] = field(default_factory=dict)
    report: PipelineReport | None = None

    def to_cfg(self, overrides: dict[str, str] | None = None) -> QuantizationCfg:
        """RKNN's `.quantization.cfg` for what was computed: one entry per calibrated
        tensor, in graph order, with the range before the algorithm clipped it."""
        cfg = QuantizationCfg(custom_quantize_layers=dict(overrides or {}))
        for name, found in self.ranges.items():
            params = found.fixed or nx.asymmetric_params(found.lo, found.hi, "i8")
            stats = self.statistics.get(name)
            ori = (stats.min, stats.max) if stats is not None else (None, None)
            cfg.quantize_parameters[name] = TensorQuantization.from_params(
                params, found.lo, found.hi, *ori
            )
        return cfg


def quantize_model(
    model: IRModel,
    dataset: Path | str | None,
    options: QuantizeOptions,
    statistics: dict[str, TensorStatistics] | None = None,
) -> QuantizeResult:
    """Quantize `model` in place (see the module doc); `dataset` is a `dataset.txt`.
    `statistics`, when given, are the calibration statistics of this model with these
    options, measured before (a proposal search quantizes one model many ways); the
    dataset is then not read."""
    prepared = optimize_for_quantization(model, options)
    return quantize_optimized(prepared, dataset, options, statistics)


@dataclass
class Prepared:
    """A model after steps 0 and 1 (in place), with what a QDQ model gave up."""

    model: IRModel
    qdq: QdqParameters
    reports: list[PipelineReport]


def optimize_for_quantization(model: IRModel, options: QuantizeOptions) -> Prepared:
    """Steps 0 and 1 in place: the float graph the calibration measures and lowering reads."""
    _check_options(options)
    overrides = dict(options.cfg.custom_quantize_layers) if options.cfg else {}
    _check_target(options, overrides)
    with recording_qdq() as qdq:
        stripped = run_pipeline(model, parse_pipeline("strip-qdq"))
    # a QDQ model quantizes residual branches before their Add: keep that point
    fusion = "false" if qdq else "true"
    optimized = run_pipeline(
        model,
        parse_pipeline(
            f"float-pipeline{{level={options.optimization_level} residual_fusion={fusion}}},"
            "split-lut-activations"
        ),
    )
    return Prepared(model, qdq, [stripped, optimized])


def calibrate(model: IRModel, dataset: Path | str,
              options: QuantizeOptions) -> dict[str, TensorStatistics]:  # fmt: skip
    """Step 2's statistics of a prepared model (`optimize_for_quantization`)."""
    samples = load_calibration_set(dataset, model.inputs, options.preprocess)
    histograms = options.algorithm != "normal"
    return collect_statistics(model, samples, histograms, progress=options.progress)


def quantize_optimized(prepared: Prepared, dataset: Path | str | None, options: QuantizeOptions,
                       statistics: dict[str, TensorStatistics] | None = None
                       ) -> QuantizeResult:  # fmt: skip
    """Steps 2 to 4 on a prepared model (in place)."""
    model, qdq = prepared.model, prepared.qdq
    overrides = dict(options.cfg.custom_quantize_layers) if options.cfg else {}
    result = QuantizeResult(model)
    if statistics is not None:
        result.statistics = statistics
    elif _needs_calibration(options.dtype, overrides) and not (qdq and dataset is None):
        if dataset is None:
            raise CompilerError(
                f"quantizing to {options.dtype} needs a calibration dataset (--dataset)"
            )
        result.statistics = calibrate(model, dataset, options)
    result.ranges = _ranges(result.statistics, options, overrides)
    _apply_qdq(result.ranges, overrides, qdq, options.dtype)
    _apply_cfg(result.ranges, options.cfg)
    narrowed = clip_to_saturation(model, result.ranges)
    float16 = options.dtype == "i8" and get_target(options.target).supports("f16") is None
    concat_notes = share_concat_ranges(model, result.ranges, overrides if float16 else None)
    plan = QuantPlan(
        result.ranges,
        options.dtype,
        options.weight_dtype,
        options.per_channel,
        overrides,
        _normalization(model, options.preprocess),
        weight_params=dict(qdq.weights),
        cpu_ops=options.cpu_ops,
    )
    plan.rounded_weights = _rounded_weights(model, dataset, options, plan)
    with using_plan(plan):
        lowered = run_pipeline(model, parse_pipeline("lower-to-npu,dce"))
    stripped, optimized = prepared.reports
    result.report = PipelineReport(
        [t for r in (stripped, optimized, lowered) for t in r.timings],
        [n for r in (stripped, optimized) for n in r.notes]
        + [f"quantize: {n}" for n in concat_notes]
        + _narrowed_note(narrowed)
        + lowered.notes,
    )
    return result


def _narrowed_note(names: list[str]) -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return [f"quantize: {len(names)} ranges narrowed to where their readers respond "
            f"(HardSigmoid / HardSwish / Relu / Clip inputs): {shown}"]  # fmt: skip


def _rounded_weights(model: IRModel, dataset: Path | str | None, options: QuantizeOptions,
                     plan: QuantPlan) -> dict[str, RoundedWeights]:  # fmt: skip
    """Step 4: the weights `options.weight_rounding` rounds on the data (none when it comes
    to "nearest", for int16 / float16 weights, and for the weights a QDQ model quantized
    itself, `plan.weight_params`)."""
    weight_dtype = plan.weight_dtype_for(options.dtype)
    rounding = options.weight_rounding
    if rounding == "auto":
        rounding = "gptq" if weight_dtype == "i4" and dataset is not None else "nearest"
    if rounding == "nearest" or weight_dtype not in ("i8", "i4"):
        return {}
    if dataset is None:
        raise CompilerError(f"{rounding} weight rounding needs the calibration dataset (--dataset)")
    samples = load_calibration_set(dataset, model.inputs, options.preprocess)
    rounded = round_weights(model, samples, weight_dtype, options.per_channel, options.progress)
    return {name: found for name, found in rounded.items() if name not in plan.weight_params}


def _check_options(options: QuantizeOptions) -> None:
    if options.dtype not in DTYPES:
        raise CompilerError(f"activation dtype {options.dtype!r} is not one of {DTYPES}")
    if options.weight_dtype not in (None, "i4", "i8", "i16"):
        raise CompilerError(f"weight dtype {options.weight_dtype!r} is not i4, i8 or i16")
    if options.weight_rounding not in ROUNDINGS:
        raise CompilerError(
            f"weight rounding {options.weight_rounding!r} is not one of {', '.join(ROUNDINGS)}"
        )


def _check_target(options: QuantizeOptions, overrides: dict[str, str]) -> None:
    """The target's NPU computes the model's dtype and every per-layer one."""
    target = get_target(options.target)
    wanted = {(options.dtype, options.weight_dtype)}
    wanted |= {(d, options.weight_dtype if d != "i16" else None) for d in overrides.values()}
    for activations, weights in sorted(wanted, key=str):
        reason = target.supports(activations, weights)
        if reason is not None:
            elsewhere = targets_supporting(activations, weights)
            hint = f"; it runs on {', '.join(elsewhere)}" if elsewhere else ""
            raise CompilerError(f"{reason}{hint}")


def _needs_calibration(dtype: str, overrides: dict[str, str]) -> bool:
    return dtype != "f16" or any(d != "f16" for d in overrides.values())


def _ranges(statistics: dict[str, TensorStatistics], options: QuantizeOptions,
            overrides: dict[str, str]) -> dict[str, TensorRange]:  # fmt: skip
    ranges = {}
    for name, stats in statistics.items():
        dtype = overrides.get(name, options.dtype)
        dtype = "i8" if dtype == "f16" else dtype  # its readers may still be integer
        lo, hi = choose_range(stats, options.algorithm, dtype)
        ranges[name] = TensorRange(lo, hi)
    return ranges


def _apply_qdq(ranges: dict[str, TensorRange], overrides: dict[str, str],
               qdq: QdqParameters, dtype: str) -> None:  # fmt: skip
    """A QDQ model's parameters replace calibrated ones; a tensor the model quantizes to
    another dtype than `dtype` computes in that one."""
    for name, params in qdq.activations.items():
        qmin, qmax = nx.qrange(params.dtype)
        scale, zp = float(params.scale), int(params.zero_point)
        ranges[name] = TensorRange((qmin - zp) * scale, (qmax - zp) * scale, params)
        if params.dtype != dtype:
            overrides.setdefault(name, params.dtype)


def _apply_cfg(ranges: dict[str, TensorRange], cfg: QuantizationCfg | None) -> None:
    """A config's parameters replace the calibrated ones for the tensors it names."""
    if cfg is None:
        return
    for name, entry in cfg.quantize_parameters.items():
        if entry.dtype in nx.FLOAT_DTYPES or entry.qmethod == "channel":
            continue  # float16 has no parameters; per-channel entries are weights
        ranges[name] = TensorRange(entry.min[0], entry.max[0], entry.to_params())


def share_concat_ranges(model: IRModel, ranges: dict[str, TensorRange],
                        overrides: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """A Concat input read by the Concat alone takes the Concat's output range, so the
    concat copies bytes. Except at a graph output whose inputs' ranges differ more than
    `CONCAT_SPAN_RATIO` times (a detector's boxes in pixels beside its scores in [0, 1]):
    one int8 scale would wipe out the small input, so that Concat computes in float16
    (an entry in `overrides`). Returns what it did, for the report."""
    notes = []
    for op in model.main.body.blocks[0].ops:
        if not isinstance(op, OnnxOp) or op.op_type != "Concat" or not op.output_names:
            continue
        out = ranges.get(op.output_names[0])
        if out is None:
            continue
        if overrides is not None and _keep_apart(model, op, ranges, overrides):
            notes.append(f"{op.describe()}: inputs' ranges differ over {CONCAT_SPAN_RATIO}x "
                         "at a graph output: concatenated in float16")  # fmt: skip
            continue
        for value in op.onnx_inputs():
            owner = value.owner
            if isinstance(owner, OnnxOp) and len(list(value.uses)) == 1 and owner.output_names:
                name = owner.output_names[value.index]
                if name in ranges and ranges[name].fixed is None:
                    ranges[name] = TensorRange(out.lo, out.hi)
    return notes


def _keep_apart(model: IRModel, op: OnnxOp, ranges: dict[str, TensorRange],
                overrides: dict[str, str]) -> bool:  # fmt: skip
    """Whether graph-output Concat `op` should compute in float16 (and records it)."""
    output = op.output_names[0]
    if output in overrides or not any(isinstance(u.operation, ReturnOp)
                                      for u in op.results[0].uses):  # fmt: skip
        return False
    spans = [ranges[n].hi - ranges[n].lo for n in _input_names(model, op) if n in ranges]
    if len(spans) < 2 or min(spans) <= 0 or max(spans) / min(spans) <= CONCAT_SPAN_RATIO:
        return False
    overrides[output] = "f16"
    return True


def _input_names(model: IRModel, op: OnnxOp) -> list[str]:
    names = []
    for value in op.onnx_inputs():
        if isinstance(value, BlockArgument):
            names.append(model.inputs[value.index].name)
        elif value is not None and isinstance(value.owner, OnnxOp) and value.owner.output_names:
            names.append(value.owner.output_names[value.index])
    return names


def _normalization(model: IRModel, preprocess: list[InputPreprocess | None] | None,
                   ) -> dict[str, InputNormalization]:  # fmt: skip
    found = {}
    for spec, pre in zip(model.inputs, preprocess or [], strict=False):
        if pre is None or (pre.mean_values is None and pre.std_values is None):
            continue
        axis = channel_axis(spec.shape)
        channels = spec.shape[axis] if axis is not None else 1
        mean = tuple(pre.mean_values or [0.0] * channels)
        std = tuple(pre.std_values or [1.0] * channels)
        found[spec.name] = InputNormalization(mean, std, axis if axis is not None else 1)
    return found
