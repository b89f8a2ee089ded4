"""The three models accuracy analysis compares, made from one float model:

- `float_optimized`: the float graph exactly as `quantize_model` optimizes it before
  calibrating (its own first steps, `optimize_for_quantization`: strip-qdq, `float-pipeline`
  at the optimization level with residual fusion off for a QDQ model,
  `split-lut-activations`), so the golden has every tensor the quantized model names,
  computed the way calibration saw it;
- the quantized IR before the backend passes (`quantize_model`);
- the build from that quantized IR (the backend passes, code generation, the container:
  what `compiler.build.build_model` does after quantizing), so calibration runs once.
"""

from __future__ import annotations

import time
from pathlib import Path

from backends.container import Container
from backends.targets import get_target
from compiler.build import BuildResult, build_quantized
from compiler.ir_model import IRModel
from compiler.quantization.quantize import (
    QuantizeOptions,
    optimize_for_quantization,
    quantize_optimized,
)


def float_optimized(model: IRModel, options: QuantizeOptions) -> IRModel:
    """A float-optimized copy of `model` (left unchanged), as quantization optimizes it."""
    return optimize_for_quantization(model.clone(), options).model


def build_for_analysis(model: IRModel, dataset: Path | str | None, options: QuantizeOptions
                       ) -> tuple[IRModel, BuildResult, IRModel]:  # fmt: skip
    """(float-optimized model, build, quantized IR) for `accuracy_analysis`; `model` is
    left unchanged. The float optimization runs once: the golden is a copy of the very
    graph that is then calibrated and lowered."""
    result = BuildResult(Container(get_target(options.target).name))
    start = time.perf_counter()
    prepared = optimize_for_quantization(model.clone(), options)
    float_model = prepared.model.clone()
    report = quantize_optimized(prepared, dataset, options).report
    quantized = prepared.model
    result.stages.append(("quantize", time.perf_counter() - start))
    result.notes += report.notes if report else []

    build_quantized(quantized.clone(), options, result)
    return float_model, result, quantized
