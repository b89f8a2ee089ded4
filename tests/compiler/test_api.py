"""`compiler.api.RKNN`: an RKNN-Toolkit2 script's flow on the zoo's digits model gives the
same outputs as `Session` and `python -m compiler run` on the container it exported; the
return codes and logged reasons of misuse; each RKNN config name mapped to ours; the
example scripts run with only the import changed."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.api import RKNN
from compiler.calibration import InputPreprocess
from compiler.cli import main
from compiler.rknn_api.options import CONFIG, check_config, quantize_options
from runtime.session import Session
from tests.zoo import zoo_file

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "compiler" / "examples" / "tiny_cnn.onnx"
TINY_DATASET = ROOT / "compiler" / "examples" / "tiny_cnn_dataset.txt"
TINY_INPUT = ROOT / "compiler" / "examples" / "tiny_cnn_input.npy"
EXAMPLES = ROOT / "compiler" / "examples" / "rknn_api"
CALIBRATION_SAMPLES = 16
IMAGES = 20
HAS_NPU = bool(glob.glob("/dev/accel/accel*"))


def calibration_subset(folder: Path, tmp: Path) -> Path:
    lines = (folder / "dataset.txt").read_text().split()[:CALIBRATION_SAMPLES]
    listing = tmp / "dataset.txt"
    listing.write_text("".join(f"{folder / line}\n" for line in lines))
    return listing


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The RKNN script flow on digits_cnn: config, load_onnx, build, export_rknn,
    init_runtime; the object is left initialized for the tests."""
    model = zoo_file("digits/digits_cnn.onnx")
    folder = model.parent / "data16"
    tmp = tmp_path_factory.mktemp("digits")
    rknn = RKNN()
    assert rknn.config(target_platform="rk3588") == 0
    assert rknn.load_onnx(model=str(model)) == 0
    assert rknn.build(do_quantization=True, dataset=str(calibration_subset(folder, tmp))) == 0
    path = tmp / "digits_cnn.rknn"
    assert rknn.export_rknn(str(path)) == 0
    assert rknn.init_runtime() == 0
    images = np.load(folder / "test_x.npy")[:IMAGES]
    labels = np.load(folder / "test_y.npy")[:IMAGES]
    yield {"rknn": rknn, "path": path, "images": images, "labels": labels, "tmp": tmp}
    rknn.release()


def test_inference_equals_session_and_the_run_command(digits, capsys):
    rknn, path, tmp = digits["rknn"], digits["path"], digits["tmp"]
    session = Session(path)
    (spec,) = session.metadata["inputs"]
    (out,) = session.metadata["outputs"]
    for k, image in enumerate(digits["images"][:5]):
        x = image[None].astype(np.float32)  # 1x1x16x16, the model's NCHW
        (got,) = rknn.inference(inputs=[x], data_format="nchw")
        assert got.dtype == np.float32 and got.shape == (1, 10)
        np.testing.assert_array_equal(got, session.run({spec["name"]: x})[out["name"]])
        np.save(tmp / f"x{k}.npy", x)
        code = main(["run", str(path), "--input", f"{spec['name']}={tmp / f'x{k}.npy'}",
                     "--output-dir", str(tmp / f"run{k}")])  # fmt: skip
        capsys.readouterr()
        assert code == 0
        np.testing.assert_array_equal(got, np.load(tmp / f"run{k}" / f"{out['name']}.npy"))


def test_inference_takes_nhwc_by_default_and_classifies(digits):
    rknn = digits["rknn"]
    tops = []
    for image in digits["images"]:
        nchw = image[None].astype(np.float32)
        (default,) = rknn.inference(inputs=[nchw.transpose(0, 2, 3, 1)])  # RKNN: NHWC
        (explicit,) = rknn.inference(inputs=[nchw], data_format=["nchw"])
        np.testing.assert_array_equal(default, explicit)
        tops.append(int(np.argmax(default)))
    # the zoo's labels; int8 digits_cnn is at 100 % top-1 (README, Quantization)
    assert np.mean(np.array(tops) == digits["labels"]) >= 0.95


