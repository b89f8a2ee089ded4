"""`sim_harness.simulate` for ops whose inputs are not `input` / `residual` (npu.eltwise's
`lhs` / `rhs`, npu.lut's `input` beside its constant table): every operand a chain reads and
no op of the chain produces is written from the reference executor first. The reference
here also evaluates `npu` ops that read constants (an `npu.quantize` of a constant scalar:
`sim_harness.reference` hands them None)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backends.codegen import COMMANDS, WEIGHTS, Program, generate
from backends.codegen.tensors import placed
from backends.targets import Target, get_target
from compiler.ir_model import IRModel
from compiler.npu_reference import build_kernel, constant_array
from dialects.npu import ops as npu
from dialects.onnx import ConstantOp
from runtime.simulator import load, run_tasks
from tests.runtime.sim_harness import Comparison, from_memory, to_bytes


def reference(model: IRModel, feed: Mapping[str, np.ndarray]) -> dict:
    """Every `npu` op's result on the reference executor, by SSA value (constants too)."""
    block = model.main.body.blocks[0]
    env: dict = {arg: feed[spec.name] for arg, spec in zip(block.args, model.inputs, strict=True)}
    for op in block.ops:
        if isinstance(op, ConstantOp):
            env[op.output] = constant_array(op.output, model.weights)
        elif isinstance(op, npu.NpuOp):
            env[op.output] = build_kernel(op, model.weights)(*[env[v] for v in op.operands])
    return env


def simulate_operands(model: IRModel, feed: Mapping[str, np.ndarray],
                      program: Program | None = None,
                      target: Target | None = None) -> list[Comparison]:  # fmt: skip
    chip = target or get_target("rk3588")
    program = program or generate(model, target)
    env = reference(model, feed)
    ops = list(model.main.body.blocks[0].ops)
    memory, words = load(program.words, program.relocations,
                         {**program.buffer_bytes, WEIGHTS: program.weight_blob}, COMMANDS)  # fmt: skip
    results: list[Comparison] = []
    ends = [*program.jobs[1:], len(program.tasks)]
    for first, end in zip(program.jobs, ends, strict=True):
        members = list(dict.fromkeys(ops[t.op_index] for t in program.tasks[first:end]))
        produced = {op.output for op in members}
        for op in members:
            for value in op.operands:
                if value in produced or isinstance(value.owner, ConstantOp):
                    continue
                where = placed(value, model.main)
                memory.write(memory.base(where.buffer) + where.offset, to_bytes(env[value], where))
        last = {ops[t.op_index]: t.first_word for t in program.tasks[first:end]}
        done = {word: op for op, word in last.items()}

        def check(trace, done=done) -> None:
            op = done.get(trace.first_word)
            if op is not None:
                got = from_memory(memory, placed(op.output, model.main))
                results.append(Comparison(op, got, np.asarray(env[op.output])))

        traces = run_tasks(words, memory, program.tasks[first].first_word, chip,
                           after_task=check)  # fmt: skip
        assert len(traces) == end - first
    return results
