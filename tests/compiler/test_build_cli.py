"""`build` and `inspect` on the command line: a container from the digits CNN (op table with
ONNX names, NPU/CPU placement, task ranges), byte-identical rebuilds, op_target, the
dataset rule, one-line errors, and `inspect --disasm` decoding the register writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.container import read_container
from compiler.cli import main
from tests.zoo import zoo_file


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def digits() -> tuple[Path, Path]:
    return zoo_file("digits/digits_cnn.onnx"), zoo_file("digits/data16/dataset.txt")


def build(capsys, tmp_path: Path, digits, *extra: object, out: str = "d.rknn"):
    model, dataset = digits
    return run_cli(capsys, "build", model, "--dataset", dataset, "--no-progress", "-o",
                   tmp_path / out, *extra)  # fmt: skip


def test_build_writes_a_container_with_the_op_table(tmp_path: Path, capsys, digits):
    code, _, err = build(capsys, tmp_path, digits)
    assert code == 0, err
    assert "ops: 7 on the NPU, 2 on the CPU" in err and "time: quantize" in err
    container = read_container(tmp_path / "d.rknn")
    assert container.target == "rk3588"
    ops = container.metadata["ops"]
    convs = [op for op in ops if op["op"] == "npu.conv2d"]
    assert [op["node"] for op in convs] == [
        "/features/features.0/features.0.0/Conv",
        "/features/features.2/features.2.0/Conv",
        "/features/features.4/features.4.0/Conv",
    ]
    assert all(op["target"] == "npu" and op["tasks"][1] >= 1 for op in convs)
    edges = [op for op in ops if op["target"] == "cpu"]
    assert [op["op"] for op in edges] == ["npu.quantize", "npu.dequantize"]
    assert container.metadata["inputs"] == [
        {"name": "input", "shape": [1, 1, 16, 16], "dtype": "float32", "kind": "input"}
    ]
    assert len(container.sections["commands"]) % 8 == 0 and container.sections["weights"]


def test_rebuild_is_byte_identical(tmp_path: Path, capsys, digits):
    assert build(capsys, tmp_path, digits, out="a.rknn")[0] == 0
    assert build(capsys, tmp_path, digits, out="b.rknn")[0] == 0
    assert (tmp_path / "a.rknn").read_bytes() == (tmp_path / "b.rknn").read_bytes()


def test_op_target_sends_an_op_to_the_cpu(tmp_path: Path, capsys, digits):
    code, _, err = build(capsys, tmp_path, digits, "--op-target", "/fc/Gemm=cpu")
    assert code == 0, err
    ops = read_container(tmp_path / "d.rknn").metadata["ops"]
    (gemm,) = [op for op in ops if op["node"] == "/fc/Gemm"]
    assert gemm["target"] == "cpu" and gemm["op"] == "onnx.Gemm"


def test_int8_needs_a_dataset(tmp_path: Path, capsys, digits):
    code, _, err = run_cli(capsys, "build", digits[0], "-o", tmp_path / "d.rknn")
    assert code == 2 and err.count("\n") == 1 and "needs a calibration dataset" in err
    assert not (tmp_path / "d.rknn").exists()


def test_float16_needs_no_dataset(tmp_path: Path, capsys, digits):
    code, _, err = run_cli(capsys, "build", digits[0], "--dtype", "float16", "--no-progress",
                           "-o", tmp_path / "d.rknn")  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize("entry", ["conv", "conv=npu", "=cpu"])
def test_bad_op_target_is_one_line(tmp_path: Path, capsys, digits, entry: str):
    code, _, err = build(capsys, tmp_path, digits, "--op-target", entry)
    assert code == 2 and err.startswith("error: --op-target") and err.count("\n") == 1


def test_inspect_prints_the_table_and_disassembles(tmp_path: Path, capsys, digits):
    assert build(capsys, tmp_path, digits)[0] == 0
    code, out, _ = run_cli(capsys, "inspect", tmp_path / "d.rknn", "--disasm")
    assert code == 0
    assert "target rk3588" in out and "/features/features.0/features.0.0/Conv" in out
    assert "task 0: npu.conv2d" in out
    assert "CNA.CONV_CON3  CONV_X_STRIDE=1, CONV_Y_STRIDE=1" in out  # 3x3 stride-1 conv


def test_inspect_rejects_a_damaged_file_in_one_line(tmp_path: Path, capsys, digits):
    assert build(capsys, tmp_path, digits)[0] == 0
    data = bytearray((tmp_path / "d.rknn").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.rknn").write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "inspect", tmp_path / "bad.rknn")
    assert code == 2 and err.count("\n") == 1 and "checksum" in err


def test_the_readme_main_job(tmp_path: Path, capsys):
    """The README's first command: the bundled tiny CNN, calibrated on its bundled sample."""
    from compiler.examples import TINY_CNN

    dataset = Path(TINY_CNN).with_name("tiny_cnn_dataset.txt")
    code, _, err = run_cli(capsys, "build", TINY_CNN, "--dataset", dataset, "--no-progress",
                           "-o", tmp_path / "tiny_cnn.rknn")  # fmt: skip
    assert code == 0, err
    code, out, _ = run_cli(capsys, "inspect", tmp_path / "tiny_cnn.rknn")
    assert code == 0 and "npu.conv2d" in out


