"""The simulator's parts without code generation: memory and the loader (addresses,
relocations, guard pages, little-endian elements), a convolution task written register by
register here with its output worked out by hand, chaining, and the errors for streams it
must refuse (unsupported blocks, a task without op-enable, a bad chain, inconsistent
registers)."""

from __future__ import annotations

import numpy as np
import pytest

from backends.container import Relocation
from backends.registers import encode, task_trailer
from runtime.simulator import Memory, SimulatorError, load, patch, run_tasks
from runtime.simulator.memory import BASE, PAGE

# ---------------------------------------------------------------------- memory


def test_buffers_get_aligned_addresses_with_a_gap():
    memory = Memory()
    a = memory.allocate(7, 100)
    b = memory.allocate(3, b"\x01\x02")
    assert a == BASE and a % PAGE == 0 and b % PAGE == 0
    assert b - (a + 100) >= PAGE  # an unmapped page between buffers
    assert memory.locate(a + 99) == (7, 99)
    assert memory.read(b, 2) == b"\x01\x02"
    with pytest.raises(SimulatorError, match="past the end of buffer 7"):
        memory.read(a + 90, 11)
    with pytest.raises(SimulatorError, match="in no buffer"):
        memory.read(a + 100 + 8, 1)
    with pytest.raises(SimulatorError, match="twice"):
        memory.allocate(7, 1)


def test_elements_are_little_endian():
    memory = Memory()
    a = memory.allocate(0, 8)
    memory.write_elements(a, np.array([0, 4]), np.array([-2, 0x1234]), np.dtype(np.int16))
    assert memory.read(a, 6) == b"\xfe\xff\x00\x00\x34\x12"
    got = memory.read_elements(a, np.array([[4, 0]]), np.dtype(np.int16))
    assert got.tolist() == [[0x1234, -2]]


def test_the_loader_patches_value_fields():
    words = [encode("CNA", "FEATURE_DATA_ADDR"), encode("DPU", "DST_BASE_ADDR"), 0]
    relocations = [Relocation(0, 1, 0x40), Relocation(8, 2, 16)]
    memory, patched = load(words, relocations, {1: 256}, commands_buffer=2)
    arena, commands = memory.base(1), memory.base(2)
    assert patched[0] == encode("CNA", "FEATURE_DATA_ADDR", FEATURE_BASE_ADDR=arena + 0x40)
    assert patched[1] == encode("DPU", "DST_BASE_ADDR", DST_BASE_ADDR=commands + 16)
    assert words[0] == encode("CNA", "FEATURE_DATA_ADDR")  # the input words are not changed
    stored = np.frombuffer(memory.read(commands, 24), "<u8").tolist()
    assert stored == patched
    with pytest.raises(SimulatorError, match="not a word"):
        patch(words, [Relocation(4, 1, 0)], memory)
    with pytest.raises(SimulatorError, match="32 bits"):
        patch(words, [Relocation(0, 1, 1 << 32)], memory)


# ---------------------------------------------------------------------- one task by hand


