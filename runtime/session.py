"""Running a whole container: `Session(path_or_container).run(inputs)` on the simulator,
`Session(path, backend="rocket")` on the NPU through the rocket driver (`runtime.hardware`).

The container's `module` section (the post-backend IR, MLIR text) is parsed back into xDSL,
its ops walked in block order:

* NPU ops run as their jobs: the first NPU op of a job runs the job's chain of tasks
  (`run_tasks` from the job's first task); the job covers the consecutive NPU ops that follow
  it (on the rocket backend: the job's tasks submitted to the device, `RocketRunner`).
* CPU ops run in numpy on values held by SSA value (NCHW arrays): float ONNX ops through
  `runtime.kernels.KERNELS`; quantized ops (the conversions at the NPU's edges, and the NPU
  ops code generation does not cover, which `build` placed on the CPU) through the `npu`
  reference executor's integer kernels (`runtime.kernels.npu_ops`), bit-exact to the
  numerics contract like the NPU.
* A value crossing between the two sides goes through simulated memory at its
  `backend.buffer` / `backend.offset`, in its `backend.layout` (`backends.codegen.tensors`):
  a CPU result an NPU op reads is written there, an NPU result a CPU op (or the caller) reads
  is read back from there.

Memory holds the weight blob (buffer 0), the arena (1), the command blob (2, relocations
patched by the loader) and the model's input and output buffers (3, 4, ...); on the rocket
backend each is a buffer object mapped into the process, at the device's addresses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, ModuleOp
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.parser import Parser

from backends.codegen.buffers import COMMANDS, WEIGHTS
from backends.codegen.tensors import placed
from backends.container import Container, Relocation, read_container, unpack_relocations
from backends.container import format as sections_format
from backends.targets import get_target
from dialects.context import make_context
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.onnx import ConstantOp, OnnxOp, dense_to_numpy
from dialects.weights import WeightRefAttr, WeightTable
from runtime.hardware import RocketDevice, RocketRunner
from runtime.kernels import kernel_for
from runtime.kernels.npu_ops import Run, build_kernel
from runtime.simulator import TaskTrace, load, run_tasks
from runtime.simulator.tensors import read_tensor, write_tensor

Program = tuple[list[int], list[Relocation], dict[int, int | bytes]]
MODULE = "module"  # the container section holding the post-backend IR (compiler/build.py)


class SessionError(Exception):
    """The container cannot be run on the simulator (one line, naming the op)."""


def unpack_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays `compiler.build.pack_arrays` wrote: a u64 header length, a JSON index,
    then the data."""
    if not data:
        return {}
    length = int.from_bytes(data[:8], "little")
    index = json.loads(data[8 : 8 + length])
    body = memoryview(data)[8 + length :]
    arrays = {}
    for entry in index:
        raw = body[entry["offset"] : entry["offset"] + entry["bytes"]]
        # a copy: aligned and writable like the compiler's own arrays (numpy's BLAS may sum
        # in another order on a misaligned buffer, and float results would then differ)
        array = np.frombuffer(raw, np.dtype(entry["dtype"])).reshape(entry["shape"])
        arrays[entry["name"]] = array.copy()
    return arrays


BACKENDS = ("simulator", "rocket")


def container_program(container: Container) -> Program:
    """The command words, relocations and buffers (id -> size or content; the command
    buffer left out: the loader sizes it from the words) of `container`."""
    sections = container.sections
    commands = sections.get(sections_format.COMMANDS, b"")
    words = [int.from_bytes(commands[i : i + 8], "little") for i in range(0, len(commands), 8)]
    buffers: dict[int, int | bytes] = {
        int(k): v for k, v in container.metadata["memory"]["buffers"].items()
    }
    buffers[WEIGHTS] = sections.get(sections_format.WEIGHTS, b"")
    buffers.pop(COMMANDS, None)
    relocations = unpack_relocations(sections.get(sections_format.RELOCATIONS, b""))
    return words, relocations, buffers