def test_eval_perf_memory_and_version(digits, capsys):
    rknn = digits["rknn"]
    text = rknn.eval_perf(is_print=True)
    printed = capsys.readouterr().out
    assert text is not None and "Total Operator Elapsed Per Frame Time(us)" in text
    assert text in printed
    memory = rknn.eval_memory(is_print=False)
    assert set(memory) >= {"weight_memory", "internal_memory", "other_memory", "total_memory"}
    parts = memory["weight_memory"] + memory["internal_memory"] + memory["other_memory"]
    assert memory["total_memory"] == parts > 0
    assert rknn.get_sdk_version().startswith("RKNN VERSION:\n API: rknpu-compiler")


def test_accuracy_analysis_writes_the_report(digits, tmp_path, capsys):
    rknn = digits["rknn"]
    np.save(tmp_path / "x.npy", digits["images"][0][None].astype(np.float32))
    out = tmp_path / "snapshot"
    assert rknn.accuracy_analysis(inputs=[str(tmp_path / "x.npy")], output_dir=str(out)) == 0
    assert (out / "error_analysis.txt").is_file()
    assert "I accuracy_analysis: output logits: cosine" in capsys.readouterr().err


def test_the_exported_file_loads_back(digits, capsys):
    again = RKNN()
    assert again.load_rknn(str(digits["path"])) == 0
    assert again.init_runtime() == 0
    x = digits["images"][0][None].astype(np.float32)
    (a,) = again.inference(inputs=[x], data_format="nchw")
    (b,) = digits["rknn"].inference(inputs=[x], data_format="nchw")
    np.testing.assert_array_equal(a, b)
    # as RKNN: the analysis needs the model built in this session
    assert again.accuracy_analysis(inputs=["x.npy"]) == -1
    assert "E accuracy_analysis: accuracy_analysis needs a model built" in capsys.readouterr().err
    again.release()


# ---------------------------------------------------------------------- misuse


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("E ")]


@pytest.mark.parametrize(
    ("call", "failure", "reason"),
    [
        (lambda r: r.load_onnx(model="/nonexistent/model.onnx"), -1,
         "E load_onnx: /nonexistent/model.onnx: no such file"),
        (lambda r: r.build(dataset="ds.txt"), -1, "E build: no model: call load_onnx first"),
        (lambda r: r.inference(inputs=[np.zeros(3)]), None,
         "E inference: the runtime is not initialized: call init_runtime first"),
        (lambda r: r.init_runtime(), -1, "E init_runtime: no model: call build or load_rknn"),
        (lambda r: r.export_rknn("x.rknn"), -1, "E export_rknn: no model"),
        (lambda r: r.load_rknn("/nonexistent.rknn"), -1, "E load_rknn: /nonexistent.rknn"),
        (lambda r: r.eval_perf(), None, "E eval_perf: no model"),
        (lambda r: r.config(quantized_dtype="w3a3"), -1,
         "E config: quantized_dtype 'w3a3': expected one of asymmetric_quantized-8, w8a8"),
        (lambda r: r.config(quantized_algorithm="bogus"), -1,
         "E config: quantized_algorithm 'bogus': expected one of normal, mmse, kl_divergence"),
        (lambda r: r.config(quantized_method="group32"), -1,
         "E config: quantized_method 'group32': expected one of channel, layer"),
        (lambda r: r.config(optimization_level=4), -1, "E config: optimization_level 4"),
        (lambda r: r.config(target_platform="rk9999"), -1, "E config: unknown target 'rk9999'"),
        (lambda r: r.config(quantized_dtype="w4a16", target_platform="rk3588"), -1,
         "E config: quantized_dtype 'w4a16' on rk3588: rk3588 NPU does not pair i4 weights"),
        (lambda r: r.config(w8a8=True), -1, "E config: unknown option 'w8a8'"),
        (lambda r: r.config(dynamic_input=[[[1, 3, 224, 224]]]), -1,
         "E config: dynamic_input=[[[1, 3, 224, 224]]]: dynamic shapes not supported yet"),
        (lambda r: r.config(op_target={"conv": "gpu"}), -1,
         "E config: op_target['conv'] = 'gpu': expected one of cpu, npu, auto"),
        (lambda r: r.load_pytorch("m.pt", [[1, 3, 224, 224]]), -1,
         "E load_pytorch: only ONNX models are supported"),
    ],
)  # fmt: skip
def test_misuse_returns_failure_with_one_logged_line(call, failure, reason, capsys):
    rknn = RKNN()
    assert call(rknn) == failure
    (line,) = error_lines(capsys)
    assert line.startswith(reason)
    rknn.release()


