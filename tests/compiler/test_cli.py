"""`python -m compiler import | interpret | opt`: outputs, and one-line errors with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.cli import main
from compiler.examples import TINY_CNN, TINY_CNN_INPUT
from compiler.ir_model import IRModel
from tests.helpers.ort import run_model


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def reference_probs(sample: np.ndarray) -> np.ndarray:
    return run_model(onnx.load(TINY_CNN), {"input": sample})[0]


# ------------------------------------------------------------------ import


def test_import_writes_mlir_and_npz(tmp_path: Path, capsys):
    code, out, _ = run_cli(capsys, "import", TINY_CNN, "-o", tmp_path / "tiny.mlir")
    assert code == 0
    assert "wrote" in out
    model = IRModel.load(tmp_path / "tiny.mlir")
    assert [s.name for s in model.inputs] == ["input"]
    assert (tmp_path / "tiny.npz").exists()


def test_import_refuses_to_overwrite_the_model(tmp_path: Path, capsys):
    copy = tmp_path / "m.mlir"
    copy.write_bytes(TINY_CNN.read_bytes())
    code, _, err = run_cli(capsys, "import", copy, "-o", copy)
    assert code == 2
    assert "would overwrite the model" in err
    assert copy.read_bytes() == TINY_CNN.read_bytes()


def test_import_error_is_one_line_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage" * 7)
    code, _, err = run_cli(capsys, "import", bad, "-o", tmp_path / "bad.mlir")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "bad.mlir").exists()


# ------------------------------------------------------------------ interpret


def test_interpret_one_sample(tmp_path: Path, capsys):
    code, out, _ = run_cli(
        capsys,
        "interpret",
        TINY_CNN,
        "--input",
        f"input={TINY_CNN_INPUT}",
        "--output-dir",
        tmp_path,
    )
    assert code == 0
    got = np.load(tmp_path / "probs.npy")
    want = reference_probs(np.load(TINY_CNN_INPUT))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert "probs" in out


def test_interpret_single_input_without_name_and_from_mlir(tmp_path: Path, capsys):
    assert run_cli(capsys, "import", TINY_CNN, "-o", tmp_path / "m.mlir")[0] == 0
    code, _, _ = run_cli(
        capsys,
        "interpret",
        tmp_path / "m.mlir",
        "--input",
        TINY_CNN_INPUT,
        "--output-dir",
        tmp_path / "out",
        "--save-intermediates",
    )
    assert code == 0
    assert np.load(tmp_path / "out" / "probs.npy").shape == (1, 10)
    assert (tmp_path / "out" / "tensors" / "stem_relu.npy").exists()


def test_interpret_sample_list_stacks_outputs(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)
    samples = [rng.random((1, 3, 32, 32), dtype=np.float32) for _ in range(3)]
    (tmp_path / "data").mkdir()
    for i, s in enumerate(samples):
        np.save(tmp_path / "data" / f"{i}.npy", s)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"data/{i}.npy\n" for i in range(3)))
    code, _, _ = run_cli(
        capsys, "interpret", TINY_CNN, "--inputs", listing, "--output-dir", tmp_path / "out"
    )
    assert code == 0
    got = np.load(tmp_path / "out" / "probs.npy")
    assert got.shape == (3, 1, 10)
    for i, s in enumerate(samples):
        np.testing.assert_allclose(got[i], reference_probs(s), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: ["--input", f"images={TINY_CNN_INPUT}"], "unknown input 'images'"),
        (lambda d: ["--input", f"input={d / 'missing.npy'}"], "no such file"),
        (lambda d: ["--input", f"input={d / 'wrong_shape.npy'}"], "has shape 1x3x16x16"),
        (lambda d: ["--input", f"input={d / 'ints.npy'}"], "the model expects float32"),
        (lambda d: ["--inputs", d / "two_per_line.txt"], "2 path(s) on the line"),
        (lambda d: ["--inputs", d / "nope.txt"], "cannot read sample list"),
    ],
)
def test_interpret_bad_inputs(tmp_path: Path, capsys, make_args, message):
    np.save(tmp_path / "wrong_shape.npy", np.zeros((1, 3, 16, 16), np.float32))
    np.save(tmp_path / "ints.npy", np.zeros((1, 3, 32, 32), np.int64) + 1j)
    (tmp_path / "two_per_line.txt").write_text(f"{TINY_CNN_INPUT} {TINY_CNN_INPUT}\n")
    code, _, err = run_cli(
        capsys, "interpret", TINY_CNN, *make_args(tmp_path), "--output-dir", tmp_path / "out"
    )
    assert code == 2, err
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ opt


def test_opt_runs_named_passes_with_timing(tmp_path: Path, capsys):
    run_cli(capsys, "import", TINY_CNN, "-o", tmp_path / "m.mlir")
    code, _, err = run_cli(
        capsys,
        "opt",
        tmp_path / "m.mlir",
        "-p",
        "dce",
        "--timing",
        "--print-ir-after-all",
        "-o",
        tmp_path / "o.mlir",
    )
    assert code == 0
    assert "IR after dce" in err and "pass timing:" in err and "total" in err
    assert IRModel.load(tmp_path / "o.mlir").inputs[0].name == "input"


def test_opt_prints_to_stdout_and_lists_passes(capsys):
    code, out, _ = run_cli(capsys, "opt", TINY_CNN, "-p", "dce")
    assert code == 0 and out.startswith("builtin.module")
    code, out, _ = run_cli(capsys, "opt", "--list-passes")
    assert code == 0 and "dce" in out


@pytest.mark.parametrize("spec", ["no-such-pass", "dce{bogus=1}", "dce{"])
def test_opt_bad_pipeline(capsys, spec):
    code, _, err = run_cli(capsys, "opt", TINY_CNN, "-p", spec)
    assert code == 2
    assert err.startswith("error: bad pass pipeline")


def test_opt_unreadable_ir(tmp_path: Path, capsys):
    (tmp_path / "x.mlir").write_text("this is not IR")
    code, _, err = run_cli(capsys, "opt", tmp_path / "x.mlir", "-p", "dce")
    assert code == 2 and "not valid IR" in err


# ------------------------------------------------------------------ the process


def test_module_entry_point_help_and_error_exit_code(tmp_path: Path):
    help_run = subprocess.run(
        [sys.executable, "-m", "compiler", "--help"], capture_output=True, text=True, check=False
    )
    assert help_run.returncode == 0
    for command in ("import", "interpret", "opt"):
        assert command in help_run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "compiler", "import", str(tmp_path / "x.onnx")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