class Session:
    """A container loaded, ready to `run`: into simulated memory (`backend="simulator"`),
    or into buffer objects of a rocket device (`backend="rocket"`: the RK3588's NPU through
    `/dev/accel/accel*`, or `device`, e.g. a fake). `close` (or `with`) frees the device."""

    def __init__(self, source: str | Path | Container, backend: str = "simulator",
                 device: RocketDevice | None = None) -> None:  # fmt: skip
        if backend not in BACKENDS:
            raise SessionError(f"backend {backend!r}: expected {' or '.join(BACKENDS)}")
        self.runner: RocketRunner | None = None
        self._owns_device = backend == "rocket" and device is None
        # the device first: without an NPU, fail before the work of loading the container
        self.device = (device or RocketDevice.open()) if backend == "rocket" else None
        try:
            self._load(source)
        except BaseException:
            self.close()
            raise

    def _load(self, source: str | Path | Container) -> None:
        self.container = source if isinstance(source, Container) else read_container(source)
        meta = self.container.metadata
        sections = self.container.sections
        self.metadata = meta
        self.target = get_target(self.container.target)
        module = Parser(make_context(), sections[MODULE].decode()).parse_module()
        assert isinstance(module, ModuleOp)
        self.module = module
        funcs = [op for op in module.ops if isinstance(op, FuncOp)]
        if len(funcs) != 1:
            raise SessionError(f"the module holds {len(funcs)} functions, not one")
        self.func = funcs[0]
        self.ops = list(self.func.body.blocks[0].ops)
        self.weights = WeightTable(unpack_arrays(sections.get(sections_format.CPU_WEIGHTS, b"")))
        self._kernels: dict[Operation, Run] = {}
        self.tasks = [tuple(t) for t in meta["tasks"]]
        self.jobs = list(meta["jobs"])
        words, relocations, buffers = container_program(self.container)
        if self.device is None:
            self.memory, self.words = load(words, relocations, buffers, COMMANDS)
        else:
            self.runner = RocketRunner(self.device, words, relocations, buffers, COMMANDS,
                                        read_only={WEIGHTS})  # fmt: skip
            # values cross through `memory` as on the simulator: now the BOs' mappings
            self.memory, self.words = self.runner.memory, self.runner.words
        # the job each op with tasks starts or belongs to, by block index
        ends = [*self.jobs[1:], len(self.tasks)] if self.jobs else []
        self._job_of: dict[int, int] = {}
        last_task = {op: first_word for op, first_word, _ in self.tasks}  # the last wins
        self._op_ending_at = {first_word: op for op, first_word in last_task.items()}
        self._layers: dict[str, np.ndarray] | None = None
        for job, (first, end) in enumerate(zip(self.jobs, ends, strict=True)):
            for op_index, _, _ in self.tasks[first:end]:
                self._job_of.setdefault(op_index, job)

    def close(self) -> None:
        """Unmap the buffer objects and close the device this session opened."""
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        if self._owns_device and self.device is not None:
            self.device.close()
            self.device = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        data_format: str | Sequence[str] | None = None,
        layers: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """The model's outputs, float32 in the model's layout. `inputs` by input name, raw
        data (uint8, int8, float32, ...: the values are what counts); `data_format` ("nhwc"
        or "nchw", one for all or one per input) says how a 4-D array is laid out: "nhwc"
        arrays of an NCHW model input are transposed; None takes every array in the
        model's own shape. `layers`, when given, receives every op's result dequantized to
        float32 under its ONNX name (for accuracy analysis)."""
        block = self.func.body.blocks[0]
        env: dict[SSAValue, np.ndarray] = {}
        formats = _formats(data_format, len(block.args))
        for arg, spec, fmt in zip(block.args, self.metadata["inputs"], formats, strict=True):
            if spec["name"] not in inputs:
                raise SessionError(f"no value for model input {spec['name']!r}")
            value = _input_array(inputs[spec["name"]], spec, fmt)
            env[arg] = value
            if any(self._on_npu(use.operation) for use in arg.uses):
                self._write(arg, value)
        self._layers = layers
        done_jobs: set[int] = set()
        for index, op in enumerate(self.ops):
            if isinstance(op, ReturnOp):
                return self._outputs(op, env)
            if isinstance(op, ConstantOp):
                continue  # evaluated when a CPU op reads it
            if self._on_npu(op):
                self._run_npu(index, op, done_jobs)
            else:
                self._run_cpu(op, env)
        raise SessionError("the function has no return")

    def _outputs(self, ret: ReturnOp, env: dict) -> dict[str, np.ndarray]:
        results = {}
        for value, spec in zip(ret.operands, self.metadata["outputs"], strict=True):
            results[spec["name"]] = np.asarray(self._value(value, env))
        return results

    def _on_npu(self, op: Operation) -> bool:
        return pl.get_str(op, pl.TARGET, "cpu") == "npu"

    def _run_npu(self, index: int, op: Operation, done_jobs: set[int]) -> None:
        job = self._job_of.get(index)
        if job is None:
            name = op.describe() if hasattr(op, "describe") else op.name
            raise SessionError(f"{name}: not generated yet: cannot run on the simulator")
        if job in done_jobs:
            return
        done_jobs.add(job)
        first = self.jobs[job]
        end = self.jobs[job + 1] if job + 1 < len(self.jobs) else len(self.tasks)
        if self.runner is not None:
            if self._layers is not None:
                raise SessionError("layer outputs need the simulator backend (a job's "
                                   "intermediate tensors may share memory)")  # fmt: skip
            self.runner.run_job([(word, count) for _, word, count in self.tasks[first:end]])
            return
        capture = self._capture_task if self._layers is not None else None
        traces = run_tasks(self.words, self.memory, self.tasks[first][1], self.target,
                           after_task=capture)  # fmt: skip
        if len(traces) != end - first:
            raise SessionError(f"job {job}: ran {len(traces)} tasks, expected {end - first}")

    def _run_cpu(self, op: Operation, env: dict) -> None:
        if isinstance(op, npu.NpuOp):
            results = [self._npu_kernel(op)(*(self._value(v, env) for v in op.operands))]
        elif isinstance(op, OnnxOp):
            results = self._run_onnx(op, env)
        else:
            raise SessionError(f"{op.name}: no CPU implementation in the runtime")
        self._record(op, results)
        for result, value in zip(op.results, results, strict=False):
            if value is None:
                continue
            env[result] = value
            if any(self._on_npu(use.operation) for use in result.uses):
                self._write(result, value)

    def _capture_task(self, trace: TaskTrace) -> None:
        """After an op's last task, its result (before a later task reuses the memory)."""
        index = self._op_ending_at.get(trace.first_word)
        if index is not None:
            op = self.ops[index]
            self._record(op, [self._read(result) for result in op.results])

    def _record(self, op: Operation, values: Sequence[np.ndarray | None]) -> None:
        if self._layers is None:
            return
        names = list(getattr(op, "output_names", []))
        for result, value, name in zip(op.results, values, names, strict=False):
            if value is None or not name:
                continue
            quant = npu.quant_of(result)
            real = value if quant is None else nx.dequantize(value, quant.params())
            self._layers[name] = np.asarray(real, np.float32)

    def _npu_kernel(self, op: npu.NpuOp) -> Run:
        """The integer kernel of a quantized op on the CPU (built once per op)."""
        if op not in self._kernels:
            try:
                self._kernels[op] = build_kernel(op, self.weights)
            except (ValueError, KeyError) as exc:
                raise SessionError(f"{op.describe()}: {exc}") from None
        return self._kernels[op]

    def _run_onnx(self, op: OnnxOp, env: dict) -> list[np.ndarray | None]:
        results = op.onnx_results()
        later = any(r.uses for r in results[1:] if r is not None)
        kernel, _ = kernel_for(op.op_type, later)
        if kernel is None:
            raise SessionError(f"{op.describe()}: no runtime kernel for {op.op_type}")
        args = [None if v is None else self._value(v, env) for v in op.onnx_inputs()]
        while args and args[-1] is None:
            args.pop()
        out = kernel(*args, **op.attribute_values(self.weights))
        outs = list(out) if isinstance(out, tuple) else [out]
        # map the kernel's outputs onto op.results (absent optional results are None)
        mapped: dict[SSAValue, np.ndarray] = {}
        for r, v in zip(results, outs, strict=False):
            if r is not None:
                mapped[r] = np.asarray(v)
        return [mapped.get(r) for r in op.results]

    # ------------------------------------------------------------------ values
    def _value(self, value: SSAValue, env: dict) -> np.ndarray:
        if value in env:
            return env[value]
        owner = value.owner
        if isinstance(owner, ConstantOp):
            attr = owner.value
            if isinstance(attr, DenseIntOrFPElementsAttr):
                array = dense_to_numpy(attr)
            elif isinstance(attr, WeightRefAttr):
                array = self.weights[attr]
            else:
                raise SessionError(f"constant of {attr}: unsupported")
            env[value] = array
            return array
        if isinstance(owner, Operation) and self._on_npu(owner):
            array = self._read(value)
            env[value] = array
            return array
        if isinstance(value, BlockArgument):
            raise SessionError(f"model input {value.index} has no value")
        raise SessionError(f"{value.name_hint or 'a value'} is used before it is computed")

    def _write(self, value: SSAValue, array: np.ndarray) -> None:
        write_tensor(self.memory, placed(value, self.func), array)

    def _read(self, value: SSAValue) -> np.ndarray:
        return read_tensor(self.memory, placed(value, self.func))