def test_load_onnx_refuses_what_is_not_onnx(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a protobuf at all")
    rknn = RKNN()
    assert rknn.load_onnx(model=str(bad)) == -1
    (line,) = error_lines(capsys)
    assert line.startswith(f"E load_onnx: {bad}")


def test_build_without_dataset_or_with_batches_fails(capsys):
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(do_quantization=True) == -1
    assert error_lines(capsys) == ["E build: quantizing to i8 needs a calibration dataset "
                                   "(--dataset)"]  # fmt: skip
    assert rknn.build(dataset=str(TINY_DATASET), rknn_batch_size=4) == -1
    assert error_lines(capsys) == ["E build: rknn_batch_size=4: batches over 1 are not "
                                   "supported yet"]  # fmt: skip


@pytest.mark.skipif(HAS_NPU, reason="this machine has an NPU device node")
def test_init_runtime_on_the_chip_without_an_npu_fails(capsys):
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    assert rknn.init_runtime(target="rk3588") == -1
    (line,) = error_lines(capsys)
    assert line.startswith("E init_runtime: no NPU device: nothing matches /dev/accel/accel*")
    assert rknn.init_runtime(target="rk3566") == -1
    assert error_lines(capsys) == [
        "E init_runtime: target 'rk3566': the model was built for rk3588"
    ]
    assert rknn.inference(inputs=[np.load(TINY_INPUT)]) is None  # no runtime was left


def test_init_runtime_on_the_chip_runs_on_the_rocket_backend(monkeypatch):
    """target='rk3588' goes through the rocket driver: here the fake device, which runs
    our simulator on the submitted buffers, so the outputs equal the simulator path's."""
    from backends.targets import get_target
    from runtime.hardware import RocketDevice
    from runtime.hardware.fake import FakeRocketDevice

    fake = FakeRocketDevice(get_target("rk3588"))
    monkeypatch.setattr(RocketDevice, "open", classmethod(lambda cls, *a, **k: fake.device()))
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    x = np.load(TINY_INPUT)
    assert rknn.init_runtime() == 0
    (simulated,) = rknn.inference(inputs=[x], data_format="nchw")
    assert rknn.init_runtime(target="rk3588", core_mask=RKNN.NPU_CORE_0_1_2) == 0
    assert "\n DRV: rocket (" in rknn.get_sdk_version()
    (on_device,) = rknn.inference(inputs=[x], data_format="nchw")
    np.testing.assert_array_equal(on_device, simulated)
    rknn.release()


def test_core_mask_must_exist_on_the_chip(capsys):
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    assert rknn.init_runtime(core_mask=0x8) == -1
    (line,) = error_lines(capsys)
    assert line.startswith("E init_runtime: core_mask 8: expected one of NPU_CORE_AUTO=0x0")


# ---------------------------------------------------------------------- options


# every config() parameter of RKNN-Toolkit2 2.3 (sdk_inventory.md table 1.1a)
RKNN_CONFIG_PARAMETERS = {
    "mean_values", "std_values", "quant_img_RGB2BGR", "quantized_dtype", "quantized_algorithm",
    "quantized_method", "float_dtype", "optimization_level", "target_platform",
    "custom_string", "remove_weight", "compress_weight", "single_core_mode", "model_pruning",
    "op_target", "dynamic_input", "quantize_weight", "remove_reshape", "sparse_infer",
    "enable_flash_attention",
}  # fmt: skip


def test_every_rknn_config_parameter_is_known():
    assert set(CONFIG) >= RKNN_CONFIG_PARAMETERS


@pytest.mark.parametrize(
    ("rknn_options", "field", "ours"),
    [
        ({}, "dtype", "i8"),
        ({}, "weight_dtype", None),
        ({}, "algorithm", "normal"),
        ({}, "per_channel", True),
        ({}, "optimization_level", 3),
        ({}, "target", "rk3588"),
        ({}, "preprocess", None),
        ({}, "cpu_ops", frozenset()),
        ({"quantized_dtype": "asymmetric_quantized-8"}, "dtype", "i8"),
        ({"quantized_dtype": "w8a8"}, "dtype", "i8"),
        ({"quantized_dtype": "asymmetric_quantized-16"}, "dtype", "i16"),
        ({"quantized_dtype": "w16a16i"}, "dtype", "i16"),
        ({"quantized_dtype": "w4a16", "target_platform": "rk3576"}, "dtype", "f16"),
        ({"quantized_dtype": "w4a16", "target_platform": "rk3576"}, "weight_dtype", "i4"),
        ({"quantized_algorithm": "mmse"}, "algorithm", "mmse"),
        ({"quantized_algorithm": "kl_divergence"}, "algorithm", "kl_divergence"),
        ({"quantized_method": "layer"}, "per_channel", False),
        ({"quantized_method": "channel"}, "per_channel", True),
        ({"optimization_level": 0}, "optimization_level", 0),
        ({"target_platform": "RK3576"}, "target", "rk3576"),
        ({"op_target": {"/a/Conv_output_0": "cpu", "b": "npu", "c": "auto"}}, "cpu_ops",
         frozenset({"/a/Conv_output_0"})),
        ({"mean_values": [[1, 2, 3]], "std_values": [[4, 5, 6]], "quant_img_RGB2BGR": True},
         "preprocess", [InputPreprocess([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], True)]),
        ({"mean_values": [0, 0, 0]}, "preprocess", [InputPreprocess([0.0, 0.0, 0.0], None)]),
        ({"std_values": [[255, 255, 255]]}, "preprocess",
         [InputPreprocess(None, [255.0, 255.0, 255.0])]),
    ],
)  # fmt: skip
def test_rknn_option_maps_to_ours(rknn_options, field, ours):
    assert check_config(rknn_options) == []
    options = quantize_options(rknn_options, 1, do_quantization=True, progress=False)
    assert getattr(options, field) == ours


def test_float_build_is_float16():
    options = quantize_options({"quantized_dtype": "w8a8"}, 1, False, False)
    assert (options.dtype, options.weight_dtype) == ("f16", None)


def test_options_without_effect_are_accepted_with_a_warning(capsys):
    rknn = RKNN()
    assert rknn.config(model_pruning=True, single_core_mode=True, target_platform="rk3588") == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("W ")]
    assert warnings == [
        "W config: model_pruning=True accepted without effect: always on: all-zero channels "
        "are pruned at level >= 2",
        "W config: single_core_mode=True accepted without effect: a container runs on any "
        "core mask",
    ]


