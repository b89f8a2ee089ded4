"""The program as a whole: chains (jobs) end where an op without code generation sits,
float16 ops are listed rather than generated, the output is deterministic, every relocated
word is written 0 and the relocations pack into the container's section, buffer sizes, and
a container round trip that the simulator runs."""

from __future__ import annotations

import numpy as np
from onnx import helper

from backends.codegen import ARENA, COMMANDS, WEIGHTS, generate
from backends.container import (
    COMMANDS as COMMANDS_SECTION,
)
from backends.container import (
    RELOCATIONS,
    Container,
    container_bytes,
    pack_relocations,
    read_container,
    unpack_relocations,
)
from backends.container import (
    WEIGHTS as WEIGHTS_SECTION,
)
from backends.registers import unpack
from dialects.npu import placement as pl
from runtime.simulator import load, run_tasks
from tests.helpers.backend import conv
from tests.runtime.sim_harness import compiled

RNG = np.random.default_rng(2)


def f32(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.2).astype(np.float32)


def conv_pool_conv(**plan):
    nodes = [
        conv("x", "w1", "a", "conv1", b="b1", pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["a"], ["p"], "transpose", perm=[0, 2, 1, 3]),
        conv("p", "w2", "c", "conv2", b="b2", pads=[1, 1, 1, 1]),
        conv("c", "w3", "y", "conv3", b="b3"),
    ]
    inits = {"w1": f32(8, 3, 3, 3), "b1": f32(8), "w2": f32(8, 8, 3, 3), "b2": f32(8),
             "w3": f32(4, 8, 1, 1), "b3": f32(4)}  # fmt: skip
    return compiled(nodes, [("x", [1, 3, 8, 8])], ["y"], inits, **plan)


def test_an_op_without_code_generation_ends_the_chain():
    model, _ = conv_pool_conv()
    program = generate(model)
    assert [t.onnx_name for t in program.tasks] == ["conv1", "conv2", "conv3"]
    assert program.jobs == [0, 1]  # conv1 | transpose (not generated) | conv2 -> conv3
    assert len(program.unsupported) == 1
    assert "npu.transpose 'transpose'" in program.unsupported[0]


def test_float16_convolutions_are_generated_and_other_float16_ops_listed():
    model, _ = conv_pool_conv(dtype="f16")
    program = generate(model)
    assert [t.onnx_name for t in program.tasks] == ["conv1", "conv2", "conv3"]
    assert program.jobs == [0, 1]
    (reason,) = program.unsupported  # a transpose across channels, in any dtype
    assert "npu.transpose 'transpose'" in reason and "only H <-> W" in reason


def test_deterministic_relocatable_and_sized():
    model, _ = conv_pool_conv()
    one, two = generate(model), generate(model)
    assert (one.words, one.relocations, one.weight_blob) == (two.words, two.relocations,
                                                             two.weight_blob)  # fmt: skip
    for r in one.relocations:  # the loader fills the whole value field
        _, value, _ = unpack(one.words[r.offset_in_commands // 8])
        assert value == 0
    assert unpack_relocations(pack_relocations(one.relocations)) == sorted(one.relocations)
    assert one.buffer_bytes[WEIGHTS] == len(one.weight_blob)
    assert one.buffer_bytes[COMMANDS] == 8 * len(one.words)
    assert one.buffer_bytes[ARENA] == pl.get_int(model.module, pl.INTERNAL_BYTES)
    assert all(t.first_word % 8 == 0 for t in one.tasks)  # 64-byte aligned tasks
    arena_ends = [r.buffer_offset for r in one.relocations if r.buffer_id == ARENA]
    assert max(arena_ends) < one.buffer_bytes[ARENA]


def test_a_container_round_trip_runs_on_the_simulator(tmp_path):
    model, _ = conv_pool_conv()
    program = generate(model)
    blob = container_bytes(Container("rk3588", {"tasks": len(program.tasks)}, {
        WEIGHTS_SECTION: program.weight_blob,
        COMMANDS_SECTION: program.command_bytes(),
        RELOCATIONS: pack_relocations(program.relocations),
    }))  # fmt: skip
    path = tmp_path / "m.rknn"
    path.write_bytes(blob)
    back = read_container(path)
    words = np.frombuffer(back.sections[COMMANDS_SECTION], "<u8").tolist()
    assert words == program.words
    sizes = {**program.buffer_bytes, WEIGHTS: back.sections[WEIGHTS_SECTION]}
    memory, patched = load(words, unpack_relocations(back.sections[RELOCATIONS]), sizes, COMMANDS)
    traces = run_tasks(patched, memory, program.tasks[program.jobs[1]].first_word)
    assert [t.first_word for t in traces] == [t.first_word for t in program.tasks[1:]]
