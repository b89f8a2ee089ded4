"""`report.html` and its plot `accuracy_plot.png`.

The plot (matplotlib, the Agg backend: no display needed) draws both cosines per layer in
graph order, so where the error enters (a drop of `single`) and how it accumulates
(`entire`) show at a glance. The table lists the layers worst first, by the `single` cosine
(the layer's own quantization error, what hybrid quantization can fix; RKNN's guide, sdk
§3.2 step 2), each with its dtype and the predicted time of the layer as built and were it
int16 or float16 (`compiler.analysis.cost`). Cells are yellow under `WARN_COS` and red
under `BAD_COS` (RKNN colours low cosines but gives no numbers; these are ours).

The PNG is small (about 100 KB at 100 dpi): the output directory stays far under 5 MB.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.analysis.accuracy import Distance, LayerRow
from compiler.analysis.report import write_text

if TYPE_CHECKING:
    from compiler.analysis import AccuracyReport

PLOT_NAME = "accuracy_plot.png"
WARN_COS = 0.99
BAD_COS = 0.95
PLOT_DPI = 100

STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td.name { text-align: left; font-family: monospace; }
td.warn { background: #fff3b0; } td.bad { background: #ffb0b0; }
"""


def write_plot(rows: list[LayerRow], path: Path) -> Path:
    """Both mean cosines per layer, graph order; PNG at `PLOT_DPI`."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from matplotlib import pyplot as plt

    xs = list(range(len(rows)))
    entire = [_cos(r.entire_mean) for r in rows]
    single = [_cos(r.single_mean) for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.plot(xs, entire, marker=".", label="entire (accumulated)")
    ax.plot(xs, single, marker=".", label="single (golden input)")
    ax.set_xlabel("layer (graph order, as in error_analysis.txt)")
    ax.set_ylabel("cosine vs golden")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=PLOT_DPI, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


def _cos(value: Distance | None) -> float:
    return float("nan") if value is None else value.cos


def worst_first(rows: list[LayerRow]) -> list[LayerRow]:
    """By single cosine, lowest first (then by entire); rows without one go last."""

    def key(row: LayerRow) -> tuple[float, float]:
        single, entire = row.single_mean, row.entire_mean
        return (single.cos if single else 2.0, entire.cos if entire else 2.0)

    return sorted(rows, key=key)


def write_html(report: AccuracyReport, path: Path, plot: Path) -> Path:
    text = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8"><title>accuracy analysis</title>',
            f"<style>{STYLE}</style></head><body>",
            "<h1>Accuracy analysis</h1>",
            *_summary(report),
            f'<p><img src="{html.escape(plot.name)}" alt="per-layer cosine: entire and single">'
            "</p>",
            "<h2>Layers, worst first (by single cosine)</h2>",
            *_table(worst_first(report.rows)),
            "</body></html>",
        ]
    )
    write_text(path, text + "\n")
    return path


def _summary(report: AccuracyReport) -> list[str]:
    items = [f"<li>samples: {report.samples}; analysis time {report.seconds:.2f} s</li>"]
    for row in report.outputs:
        mean = row.entire_mean
        if mean is not None:
            items.append(f"<li>model output <code>{html.escape(row.name)}</code>: cosine "
                         f"{mean.cos:.5f}, Euclidean {mean.euc:.5f}</li>")  # fmt: skip
    items += [f"<li>{html.escape(n)}</li>" for n in report.notes]
    return [
        "<p>golden: the reference interpreter on the float-optimized model. entire: the "
        "container on the register-level simulator, errors accumulated from the input. "
        "single: each quantized layer fed the golden input, on the npu reference executor "
        "(bit-exact with the simulator). Predicted times: the cycle model, one core; "
        "int16/float16: an estimate of the layer alone in that dtype (no boundary "
        "conversions).</p>",
        f"<ul>{''.join(items)}</ul>",
    ]


HEADERS = ("#", "layer", "dtype", "target", "entire cos", "entire euc", "single cos",
           "single euc", "time (us)", "int16 (us)", "float16 (us)")  # fmt: skip


def _table(rows: list[LayerRow]) -> list[str]:
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in HEADERS) + "</tr>"]
    for rank, row in enumerate(rows, start=1):
        entire, single = row.entire_mean, row.single_mean
        cells = [
            f"<td>{rank}</td>",
            f'<td class="name">{html.escape(row.label)}</td>',
            f"<td>{row.dtype}</td>",
            f"<td>{row.target}</td>",
            *_pair(entire),
            *_pair(single),
            f"<td>{_us(row.time_us)}</td>",
            f"<td>{_raised(row.int16_us, row.time_us)}</td>",
            f"<td>{_raised(row.float16_us, row.time_us)}</td>",
        ]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return [*lines, "</table>"]


def _pair(value: Distance | None) -> list[str]:
    if value is None:
        return ["<td></td>", "<td></td>"]
    level = "bad" if value.cos < BAD_COS else "warn" if value.cos < WARN_COS else ""
    css = f' class="{level}"' if level else ""
    return [f"<td{css}>{value.cos:.5f}</td>", f"<td>{value.euc:.5f}</td>"]


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _raised(value: float | None, now: float | None) -> str:
    """The estimate and what it adds to the layer's time as built."""
    if value is None or now is None:
        return ""
    return f"{value:.1f} ({value - now:+.1f})"
