"""The hardware path end to end on the fake rocket device: containers built from a tiny
ONNX graph (two NPU jobs around a CPU op) and from the zoo's digits CNN run through
`Session(..., backend="rocket")` give the simulator path's (`Session`) outputs bit for bit; the jobs
submitted are the container's jobs, a task per `drm_rocket_task` at its command words; the
relocated words hold the BOs' NPU addresses; BOs are synced around each job; a wrong task
length is refused; and without an NPU the session fails with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from backends.codegen.buffers import ARENA, COMMANDS, WEIGHTS, input_buffer, output_buffer
from backends.container import Container, read_container, unpack_relocations, write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions
from runtime.hardware import NoNpuDeviceError, RocketError
from runtime.hardware.fake import FakeRocketDevice
from runtime.session import Session
from tests.runtime.test_session import calibration_subset
from tests.zoo import ZOO

WORD = 8
VALUE_SHIFT = 16  # a command word's 32-bit value field: bits 16..47 (anchors.md §1.3)


def tiny_model(folder: Path) -> tuple[Path, Path]:
    """conv -> relu -> sigmoid (kept on the CPU) -> conv, and a calibration set."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (4, 8, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Sigmoid", ["b"], ["c"], name="sigmoid"),
        helper.make_node("Conv", ["c", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    path = folder / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    lines = []
    for i in range(4):
        np.save(folder / f"s{i}.npy", rng.normal(0, 1, (1, 1, 8, 8)).astype(np.float32))
        lines.append(f"{folder / f's{i}.npy'}\n")
    (folder / "dataset.txt").write_text("".join(lines))
    return path, folder / "dataset.txt"


@pytest.fixture
def tiny(tmp_path: Path) -> Container:
    model, dataset = tiny_model(tmp_path)
    options = QuantizeOptions(progress=False, cpu_ops=frozenset({"sigmoid"}))
    result = build_model(import_onnx(model), dataset, options)
    assert result.summary()["not_generated"] == []
    path = tmp_path / "tiny.rknn"
    write_container(result.container, path)
    return read_container(path)


def feeds(count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.normal(0, 1, (1, 1, 8, 8)).astype(np.float32)} for _ in range(count)]


def test_tiny_model_matches_the_simulator_bit_for_bit(tiny):
    assert len(tiny.metadata["jobs"]) == 2, "the CPU sigmoid should split the NPU work in two"
    simulator = Session(tiny)
    with Session(
        tiny, backend="rocket", device=FakeRocketDevice(simulator.target).device()
    ) as hardware:
        outputs = []
        for feed in feeds(3):
            expected = simulator.run(feed)["y"]
            got = hardware.run(feed)["y"]
            assert got.dtype == expected.dtype and got.shape == (1, 4, 8, 8)
            np.testing.assert_array_equal(got, expected)
            outputs.append(got)
    assert not np.array_equal(outputs[0], outputs[1]), "inputs should change the outputs"


def test_each_job_is_submitted_as_its_tasks(tiny):
    fake = FakeRocketDevice()
    with Session(tiny, backend="rocket", device=fake.device()) as session:
        session.run(feeds(1)[0])
        bos = session.runner.bos
    meta = tiny.metadata
    ends = [*meta["jobs"][1:], len(meta["tasks"])]
    base = bos[COMMANDS].dma_address
    expected = [
        [(base + first * WORD, count) for _, first, count in meta["tasks"][start:end]]
        for start, end in zip(meta["jobs"], ends, strict=True)
    ]
    assert [[(t.regcmd, t.regcmd_count) for t in job.tasks] for job in fake.submitted] == expected
    read_only = (bos[WEIGHTS].handle, bos[COMMANDS].handle)
    written = tuple(bos[i].handle for i in (ARENA, input_buffer(0), output_buffer(1, 0)))
    for job in fake.submitted:
        assert (job.in_bo_handles, job.out_bo_handles) == (read_only, written)


def test_bos_are_synced_around_each_job(tiny):
    fake = FakeRocketDevice()
    with Session(tiny, backend="rocket", device=fake.device()) as session:
        fake.calls.clear()
        session.run(feeds(1)[0])
    fini, prep = "DRM_IOCTL_ROCKET_FINI_BO", "DRM_IOCTL_ROCKET_PREP_BO"
    submit = "DRM_IOCTL_ROCKET_SUBMIT"
    # five BOs (weights, arena, commands, input, output): all flushed once before the first
    # job, then the three the CPU and NPU write (arena, input, output) around each job
    assert fake.calls == [fini] * 5 + [submit] + [prep] * 3 + [fini] * 3 + [submit] + [prep] * 3


def test_relocated_words_hold_the_bo_addresses(tiny):
    with Session(tiny, backend="rocket", device=FakeRocketDevice().device()) as session:
        words, bos = session.runner.words, session.runner.bos
        simulated = Session(tiny).words
    relocations = unpack_relocations(tiny.sections["relocations"])
    assert relocations
    for r in relocations:
        address = bos[r.buffer_id].dma_address + r.buffer_offset
        assert (words[r.offset_in_commands // WORD] >> VALUE_SHIFT) & 0xFFFF_FFFF == address
    assert words != simulated  # the BOs are not where the simulator's loader put buffers


def test_a_task_length_that_is_off_is_refused(tiny):
    _, first, count = tiny.metadata["tasks"][0]
    assert count % 2 == 1, "the case below needs an odd task length"
    with Session(tiny, backend="rocket", device=FakeRocketDevice().device()) as session:
        # too short: the PC never fetches the op-enable word (the NPU would hang)
        with pytest.raises(RocketError, match=r"SUBMIT.*no op-enable word.*\(EIO\)"):
            session.runner.run_job([(first, count - 1)])
        # too long: fetched, but the op-enable word is not the last
        with pytest.raises(RocketError, match=rf"SUBMIT.*regcmd_count {count + 1}.*\(EINVAL\)"):
            session.runner.run_job([(first, count + 1)])


def test_without_an_npu_the_session_says_so(tiny):
    if Path("/dev/accel").exists() and any(Path("/dev/accel").glob("accel*")):
        pytest.skip("this machine has an accel node")
    with pytest.raises(NoNpuDeviceError, match=r"^no NPU device: nothing matches /dev/accel/"):
        Session(tiny, backend="rocket")


def test_digits_cnn_matches_the_simulator_bit_for_bit(tmp_path):
    model = ZOO / "digits" / "digits_cnn.onnx"
    if not model.exists():
        pytest.skip(f"{model} not found (the shared zoo is absent)")
    folder = ZOO / "digits" / "data16"
    dataset = calibration_subset(folder, tmp_path)
    container = build_model(import_onnx(model), dataset, QuantizeOptions(progress=False)).container
    simulator = Session(container)
    (spec,) = simulator.metadata["inputs"]
    (out,) = simulator.metadata["outputs"]
    images = np.load(folder / "test_x.npy")[:10]
    tops = set()
    with Session(
        container, backend="rocket", device=FakeRocketDevice(simulator.target).device()
    ) as hardware:
        for image in images:
            feed = {spec["name"]: image[None].astype(np.float32)}
            got = hardware.run(feed)[out["name"]]
            np.testing.assert_array_equal(got, simulator.run(feed)[out["name"]])
            tops.add(int(np.argmax(got)))
    assert len(tops) > 1, "every image gets one class: the comparison means little"
