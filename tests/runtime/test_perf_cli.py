"""`python -m compiler perf | memory`: output, --json, --core-mask, and one-line errors with
exit code 2."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.container import read_container, write_container
from compiler.cli import main
from tests.runtime.perf_layers import build, conv_model


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("perf_cli")
    return build(conv_model((1, 32, 16, 16), 64, 3), folder, "conv")


def test_perf_prints_the_table_and_writes_json(model: Path, tmp_path: Path, capsys):
    code, out, _ = run_cli(capsys, "perf", model, "--json", tmp_path / "perf.json")
    assert code == 0
    assert "DDRCycles" in out and "Conv:/layer/Conv" in out
    # input 18.192 + conv 9.216 + output 26.384 us (test_perf_report.py works them out)
    assert "Total Operator Elapsed Per Frame Time(us): 54" in out
    data = json.loads((tmp_path / "perf.json").read_text())
    assert [row["op_type"] for row in data["rows"]] == ["InputOperator", "Conv", "OutputOperator"]
    assert data["core_mask"] == "auto"


def test_perf_core_mask(model: Path, capsys):
    code, out, _ = run_cli(capsys, "perf", model, "--core-mask", "0_1_2")
    assert code == 0
    assert "37.5%/31.2%/31.2%" in out  # 16 output rows as 6 / 5 / 5


def test_perf_core_mask_the_chip_lacks_is_exit_2(model: Path, tmp_path: Path, capsys):
    container = read_container(model)
    other = tmp_path / "rk3576.rknn"
    write_container(dataclasses.replace(container, target="rk3576"), other)
    code, _, err = run_cli(capsys, "perf", other, "--core-mask", "0_1_2")
    assert code == 2
    assert err.count("\n") == 1 and "rk3576 has no core mask '0_1_2'" in err
    code, out, _ = run_cli(capsys, "perf", other, "--core-mask", "0_1")
    assert code == 0 and "WorkLoad(0/1)" in out and "50.0%/50.0%" in out


def test_memory_prints_and_writes_json(model: Path, tmp_path: Path, capsys):
    code, out, _ = run_cli(capsys, "memory", model, "--json", tmp_path / "memory.json")
    assert code == 0
    assert "Total Memory:" in out
    data = json.loads((tmp_path / "memory.json").read_text())
    plan = read_container(model).metadata["memory"]
    assert data["weight_memory"] == plan["weight_bytes"]
    assert data["internal_memory"] == plan["internal_bytes"]
    assert data["model_size"] == model.stat().st_size


@pytest.mark.parametrize("command", ["perf", "memory"])
def test_bad_container_is_one_line_exit_2(command: str, tmp_path: Path, capsys):
    code, _, err = run_cli(capsys, command, tmp_path / "missing.rknn")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    bad = tmp_path / "bad.rknn"
    bad.write_bytes(b"RKNPUOPN" + b"\x00" * 40)
    code, _, err = run_cli(capsys, command, bad)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["perf", "memory"])
def test_json_to_an_unwritable_place_is_exit_2(command: str, model: Path, tmp_path: Path, capsys):
    code, _, err = run_cli(capsys, command, model, "--json", tmp_path / "no" / "such" / "x.json")
    assert code == 2 and "cannot write" in err and err.count("\n") == 1


def test_help_and_process_exit_codes(model: Path):
    for command in ("perf", "memory"):
        run = subprocess.run([sys.executable, "-m", "compiler", command, "--help"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert run.returncode == 0 and "container" in run.stdout
    run = subprocess.run([sys.executable, "-m", "compiler", "perf", str(model), "--core-mask",
                          "7"], capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 2 and "invalid choice" in run.stderr
