"""The eval_perf-style report (`runtime.perf.report`): columns, rows, totals and ranking of
a built one-convolution model worked by hand, core masks and their errors, RKNN op names on
the zoo's digits_resnet."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from backends.container import Container, read_container
from backends.targets import get_target
from runtime.perf import PerfError, perf_report
from runtime.perf.report import COLUMNS, mask_cores, split_rows
from tests.runtime.perf_layers import build, conv_model
from tests.zoo import ZOO

# The model: input 1x32x16x16 float -> Conv 64 3x3 same -> output, int8 on rk3588.
# CPU InputOperator: 10 us + 8192 elements x 1 ns; CPU OutputOperator: 10 us + 16384 x 1 ns.
# Conv: 256 pixels x 2 kernel groups x 9 steps x 2 cycles = 9216 cycles (> its DDR cycles
# (8192 + 18432 + 2048) / 7.54 + 16384 / 3.67 = 8267), 9.216 us at 1 GHz.
INPUT_US, CONV_US, OUTPUT_US = 18.192, 9.216, 26.384
CONV_DDR = (8192 + 18432 + 2048) / 7.54 + 16384 / 3.67


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Container:
    folder = tmp_path_factory.mktemp("perf_report")
    return read_container(build(conv_model((1, 32, 16, 16), 64, 3), folder, "conv"))


def test_rows_worked_by_hand(container: Container):
    report = perf_report(container)
    assert [(r.op_type, r.target) for r in report.rows] == [
        ("InputOperator", "CPU"),
        ("Conv", "NPU"),
        ("OutputOperator", "CPU"),
    ]
    first, conv, last = report.rows
    assert first.time_us == pytest.approx(INPUT_US)
    assert last.time_us == pytest.approx(OUTPUT_US)
    assert (conv.npu_cycles, conv.task_number) == (9216, 1)
    assert conv.ddr_cycles == pytest.approx(CONV_DDR)
    assert conv.max_cycles == 9216
    assert conv.time_us == pytest.approx(CONV_US)
    assert conv.rw_kb == pytest.approx((8192 + 18432 + 2048 + 16384) / 1024)
    # 256 x 9 x 32 x 64 MACs over 9216 cycles of a 1024-MAC core
    assert conv.mac_usage == pytest.approx(100 * 256 * 9 * 32 * 64 / (9216 * 1024))
    assert conv.input_shape == "(1,32,16,16),(64,32,3,3),(64)"
    assert conv.output_shape == "(1,64,16,16)"
    assert (conv.data_type, conv.full_name) == ("INT8", "Conv:/layer/Conv")
    assert conv.workload == [100.0, 0.0, 0.0]
    assert report.total_time_us == pytest.approx(INPUT_US + CONV_US + OUTPUT_US)
    assert report.fps == pytest.approx(1e6 / (INPUT_US + CONV_US + OUTPUT_US))


def test_text_has_rknn_columns_totals_and_ranking(container: Container):
    text = perf_report(container).text()
    header = next(line for line in text.splitlines() if line.startswith("ID "))
    for column in COLUMNS:
        assert column.replace("WorkLoad", "WorkLoad(0/1/2)") in header
    assert "Total Operator Elapsed Per Frame Time(us): 54" in text  # 53.792 rounded
    assert "Total Memory Read/Write Per Frame Size(KB): 44.00" in text
    ranking = text.split("Operator Time Consuming Ranking Table")[1].splitlines()
    assert ranking[1].split() == ["OpType", "CallNumber", "CPUTime(us)", "GPUTime(us)",
                                  "NPUTime(us)", "TotalTime(us)", "TimeRatio(%)"]  # fmt: skip
    # slowest first: OutputOperator 26 us (49.05 %), InputOperator 18 us, Conv 9 us
    assert ranking[2].split() == ["OutputOperator", "1", "26", "0", "0", "26", "49.05%"]
    assert [line.split()[0] for line in ranking[3:5]] == ["InputOperator", "Conv"]


def test_json_round_trips(container: Container):
    data = json.loads(json.dumps(perf_report(container, "0_1").as_dict()))
    assert data["target"] == "rk3588" and data["core_mask"] == "0_1"
    assert len(data["rows"]) == 3
    assert sum(e["TimeRatio(%)"] for e in data["ranking"]) == pytest.approx(100)
    assert data["model"]["CYCLES_PER_STEP"] == 2


def test_multi_core_splits_compute_not_ddr(container: Container):
    # 0_1_2: 16 output rows -> 6 / 5 / 5; NPU cycles 9216 x 6 / 16 = 3456; the shared DDR
    # (8267 cycles) now bounds the conv
    conv = perf_report(container, "0_1_2").rows[1]
    assert conv.workload == pytest.approx([37.5, 31.25, 31.25])
    assert conv.npu_cycles == 3456
    assert conv.max_cycles == pytest.approx(CONV_DDR)
    assert perf_report(container, "all").rows[1].workload == pytest.approx([37.5, 31.25, 31.25])
    # 0_1: 8 / 8 rows
    assert perf_report(container, "0_1").rows[1].workload == [50.0, 50.0, 0.0]


def test_single_core_masks_pick_the_core(container: Container):
    assert perf_report(container, "1").rows[1].workload == [0.0, 100.0, 0.0]
    assert perf_report(container, "2").rows[1].workload == [0.0, 0.0, 100.0]
    assert perf_report(container, "auto").rows[1].workload == [100.0, 0.0, 0.0]
    assert perf_report(container, "2").rows[1].time_us == pytest.approx(CONV_US)


def test_core_masks_per_chip():
    rk3588, rk3576, rk3568 = (get_target(n) for n in ("rk3588", "rk3576", "rk3568"))
    assert mask_cores(rk3588, "all") == [0, 1, 2]
    assert mask_cores(rk3588, "0_1") == [0, 1]
    assert mask_cores(rk3576, "all") == [0, 1]
    for chip, mask in ((rk3576, "0_1_2"), (rk3576, "2"), (rk3568, "0"), (rk3588, "3")):
        with pytest.raises(PerfError, match=f"no core mask '{mask}'"):
            mask_cores(chip, mask)


def test_split_rows():
    assert split_rows(16, 3) == [6, 5, 5]
    assert split_rows(2, 3) == [1, 1, 0]
    assert split_rows(7, 1) == [7]


def test_fused_ops_get_rknn_names(tmp_path: Path):
    from tests.runtime.test_session import built

    path = ZOO / "digits" / "digits_resnet.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    container, _, _ = built("digits_resnet", tmp_path)
    types = [row.op_type for row in perf_report(read_container(container)).rows]
    # digits_resnet: stem Conv+Clip; residual block Conv+Relu, Conv+Add+Relu; GAP; Gemm
    assert types[:4] == ["InputOperator", "ConvClip", "ConvRelu", "ConvAddRelu"]
    assert "GlobalAveragePool" in types and "FullyConnected" in types
    assert types[-1] == "OutputOperator"


def test_without_the_ir_rows_keep_their_cycles(container: Container):
    sections = {k: v for k, v in container.sections.items() if k != "module"}
    bare = dataclasses.replace(container, sections=sections)
    conv = perf_report(bare).rows[1]
    assert (conv.op_type, conv.npu_cycles, conv.input_shape) == ("Conv", 9216, "")
    assert conv.data_type == "INT8"  # from the task's input precision


def test_bad_task_table_is_a_perf_error(container: Container):
    metadata = {**container.metadata, "tasks": [[3, 0, 10**6]]}
    with pytest.raises(PerfError, match="outside the commands"):
        perf_report(dataclasses.replace(container, metadata=metadata))
