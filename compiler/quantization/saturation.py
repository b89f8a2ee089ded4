"""Ranges narrowed to where their readers still respond: lossless range tightening.

An activation that is constant outside an interval (HardSigmoid outside [-beta/alpha,
(1-beta)/alpha], HardSwish below -3, Relu below 0, Clip outside [min, max]) gives the same
output for every input beyond it. A tensor read only by such activations therefore loses
nothing when its int8 range stops at that interval, and gains resolution inside it: a
squeeze-excitation gate measured on [-373, 375] (mobilenetv3s, random weights) kept about
two int8 steps across HardSigmoid's [-3, 3], a near-binary gate; on [-3, 3] it keeps 255.
RKNN-Toolkit2 does the same (its exported `.quantization.cfg` has [-3, 3] for those
tensors). Applied after the algorithm chose the ranges, to every algorithm's; a range fixed
by a config or a QDQ model, or read by anything else (a graph output included), is left
alone.
"""

from __future__ import annotations

import math

from xdsl.dialects.func import ReturnOp
from xdsl.ir import SSAValue

from compiler.ir_model import IRModel
from dialects.onnx import OnnxOp
from passes.quantization_plan import TensorRange
from passes.rewrite import constant_value

Interval = tuple[float, float]
UNBOUNDED: Interval = (-math.inf, math.inf)


def clip_to_saturation(model: IRModel, ranges: dict[str, TensorRange]) -> list[str]:
    """Narrow, in place, the calibrated ranges of tensors read only by saturating
    activations (see the module doc). Returns the names of the tensors narrowed."""
    narrowed = []
    for op in model.main.body.blocks[0].ops:
        if not isinstance(op, OnnxOp):
            continue
        names = iter(op.output_names)
        for value in op.onnx_results():
            name = None if value is None else next(names, None)
            found = None if name is None else ranges.get(name)
            if found is None or found.fixed is not None:
                continue
            responds = _responding_interval(model, value)
            lo, hi = max(found.lo, responds[0]), min(found.hi, responds[1])
            if (lo, hi) != (found.lo, found.hi) and lo < hi:
                ranges[name] = TensorRange(lo, hi)
                narrowed.append(name)
    return narrowed


def _responding_interval(model: IRModel, value: SSAValue) -> Interval:
    """The hull of the intervals outside which every reader of `value` is constant
    (UNBOUNDED when a reader is not a saturating activation)."""
    lows, highs = [], []
    for use in value.uses:
        reader = use.operation
        if isinstance(reader, ReturnOp) or not isinstance(reader, OnnxOp) or use.index != 0:
            return UNBOUNDED
        interval = saturation_interval(model, reader)
        if interval is None:
            return UNBOUNDED
        lows.append(interval[0])
        highs.append(interval[1])
    if not lows:
        return UNBOUNDED
    return min(lows), max(highs)


def saturation_interval(model: IRModel, op: OnnxOp) -> Interval | None:
    """Where `op`'s output still depends on its input 0, if it is constant outside an
    interval; else None."""
    attrs = op.attribute_values(model.weights)
    if op.op_type == "HardSigmoid":
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        if alpha == 0.0:
            return None
        ends = sorted((-beta / alpha, (1.0 - beta) / alpha))
        return ends[0], ends[1]
    if op.op_type == "HardSwish":  # x * HardSigmoid(x; 1/6, 1/2): 0 below -3, x above 3
        return -3.0, math.inf
    if op.op_type == "Relu":
        return 0.0, math.inf
    if op.op_type == "Clip":
        return _clip_bounds(op, attrs)
    return None


def _clip_bounds(op: OnnxOp, attrs: dict[str, object]) -> Interval | None:
    if "min" in attrs or "max" in attrs:  # Clip before opset 11: attributes
        return float(attrs.get("min", -math.inf)), float(attrs.get("max", math.inf))
    inputs = [*op.onnx_inputs(), None, None]
    bounds = []
    for value, default in ((inputs[1], -math.inf), (inputs[2], math.inf)):
        if value is None:
            bounds.append(default)
            continue
        array = constant_value(value)
        if array is None or array.size != 1:
            return None
        bounds.append(float(array.reshape(-1)[0]))
    return bounds[0], bounds[1]
