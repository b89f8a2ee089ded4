"""`tile`: backend.tasks on every NPU op that computes, from lowered ONNX graphs whose
placement and layout attributes the tests set themselves (`backend_fixture.place`). The
task counts are worked by hand for RK3588 (12 banks x 32 KiB, int8 C2 16); see also
tests/backends/test_cbuf.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from backends.cbuf import Cbuf, Feature, TilingError, conv_input_rows, tile, transposed_input_rows
from compiler.errors import CompilerError
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import ops as npu
from dialects.npu.placement import TASKS, get_tasks
from passes.tile import ELEMENTWISE, mac_problem
from tests.helpers.npu import import_graph, lower, measured_ranges, onnx_graph, samples
from tests.passes.backend_fixture import compute_ops, place
from tests.passes.helpers import run_passes
from tests.zoo import ZOO

RNG = np.random.default_rng(11)


def f32(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.1).astype(np.float32)


def lowered(nodes, inputs, outputs, inits=None, chip="rk3588", cpu=()):
    """The graph imported, lowered to `npu` on ranges measured on one sample, placed."""
    model = import_graph(onnx_graph(nodes, inputs, outputs, inits))
    after, _ = lower(model, measured_ranges(model, samples(model, 1)))
    return place(after, chip, cpu)


def tiled(model, spec: str = "tile") -> list[str]:
    return run_passes(model, spec).notes


def tasks_by_node(model) -> dict[str, list[tuple[int, int, int, int]]]:
    """Tasks by ONNX node name (`npu.quantize` / `npu.dequantize` by op name: no node)."""
    return {
        op.node_name or op.name: get_tasks(op)
        for op in compute_ops(model)
        if TASKS in op.attributes
    }


def conv(name, x, y, w, pads=(1, 1, 1, 1), **attrs):
    return helper.make_node("Conv", [x, w], [y], name, pads=list(pads), **attrs)


# ---------------------------------------------------------------------- which ops


def test_small_ops_get_one_task_each():
    nodes = [
        conv("conv", "x", "c", "w"),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Sigmoid", ["p"], ["s"], "sigmoid"),
        helper.make_node("Add", ["s", "p"], ["a"], "add"),
        helper.make_node("Flatten", ["a"], ["f"], "flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], "fc", transB=1),
    ]
    model = lowered(
        nodes, [("x", [1, 3, 16, 16])], ["y"], {"w": f32(8, 3, 3, 3), "fc": f32(10, 512)}
    )
    notes = tiled(model)
    assert tasks_by_node(model) == {
        "conv": [(0, 16, 0, 8)],
        "relu": [(0, 16, 0, 8)],  # not fused here (no fuse-activation): a LUT
        "pool": [(0, 8, 0, 8)],
        "sigmoid": [(0, 8, 0, 8)],
        "add": [(0, 8, 0, 8)],
        "fc": [(0, 1, 0, 10)],  # [1, 512] x [10, 512]^T: one row, 10 channels
    }
    # the Flatten (npu.reshape) moves data: no tasks; the model's quantize / dequantize
    # run on the CPU (backend_fixture)
    assert notes == ["tile: 6 tasks for 6 NPU ops; 1 data-movement ops not tiled"]


def test_npu_conversions_are_element_wise():
    # a quantize / dequantize inside the model (here: around a CPU Softmax) runs on the NPU
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], "relu"),
        helper.make_node("Softmax", ["r"], ["s"], "softmax", axis=1),
        helper.make_node("Relu", ["s"], ["y"], "relu2"),
    ]
    model = lowered(nodes, [("x", [1, 8, 4, 4])], ["y"])
    tiled(model)
    ops = {op.name: op for op in compute_ops(model) if TASKS in op.attributes}
    assert get_tasks(ops["npu.dequantize"]) == get_tasks(ops["npu.quantize"]) == [(0, 4, 0, 8)]


def test_cpu_ops_get_no_tasks():
    nodes = [conv("conv", "x", "c", "w"), helper.make_node("Relu", ["c"], ["y"], "relu")]
    model = lowered(nodes, [("x", [1, 3, 8, 8])], ["y"], {"w": f32(4, 3, 3, 3)}, cpu=["conv"])
    tiled(model)
    assert set(tasks_by_node(model)) == {"relu"}
    # moved to the CPU after a first run: the old tasks go
    place(model, cpu=["conv", "relu"])
    tiled(model)
    assert tasks_by_node(model) == {}


# ---------------------------------------------------------------------- hand-worked splits


def test_conv_64_to_64_on_224x224_splits_rows():
    # weights 36,864 B -> 2 banks, 10 data banks = 327,680 B; an input row 224 * 64 = 14,336 B
    # -> 22 rows: output bands of 21 (first, padding above), 20, ..., and the 3 rows left
    model = lowered([conv("conv", "x", "y", "w")], [("x", [1, 64, 224, 224])], ["y"],
                    {"w": f32(64, 64, 3, 3)})  # fmt: skip
    notes = tiled(model)
    bands = [(0, 21)] + [(21 + 20 * i, 41 + 20 * i) for i in range(10)] + [(221, 224)]
    assert tasks_by_node(model)["conv"] == [(y0, y1, 0, 64) for y0, y1 in bands]
    assert notes == ["tile: 12 tasks for 1 NPU ops; 1 split, most: conv 12"]


def test_conv_512_to_512_splits_channels_for_its_weights():
    # 2,359,296 B of weights: 8 groups of 64 output channels (294,912 B = 9 banks), 3 data
    # banks = 13 input rows of 14 * 512 B: output rows [0, 12) and [12, 14) per group
    model = lowered([conv("conv", "x", "y", "w")], [("x", [1, 512, 14, 14])], ["y"],
                    {"w": f32(512, 512, 3, 3)})  # fmt: skip
    tiled(model)
    expected = [(y0, y1, c, c + 64) for c in range(0, 512, 64) for y0, y1 in [(0, 12), (12, 14)]]
    assert tasks_by_node(model)["conv"] == expected


def test_depthwise_splits_channels_when_one_row_does_not_fit():
    # 3 input rows of 512 * 256 B = 393,216 B > 11 data banks (360,448 B); 2 groups of 128
    # channels: 5 input rows per task -> output rows [0, 4), [4, 8)
    node = conv("dw", "x", "y", "w", group=256)
    model = lowered([node], [("x", [1, 256, 8, 512])], ["y"], {"w": f32(256, 1, 3, 3)})
    tiled(model)
    expected = [(y0, y1, c, c + 128) for c in (0, 128) for y0, y1 in [(0, 4), (4, 8)]]
    assert tasks_by_node(model)["dw"] == expected


def test_rk3566_has_c2_8():
    # rk3566: C2 8 for int8 (12 x 32 KiB CBUF assumed): 12 output channels -> one group
    model = lowered([conv("conv", "x", "y", "w")], [("x", [1, 3, 8, 8])], ["y"],
                    {"w": f32(12, 3, 3, 3)}, chip="rk3566")  # fmt: skip
    tiled(model)
    assert tasks_by_node(model)["conv"] == [(0, 8, 0, 12)]


def test_global_pool_streams_from_memory():
    """A global average pool over 160x160x16 int8 (409,600 B, more than the 384 KiB CBUF:
    ppocrv4_det has it) is one task: the PPU reads through PPU_RDMA, not the CBUF."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["y"], "gap")]
    model = lowered(nodes, [("x", [1, 16, 160, 160])], ["y"])
    tiled(model)
    assert tasks_by_node(model)["gap"] == [(0, 1, 0, 16)]


