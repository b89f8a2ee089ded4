"""CNA.CBUF_CON0.WEIGHT_REUSE in the simulator: a task that sets it computes with the weights
an earlier task of the job left in the CBUF, not with what memory holds now; and it is an
error when no task loaded weights, or when the loaded ones are not the weights the task's
registers describe. The task is `test_simulator_units.hand_task` (a 1x1 convolution, weight
2 on the diagonal, bias k, output (2x + k) / 2 rounded half away, + 3), outputs worked by
hand."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.simulator import Memory, SimulatorError, run_tasks
from runtime.simulator.registers import RegisterFile
from tests.runtime.test_simulator_units import hand_setup, hand_task

REUSE = {"CNA.CBUF_CON0": {"WEIGHT_REUSE": 1, "WEIGHT_BANK": 1, "DATA_BANK": 11}}
LOAD = {"CNA.CBUF_CON0": {"WEIGHT_REUSE": 0, "WEIGHT_BANK": 1, "DATA_BANK": 11}}


def output(memory: Memory, at: dict[str, int]) -> np.ndarray:
    raw = np.frombuffer(memory.read(at["y_at"], 64), np.int8)
    return raw.reshape(2, 2, 16).transpose(2, 0, 1)


def with_weights_cleared(memory: Memory, at: dict[str, int]) -> None:
    memory.write(at["w_at"], bytes(32 * 32))


def test_a_reusing_task_computes_with_the_weights_in_the_cbuf():
    memory, at, x = hand_setup()
    core = RegisterFile()  # one core runs the job: registers and CBUF persist
    run_tasks(hand_task(memory, **at, **LOAD), memory, registers=core)
    with_weights_cleared(memory, at)  # memory changes; the CBUF keeps what was loaded
    run_tasks(hand_task(memory, **at, **REUSE), memory, registers=core)
    k = np.arange(16)[:, None, None]
    total = 2 * x + k
    np.testing.assert_array_equal(output(memory, at),
                                  np.sign(total) * ((np.abs(total) + 1) // 2) + 3)  # fmt: skip


def test_a_loading_task_reads_memory_again():
    memory, at, _ = hand_setup()
    core = RegisterFile()
    run_tasks(hand_task(memory, **at, **LOAD), memory, registers=core)
    with_weights_cleared(memory, at)
    run_tasks(hand_task(memory, **at, **LOAD), memory, registers=core)
    # weights 0: y = k / 2 rounded half away + 3 = (k + 1) // 2 + 3
    expected = np.broadcast_to(((np.arange(16) + 1) // 2 + 3)[:, None, None], (16, 2, 2))
    np.testing.assert_array_equal(output(memory, at), expected)


def test_reuse_without_loaded_weights_is_an_error():
    memory, at, _ = hand_setup()
    with pytest.raises(SimulatorError, match="no earlier task of the job loaded weights"):
        run_tasks(hand_task(memory, **at, **REUSE), memory)


@pytest.mark.parametrize(
    "other",
    [
        {"CNA.CBUF_CON0": {"WEIGHT_REUSE": 1, "WEIGHT_BANK": 2, "DATA_BANK": 10}},
        {"CNA.DCOMP_ADDR0": "elsewhere"},
    ],
)
def test_reuse_of_other_weights_is_an_error(other):
    memory, at, _ = hand_setup()
    core = RegisterFile()
    run_tasks(hand_task(memory, **at, **LOAD), memory, registers=core)
    if other.get("CNA.DCOMP_ADDR0") == "elsewhere":
        copy_at = memory.allocate(5, memory.read(at["w_at"], 32 * 32))
        other = {**REUSE, "CNA.DCOMP_ADDR0": {"DECOMPRESS_ADDR0": copy_at}}
    with pytest.raises(SimulatorError, match="but the CBUF holds those at"):
        run_tasks(hand_task(memory, **at, **other), memory, registers=core)
