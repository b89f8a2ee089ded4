"""`python -m compiler analyze`: the files, the printed summary, exit code 2 with one line on
bad input; and the zoo: digits_cnn, and (slow) mobilenetv2 in seconds under 5 MB."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from compiler.analysis import accuracy_analysis, build_for_analysis
from compiler.calibration import InputPreprocess
from compiler.cli import main
from compiler.cli.analyze_cmd import read_samples
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions
from tests.compiler.analysis.helpers import MEAN, STD, build_small, raw_samples, write_list
from tests.zoo import IMAGENET_MEAN, IMAGENET_STD, zoo_file

BUDGET = 5 * 1024 * 1024


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(model, calibration list, inputs list) of the small CNN, with mean/std."""
    folder = tmp_path_factory.mktemp("cli")
    built = build_small(folder, normalized=True)
    inputs = write_list(folder, "inputs", raw_samples(2, 3, pixels=True))
    return built.onnx_path, built.dataset, inputs


def analyze(capsys, small, out: Path, *extra: object) -> tuple[int, str, str]:
    model, dataset, inputs = small
    mean, std = ",".join(map(str, MEAN)), ",".join(map(str, STD))
    return run_cli(capsys, "analyze", model, "--dataset", dataset, "--inputs", inputs,
                   "--mean-values", mean, "--std-values", std, "--no-progress",
                   "--output-dir", out, *extra)  # fmt: skip


def test_analyze_writes_the_files_and_a_summary(capsys, small, tmp_path: Path):
    code, out, err = analyze(capsys, small, tmp_path / "out")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["accuracy_plot.png", "error_analysis.txt", "report.html"]
    assert "output logits: cosine 0.9" in out
    assert "worst 5 layers by single cosine:" in out
    assert f"wrote {tmp_path / 'out'}" in err
    text = (tmp_path / "out" / "error_analysis.txt").read_text()
    assert "# sample 2 of 2" in text  # both lines of the list were analysed


def test_analyze_dump(capsys, small, tmp_path: Path):
    code, _, err = analyze(capsys, small, tmp_path / "out", "--dump")
    assert code == 0, err
    assert (tmp_path / "out" / "golden" / "sample_1" / "x.npy").exists()
    assert (tmp_path / "out" / "simulator" / "sample_2" / "logits.npy").exists()


def test_missing_input_file_is_one_line_and_exit_2(capsys, small, tmp_path: Path):
    model, dataset, _ = small
    bad = tmp_path / "bad.txt"
    bad.write_text("missing.npy\n")
    code, _, err = analyze(capsys, (model, dataset, bad), tmp_path / "out")
    assert code == 2
    assert err.count("\n") == 1 and "missing.npy" in err and err.startswith("error:")
    assert not (tmp_path / "out").exists()  # refused before building


def test_wrong_input_shape_is_exit_2(capsys, small, tmp_path: Path):
    model, dataset, _ = small
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 4, 4), np.float32))
    bad = tmp_path / "bad.txt"
    bad.write_text("wrong.npy\n")
    code, _, err = analyze(capsys, (model, dataset, bad), tmp_path / "out")
    assert code == 2 and "expects 1x3x8x8" in err and err.count("\n") == 1


def test_int8_without_dataset_is_exit_2(capsys, small, tmp_path: Path):
    model, _, inputs = small
    code, _, err = run_cli(capsys, "analyze", model, "--inputs", inputs, "--no-progress",
                           "--output-dir", tmp_path / "out")  # fmt: skip
    assert code == 2 and "dataset" in err


# ---------------------------------------------------------------------- zoo


def test_digits_cnn_from_the_zoo(capsys, tmp_path: Path):
    model = zoo_file("digits/digits_cnn.onnx")
    dataset = zoo_file("digits/data16/dataset.txt")
    test_x = np.load(zoo_file("digits/data16/test_x.npy"))[:1].astype(np.float32)
    np.save(tmp_path / "sample.npy", test_x)
    (tmp_path / "inputs.txt").write_text("sample.npy\n")
    code, out, err = run_cli(capsys, "analyze", model, "--dataset", dataset, "--inputs",
                             tmp_path / "inputs.txt", "--no-progress", "--output-dir",
                             tmp_path / "out")  # fmt: skip
    assert code == 0, err
    cosine = float(out.split("output logits: cosine ")[1].split(",")[0])
    assert cosine > 0.999  # README: digits_cnn int8 cosine 0.9999
    assert sum(p.stat().st_size for p in (tmp_path / "out").iterdir()) < BUDGET


@pytest.mark.slow
def test_mobilenetv2_in_seconds_under_5_mb(tmp_path: Path):
    """Issue 7 item 2: error_analysis.txt and report.html in seconds, no dumps by default,
    under 5 MB. The build (calibration on 4 images) is not timed."""
    model = import_onnx(zoo_file("models/mobilenetv2_224_op13.onnx"))
    images = [zoo_file(f"images/{n}") for n in ("chelsea.png", "rocket.jpg", "page.png")]
    dataset = tmp_path / "dataset.txt"
    dataset.write_text("".join(f"{p}\n" for p in images))
    options = QuantizeOptions(progress=False,
                              preprocess=[InputPreprocess(list(IMAGENET_MEAN), list(IMAGENET_STD))])  # fmt: skip
    float_model, build, quantized = build_for_analysis(model, dataset, options)
    inputs = tmp_path / "inputs.txt"
    inputs.write_text(f"{zoo_file('images/coffee.png')}\n")
    samples = read_samples(inputs, list(float_model.inputs), [False])
    start = time.perf_counter()
    report = accuracy_analysis(float_model, build, quantized, samples, tmp_path / "out")
    seconds = time.perf_counter() - start
    assert seconds < 30  # about 6 s on the 2-core machine while others share it
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["accuracy_plot.png", "error_analysis.txt", "report.html"]
    assert sum(p.stat().st_size for p in (tmp_path / "out").iterdir()) < BUDGET
    assert len(report.rows) > 55  # every NPU op of the 55 and the edges
    assert 0.95 < report.outputs[0].entire[0].cos < 1.0  # README: int8 about 0.98