def hand_task(memory: Memory, x_at: int, y_at: int, w_at: int, bias_at: int,
              **changes: dict[str, int]) -> list[int]:  # fmt: skip
    """A 1x1 convolution of a 16-channel 2x2 int8 NC1HWC2 input into 16 channels, weights
    and bias at `w_at` / `bias_at` (int32 per channel, BRDMA_DATA_USE 1), output converter
    scale 1, shift 1, offset 3. `changes` replaces a register's fields."""
    writes = {
        "CNA.CONV_CON1": {},
        "CNA.CVT_CON0": {"CVT_BYPASS": 1},
        "CNA.CONV_CON3": {"CONV_X_STRIDE": 1, "CONV_Y_STRIDE": 1},
        "CNA.DATA_SIZE0": {"DATAIN_WIDTH": 2, "DATAIN_HEIGHT": 2},
        "CNA.DATA_SIZE1": {"DATAIN_CHANNEL": 16, "DATAIN_CHANNEL_REAL": 15},
        "CNA.FC_DATA_SIZE0": {"DMA_WIDTH": 2, "DMA_HEIGHT": 2},
        "CNA.FC_DATA_SIZE1": {"DMA_CHANNEL": 16},
        "CNA.DATA_SIZE2": {"DATAOUT_WIDTH": 2},
        "CNA.DATA_SIZE3": {"DATAOUT_ATOMICS": 4},
        "CNA.FEATURE_DATA_ADDR": {"FEATURE_BASE_ADDR": x_at},
        "CNA.DMA_CON1": {"LINE_STRIDE": 2},
        "CNA.DMA_CON2": {"SURF_STRIDE": 4},
        "CNA.WEIGHT_SIZE2": {"WEIGHT_WIDTH": 1, "WEIGHT_HEIGHT": 1, "WEIGHT_KERNELS": 16},
        "CNA.WEIGHT_SIZE1": {"WEIGHT_BYTES_PER_KERNEL": 32},
        "CNA.WEIGHT_SIZE0": {"WEIGHT_BYTES": 1024},
        "CNA.DCOMP_ADDR0": {"DECOMPRESS_ADDR0": w_at},
        "CORE.MISC_CFG": {"QD_EN": 1},
        "CORE.DATAOUT_SIZE_0": {"DATAOUT_WIDTH": 1, "DATAOUT_HEIGHT": 1},
        "CORE.DATAOUT_SIZE_1": {"DATAOUT_CHANNEL": 15},
        "DPU.FEATURE_MODE_CFG": {"OUTPUT_MODE": 2},
        "DPU.DST_BASE_ADDR": {"DST_BASE_ADDR": y_at},
        "DPU.DST_SURF_STRIDE": {"DST_SURF_STRIDE": 4},
        "DPU.DATA_CUBE_WIDTH": {"WIDTH": 1},
        "DPU.DATA_CUBE_HEIGHT": {"HEIGHT": 1},
        "DPU.DATA_CUBE_CHANNEL": {"CHANNEL": 15, "ORIG_CHANNEL": 15},
        "DPU.BS_CFG": {"BS_ALU_ALGO": 2, "BS_ALU_SRC": 1, "BS_MUL_BYPASS": 1, "BS_RELU_BYPASS": 1},
        "DPU.BN_CFG": {"BN_BYPASS": 1},
        "DPU.EW_CFG": {"EW_BYPASS": 1},
        "DPU.OUT_CVT_OFFSET": {"OUT_CVT_OFFSET": 3},
        "DPU.OUT_CVT_SCALE": {"OUT_CVT_SCALE": 1},
        "DPU.OUT_CVT_SHIFT": {"OUT_CVT_SHIFT": 1},
        "DPU_RDMA.RDMA_DATA_CUBE_WIDTH": {"WIDTH": 1},
        "DPU_RDMA.RDMA_DATA_CUBE_HEIGHT": {"HEIGHT": 1},
        "DPU_RDMA.RDMA_DATA_CUBE_CHANNEL": {"CHANNEL": 15},
        "DPU_RDMA.RDMA_BRDMA_CFG": {"BRDMA_DATA_USE": 1},
        "DPU_RDMA.RDMA_BS_BASE_ADDR": {"BS_BASE_ADDR": bias_at},
        "DPU_RDMA.RDMA_ERDMA_CFG": {"ERDMA_DISABLE": 1},
        "DPU_RDMA.RDMA_FEATURE_MODE_CFG": {"MRDMA_DISABLE": 1},
    }
    writes.update(changes)
    words = [encode(*name.split("."), **fields) for name, fields in writes.items()]
    return words + list(task_trailer(single_task=True))


def hand_setup() -> tuple[Memory, dict[str, int], np.ndarray]:
    memory = Memory()
    # weights: the 32 x 32 block of a 1x1 kernel, kernel k reads input k twice
    block = np.zeros((32, 32), np.int8)
    block[np.arange(16), np.arange(16)] = 2
    w_at = memory.allocate(0, block.tobytes())
    bias_at = memory.allocate(1, np.arange(16, dtype="<i4").tobytes())
    # x[c, h, w] = c + 4h + 2w - 10, stored NC1HWC2 (one C1 block: [h][w][16])
    x = np.arange(16)[:, None, None] + 4 * np.arange(2)[None, :, None] + 2 * np.arange(2) - 10
    x_at = memory.allocate(2, x.transpose(1, 2, 0).astype(np.int8).tobytes())
    y_at = memory.allocate(3, 64)
    return memory, {"x_at": x_at, "y_at": y_at, "w_at": w_at, "bias_at": bias_at}, x