def test_mean_values_per_input_count_is_checked_at_build(capsys):
    rknn = RKNN()
    assert rknn.config(mean_values=[[0, 0, 0], [1, 1, 1]]) == 0
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == -1
    assert error_lines(capsys) == ["E build: mean_values gives values for 2 inputs; the model "
                                   "has 1 (one list per input, e.g. [[128, 128, 128]])"]  # fmt: skip


def test_custom_string_is_stored_in_the_container(tmp_path):
    from backends.container import read_container

    rknn = RKNN()
    assert rknn.config(custom_string="camera 3, v1.2") == 0
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    assert rknn.export_rknn(str(tmp_path / "m.rknn")) == 0
    assert read_container(tmp_path / "m.rknn").metadata["custom_string"] == "camera 3, v1.2"


# ---------------------------------------------------------------------- load_onnx


def test_load_onnx_cuts_the_graph_at_named_outputs():
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(TINY))).graph
    (info,) = [v for v in graph.value_info if v.name == "stem_relu"]
    shape = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY), outputs=["stem_relu"]) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    assert rknn.init_runtime() == 0
    (out,) = rknn.inference(inputs=[np.load(TINY_INPUT)], data_format="nchw")
    assert out.shape == shape


def test_load_onnx_pins_input_sizes(capsys):
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY), input_size_list=[[1, 3, 32, 32]]) == 0
    assert rknn.load_onnx(model=str(TINY), inputs=["input"]) == -1
    assert error_lines(capsys) == ["E load_onnx: inputs is set: input_size_list must give "
                                   "their shapes (as RKNN)"]  # fmt: skip
    assert rknn.load_onnx(model=str(TINY), input_size_list=[[1, 3, 32, 32]] * 2) == -1
    assert error_lines(capsys)[0].startswith("E load_onnx: input_size_list gives 2 shapes")