def test_run_on_the_simulator_matches_the_quantized_model(tmp_path: Path, capsys, digits):
    """build -> run: the simulator's output equals the npu reference executor's (`interpret`
    on the quantized model from `quantize` with the same dataset), and the top-5 is printed."""
    import numpy as np

    model, dataset = digits
    assert build(capsys, tmp_path, digits)[0] == 0
    xs = np.load(zoo_file("digits/data16/test_x.npy"))[:3].astype(np.float32)
    for i, x in enumerate(xs):
        np.save(tmp_path / f"x{i}.npy", x[None])
    (tmp_path / "list.txt").write_text("".join(f"x{i}.npy\n" for i in range(3)))
    code, out, err = run_cli(capsys, "run", tmp_path / "d.rknn", "--input", tmp_path / "x0.npy",
                             "--output-dir", tmp_path / "sim")  # fmt: skip
    assert code == 0, err
    assert "logits top-5: " in out
    assert run_cli(capsys, "quantize", model, "--dataset", dataset, "--no-progress", "-o",
                   tmp_path / "q.mlir")[0] == 0  # fmt: skip
    assert run_cli(capsys, "interpret", tmp_path / "q.mlir", "--input", tmp_path / "x0.npy",
                   "--output-dir", tmp_path / "ref")[0] == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "sim" / "logits.npy"),
                                  np.load(tmp_path / "ref" / "logits.npy"))  # fmt: skip
    code, _, err = run_cli(capsys, "run", tmp_path / "d.rknn", "--inputs", tmp_path / "list.txt",
                           "--output-dir", tmp_path / "many")  # fmt: skip
    assert code == 0, err
    stacked = np.load(tmp_path / "many" / "logits.npy")
    assert stacked.shape == (3, 1, 10)
    np.testing.assert_array_equal(stacked[0], np.load(tmp_path / "sim" / "logits.npy"))


def test_ops_without_code_generation_run_on_the_cpu(tmp_path: Path, capsys, digits):
    """The second conv on the CPU leaves the pool after it without code generation: build
    says so, places it on the CPU, and `run` runs it there."""
    code, _, err = build(capsys, tmp_path, digits, "--op-target",
                         "/features/features.2/features.2.0/Conv=cpu")  # fmt: skip
    assert code == 0, err
    if "no code generation yet" not in err:
        pytest.skip("code generation now covers that pool")
    import numpy as np

    np.save(tmp_path / "x.npy", np.zeros((1, 1, 16, 16), np.float32))
    code, _, err = run_cli(capsys, "run", tmp_path / "d.rknn", "--input", tmp_path / "x.npy",
                           "--output-dir", tmp_path / "out")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "out" / "logits.npy").exists()


def test_run_takes_images_nhwc_arrays_and_dumps_layers(tmp_path: Path, capsys, digits):
    """An image file is read as calibration reads it (here 'L', resized bilinearly to
    16x16, raw 0..255 values); the same pixels as an NHWC uint8 .npy give the same output;
    --dump-layers writes every layer."""
    import numpy as np
    from PIL import Image

    assert build(capsys, tmp_path, digits)[0] == 0
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (20, 24), np.uint8)).save(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as image:
        pixels = np.asarray(image.convert("L").resize((16, 16), Image.Resampling.BILINEAR))
    np.save(tmp_path / "x_nhwc.npy", pixels[None, :, :, None])
    code, _, err = run_cli(capsys, "run", tmp_path / "d.rknn", "--input", tmp_path / "x.png",
                           "--output-dir", tmp_path / "img", "--dump-layers")  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "run", tmp_path / "d.rknn", "--input",
                           tmp_path / "x_nhwc.npy", "--data-format", "nhwc",
                           "--output-dir", tmp_path / "npy")  # fmt: skip
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "img" / "logits.npy"),
                                  np.load(tmp_path / "npy" / "logits.npy"))  # fmt: skip
    assert len(list((tmp_path / "img" / "layers").glob("*.npy"))) >= 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "nope.npy"], "no such file"),
        (["--input", "x.txt"], "use .npy or an image"),
        (["--input", "wrong=x.npy"], "has no input of that name"),
        (["--input", "x.npy", "--data-format", "nhwc"], "NHWC shape"),
        (["--inputs", "list.txt", "--dump-layers"], "runs one sample"),
        (["--input", "x.npy", "--backend", "rocket"], "NPU"),
    ],
)
def test_run_bad_input_is_one_line(tmp_path: Path, capsys, digits, args, message):
    import numpy as np

    assert build(capsys, tmp_path, digits)[0] == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 16, 16), np.float32))
    (tmp_path / "x.txt").write_text("0")
    (tmp_path / "list.txt").write_text("x.npy\n")
    args = [str(tmp_path / a) if a.endswith((".npy", ".txt")) and "=" not in a else a
            for a in args]  # fmt: skip
    args = [a.replace("=x.npy", f"={tmp_path / 'x.npy'}") for a in args]
    code, _, err = run_cli(capsys, "run", tmp_path / "d.rknn", *args, "--output-dir",
                           tmp_path / "out")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and message in err, err