def test_a_task_written_by_hand():
    memory, at, x = hand_setup()
    traces = run_tasks(hand_task(memory, **at), memory)
    assert [t.blocks for t in traces] == [("CNA", "CORE", "DPU", "DPU_RDMA")]
    # y = (2x + k) / 2 rounded half away from zero, + 3
    k = np.arange(16)[:, None, None]
    total = 2 * x + k
    expected = np.sign(total) * ((np.abs(total) + 1) // 2) + 3
    got = np.frombuffer(memory.read(at["y_at"], 64), np.int8).reshape(2, 2, 16).transpose(2, 0, 1)
    np.testing.assert_array_equal(got, expected)
    assert got[1, 0, 0] == 3 + (2 * -9 + 1) // 2 + 0  # -17 / 2 = -8.5 -> -9, + 3 = -6


def test_two_chained_tasks_and_the_announced_size():
    memory, at, _ = hand_setup()
    first = hand_task(memory, **at)
    second = hand_task(memory, **at, **{"DPU.OUT_CVT_OFFSET": {"OUT_CVT_OFFSET": 5}})
    second_at = 64  # words: the first task padded to 64 words
    half = (len(second) - 4) // 2
    first[-4:] = task_trailer(next_address=0, next_words=len(second))
    words = first + [0] * (second_at - len(first)) + second
    memory.allocate(9, len(words) * 8)
    memory.commands_buffer = 9
    commands = memory.base(9)
    words = patch(words, [Relocation((len(first) - 4) * 8, 9, second_at * 8)], memory)
    traces = run_tasks(words, memory)
    assert [t.first_word for t in traces] == [0, second_at]
    # y[0, 0, 0] = (2 * -10 + 0) / 2 + 5: the second task's offset is the last written
    assert np.frombuffer(memory.read(at["y_at"], 1), np.int8)[0] == -5
    # a trailer announcing another size is refused
    bad = list(words)
    bad[len(first) - 3] = encode("PC", "REGISTER_AMOUNTS", PC_DATA_AMOUNT=half + 4)
    with pytest.raises(SimulatorError, match="announced"):
        run_tasks(bad, memory)
    # a next address outside the command buffer is refused
    bad = list(words)
    bad[len(first) - 4] = encode("PC", "BASE_ADDRESS", PC_SOURCE_ADDR=at["y_at"] >> 4)
    with pytest.raises(SimulatorError, match="not a word of the commands"):
        run_tasks(bad, memory)
    assert commands == memory.base(9)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CNA.FC_DATA_SIZE1": {"DMA_CHANNEL": 32}}, "FC_DATA_SIZE"),
        ({"CORE.DATAOUT_SIZE_1": {"DATAOUT_CHANNEL": 7}}, "DATAOUT_SIZE_1"),
        ({"CNA.WEIGHT_SIZE0": {"WEIGHT_BYTES": 512}}, "weight sizes"),
        ({"CNA.CVT_CON0": {}}, "input convert"),
        ({"DPU.DATA_CUBE_WIDTH": {"WIDTH": 3}}, "DPU cube"),
        ({"DPU_RDMA.RDMA_BRDMA_CFG": {"BRDMA_DATA_USE": 2}}, "BRDMA_DATA_USE 2"),
        ({"DPU.BS_OW_OP": {"OW_OP": 128}}, "weight zero point"),
        ({"DPU.OUT_CVT_SHIFT": {"OUT_CVT_SHIFT": 1, "CVT_TYPE": 1}}, "integer output"),
        ({"CNA.DCOMP_ADDR0": {"DECOMPRESS_ADDR0": 0x100}}, "in no buffer"),
    ],
)
def test_inconsistent_or_unsupported_registers_are_refused(changes, message):
    memory, at, _ = hand_setup()
    with pytest.raises(SimulatorError, match=message):
        run_tasks(hand_task(memory, **at, **changes), memory)


def test_streams_it_must_refuse():
    memory, at, _ = hand_setup()
    words = hand_task(memory, **at)
    with pytest.raises(SimulatorError, match="no op-enable"):
        run_tasks(words[:-1], memory)
    mixed = [*words[:-1], encode("CMD", "OP_ENABLE", CORE_OP_EN=1, PPU_OP_EN=1)]
    with pytest.raises(SimulatorError, match="only convolution"):
        run_tasks(mixed, memory)
    with pytest.raises(SimulatorError, match="unknown target"):
        run_tasks([0x7777_0000_0000_1000, *words], memory)
    with pytest.raises(SimulatorError, match=r"PC\.INTERRUPT_MASK"):
        run_tasks([encode("PC", "INTERRUPT_MASK"), *words], memory)
