"""Accuracy analysis (RKNN's `rknn.accuracy_analysis`, sdk §3; issue 7 item 2): the float
golden against the quantized model per layer, per ONNX tensor name.

    float_model, build, quantized = build_for_analysis(import_onnx(path), dataset, options)
    report = accuracy_analysis(float_model, build, quantized, [{"input": raw}], "out/")

writes `out/error_analysis.txt` (RKNN's layout, `report.py`), `out/report.html` and
`out/accuracy_plot.png` (`html.py`); with `dump=True` also `golden/`, `simulator/` (.npy)
and `map_name_to_file.txt` (`dumps.py`). What `entire` and `single` are, and why `single`
runs on the `npu` reference executor rather than the register simulator: `accuracy.py`.
The int16/float16 time estimates: `cost.py`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compiler.analysis.accuracy import (
    Distance,
    Layer,
    LayerRow,
    SampleResult,
    SingleRunner,
    compare_sample,
    cosine,
    distance,
    euclidean,
    golden_feed,
    input_rows,
    iter_samples,
    layers_of,
    preprocess_of,
)
from compiler.analysis.cost import layer_costs
from compiler.analysis.dumps import write_dumps
from compiler.analysis.html import PLOT_NAME, worst_first, write_html, write_plot
from compiler.analysis.prepare import build_for_analysis, float_optimized
from compiler.analysis.report import write_error_analysis
from compiler.build import BuildResult
from compiler.errors import CompilerError
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from runtime.perf import PerfError
from runtime.session import Session, SessionError

ERROR_ANALYSIS = "error_analysis.txt"
REPORT_HTML = "report.html"


@dataclass
class AccuracyReport:
    rows: list[LayerRow]  # graph order: the inputs, then every compared tensor
    outputs: list[LayerRow]  # the model outputs: simulator output vs golden output (entire)
    samples: int
    seconds: float = 0.0
    paths: dict[str, Path] = field(default_factory=dict)  # what was written, by role
    notes: list[str] = field(default_factory=list)

    def worst(self, count: int = 5) -> list[LayerRow]:
        """The layers with the lowest single cosine (the inputs are not layers)."""
        return worst_first([r for r in self.rows if r.op_type != "Input"])[:count]


def accuracy_analysis(float_model: IRModel, build: BuildResult, quantized: IRModel,
                      samples: Sequence[Mapping[str, np.ndarray]], output_dir: Path | str,
                      dump: bool = False) -> AccuracyReport:  # fmt: skip
    """Compare, per layer and sample, the float golden with the simulator (entire) and with
    each quantized layer fed the golden input (single); write the files (module doc).
    `samples`: one dict per sample, by input name, raw as the built model takes them."""
    start = time.perf_counter()
    samples = list(samples)
    if not samples:
        raise CompilerError("accuracy analysis needs at least one input sample")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        session = Session(build.container)
    except SessionError as exc:
        raise CompilerError(f"the built model: {exc}") from None
    report = _analyse(float_model, session, quantized, samples, output_dir, dump)
    _add_costs(report, build, session)
    report.seconds = time.perf_counter() - start
    report.paths["error_analysis"] = write_error_analysis(report, output_dir / ERROR_ANALYSIS)
    report.paths["plot"] = write_plot(report.rows, output_dir / PLOT_NAME)
    report.paths["html"] = write_html(report, output_dir / REPORT_HTML, report.paths["plot"])
    return report


def _analyse(float_model: IRModel, session: Session, quantized: IRModel,
             samples: list[Mapping[str, np.ndarray]], output_dir: Path, dump: bool,
             ) -> AccuracyReport:  # fmt: skip
    preprocess = preprocess_of(session.metadata.get("config", {}))
    golden_model = Interpreter(float_model)
    single = SingleRunner(quantized)
    inputs = input_rows(float_model.inputs)
    outputs = [LayerRow(s.name, "Output", "FLOAT32") for s in float_model.outputs]
    layers: list[Layer] | None = None
    rows: list[LayerRow] = []
    for k, sample in enumerate(iter_samples(samples)):
        result = _run_sample(golden_model, session, float_model, preprocess, sample)
        if layers is None:  # the names the golden computes, known after one run
            layers = layers_of(quantized, set(result.golden))
            rows = [LayerRow(x.name, x.op_type, x.dtype) for x in layers]
            for row, layer in zip(rows, layers, strict=True):
                row.ir_op = single.ops[layer.step].name
        compare_sample(rows, layers, result, single.run(result.golden, sample))
        for row in inputs:  # the simulator is fed exactly the golden's input
            feed = result.golden[row.name]
            row.entire.append(distance(feed, feed))
            row.single.append(distance(feed, feed))
        for row in outputs:
            row.entire.append(distance(result.golden_outputs[row.name],
                                       result.outputs.get(row.name)))  # fmt: skip
        if dump:
            write_dumps(output_dir, k, len(samples), result.golden, result.entire)
    report = AccuracyReport(inputs + rows, outputs, len(samples))
    if dump:
        report.paths["golden"] = output_dir / "golden"
        report.paths["simulator"] = output_dir / "simulator"
    return report


def _run_sample(golden_model: Interpreter, session: Session, float_model: IRModel,
                preprocess: list, sample: Mapping[str, np.ndarray]) -> SampleResult:  # fmt: skip
    feed = golden_feed(sample, float_model.inputs, preprocess)
    golden = golden_model.run(feed, capture=True)
    layers: dict[str, np.ndarray] = {}
    try:
        outputs = session.run(sample, None, layers)
    except SessionError as exc:
        raise CompilerError(f"the built model on the simulator: {exc}") from None
    return SampleResult({**feed, **golden.tensors}, layers, outputs, golden.outputs)


def _add_costs(report: AccuracyReport, build: BuildResult, session: Session) -> None:
    """The predicted time of each layer as built and raised (`cost.py`)."""
    try:
        costs = layer_costs(build.container, session.ops)
    except PerfError as exc:
        report.notes.append(f"no time estimates: {exc}")
        return
    for row in report.rows:
        cost = costs.get((row.ir_op, row.name))
        if cost is None:
            continue
        row.target, row.time_us = cost.target, cost.time_us
        row.int16_us, row.float16_us = cost.raised_us["i16"], cost.raised_us["f16"]


__all__ = [
    "ERROR_ANALYSIS",
    "PLOT_NAME",
    "REPORT_HTML",
    "AccuracyReport",
    "Distance",
    "LayerRow",
    "accuracy_analysis",
    "build_for_analysis",
    "cosine",
    "distance",
    "euclidean",
    "float_optimized",
]
