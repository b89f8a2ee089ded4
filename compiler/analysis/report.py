"""`error_analysis.txt` in RKNN-Toolkit2's layout (research/rknn_peer/RESULTS.md §6):

    layer_name                                              simulator_error
                                                        entire              single
                                                     cos      euc        cos      euc
    ---------------------------------------------------------------------------------
    [Input] input                                  1.00000 | 0.00000   1.00000 | 0.00000
    [exDataConvert] input                          0.99999 | 2.09195   0.99999 | 2.09195
    [Conv] /features/features.0/Conv_output_0      ...

One row per tensor, in graph order, `[OpType] ONNX tensor name`; an empty cell where there
is nothing to compare. With several samples the first table holds the means over the
samples and one table per sample follows. Lines after the tables start with `#`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.analysis.accuracy import Distance, LayerRow

if TYPE_CHECKING:
    from compiler.analysis import AccuracyReport

MIN_NAME_WIDTH = 60  # RKNN's table gives the name about this much room
CELL = 19  # "0.99994 | 4.69444  " and a space

LEGEND = (
    "# simulator_error: calculate the output error of each layer of the simulator "
    "(compared to the 'golden' value).",
    "#       entire: output error of each layer between 'golden' and 'simulator', these "
    "errors will accumulate layer by layer.",
    "#       single: single-layer output error between 'golden' and 'simulator', can better "
    "reflect the single-layer accuracy of the simulator.",
)


def cell(value: Distance | None) -> str:
    """`cos | euc` with five decimals, as RKNN prints them; blank when not compared."""
    if value is None:
        return " " * CELL
    return f"{value.cos:.5f} | {value.euc:<9.5f}"


def table(rows: Sequence[LayerRow], pick: Callable[[LayerRow], tuple]) -> list[str]:
    """The header and one line per row; `pick(row)` gives its (entire, single)."""
    width = max([MIN_NAME_WIDTH, *(len(r.label) + 2 for r in rows)])
    lines = [
        f"{'layer_name':<{width}}{'simulator_error':>{CELL}}",
        f"{'':<{width}}{'entire':>9}{'single':>{CELL + 1}}",
        f"{'':<{width}}{'cos':>5}{'euc':>9}{'cos':>11}{'euc':>9}",
        "-" * (width + 2 * CELL),
    ]
    for row in rows:
        entire, single = pick(row)
        lines.append(f"{row.label:<{width}}{cell(entire)} {cell(single)}".rstrip())
    return lines


def error_analysis_text(report: AccuracyReport) -> str:
    lines = table(report.rows, lambda r: (r.entire_mean, r.single_mean))
    if report.samples > 1:
        for k in range(report.samples):
            lines += ["", f"# sample {k + 1} of {report.samples}"]
            lines += table(report.rows, lambda r, k=k: (r.entire[k], r.single[k]))
    lines += ["", *LEGEND, *_notes(report)]
    return "\n".join(lines) + "\n"


def _notes(report: AccuracyReport) -> list[str]:
    lines = [
        "# golden: the reference interpreter on the float-optimized model; simulator: the "
        "container on the register-level simulator.",
        "# single: each quantized layer fed the golden input, run by the npu reference "
        "executor (bit-exact with the simulator).",
    ]
    if report.samples > 1:
        lines.append(f"# the first table: means over {report.samples} samples")
    for row in report.outputs:
        mean = row.entire_mean
        if mean is not None:
            lines.append(f"# model output {row.name}: cos {mean.cos:.5f}, euc {mean.euc:.5f}")
    return lines + [f"# note: {n}" for n in report.notes]


def write_error_analysis(report: AccuracyReport, path: Path) -> Path:
    """Write atomically (a temporary file renamed into place)."""
    write_text(path, error_analysis_text(report))
    return path


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
