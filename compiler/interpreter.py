"""The reference interpreter: runs the `onnx`-dialect IR of a model on numpy inputs with the
kernels of `runtime.kernels`. It is the float golden for calibration, accuracy analysis and
the pass tests.

The IR is compiled once into a flat plan (kernel, input slots, attributes, output slots) so
that running many samples costs only the kernels; intermediate tensors are released after
their last use unless the caller asks to capture them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import Operation, SSAValue

from compiler.errors import CompilerError
from compiler.ir_model import IRModel, TensorSpec
from dialects.dtypes import numpy_dtype
from dialects.npu import NpuOp
from dialects.npu import numerics as nx
from dialects.onnx import ConstantOp, OnnxOp, dense_to_numpy
from runtime.kernels import KernelError, kernel_for
from runtime.kernels.registry import accepted_attributes


@dataclass
class _Step:
    op: OnnxOp | NpuOp
    kernel: Callable[..., Any]
    inputs: list[int | None]  # slots, in ONNX input order (None: absent optional)
    attributes: dict[str, Any]
    outputs: list[int | None]  # slots, in ONNX output order (None: absent optional)
    expected: list[tuple[tuple[int, ...], np.dtype] | None]
    release: list[int] = field(default_factory=list)  # slots whose last use is this step


@dataclass
class RunResult:
    outputs: dict[str, np.ndarray]  # graph outputs by ONNX name, in graph order
    tensors: dict[str, np.ndarray]  # captured intermediate tensors by ONNX name


class Interpreter:
    """Runs `model` (see `run`). Raises CompilerError at construction for an op that has no
    kernel or an attribute its kernel does not support, naming the node."""

    def __init__(self, model: IRModel, check_types: bool = True) -> None:
        self.model = model
        self.check_types = check_types
        self.input_specs = model.inputs
        self.output_specs = model.outputs
        self._slots: dict[SSAValue, int] = {}
        self._names: dict[int, str] = {}  # slot -> ONNX tensor name
        self._constants: dict[int, np.ndarray] = {}
        self._steps: list[_Step] = []
        self._quant_of_slot: dict[int, nx.QuantParams] = {}
        self._compile()

    # ------------------------------------------------------------------ compilation
    def _compile(self) -> None:
        body = self.model.main.body.blocks[0]
        self._input_slots = [
            self._slot(arg, spec.name)
            for arg, spec in zip(body.args, self.input_specs, strict=True)
        ]
        returned: list[SSAValue] = []
        for op in body.ops:
            if isinstance(op, func.ReturnOp):
                returned = list(op.arguments)
            elif isinstance(op, ConstantOp):
                self._constants[self._slot(op.output, "")] = self._constant_value(op)
            elif isinstance(op, OnnxOp):
                self._steps.append(self._step(op))
            elif isinstance(op, NpuOp):
                self._steps.append(self._npu_step(op))
            else:
                raise CompilerError(f"the interpreter cannot run {op.name}")
        self._output_slots = [self._slots[v] for v in returned]
        self._plan_releases()

    def _slot(self, value: SSAValue, name: str) -> int:
        slot = self._slots.setdefault(value, len(self._slots))
        if name:
            self._names[slot] = name
        return slot

    def _constant_value(self, op: ConstantOp) -> np.ndarray:
        value = op.value
        array = (
            dense_to_numpy(value)
            if isinstance(value, DenseIntOrFPElementsAttr)
            else self.model.weights[value]
        )
        view = array.view()
        view.flags.writeable = False  # a kernel that writes into its inputs fails loudly
        return view

    def _step(self, op: OnnxOp) -> _Step:
        results = op.onnx_results()
        later = any(r.uses for r in results[1:] if r is not None)
        kernel, first_only = kernel_for(op.op_type, later)
        if first_only:  # the graph reads only output 0: skip computing the others
            results = results[:1]
        if kernel is None:
            raise CompilerError(
                f"{op.describe()}: the reference interpreter has no kernel for {op.op_type}"
            )
        attributes = op.attribute_values(self.model.weights)
        unknown = sorted(set(attributes) - accepted_attributes(kernel))
        if unknown:
            raise CompilerError(
                f"{op.describe()}: attribute {', '.join(unknown)} is not "
                "supported by the reference kernel"
            )
        inputs = [None if v is None else self._slots[v] for v in op.onnx_inputs()]
        while inputs and inputs[-1] is None:
            inputs.pop()
        names = iter(op.output_names)
        outputs = [None if r is None else self._slot(r, next(names, "")) for r in results]
        expected = [None if r is None else _expected(r) for r in results]
        return _Step(op, kernel, inputs, attributes, outputs, expected)

    def _npu_step(self, op: NpuOp) -> _Step:
        """A quantized op: its kernel from the `npu` reference executor; its result is
        captured as reals (dequantized) under its ONNX name."""
        from runtime.kernels.npu_ops import build_kernel

        try:
            kernel = build_kernel(op, self.model.weights)
        except (ValueError, KeyError) as exc:
            raise CompilerError(f"{op.describe()}: {exc}") from None
        inputs = [self._slots[v] for v in op.operands]
        names = op.output_names
        output = self._slot(op.output, names[0] if names else "")
        if op.quant.element != "f32":  # a dequantize result is real already
            self._quant_of_slot[output] = op.quant.params()
        return _Step(op, kernel, inputs, {}, [output], [_expected(op.output)])

    def _plan_releases(self) -> None:
        last_use: dict[int, int] = {}
        for index, step in enumerate(self._steps):
            for slot in step.inputs:
                if slot is not None:
                    last_use[slot] = index
        keep = set(self._output_slots) | set(self._constants)
        for slot, index in last_use.items():
            if slot not in keep:
                self._steps[index].release.append(slot)

    # ------------------------------------------------------------------ running
    def run(
        self, inputs: Mapping[str, np.ndarray], capture: bool | Collection[str] = False
    ) -> RunResult:
        """Outputs for one set of `inputs` (by ONNX input name). `capture=True` also
        returns every intermediate tensor by ONNX name; a collection captures those names."""
        unexpected = sorted(set(inputs) - {s.name for s in self.input_specs})
        if unexpected:
            raise CompilerError(
                f"unknown input {unexpected[0]!r}; the model's inputs are "
                + ", ".join(repr(s.name) for s in self.input_specs)
            )
        env: dict[int, np.ndarray] = dict(self._constants)
        for slot, spec in zip(self._input_slots, self.input_specs, strict=True):
            env[slot] = self._checked_input(spec, inputs)
        wanted = self._capture_slots(capture)
        captured: dict[str, np.ndarray] = {}
        for step in self._steps:
            with np.errstate(all="ignore"):  # IEEE results (inf, nan) are the ONNX semantics
                self._execute(step, env)
            for slot in step.outputs:
                if slot is not None and slot in wanted:
                    captured[self._names[slot]] = self._as_real(slot, env[slot])
            for slot in step.release:
                if slot not in wanted:
                    env.pop(slot, None)
        outputs = {
            spec.name: env[slot]
            for spec, slot in zip(self.output_specs, self._output_slots, strict=True)
        }
        return RunResult(outputs, captured)

    def _as_real(self, slot: int, value: np.ndarray) -> np.ndarray:
        """A quantized tensor as the reals it stands for (float32); others unchanged."""
        params = self._quant_of_slot.get(slot)
        return value if params is None else nx.dequantize(value, params)

    def _capture_slots(self, capture: bool | Collection[str]) -> set[int]:
        if capture is True:
            return {s for s in self._names if s not in self._constants}
        if not capture:
            return set()
        names = set(capture)  # type: ignore[arg-type]
        return {s for s, n in self._names.items() if n in names}

    def _checked_input(self, spec: TensorSpec, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        if spec.name not in inputs:
            raise CompilerError(
                f"missing input {spec.name!r} (shape "
                f"{'x'.join(map(str, spec.shape))}, {spec.dtype})"
            )
        array = np.asarray(inputs[spec.name])
        if not self.check_types:
            return array
        if array.shape != spec.shape:
            raise CompilerError(
                f"input {spec.name!r} has shape {'x'.join(map(str, array.shape)) or 'scalar'}, "
                f"the model expects {'x'.join(map(str, spec.shape)) or 'scalar'}"
            )
        if array.dtype != spec.dtype:
            if not np.can_cast(array.dtype, spec.dtype, "same_kind"):
                raise CompilerError(
                    f"input {spec.name!r} has dtype {array.dtype}, the model expects {spec.dtype}"
                )
            array = array.astype(spec.dtype)
        return array

    def _execute(self, step: _Step, env: dict[int, np.ndarray]) -> None:
        args = [None if s is None else env[s] for s in step.inputs]
        try:
            results = step.kernel(*args, **step.attributes)
        except KernelError as exc:
            raise CompilerError(f"{step.op.describe()}: {exc}") from None
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as exc:
            raise CompilerError(f"{step.op.describe()}: {type(exc).__name__}: {exc}") from None
        if not isinstance(results, tuple):
            results = (results,)
        for slot, result, expected in zip(step.outputs, results, step.expected, strict=False):
            if slot is None:
                continue
            result = np.asarray(result)
            if self.check_types and expected is not None:
                _check_result(step.op, result, expected)
            env[slot] = result


def _expected(value: SSAValue) -> tuple[tuple[int, ...], np.dtype] | None:
    t = value.type
    if not isinstance(t, TensorType):
        return None  # provisional type during import
    return tuple(t.get_shape()), numpy_dtype(t.element_type)


def _check_result(
    op: Operation, result: np.ndarray, expected: tuple[tuple[int, ...], np.dtype]
) -> None:
    shape, dtype = expected
    if result.shape != shape or result.dtype != dtype:
        desc = op.describe() if isinstance(op, OnnxOp) else op.name
        raise CompilerError(
            f"{desc}: the kernel produced {result.dtype}{list(result.shape)}, the IR "
            f"declares {dtype}{list(shape)}"
        )


def interpret(
    model: IRModel, inputs: Mapping[str, np.ndarray], capture: bool | Collection[str] = False
) -> RunResult:
    """One-shot convenience: `Interpreter(model).run(inputs, capture)`."""
    return Interpreter(model).run(inputs, capture)
