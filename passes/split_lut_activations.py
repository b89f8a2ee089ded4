"""`split-lut-activations`: a fused op keeps only what the NPU's DPU applies on its way out
of the MAC array; every other activation becomes its own op again.

Before quantization. The DPU applies Relu, Clip, LeakyRelu and PRelu to the accumulator;
Sigmoid, Tanh, Swish, HardSwish, Gelu, ... go through a lookup table that reads a quantized
tensor, and that tensor needs calibrated parameters of its own. Calibration can only measure
a tensor that exists, so the activation is split out and its input gets back the name it
had before `fuse-activation` (`onnx.preact`; else `<output>_preact`). With a residual `Z`
the DPU adds it after a Relu (or nothing) and applies Relu or Clip after the add; anything
else undoes the add fusion as well.

    FusedConv{Sigmoid}(x)            -> Sigmoid(FusedConv{}(x))
    FusedConv{Relu, Z, Sigmoid}(x)   -> Sigmoid(FusedConv{Relu, Z}(x))
    FusedConv{Swish, Z, Relu}(x)     -> FusedConv{}(x) -> Swish -> Add(., Z) -> Relu
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from dialects.onnx import OnnxOp
from dialects.onnx.fused import (
    PREACTIVATION,
    FusedConvOp,
    FusedConvTransposeOp,
    FusedGemmOp,
    FusedMatMulOp,
    FusedOp,
    operand,
)
from passes.fused_forms import fused_form
from passes.report import note
from passes.rewrite import apply_patterns, build_op, make_constant, replace_op

PASS_NAME = "split-lut-activations"

DPU_ACTIVATIONS = frozenset({"", "Relu", "Clip", "LeakyRelu", "PRelu"})
BEFORE_RESIDUAL = frozenset({"", "Relu"})
AFTER_RESIDUAL = frozenset({"", "Relu", "Clip"})


@dataclass(frozen=True)
class SplitLutActivations(ModulePass):
    """Move activations the DPU cannot apply (LUT ones) out of fused ops, so calibration sees their inputs."""  # noqa: E501

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pattern = SplitPattern()
        apply_patterns(op, pattern)
        if pattern.count:
            note(PASS_NAME, f"split {pattern.count} activations out of fused ops")


def dpu_can_apply(op: FusedOp) -> bool:
    act, post = op.attr("activation"), op.attr("post_activation")
    residual = "Z" in op.SCHEMA.inputs and operand(op, "Z") is not None
    if residual:
        return act in BEFORE_RESIDUAL and post in AFTER_RESIDUAL
    return act in DPU_ACTIVATIONS


class SplitPattern(RewritePattern):
    def __init__(self) -> None:
        self.count = 0

    @op_type_rewrite_pattern
    def match_and_rewrite(
        self, op: FusedConvOp | FusedConvTransposeOp | FusedGemmOp | FusedMatMulOp,
        rewriter: PatternRewriter,
    ) -> None:  # fmt: skip
        if dpu_can_apply(op):
            return
        residual = operand(op, "Z") if "Z" in op.SCHEMA.inputs else None
        act, act_attrs = op.activation_spec()
        post, post_attrs = op.post_activation_spec()
        if residual is not None and act in BEFORE_RESIDUAL:
            keep = {"post_activation": "", "post_activation_attrs": {}}
            stages = [(post, post_attrs)]
            core = _core(op, keep, residual)
        else:
            keep_act = act in DPU_ACTIVATIONS and residual is None
            keep = {"post_activation": "", "post_activation_attrs": {}}
            if not keep_act:
                keep |= {"activation": "", "activation_attrs": {}}
            stages = [] if keep_act else [(act, act_attrs)]
            stages += [("Add", {})] if residual is not None else []
            stages += [(post, post_attrs)] if post else []
            core = _core(op, keep, None)
        new_ops = [core, *_stages(op, core.results[0], stages, residual)]
        replace_op(rewriter, op, new_ops)
        self.count += 1


def _core(op: FusedOp, attributes: dict, residual: SSAValue | None) -> OnnxOp:
    """`op` without what is split off (no Z unless `residual`), named as before the
    fusion, else `<output>_preact`."""
    operands = {} if residual is not None else ({"Z": None} if "Z" in op.SCHEMA.inputs else {})
    if attributes.get("activation") == "" and operand(op, "slope") is not None:
        operands["slope"] = None
    core = fused_form(op, op.results[0].type, operands, attributes)
    core.attributes.pop(PREACTIVATION, None)
    output = op.output_names[0] if op.output_names else op.node_name
    core.set_names(op.node_name or None, [_core_name(op, attributes) or f"{output}_preact"])
    return core


def _core_name(op: FusedOp, attributes: dict) -> str | None:
    """The name the core's output had before fuse-activation (so a QDQ model's or a
    config's parameters still find it): known when the core is the op without its
    activation."""
    preact = op.attributes.get(PREACTIVATION)
    stripped = attributes.get("activation") == "" and op.attr("activation")
    return preact.data if stripped and isinstance(preact, StringAttr) else None


def _stages(op: FusedOp, x: SSAValue, stages: list[tuple[str, dict]],
            residual: SSAValue | None) -> list[OnnxOp]:  # fmt: skip
    """The split-off activations (and the residual Add) as ONNX ops after `x`; the last one
    takes `op`'s output name."""
    out_type = op.results[0].type
    output = op.output_names[0] if op.output_names else op.node_name
    made: list[OnnxOp] = []
    for index, (kind, attrs) in enumerate(stages):
        last = index == len(stages) - 1
        inputs, extra = _stage_inputs(kind, attrs, x, residual, op, output)
        made += extra
        attributes = {} if kind in ("Add", "Clip") else dict(attrs)
        stage = build_op(kind, inputs, [out_type], attributes)
        stage.set_names(f"{op.node_name}_{kind.lower()}", [output if last else f"{output}_{kind}"])
        made.append(stage)
        x = stage.results[0]
    return made


def _stage_inputs(kind: str, attrs: dict, x: SSAValue, residual: SSAValue | None,
                  op: FusedOp, output: str) -> tuple[list[SSAValue], list[OnnxOp]]:  # fmt: skip
    if kind == "Add":
        return [x, residual], []
    if kind == "Clip":
        dtype = np.float32
        lo = make_constant(np.array(attrs.get("min", -np.inf), dtype), f"{output}_min")
        hi = make_constant(np.array(attrs.get("max", np.inf), dtype), f"{output}_max")
        return [x, lo.results[0], hi.results[0]], [lo, hi]
    if kind == "PRelu":
        return [x, operand(op, "slope")], []
    return [x], []
