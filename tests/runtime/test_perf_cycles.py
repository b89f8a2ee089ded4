"""The cycle model (`runtime.perf.cycles`) on hand-written register streams and on a built
convolution, against numbers worked out by hand from the documented constants:

- CYCLES_PER_STEP 2, MIN_STEPS_PER_OUTPUT 4 (cycles.py, fitted to sdk §4.1 fig 8-3);
- RK3588 int8: MAC array 32 x 32, depthwise groups of 64 channels, C2 16, DDR 7.54 B/cycle
  read and 3.67 B/cycle write, clock 1 GHz (backends/targets/chips.py);
- RKNN's published NPUCycles of fig 8-3 for the formula itself."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from backends.container import read_container
from backends.registers import encode
from backends.registers.values import weight_atoms
from backends.targets import get_target
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions
from runtime.perf.cycles import (
    CONV,
    DPU,
    PerfError,
    conv_npu_cycles,
    cpu_op_us,
    read_words,
    task_costs,
)
from runtime.perf.report import perf_report
from tests.runtime.perf_layers import build, conv_model

RK3588 = get_target("rk3588")
READ_RATE, WRITE_RATE = 7.54, 3.67  # chips.py, RK3588 ddr_bytes_per_cycle
CONV_ENABLE = {"CNA_OP_EN": 1, "CORE_OP_EN": 1, "DPU_OP_EN": 1, "DPU_RDMA_OP_EN": 1}


def conv_task(channels: int, kernels: int, kernel: int, height: int, width: int,
              depthwise: bool = False, weight_bytes: int = 0) -> list[int]:  # fmt: skip
    """The register words of one int8 NC1HWC2 convolution task, stride 1, same padding (the
    fields `runtime.simulator.mac.conv_shape` and the DPU cube read), ending in op-enable."""
    mode = 3 if depthwise else 0  # CONV_MODE_DEPTHWISE
    out_channels = channels if depthwise else kernels
    return [
        encode("CNA", "CONV_CON1", CONV_MODE=mode),
        encode("CORE", "MISC_CFG", DW_EN=int(depthwise)),
        encode("CNA", "CVT_CON0", CVT_BYPASS=1),
        encode("CNA", "DATA_SIZE0", DATAIN_WIDTH=width, DATAIN_HEIGHT=height),
        encode("CNA", "DATA_SIZE1", DATAIN_CHANNEL=channels, DATAIN_CHANNEL_REAL=channels - 1),
        encode("CNA", "FC_DATA_SIZE0", DMA_WIDTH=width, DMA_HEIGHT=height),
        encode("CNA", "FC_DATA_SIZE1", DMA_CHANNEL=channels),
        encode("CNA", "DATA_SIZE2", DATAOUT_WIDTH=width),
        encode("CNA", "DATA_SIZE3", DATAOUT_ATOMICS=width * height),
        encode("CORE", "DATAOUT_SIZE_0", DATAOUT_WIDTH=width - 1, DATAOUT_HEIGHT=height - 1),
        encode("CORE", "DATAOUT_SIZE_1", DATAOUT_CHANNEL=out_channels - 1),
        encode("CNA", "CONV_CON3", CONV_X_STRIDE=1, CONV_Y_STRIDE=1),
        encode(
            "CNA",
            "WEIGHT_SIZE2",
            WEIGHT_KERNELS=1 if depthwise else kernels,
            WEIGHT_HEIGHT=kernel,
            WEIGHT_WIDTH=kernel,
        ),
        encode("CNA", "WEIGHT_SIZE0", WEIGHT_BYTES=weight_bytes),
        encode("DPU", "DATA_CUBE_WIDTH", WIDTH=width - 1),
        encode("DPU", "DATA_CUBE_HEIGHT", HEIGHT=height - 1),
        encode("DPU", "DATA_CUBE_CHANNEL", CHANNEL=out_channels - 1, ORIG_CHANNEL=out_channels - 1),
        encode("DPU_RDMA", "RDMA_BRDMA_CFG", BRDMA_DATA_USE=3),  # one 32-byte record a channel
        encode("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DISABLE=1),
        encode("CMD", "OP_ENABLE", **CONV_ENABLE),
    ]


def costs_of(words: list[int]) -> list:
    return task_costs(words, [[7, 0, len(words)]], RK3588)


def test_direct_convolution_worked_by_hand():
    # 64 -> 48 channels, 3x3, 10 x 12 output. K: ceil(48 / 32) = 2 kernel groups; inner
    # steps: 9 taps x ceil(64 / 32) = 18 (above the floor of 4); 2 cycles a step; 120 pixels
    # -> 120 x 2 x 18 x 2 = 8640 cycles.
    # Read: input 64 ch x 10 x 12 = 7680 B, weights 36864 B (as written), records 48 x 32 =
    # 1536 B -> 46080 B; write: 48 ch (3 atoms of 16) x 120 = 5760 B.
    (cost,) = costs_of(conv_task(64, 48, 3, 10, 12, weight_bytes=36864))
    assert (cost.kind, cost.dtype, cost.op_index, cost.task) == (CONV, "i8", 7, 0)
    assert cost.npu_cycles == 8640
    assert (cost.read_bytes, cost.write_bytes) == (46080, 5760)
    assert cost.ddr_cycles == pytest.approx(46080 / READ_RATE + 5760 / WRITE_RATE)
    assert cost.max_cycles == 8640  # 6111 + 1569 = 7681 DDR cycles: compute-bound
    assert cost.macs == 120 * 9 * 64 * 48
    assert cost.rows == 10


def test_one_by_one_convolution_has_a_floor_of_four_steps():
    # 32 -> 32, 1x1, 8 x 8: 1 kernel group x max(1 x 1, 4) steps x 2 cycles x 64 pixels
    (cost,) = costs_of(conv_task(32, 32, 1, 8, 8))
    assert cost.npu_cycles == 64 * 1 * 4 * 2


def test_depthwise_convolution_uses_groups_of_64_channels():
    # 96 channels, 3x3, 6 x 6: ceil(96 / 64) = 2 groups x 9 taps x 2 cycles x 36 pixels;
    # MACs one channel deep: 36 x 9 x 96
    (cost,) = costs_of(conv_task(96, 1, 3, 6, 6, depthwise=True))
    assert cost.npu_cycles == 2 * 9 * 2 * 36
    assert cost.macs == 36 * 9 * 96
    # write: 96 channels = 6 atoms of 16, 36 pixels
    assert cost.write_bytes == 96 * 36


# sdk §4.1 fig 8-3: (C, K, kernel, output H x W, published NPUCycles)
FIG_8_3 = [
    (3, 32, 3, 240 * 320, 1382400),
    (32, 64, 3, 120 * 160, 691200),
    (64, 32, 1, 120 * 160, 153600),
    (32, 32, 1, 120 * 160, 153600),
    (32, 32, 3, 120 * 160, 345600),
    (64, 64, 1, 120 * 160, 307200),
    (64, 128, 3, 60 * 80, 691200),
    (128, 64, 1, 60 * 80, 76800),
]


@pytest.mark.parametrize(("channels", "kernels", "kernel", "pixels", "published"), FIG_8_3)
def test_formula_gives_rknn_published_npu_cycles(channels, kernels, kernel, pixels, published):
    atoms = weight_atoms(RK3588, "i8")
    cycles = conv_npu_cycles(channels, kernels, (kernel, kernel), pixels, False, atoms)
    assert cycles == published


def test_dpu_task_is_ddr_bound_by_its_bytes():
    # an element-wise add of two 32 x 8 x 8 int8 cubes (per-element EW operand)
    words = [
        encode("DPU", "DATA_CUBE_WIDTH", WIDTH=7),
        encode("DPU", "DATA_CUBE_HEIGHT", HEIGHT=7),
        encode("DPU", "DATA_CUBE_CHANNEL", CHANNEL=31, ORIG_CHANNEL=31),
        encode("DPU_RDMA", "RDMA_ERDMA_CFG", ERDMA_DATA_MODE=1, ERDMA_DATA_SIZE=1),
        encode("CMD", "OP_ENABLE", DPU_OP_EN=1, DPU_RDMA_OP_EN=1),
    ]
    (cost,) = costs_of(words)
    # read: main cube 2048 B + EW cube 2048 B; write 2048 B; compute: 2 x 64 atoms
    assert cost.kind == DPU
    assert (cost.read_bytes, cost.write_bytes, cost.npu_cycles) == (4096, 2048, 128)
    assert cost.max_cycles == pytest.approx(4096 / READ_RATE + 2048 / WRITE_RATE)


def test_registers_carry_over_between_tasks():
    # the second task writes only its op-enable word: the hardware keeps the registers
    first = conv_task(32, 32, 1, 8, 8)
    words = [*first, encode("CMD", "OP_ENABLE", **CONV_ENABLE)]
    costs = task_costs(words, [[1, 0, len(first)], [2, len(first), 1]], RK3588)
    assert [c.npu_cycles for c in costs] == [512, 512]
    assert [c.op_index for c in costs] == [1, 2]


def test_a_task_reusing_the_cbuf_weights_does_not_read_them():
    # two row bands of the 64 -> 48 3x3 convolution above; the second sets WEIGHT_REUSE and
    # reads input + records only: 7680 + 1536 B
    first = conv_task(64, 48, 3, 10, 12, weight_bytes=36864)
    second = [encode("CNA", "CBUF_CON0", WEIGHT_REUSE=1), encode("CMD", "OP_ENABLE", **CONV_ENABLE)]
    costs = task_costs([*first, *second], [[3, 0, len(first)], [3, len(first), 2]], RK3588)
    assert [c.read_bytes for c in costs] == [46080, 9216]
    assert costs[1].ddr_cycles == pytest.approx(9216 / READ_RATE + 5760 / WRITE_RATE)
    assert [c.npu_cycles for c in costs] == [8640, 8640]


def test_bad_streams_are_one_line_errors():
    task = conv_task(32, 32, 1, 8, 8)
    with pytest.raises(PerfError, match="no op-enable word"):
        costs_of(task[:-1])
    with pytest.raises(PerfError, match="outside the commands"):
        task_costs(task, [[0, 0, len(task) + 1]], RK3588)
    with pytest.raises(PerfError, match="op-enable of CNA"):
        costs_of([encode("CMD", "OP_ENABLE", CNA_OP_EN=1)])
    with pytest.raises(PerfError, match="task 0"):  # inconsistent: CORE size disagrees
        costs_of([*task[:9], encode("CORE", "DATAOUT_SIZE_0"), *task[10:]])


def test_cpu_op_model():
    # 10 us fixed + 1 ns per element + MACs / 8000 per us
    assert cpu_op_us(8192) == pytest.approx(10 + 8.192)
    assert cpu_op_us(1000, macs=80_000) == pytest.approx(10 + 1 + 10)


def test_built_convolution_container(tmp_path: Path):
    # 1x32x16x16 -> Conv 64 3x3 same: one task; 256 pixels x 2 kernel groups x 9 steps x 2
    path = build(conv_model((1, 32, 16, 16), 64, 3), tmp_path, "conv")
    container = read_container(path)
    costs = task_costs(read_words(container.sections["commands"]),
                       container.metadata["tasks"], RK3588)  # fmt: skip
    assert sum(c.npu_cycles for c in costs) == 256 * 2 * 9 * 2
    assert sum(c.macs for c in costs) == 256 * 9 * 32 * 64
    # every task belongs to the conv op of the op table
    (conv,) = [op for op in container.metadata["ops"] if op["op"] == "npu.conv2d"]
    assert {c.op_index for c in costs} == {conv["index"]}
    report = perf_report(container)
    (row,) = [r for r in report.rows if r.target == "NPU"]
    # read: input 8192 B + weights 18432 B (64 x 32 x 9) + records 64 x 32 B; write 16384 B
    assert row.ddr_cycles == pytest.approx((8192 + 18432 + 2048) / READ_RATE + 16384 / WRITE_RATE)
    assert row.time_us == pytest.approx(9.216)  # 9216 cycles at 1 GHz, compute-bound


def test_built_float16_convolution_container(tmp_path: Path):
    # 1x32x16x16 -> Conv 64 3x3 same in float16 (no dataset): RK3588's assumed float16 array
    # is 32 input x 16 output channels (chips.py), so ceil(64 / 16) = 4 kernel groups x 9
    # steps x 2 cycles x 256 pixels = 18432 cycles
    onnx_path = tmp_path / "conv.onnx"
    onnx.save(conv_model((1, 32, 16, 16), 64, 3), onnx_path)
    result = build_model(import_onnx(onnx_path), None, QuantizeOptions(dtype="f16", progress=False))
    container = result.container
    costs = task_costs(read_words(container.sections["commands"]),
                       container.metadata["tasks"], RK3588)  # fmt: skip
    assert {c.dtype for c in costs} == {"f16"}
    assert sum(c.npu_cycles for c in costs) == 18432
    # read: input 32 ch x 256 px x 2 B = 16384, weights 64 x 32 x 9 x 2 B = 36864, the
    # float32 bias table 64 x 4 B = 256; write: 64 ch x 256 px x 2 B = 32768
    assert sum(c.read_bytes for c in costs) == 16384 + 36864 + 256
    assert sum(c.write_bytes for c in costs) == 32768