DATA_FORMATS = ("nhwc", "nchw")


def _formats(data_format: str | Sequence[str] | None, count: int) -> list[str | None]:
    if data_format is None or isinstance(data_format, str):
        formats = [data_format] * count
    else:
        formats = list(data_format)
    if len(formats) != count:
        raise SessionError(f"data_format gives {len(formats)} formats for {count} inputs")
    for fmt in formats:
        if fmt is not None and fmt.lower() not in DATA_FORMATS:
            raise SessionError(f"data_format {fmt!r}: expected nhwc or nchw")
    return [fmt.lower() if fmt else None for fmt in formats]


def _input_array(data: object, spec: dict, data_format: str | None) -> np.ndarray:
    """`data` as the model input `spec` takes it: numeric values cast to its dtype, an NHWC
    4-D array of an NCHW input transposed."""
    array = np.asarray(data)
    name, shape = spec["name"], tuple(spec["shape"])
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SessionError(f"model input {name!r}: {array.dtype} data, expected numbers")
    if data_format == "nhwc" and len(shape) == 4 and array.ndim == 4:
        n, c, h, w = shape
        if array.shape != (n, h, w, c):
            raise SessionError(f"model input {name!r}: NHWC shape {array.shape}, expected "
                               f"{(n, h, w, c)}")  # fmt: skip
        array = array.transpose(0, 3, 1, 2)
    if array.shape != shape:
        raise SessionError(f"model input {name!r}: shape {array.shape}, expected {list(shape)}")
    return np.ascontiguousarray(array, np.dtype(spec["dtype"]))