# ---------------------------------------------------------------------- logging


def test_verbose_logs_debug_lines_to_the_file(tmp_path, capsys):
    log = tmp_path / "build.log"
    rknn = RKNN(verbose=True, verbose_file=str(log))
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    rknn.release()
    err = capsys.readouterr().err
    assert any(line.startswith("D build: ") for line in err.splitlines())
    assert " D build: " in log.read_text() and " I build: " in log.read_text()


def test_quiet_by_default_has_no_debug_lines(capsys):
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(dataset=str(TINY_DATASET)) == 0
    assert not any(line.startswith("D ") for line in capsys.readouterr().err.splitlines())


# ---------------------------------------------------------------------- hybrid


def test_hybrid_steps_with_the_unedited_cfg_equal_the_plain_build(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # step 1 writes in the current directory, as RKNN
    x = np.load(TINY_INPUT)
    plain = RKNN()
    assert plain.load_onnx(model=str(TINY)) == 0
    assert plain.build(dataset=str(TINY_DATASET)) == 0
    assert plain.init_runtime() == 0
    (expected,) = plain.inference(inputs=[x], data_format="nchw")
    step1 = RKNN()
    assert step1.load_onnx(model=str(TINY)) == 0
    assert step1.hybrid_quantization_step1(dataset=str(TINY_DATASET)) == 0
    step1.release()
    names = [f"tiny_cnn.{ext}" for ext in ("model", "data", "quantization.cfg")]
    assert all((tmp_path / name).is_file() for name in names)
    step2 = RKNN()
    assert step2.hybrid_quantization_step2(*(f"./{name}" for name in names)) == 0
    assert step2.export_rknn("./tiny_cnn.rknn") == 0
    assert step2.init_runtime() == 0
    (got,) = step2.inference(inputs=[x], data_format="nchw")
    np.testing.assert_array_equal(got, expected)
    # RKNN: accuracy analysis "only after build or hybrid_quantization_step2"
    assert step2.accuracy_analysis(inputs=[str(TINY_INPUT)], output_dir="snapshot") == 0
    assert (tmp_path / "snapshot" / "error_analysis.txt").is_file()


# ---------------------------------------------------------------------- examples


def run_example(script: str, *args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_mobilenet_example_runs_on_a_small_model(tmp_path, capsys):
    done = run_example("mobilenet_classification.py", "--model", TINY, "--dataset", TINY_DATASET,
                       "--image", TINY_INPUT, "--size", 32, "--eval_perf", "--eval_mem",
                       "--accuracy_analysis", "--output_dir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-----TOP 5-----" in done.stdout and "Memory Profile Info Dump" in done.stdout
    assert (tmp_path / "snapshot" / "error_analysis.txt").is_file()
    # its inference equals the run command's on the container it exported
    code = main(["run", str(tmp_path / "mobilenet.rknn"), "--input", f"input={TINY_INPUT}",
                 "--output-dir", str(tmp_path / "run")])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "output0.npy"),
                                  np.load(tmp_path / "run" / "probs.npy"))  # fmt: skip


def test_hybrid_example_runs_on_a_small_model(tmp_path):
    done = run_example("hybrid_quantization.py", "--model", TINY, "--dataset", TINY_DATASET,
                       "--image", TINY_INPUT, "--size", 32, "--float16", "stem_relu",
                       "--output_dir", tmp_path, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stem_relu: float16" in (tmp_path / "tiny_cnn.quantization.cfg").read_text()
    assert (tmp_path / "tiny_cnn.rknn").is_file() and (tmp_path / "output0.npy").is_file()


def test_load_onnx_cuts_the_graph_at_named_inputs(tmp_path):
    from compiler.frontend import import_onnx
    from compiler.interpreter import Interpreter

    x = np.load(TINY_INPUT)
    reference = Interpreter(import_onnx(TINY)).run({"input": x}, capture=True)
    middle = reference.tensors["stem_relu"]
    np.save(tmp_path / "middle.npy", middle)
    (tmp_path / "dataset.txt").write_text("middle.npy\n")
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY), inputs=["stem_relu"],
                          input_size_list=[list(middle.shape)]) == 0  # fmt: skip
    assert rknn.build(dataset=str(tmp_path / "dataset.txt")) == 0
    assert rknn.init_runtime() == 0
    (out,) = rknn.inference(inputs=[middle], data_format="nchw")
    # int8 from the cut point on, calibrated on this very input: close to the float model
    np.testing.assert_allclose(out, reference.outputs["probs"], atol=0.02)


