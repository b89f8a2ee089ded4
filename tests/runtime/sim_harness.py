"""Running compiled models on the simulator against the `npu` reference executor: small ONNX
graphs lowered (ranges measured on the samples the tests run), the backend passes, code
generation, then each PC chain of the program run on its own with the tensors it reads
written from the reference, and every tensor it writes read back and compared exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from backends.cbuf import Cbuf, tile
from backends.codegen import COMMANDS, WEIGHTS, Program, generate
from backends.codegen.tensors import placed
from backends.targets import Target, get_target
from compiler.ir_model import IRModel
from compiler.pipeline import parse_pipeline, run_pipeline
from dialects.npu import ops as npu
from dialects.npu.placement import set_tasks
from dialects.onnx import ConstantOp
from passes.tile import problem_for
from runtime.kernels.npu_ops import build_kernel, constant_array
from runtime.simulator import load, run_tasks
from runtime.simulator.tensors import read_tensor, write_tensor
from tests.helpers.npu import Input, import_graph, lower, measured_ranges, onnx_graph, samples

BACKEND = "partition-cpu,assign-layout,align-channels,tile,plan-memory"


def small_cbuf(banks: int = 4, bank_bytes: int = 512) -> Target:
    """RK3588 with a tiny CBUF, so that small convolutions split into many tasks."""
    return dataclasses.replace(get_target("rk3588"), cbuf_banks=banks, cbuf_bank_bytes=bank_bytes)


def compiled(nodes: Sequence[onnx.NodeProto], inputs: Sequence[Input], outputs: Sequence[str],
             inits: Mapping[str, np.ndarray] | None = None, passes: str = "fuse-activation",
             target: Target | None = None, seed: int = 0,
             **plan_options) -> tuple[IRModel, list[dict[str, np.ndarray]]]:  # fmt: skip
    """The graph imported, `passes` run, lowered on ranges measured on two samples, and the
    backend passes run (with `target`'s CBUF when given). Returns the model and the samples."""
    model = import_graph(onnx_graph(nodes, inputs, outputs, inits), passes)
    feeds = samples(model, 2, seed)
    after, _ = lower(model, measured_ranges(model, feeds), **plan_options)
    run_pipeline(after, parse_pipeline(BACKEND))
    if target is not None:
        retile(after, target)
    return after, feeds


def retile(model: IRModel, target: Target) -> None:
    """The tile pass's split again, on `target`'s CBUF (the pass reads the chip by name)."""
    cbuf = Cbuf(target.cbuf_banks, target.cbuf_bank_bytes)
    for op in model.main.body.blocks[0].ops:
        if isinstance(op, npu.NpuOp) and op.attributes.get("backend.tasks") is not None:
            problem = problem_for(op, target)
            if problem is not None:
                set_tasks(op, tile(problem, cbuf))


def reference(model: IRModel, feed: Mapping[str, np.ndarray]) -> dict:
    """Every `npu` op's result on the reference executor, by SSA value; constants too (an
    `npu.quantize` of a constant scalar reads one)."""
    block = model.main.body.blocks[0]
    env: dict = {arg: feed[spec.name] for arg, spec in zip(block.args, model.inputs, strict=True)}
    for op in block.ops:
        if isinstance(op, ConstantOp):
            env[op.output] = constant_array(op.output, model.weights)
        elif isinstance(op, npu.NpuOp):
            env[op.output] = build_kernel(op, model.weights)(*[env[v] for v in op.operands])
    return env


@dataclass
class Comparison:
    op: npu.NpuOp
    got: np.ndarray
    expected: np.ndarray

    @property
    def exact(self) -> bool:
        return self.got.shape == self.expected.shape and np.array_equal(self.got, self.expected)


def simulate(model: IRModel, feed: Mapping[str, np.ndarray], program: Program | None = None,
             target: Target | None = None) -> list[Comparison]:  # fmt: skip
    """Run every chain of the program on its own, the quantized tensors it reads and does
    not produce written from the reference first; for each generated op, the simulator's
    result and the reference's."""
    chip = target or get_target("rk3588")
    program = program or generate(model, target)
    env = reference(model, feed)
    ops = list(model.main.body.blocks[0].ops)
    memory, words = load(program.words, program.relocations,
                         {**program.buffer_bytes, WEIGHTS: program.weight_blob}, COMMANDS)  # fmt: skip
    results: list[Comparison] = []
    ends = [*program.jobs[1:], len(program.tasks)]
    for first, end in zip(program.jobs, ends, strict=True):
        chain = [ops[t.op_index] for t in program.tasks[first:end]]
        members = list(dict.fromkeys(chain))
        produced = {op.output for op in members}
        for op in members:  # every quantized tensor the chain reads and does not produce
            for value in op.operands:
                if value not in produced and npu.quant_of(value) is not None:
                    write_tensor(memory, placed(value, model.main), env[value])
        last = {ops[t.op_index]: t.first_word for t in program.tasks[first:end]}
        done = {word: op for op, word in last.items()}

        def check(trace, done=done) -> None:
            # read an op's result right after its last task: later ops may reuse its bytes
            op = done.get(trace.first_word)
            if op is not None:
                got = read_tensor(memory, placed(op.output, model.main))
                results.append(Comparison(op, got, np.asarray(env[op.output])))

        traces = run_tasks(words, memory, program.tasks[first].first_word, chip,
                           after_task=check)  # fmt: skip
        assert len(traces) == end - first
    return results


def assert_exact(results: list[Comparison], expected_ops: int | None = None) -> None:
    assert results, "no generated op"
    if expected_ops is not None:
        assert len(results) == expected_ops
    for r in results:
        diff = np.abs(r.got.astype(np.int64) - r.expected.astype(np.int64))
        assert r.exact, (
            f"{r.op.describe()}: {int((diff > 0).sum())} values differ, max {diff.max()}"
        )
        # the comparison means something: the outputs are not all one value
        assert np.unique(r.expected).size > 1, f"{r.op.describe()}: constant output"
