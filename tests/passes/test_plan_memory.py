"""`plan-memory`: liveness in block order, buffers (input / output / internal), the internal
arena with reuse (greedy by size, 64-byte aligned offsets), and the report. Sizes are worked
by hand for RK3588 (int8 C2 16). Overlap is checked exhaustively against liveness derived
again in the test, on small graphs, on random live ranges and on the zoo's digits_cnn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper
from xdsl.dialects.builtin import DictionaryAttr, IntAttr, StringAttr
from xdsl.dialects.func import ReturnOp

from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu.placement import BUFFER, BYTES, INTERNAL_BYTES, OFFSET, get_int, get_str
from passes.plan_memory import ALIGNMENT, Tensor, allocate
from tests.passes.backend_fixture import compute_ops
from tests.passes.helpers import run_passes
from tests.passes.test_tile import conv, f32, lowered
from tests.zoo import ZOO


def planned(model) -> list[str]:
    return run_passes(model, "plan-memory").notes


def chain():
    """x [1, 3, 8, 8] -> three 3x3 convs of 16 channels -> y."""
    nodes = [conv("c1", "x", "a", "w1"), conv("c2", "a", "b", "w2"), conv("c3", "b", "y", "w3")]
    inits = {"w1": f32(16, 3, 3, 3), "w2": f32(16, 16, 3, 3), "w3": f32(16, 16, 3, 3)}
    return lowered(nodes, [("x", [1, 3, 8, 8])], ["y"], inits)


def plan_of(model) -> dict[str, tuple[str | None, int | None, int | None]]:
    """(buffer, offset, bytes) by ONNX node name (op name where there is none)."""
    return {
        op.node_name or op.name: (get_str(op, BUFFER), get_int(op, OFFSET), get_int(op, BYTES))
        for op in compute_ops(model)
    }


def argument_attrs(model) -> list[dict]:
    attrs = model.main.arg_attrs.data
    assert all(isinstance(a, DictionaryAttr) for a in attrs)
    return [dict(a.data) for a in attrs]


# ---------------------------------------------------------------------- hand-worked


def test_chain_sizes_offsets_and_reuse():
    model = chain()
    notes = planned(model)
    # quantize (CPU, NCHW int8): 3*8*8 = 192 B; each conv (NC1HWC2, C2 16): 1*8*8*16 =
    # 1,024 B; dequantize (f32 NCHW, returned): 16*8*8*4 = 4,096 B; input x: 3*8*8*4 = 768 B.
    # Largest first: c1 at 0; c2 lives with c1 -> 1024; c3 lives with c2 only -> 0; the
    # quantize lives with c1 only -> 1024. Arena 2,048 B (without reuse 3 * 1024 + 192).
    assert plan_of(model) == {
        "npu.quantize": ("internal", 1024, 192),
        "c1": ("internal", 0, 1024),
        "c2": ("internal", 1024, 1024),
        "c3": ("internal", 0, 1024),
        "npu.dequantize": ("output", 0, 4096),
    }
    assert get_int(model.module, INTERNAL_BYTES) == 2048
    (x,) = argument_attrs(model)
    assert x[BUFFER] == StringAttr("input") and x[BYTES] == IntAttr(768)
    assert x[OFFSET] == IntAttr(0) and x["onnx.name"] == StringAttr("x")
    # weights: 16*3*9 + 2 * 16*16*9 int8 and three int32 biases of 16: 5,232 B
    assert notes == [
        "plan-memory: weights 5.1 KiB, internal 2.0 KiB (3.2 KiB without reuse), "
        "inputs/outputs 4.8 KiB (schedule: block order, 4 internal tensors)"
    ]


def test_offsets_are_64_byte_aligned():
    # the quantized x (100 B, read by both layers) at 0; two fully connected layers of 10 int8
    # outputs live with it and with each other (both read by the add): 128 (100 aligned up),
    # 192; the add's 10 B go to 0 (x is dead by then, fa and fb are not)
    nodes = [
        helper.make_node("Gemm", ["x", "wa"], ["a"], "fa", transB=1),
        helper.make_node("Gemm", ["x", "wb"], ["b"], "fb", transB=1),
        helper.make_node("Add", ["a", "b"], ["y"], "add"),
    ]
    model = lowered(nodes, [("x", [1, 100])], ["y"], {"wa": f32(10, 100), "wb": f32(10, 100)})
    planned(model)
    plan = plan_of(model)
    assert plan["npu.quantize"] == ("internal", 0, 100)
    assert plan["fa"] == ("internal", 128, 10) and plan["fb"] == ("internal", 192, 10)
    assert plan["add"] == ("internal", 0, 10)
    assert get_int(model.module, INTERNAL_BYTES) == 202
    assert all(offset % ALIGNMENT == 0 for _, offset, _ in plan.values())


def test_a_residual_stays_live_until_its_last_reader():
    nodes = [
        conv("c1", "x", "a", "w1"),
        conv("c2", "a", "b", "w2"),
        conv("c3", "b", "c", "w3"),
        helper.make_node("Add", ["a", "c"], ["y"], "add"),
    ]
    inits = {"w1": f32(16, 3, 3, 3), "w2": f32(16, 16, 3, 3), "w3": f32(16, 16, 3, 3)}
    model = lowered(nodes, [("x", [1, 3, 8, 8])], ["y"], inits)
    planned(model)
    assert_no_live_overlap(model)
    plan = plan_of(model)
    # a (c1) is live with b and c: three distinct 1 KiB slots
    assert len({plan[n][1] for n in ("c1", "c2", "c3")}) == 3


def test_dead_values_still_get_their_bytes():
    # the Relu's result is unused (a second graph output would keep it): it still needs room
    # for the op to write it
    nodes = [conv("c1", "x", "y", "w1"), helper.make_node("Relu", ["x"], ["z"], "relu")]
    model = lowered(nodes, [("x", [1, 3, 8, 8])], ["y", "z"], {"w1": f32(16, 3, 3, 3)})
    planned(model)
    assert_no_live_overlap(model)
    assert {b for b, _, _ in plan_of(model).values()} == {"internal", "output"}


def test_an_op_with_several_results_gets_one_block():
    # TopK on the CPU: values [1, 5] f32 (20 B, at 0 of the block) and indices [1, 5] i64
    # (40 B, at 64): 104 B
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], "relu"),
        helper.make_node("TopK", ["r", "k"], ["v", "i"], "topk", axis=1),
        helper.make_node("Relu", ["v"], ["y"], "relu2"),
    ]
    model = lowered(nodes, [("x", [1, 20])], ["y"], {"k": np.array([5], np.int64)})
    planned(model)
    assert plan_of(model)["topk"][::2] == ("internal", 104)
    assert_no_live_overlap(model)


def test_running_twice_gives_the_same_plan():
    model = chain()
    planned(model)
    first = plan_of(model)
    planned(model)
    assert plan_of(model) == first


def test_unknown_chip_is_an_error():
    model = chain()
    model.module.attributes["backend.chip"] = StringAttr("rk9999")
    with pytest.raises(Exception, match="unknown target 'rk9999'"):
        planned(model)


# ---------------------------------------------------------------------- exhaustive checks


def live_ranges(model) -> dict:
    """Op -> (first, last) block positions, derived again here: the op's own position and
    its readers' (func.return included)."""
    block = model.main.body.blocks[0]
    position = {op: i for i, op in enumerate(block.ops)}
    ranges = {}
    for op in compute_ops(model):
        readers = [u.operation for r in op.results for u in r.uses]
        ranges[op] = (position[op], max([position[r] for r in readers], default=position[op]))
    return ranges


