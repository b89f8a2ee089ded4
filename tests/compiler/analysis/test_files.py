"""What accuracy analysis writes: error_analysis.txt in RKNN's layout, report.html with its
PNG, the .npy dumps only on request, and the sizes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from compiler.analysis import accuracy_analysis
from compiler.interpreter import Interpreter
from tests.compiler.analysis.helpers import Built, build_small

ROW = re.compile(r"^(\[\w+\] \S+)\s+(\d\.\d{5}) \| (\d+\.\d{5})\s+(\d\.\d{5}) \| (\d+\.\d{5})$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BUDGET = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_small(tmp_path_factory.mktemp("files"), normalized=False)


def analyse(built: Built, out: Path, samples: int = 1, dump: bool = False):
    return accuracy_analysis(built.float_model, built.build, built.quantized,
                             built.samples[:samples], out, dump=dump)  # fmt: skip


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_error_analysis_has_rknns_header_and_rows(built: Built, tmp_path: Path):
    report = analyse(built, tmp_path)
    lines = (tmp_path / "error_analysis.txt").read_text().splitlines()
    assert lines[0].split() == ["layer_name", "simulator_error"]
    assert lines[1].split() == ["entire", "single"]
    assert lines[2].split() == ["cos", "euc", "cos", "euc"]
    assert set(lines[3]) == {"-"}
    table = lines[4 : 4 + len(report.rows)]
    parsed = [ROW.match(line) for line in table]
    assert all(parsed), [line for line, m in zip(table, parsed, strict=True) if not m]
    assert [m.group(1) for m in parsed] == [row.label for row in report.rows]
    assert parsed[0].group(1) == "[Input] x"
    assert parsed[-1].group(1) == "[exDataConvert] logits"
    for match, row in zip(parsed, report.rows, strict=True):
        assert float(match.group(2)) == pytest.approx(row.entire[0].cos, abs=5e-6)
        assert float(match.group(5)) == pytest.approx(row.single[0].euc, abs=5e-6)
    # the cos columns start where their header says
    assert lines[2].index("cos") <= table[0].index(parsed[0].group(2)) + 4


def test_several_samples_add_one_table_each(built: Built, tmp_path: Path):
    analyse(built, tmp_path, samples=2)
    text = (tmp_path / "error_analysis.txt").read_text()
    assert text.count("layer_name") == 3  # the means, then samples 1 and 2
    assert "# sample 2 of 2" in text and "means over 2 samples" in text


def test_report_html_references_its_png(built: Built, tmp_path: Path):
    report = analyse(built, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert '<img src="accuracy_plot.png"' in html
    assert (tmp_path / "accuracy_plot.png").read_bytes()[:8] == PNG_MAGIC
    # every layer is listed, with its dtype; the worst single cosine first
    worst = report.worst(1)[0]
    first_row = html[html.index("<td>1</td>") :].split("</tr>")[0]
    assert worst.name in first_row and "INT8" in first_row
    for row in report.rows:
        assert row.label in html
    assert report.paths["html"] == tmp_path / "report.html"


def test_no_dumps_unless_asked(built: Built, tmp_path: Path):
    analyse(built, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "accuracy_plot.png",
        "error_analysis.txt",
        "report.html",
    ]
    assert tree_bytes(tmp_path) < BUDGET


def test_dumps_are_npy_of_the_golden_and_the_simulator(built: Built, tmp_path: Path):
    report = analyse(built, tmp_path, dump=True)
    golden = Interpreter(built.float_model).run(built.samples[0], capture=True).tensors
    np.testing.assert_array_equal(np.load(tmp_path / "golden" / "r1.npy"), golden["r1"])
    simulated = np.load(tmp_path / "simulator" / "r1.npy")
    assert simulated.dtype == np.float32 and simulated.shape == golden["r1"].shape
    names = (tmp_path / "map_name_to_file.txt").read_text().split()
    assert "r1" in names and "r1.npy" in names
    assert not list(tmp_path.rglob("*.txt.tmp")) and not list(tmp_path.rglob("*.npy.tmp"))
    assert report.paths["golden"] == tmp_path / "golden"


def test_dumps_of_several_samples_go_to_one_folder_each(built: Built, tmp_path: Path):
    analyse(built, tmp_path, samples=2, dump=True)
    first = np.load(tmp_path / "golden" / "sample_1" / "logits.npy")
    second = np.load(tmp_path / "golden" / "sample_2" / "logits.npy")
    assert not np.array_equal(first, second)
