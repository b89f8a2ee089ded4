"""`python -m compiler quantize`: the bundled tiny CNN to int8 (runs with `interpret`, close
to the float model), `--export-cfg` / `--cfg`, float16 without a dataset, and one-line
errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.cli import main
from compiler.examples import TINY_CNN, TINY_CNN_INPUT
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from compiler.quantization.cfg import read_cfg
from tests.compiler.test_cli import reference_probs


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A dataset.txt of 3 .npy samples of the tiny CNN's input [1, 3, 32, 32]."""
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    lines = []
    for i in range(3):
        np.save(tmp_path / "data" / f"{i}.npy", rng.random((1, 3, 32, 32), dtype=np.float32))
        lines.append(f"data/{i}.npy\n")
    listing = tmp_path / "dataset.txt"
    listing.write_text("".join(lines))
    return listing


def quantize(capsys, tmp_path: Path, *extra: object, out: str = "q.mlir") -> tuple[int, str]:
    code, _, err = run_cli(capsys, "quantize", TINY_CNN, "-o", tmp_path / out,
                           "--no-progress", *extra)  # fmt: skip
    return code, err


def npu_ops(path: Path) -> list[str]:
    model = IRModel.load(path)
    return [op.name for op in model.main.body.blocks[0].ops if op.name.startswith("npu.")]


def test_int8_then_interpret(tmp_path: Path, capsys, dataset: Path):
    code, err = quantize(capsys, tmp_path, "--dataset", dataset)
    assert code == 0, err
    assert (tmp_path / "q.mlir").exists() and (tmp_path / "q.npz").exists()
    assert "lower-to-npu:" in err
    kinds = npu_ops(tmp_path / "q.mlir")
    assert "npu.conv2d" in kinds and "npu.quantize" in kinds and "npu.dequantize" in kinds
    assert "#npu.quant<i8," in (tmp_path / "q.mlir").read_text()

    code, _, err = run_cli(capsys, "interpret", tmp_path / "q.mlir",
                             "--input", f"input={TINY_CNN_INPUT}",
                             "--output-dir", tmp_path / "out")  # fmt: skip
    assert code == 0, err
    got = np.load(tmp_path / "out" / "probs.npy")
    want = reference_probs(np.load(TINY_CNN_INPUT))
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.argmax(got) == np.argmax(want)
    assert np.abs(got - want).max() < 0.1


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--dtype", "int16"], id="int16"),
        pytest.param(["--algorithm", "mmse"], id="mmse"),
        pytest.param(["--algorithm", "kl_divergence"], id="kl"),
        pytest.param(["--method", "layer"], id="per-tensor"),
        pytest.param(["--mean-values", "0.5,0.5,0.5", "--std-values", "0.25,0.25,0.25"],
                     id="mean-std"),
    ],
)  # fmt: skip
def test_options_build_a_runnable_model(tmp_path: Path, capsys, dataset: Path, extra):
    code, err = quantize(capsys, tmp_path, "--dataset", dataset, *extra)
    assert code == 0, err
    model = IRModel.load(tmp_path / "q.mlir")
    outputs = Interpreter(model).run({"input": np.load(TINY_CNN_INPUT)}).outputs
    assert outputs["probs"].shape == (1, 10) and np.all(np.isfinite(outputs["probs"]))


def test_export_cfg_reads_back_and_rebuilds(tmp_path: Path, capsys, dataset: Path):
    cfg_path = tmp_path / "q.quantization.cfg"
    code, err = quantize(capsys, tmp_path, "--dataset", dataset, "--export-cfg", cfg_path)
    assert code == 0, err
    cfg = read_cfg(cfg_path)
    assert cfg.quantize_parameters
    assert all(e.dtype == "i8" for e in cfg.quantize_parameters.values())
    assert "input" in cfg.quantize_parameters

    code, err = quantize(capsys, tmp_path, "--dataset", dataset, "--cfg", cfg_path,
                         out="again.mlir")  # fmt: skip
    assert code == 0, err
    # the config's parameters are the ones the first build computed: same model
    first = (tmp_path / "q.mlir").read_text()
    assert (tmp_path / "again.mlir").read_text() == first


def test_float16_needs_no_dataset(tmp_path: Path, capsys):
    code, err = quantize(capsys, tmp_path, "--dtype", "float16")
    assert code == 0, err
    text = (tmp_path / "q.mlir").read_text()
    assert "#npu.quant<f16>" in text and "#npu.quant<i8" not in text
    model = IRModel.load(tmp_path / "q.mlir")
    got = Interpreter(model).run({"input": np.load(TINY_CNN_INPUT)}).outputs["probs"]
    want = reference_probs(np.load(TINY_CNN_INPUT))
    np.testing.assert_allclose(got, want, atol=1e-2)


def test_w4a16_on_rk3576(tmp_path: Path, capsys):
    """int4 weights beside float16 activations: the target that has them takes them."""
    code, err = quantize(capsys, tmp_path, "--dtype", "float16", "--weight-dtype", "int4",
                         "--target", "rk3576")  # fmt: skip
    assert code == 0, err
    text = (tmp_path / "q.mlir").read_text()
    assert "#npu.quant<i4 axis 0" in text and "#npu.quant<f16>" in text
    model = IRModel.load(tmp_path / "q.mlir")
    got = Interpreter(model).run({"input": np.load(TINY_CNN_INPUT)}).outputs["probs"]
    want = reference_probs(np.load(TINY_CNN_INPUT))
    np.testing.assert_allclose(got, want, atol=5e-2)  # int4 weights: a coarse grid


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: [], "needs a calibration dataset"),
        (lambda d: ["--dataset", d / "missing.txt"], "cannot read sample list"),
        (lambda d: ["--dataset", d / "dataset.txt", "--mean-values", "1,two,3"],
         "--mean-values '1,two,3': expected numbers"),
        (lambda d: ["--dtype", "float16", "--weight-dtype", "int4"],
         "rk3588 NPU does not pair i4 weights with f16 activations"),
        (lambda d: ["--dtype", "float16", "--target", "rk9999"], "unknown target 'rk9999'"),
    ],
    ids=["no-dataset", "missing-dataset", "bad-mean", "w4a16-on-rk3588", "unknown-target"],
)  # fmt: skip
def test_errors_are_one_line_exit_2(tmp_path: Path, capsys, dataset: Path, make_args, message):
    code, err = quantize(capsys, tmp_path, *make_args(tmp_path))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "q.mlir").exists()


def test_output_must_end_in_mlir(tmp_path: Path, capsys, dataset: Path):
    code, err = quantize(capsys, tmp_path, "--dataset", dataset, out="q.onnx")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "must end in .mlir" in err
    assert not (tmp_path / "q.onnx").exists()