def test_float_build_runs_close_to_the_float_model():
    """RKNN's first troubleshooting step (sdk §7.1.1): build(do_quantization=False), a
    float16 model, against the float32 one."""
    from compiler.frontend import import_onnx
    from compiler.interpreter import Interpreter

    x = np.load(TINY_INPUT)
    expected = Interpreter(import_onnx(TINY)).run({"input": x}).outputs["probs"]
    rknn = RKNN()
    assert rknn.load_onnx(model=str(TINY)) == 0
    assert rknn.build(do_quantization=False) == 0
    assert rknn.init_runtime() == 0
    (out,) = rknn.inference(inputs=[x], data_format="nchw")
    np.testing.assert_allclose(out, expected, atol=2e-3)


def test_the_rknn_peer_driver_script_runs_with_only_its_import_changed(tmp_path):
    """research/rknn_peer/run_peer.py drove the real RKNN-Toolkit2 2.5.0 (config, load_onnx,
    build, export_rknn, accuracy_analysis, init_runtime, inference, eval_perf, eval_memory,
    release); here it drives ours, its import line the one change, on digits_cnn with the
    onnxruntime float reference."""
    pytest.importorskip("onnxruntime")
    original = ROOT.parent / "shared" / "research" / "rknn_peer" / "run_peer.py"
    if not original.is_file():
        pytest.skip(f"{original} is absent")
    model = zoo_file("digits/digits_cnn.onnx")
    folder = model.parent / "data16"
    script = original.read_text()
    assert script.count("from rknn.api import RKNN") == 1
    (tmp_path / "peer.py").write_text(
        script.replace("from rknn.api import RKNN", "from compiler.api import RKNN")
    )
    listing = calibration_subset(folder, tmp_path)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "peer.py"), str(model), "--dataset", str(listing),
         "--mean", "", "--std", "", "--accuracy-analysis", "--eval-perf",
         "--out", str(tmp_path / "out")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert "failed_at" not in result and result["n_inputs"] == CALIBRATION_SAMPLES
    assert result["cosine_vs_ort"]["0"]["min"] > 0.999  # int8 against onnxruntime float32
    # the script keeps repr(...)[:2000] of what eval_perf / eval_memory returned
    assert result["eval_perf"].startswith("'Performance estimate (cycle model")
    assert result["eval_memory"].startswith("{'weight_memory': ")
    assert (tmp_path / "out" / "snapshot" / "error_analysis.txt").is_file()


def test_yolo_decode_and_nms_on_hand_made_anchors():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import yolo_detection as yolo
    finally:
        sys.path.remove(str(EXAMPLES))
    # 4 anchors, 2 classes: two overlapping boxes of class 0 (IoU 0.68), one of class 1, one
    # below the threshold
    anchors = np.array([
        [50, 50, 20, 20, 0.9, 0.1],   # box (40, 40)-(60, 60), class 0
        [52, 50, 20, 20, 0.8, 0.1],   # overlaps the first: suppressed
        [50, 50, 20, 20, 0.1, 0.7],   # same place, class 1: kept (NMS is per class)
        [10, 10, 4, 4, 0.2, 0.1],     # best score 0.2 < 0.25: dropped
    ], np.float32)  # fmt: skip
    boxes, scores, classes = yolo.post_process(anchors.T[None])
    assert classes.tolist() == [0, 1]
    np.testing.assert_allclose(scores, [0.9, 0.7], rtol=1e-6)
    np.testing.assert_allclose(boxes[0], [40, 40, 60, 60])


def test_yolo_example_runs_on_the_zoo_model(tmp_path):
    model = zoo_file("models/yolov8n_like_320_op13.onnx")
    images = zoo_file("images/dataset.txt").parent
    (tmp_path / "dataset.txt").write_text(f"{images / 'motorcycle_left.png'}\n")
    done = run_example("yolo_detection.py", "--model", model, "--dataset",
                       tmp_path / "dataset.txt", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "boxes after NMS" in done.stdout