def assert_no_live_overlap(model) -> None:
    ranges = live_ranges(model)
    internal = [op for op in ranges if get_str(op, BUFFER) == "internal"]
    arena = get_int(model.module, INTERNAL_BYTES)
    for op in internal:
        offset, size = get_int(op, OFFSET), get_int(op, BYTES)
        assert offset % ALIGNMENT == 0 and offset + size <= arena
    for i, a in enumerate(internal):
        for b in internal[i + 1 :]:
            (s1, e1), (s2, e2) = ranges[a], ranges[b]
            if s1 <= e2 and s2 <= e1:  # live at once
                a0, b0 = get_int(a, OFFSET), get_int(b, OFFSET)
                a1, b1 = a0 + get_int(a, BYTES), b0 + get_int(b, BYTES)
                assert a1 <= b0 or b1 <= a0, f"{a.name} and {b.name} overlap"
    returned = {v.owner for op in model.main.body.blocks[0].ops if isinstance(op, ReturnOp)
                for v in op.operands}  # fmt: skip
    for op in ranges:
        assert (get_str(op, BUFFER) == "output") == (op in returned)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 8), st.integers(0, 3000)),
                min_size=1, max_size=40))  # fmt: skip
def test_allocation_never_overlaps_live_tensors(specs):
    tensors = [Tensor(None, size, start, start + length) for start, length, size in specs]
    arena = allocate(tensors)
    for i, a in enumerate(tensors):
        assert a.offset % ALIGNMENT == 0 and a.offset + a.bytes <= arena
        for b in tensors[i + 1 :]:
            assert not (a.live_with(b) and a.overlaps(b))
    assert arena == max(t.offset + t.bytes for t in tensors)
    # never worse than no reuse, never better than the most bytes live at one time
    assert arena <= sum(-(-t.bytes // ALIGNMENT) * ALIGNMENT for t in tensors)
    peak = max(sum(t.bytes for t in tensors if t.start <= step <= t.end) for step in range(40))
    assert arena >= peak


def test_digits_cnn(tmp_path):
    path = ZOO / "digits" / "digits_cnn.onnx"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    from tests.passes.backend_fixture import place

    model = import_onnx(path)
    quantize_model(
        model, ZOO / "digits" / "data16" / "dataset.txt", QuantizeOptions(progress=False)
    )
    place(model)
    notes = planned(model)
    assert_no_live_overlap(model)
    arena = get_int(model.module, INTERNAL_BYTES)
    internal = [op for op in compute_ops(model) if get_str(op, BUFFER) == "internal"]
    assert arena < sum(get_int(op, BYTES) for op in internal)  # reuse happened
    # quantize 256 B (CPU, NCHW); conv 16x16x16 4,096 B; pool 1,024; conv 8x8x32 2,048;
    # pool 512; conv 4x4x64 1,024; flatten 1,024 (UNDEFINED); fc 10: the biggest (4,096)
    # lives with the quantize before it and the pool after it
    assert arena == 4096 + 1024
    # weights 144+4608+18432+10240 int8 + (16+32+64+10)*4 int32 = 33,912 B
    assert notes[0].startswith("plan-memory: weights 33.1 KiB, internal 5.0 KiB (9.8 KiB")