def test_eltwise_rows_count_inputs_and_output():
    # add of two 1 x 64 x 100 x 100 int8 tensors: 3 * 6,400 B a row, 393,216 B -> 20 rows
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], "add")]
    model = lowered(nodes, [("a", [1, 64, 100, 100]), ("b", [1, 64, 100, 100])], ["y"])
    tiled(model)
    assert tasks_by_node(model)["add"] == [(y, y + 20, 0, 64) for y in range(0, 100, 20)]


# ---------------------------------------------------------------------- cannot be tiled


def test_a_row_too_wide_for_the_cbuf_names_the_node():
    # group-1 conv on 64 x 3 x 2047: one output row inside reads 3 rows of 2047 * 64 B =
    # 393,024 B > 360,448 B, and splitting output channels does not shrink the input
    model = lowered([conv("wide", "x", "y", "w")], [("x", [1, 64, 3, 2047])], ["y"],
                    {"w": f32(16, 64, 3, 3)})  # fmt: skip
    with pytest.raises(CompilerError, match=r"npu.conv2d 'wide' -> 'y': no split into tasks "
                       r"fits the rk3588 CBUF .*output row 1 .* needs 393024 B"):  # fmt: skip
        tiled(model)


def test_width_beyond_the_cube_field_names_the_node():
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], "wide_add")]
    model = lowered(nodes, [("a", [1, 1, 1, 9000]), ("b", [1, 1, 1, 9000])], ["y"])
    with pytest.raises(CompilerError, match=r"npu.eltwise 'wide_add'.*cube 9000 exceeds"):
        tiled(model)


# ---------------------------------------------------------------------- zoo


def test_digits_cnn(tmp_path):
    path = ZOO / "digits" / "digits_cnn.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    model = import_onnx(path)
    quantize_model(
        model, ZOO / "digits" / "data16" / "dataset.txt", QuantizeOptions(progress=False)
    )
    place(model, cpu=[])
    notes = tiled(model)
    tasks = {op.name + " " + op.node_name: get_tasks(op) for op in compute_ops(model)}
    assert all(len(t) <= 1 for t in tasks.values())  # 16 x 16 digits: everything fits
    assert notes == ["tile: 6 tasks for 6 NPU ops; 1 data-movement ops not tiled"]


# ---------------------------------------------------------------------- property


@st.composite
def mac_ops(draw):
    groups = draw(st.sampled_from([1, 1, 2, "dw"]))
    cin = draw(st.integers(1, 48))
    cout = draw(st.integers(1, 48))
    if groups == "dw":
        groups = cout = cin
    elif groups == 2:
        cin, cout = 2 * draw(st.integers(1, 24)), 2 * draw(st.integers(1, 24))
    k, stride, h = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 30))
    transposed = draw(st.booleans())
    pad = draw(st.integers(0, k - 1))
    out_h = (h - 1) * stride - 2 * pad + k if transposed else (h + 2 * pad - k) // stride + 1
    return dict(cin=cin, cout=cout, groups=groups, k=k, stride=stride, pad=pad, h=h,
                out_h=out_h, w=draw(st.integers(1, 30)), transposed=transposed,
                c2=draw(st.sampled_from([8, 16])),
                cbuf=Cbuf(draw(st.integers(2, 8)), draw(st.sampled_from([256, 1024, 4096]))))  # fmt: skip


def reference_rows(p, y0, y1) -> tuple[int, int]:
    """The input rows output rows [y0, y1) read, by brute force over every (row, tap) pair:
    their hull, or (0, 0) when they read none."""
    read = set()
    for t in range(p["k"]):
        if p["transposed"]:  # input row i reaches output row i * stride - pad + t
            read |= {i for i in range(p["h"]) if y0 <= i * p["stride"] - p["pad"] + t < y1}
        else:  # output row y reads input row y * stride - pad + t
            read |= {y * p["stride"] - p["pad"] + t for y in range(y0, y1)} & set(range(p["h"]))
    return (min(read), max(read) + 1) if read else (0, 0)


@settings(max_examples=200, deadline=None)
@given(mac_ops())
def test_conv_tasks_partition_the_output_and_fit(p):
    if p["out_h"] < 1:
        return
    x = Feature(p["h"], p["w"], p["cin"], p["c2"])
    y = Feature(p["out_h"], p["w"], p["cout"], p["c2"])
    rows = transposed_input_rows if p["transposed"] else conv_input_rows

    def band(y0, y1):
        return rows(y0, y1, p["stride"], p["pad"], p["k"], 1, p["h"])

    problem = mac_problem(x, y, band, p["groups"], p["k"] ** 2, 8)
    try:
        tasks = tile(problem, p["cbuf"])
    except TilingError:
        return  # test_cbuf checks that a failure is real
    covered = np.zeros((p["out_h"], p["cout"]), np.int64)
    per_in, per_out = p["cin"] // p["groups"], p["cout"] // p["groups"]
    for y0, y1, c0, c1 in tasks:
        covered[y0:y1, c0:c1] += 1
        r0, r1 = reference_rows(p, y0, y1)
        b0, b1 = band(y0, y1)
        assert (b0, b1) == (r0, r1) or ((r0, r1) == (0, 0) and b0 == b1)
        first, last = (c0 // per_out) * per_in, -(-c1 // per_out) * per_in
        blocks = -(-last // p["c2"]) - first // p["c2"]
        data = (r1 - r0) * p["w"] * blocks * p["c2"]
        weights = (c1 - c0) * per_in * p["k"] ** 2
        banks = max(1, -(-weights // p["cbuf"].bank_bytes))
        assert banks < p["cbuf"].banks
        assert data <= (p["cbuf"].banks - banks) * p["cbuf"].bank_bytes
    assert (covered == 1).all()


def test_every_npu_op_class_is_tiled_or_moves_data():
    computed = {npu.Conv2dOp, npu.ConvTransposeOp, npu.FullyConnectedOp, npu.PoolOp,
                npu.ResizeOp, *ELEMENTWISE}  # fmt: skip
    moved = {npu.ConcatOp, npu.SliceOp, npu.ReshapeOp, npu.TransposeOp, npu.PadOp}
    assert computed | moved == set(npu.NPU_OPS) and not computed & moved
