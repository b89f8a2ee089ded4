"""The per-layer comparison of accuracy analysis (RKNN's `accuracy_analysis`, sdk §3).

For each sample, three runs of the model, compared per ONNX tensor name:

- **golden**: the reference interpreter on the float-optimized IR (the graph quantization
  calibrated, so its tensor names are the quantized model's), fed the *normalized* input
  (`(raw - mean) / std`: the built model takes raw data and normalizes inside it).
- **entire**: the container on the register-level simulator (`runtime.session.Session`),
  fed the raw input; every layer's output dequantized. Errors accumulate from the input.
- **single**: each op of the quantized IR fed the golden values of its inputs, quantized
  with the parameters its producer has (`dialects.npu.numerics.quantize`), and run by the
  `npu` reference executor (`runtime.kernels.npu_ops`); its output dequantized. This is the
  layer's own quantization error. It uses the reference executor, not the register
  simulator: the simulator runs a whole command stream on one memory image and cannot be
  fed one layer's input alone, and the reference executor is bit-exact with it (every zoo
  model's container gives its outputs bit for bit, `tests/runtime/test_session_zoo.py`).

Metrics as RKNN prints them: cosine similarity and the Euclidean distance (L2 norm of the
difference), both in float64 over the flattened tensors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from xdsl.dialects.builtin import TensorType
from xdsl.dialects.func import ReturnOp
from xdsl.ir import BlockArgument, Operation, SSAValue

from compiler.calibration.dataset import InputPreprocess, normalize
from compiler.errors import CompilerError
from compiler.ir_model import IRModel, TensorSpec
from dialects.dtypes import numpy_dtype
from dialects.npu import numerics as nx
from dialects.npu import ops as npu
from dialects.onnx import ConstantOp, OnnxOp
from runtime.kernels import kernel_for
from runtime.kernels.npu_ops import Run, build_kernel, constant_array
from runtime.perf.report import DTYPE_NAMES, rknn_op_type


class Distance(NamedTuple):
    cos: float
    euc: float


def cosine(golden: np.ndarray, other: np.ndarray) -> float:
    """Cosine similarity of two tensors, flattened. Two all-zero tensors are identical (1.0);
    an all-zero tensor against a non-zero one shares no direction (0.0)."""
    return _metrics(_flat(golden), _flat(other)).cos


def euclidean(golden: np.ndarray, other: np.ndarray) -> float:
    """The L2 norm of the difference, flattened."""
    return _metrics(_flat(golden), _flat(other)).euc


def distance(golden: np.ndarray, other: np.ndarray | None) -> Distance | None:
    """Both metrics, or None when there is nothing comparable (no value, another size)."""
    if other is None or np.size(golden) != np.size(other):
        return None
    return _metrics(_flat(golden), _flat(other))


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float64).ravel()


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum, not np.dot: BLAS threads spin for tens of ms per call when the cores are busy
    return float(np.einsum("i,i->", a, b))


def _metrics(a: np.ndarray, b: np.ndarray) -> Distance:
    na, nb = np.sqrt(_dot(a, a)), np.sqrt(_dot(b, b))
    diff = a - b
    euc = float(np.sqrt(_dot(diff, diff)))  # not from na, nb, a.b: they cancel when close
    if na == 0.0 or nb == 0.0:
        return Distance(1.0 if na == nb else 0.0, euc)
    return Distance(_dot(a, b) / float(na * nb), euc)


@dataclass
class LayerRow:
    """One tensor of the quantized model: an op's result, by its ONNX name."""

    name: str
    op_type: str  # RKNN's op type: Conv, ConvClip, exDataConvert, ...
    dtype: str  # what it computes in: INT8, INT16, FLOAT16, FLOAT32
    entire: list[Distance | None] = field(default_factory=list)  # one per sample
    single: list[Distance | None] = field(default_factory=list)
    ir_op: str = ""  # the IR op computing it (npu.conv2d, ...): its row in the container
    target: str = ""  # NPU | CPU (from the container), "" when the container has no row
    time_us: float | None = None  # predicted time of the op as built
    int16_us: float | None = None  # predicted time were it computed in int16
    float16_us: float | None = None  # ... in float16

    @property
    def label(self) -> str:
        return f"[{self.op_type}] {self.name}"

    @property
    def entire_mean(self) -> Distance | None:
        return _mean(self.entire)

    @property
    def single_mean(self) -> Distance | None:
        return _mean(self.single)


def _mean(values: Sequence[Distance | None]) -> Distance | None:
    found = [v for v in values if v is not None]
    if not found:
        return None
    return Distance(float(np.mean([v.cos for v in found])), float(np.mean([v.euc for v in found])))


# ---------------------------------------------------------------------- the layers


@dataclass(frozen=True)
class Layer:
    """Where a row's tensor comes from in the quantized IR."""

    step: int  # index among the IR's computing ops
    result: int  # index of the op's result
    name: str
    op_type: str
    dtype: str


def value_names(op: Operation) -> dict[SSAValue, str]:
    """An op's results by ONNX name (an ONNX op names its present outputs in order)."""
    if isinstance(op, npu.NpuOp):
        names = op.output_names
        return {op.output: names[0]} if names else {}
    if isinstance(op, OnnxOp):
        present = [r for r in op.onnx_results() if r is not None]
        return dict(zip(present, op.output_names, strict=False))
    return {}


def computing_ops(model: IRModel) -> list[Operation]:
    """The ops that compute something, in block order (no constants, no return)."""
    return [op for op in model.main.body.blocks[0].ops
            if not isinstance(op, ConstantOp | ReturnOp)]  # fmt: skip


def layers_of(quantized: IRModel, golden_names: set[str]) -> list[Layer]:
    """A row per named result of the quantized IR that the golden also computes."""
    layers = []
    for step, op in enumerate(computing_ops(quantized)):
        names = value_names(op)
        for index, result in enumerate(op.results):
            name = names.get(result)
            if name and name in golden_names:
                layers.append(Layer(step, index, name, _op_type(op), _dtype(op, result)))
    return layers


def _op_type(op: Operation) -> str:
    """RKNN's error_analysis names the conversions at the model's edges exDataConvert."""
    if isinstance(op, npu.QuantizeOp | npu.DequantizeOp | npu.RequantizeOp):
        return "exDataConvert"
    return rknn_op_type(op, op.name, False, False)


def _dtype(op: Operation, result: SSAValue) -> str:
    if isinstance(op, npu.NpuOp) and not isinstance(op, npu.DequantizeOp):
        return DTYPE_NAMES.get(op.quant.element, op.quant.element.upper())
    if isinstance(op, npu.DequantizeOp):  # what the layer computed in, not its float copy
        quant = npu.quant_of(op.input)
        element = quant.element if quant is not None else "f32"
        return DTYPE_NAMES.get(element, element.upper())
    if isinstance(result.type, TensorType):
        return np.dtype(numpy_dtype(result.type.element_type)).name.upper()
    return ""


# ---------------------------------------------------------------------- golden


def preprocess_of(build_config: Mapping) -> list[InputPreprocess | None]:
    """The mean/std the model was built with, from the container's build config."""
    found: list[InputPreprocess | None] = []
    for entry in build_config.get("preprocess") or []:
        found.append(InputPreprocess(entry.get("mean_values"), entry.get("std_values"),
                                     bool(entry.get("rgb2bgr"))) if entry else None)  # fmt: skip
    return found


def golden_feed(sample: Mapping[str, np.ndarray], specs: Sequence[TensorSpec],
                preprocess: Sequence[InputPreprocess | None]) -> dict[str, np.ndarray]:  # fmt: skip
    """What the float model takes for a raw sample: normalized as the build says."""
    feed = {}
    for index, spec in enumerate(specs):
        if spec.name not in sample:
            raise CompilerError(f"the sample has no value for model input {spec.name!r}")
        pre = preprocess[index] if index < len(preprocess) else None
        feed[spec.name] = normalize(np.asarray(sample[spec.name]), spec, pre)
    return feed


# ---------------------------------------------------------------------- single


class SingleRunner:
    """Runs each op of the quantized IR on its golden inputs (see the module doc). The
    kernels are built once; `run` takes one sample's golden tensors and raw inputs."""

    def __init__(self, quantized: IRModel) -> None:
        self.model = quantized
        self.ops = computing_ops(quantized)
        self.names: dict[SSAValue, str] = {}
        for op in self.ops:
            self.names.update(value_names(op))
        self._kernels: list[Run] = [self._kernel(op) for op in self.ops]
        self._constants: dict[SSAValue, np.ndarray] = {}

    def _kernel(self, op: Operation) -> Run:
        if isinstance(op, npu.NpuOp):
            try:
                return build_kernel(op, self.model.weights)
            except (ValueError, KeyError) as exc:
                raise CompilerError(f"{op.describe()}: {exc}") from None
        if not isinstance(op, OnnxOp):
            raise CompilerError(f"accuracy analysis cannot run {op.name}")
        return self._onnx_kernel(op)

    def _onnx_kernel(self, op: OnnxOp) -> Run:
        results = op.onnx_results()
        later = any(r.uses for r in results[1:] if r is not None)
        kernel, _ = kernel_for(op.op_type, later)
        if kernel is None:
            raise CompilerError(f"{op.describe()}: no reference kernel for {op.op_type}")
        attributes = op.attribute_values(self.model.weights)
        present = [i for i, r in enumerate(op.results) if r is not None]

        def run(*args: np.ndarray | None) -> tuple[np.ndarray | None, ...]:
            trimmed = list(args)
            while trimmed and trimmed[-1] is None:
                trimmed.pop()
            out = kernel(*trimmed, **attributes)
            outs = list(out) if isinstance(out, tuple) else [out]
            return tuple(outs[i] if i < len(outs) else None for i in present)

        return run

    def run(self, golden: Mapping[str, np.ndarray], raw: Mapping[str, np.ndarray]
            ) -> list[list[np.ndarray | None]]:  # fmt: skip
        """Per op, its results as reals (float32), each op fed golden inputs."""
        env: dict[SSAValue, np.ndarray] = {}
        outputs: list[list[np.ndarray | None]] = []
        for op, kernel in zip(self.ops, self._kernels, strict=True):
            args = [None if v is None else self._operand(v, golden, raw, env)
                    for v in _operands(op)]  # fmt: skip
            with np.errstate(all="ignore"):  # IEEE results (inf, nan) are the ONNX semantics
                produced = kernel(*args)
            values = list(produced) if isinstance(produced, tuple) else [produced]
            reals = []
            for result, value in zip(op.results, values, strict=False):
                env[result] = value
                quant = npu.quant_of(result)
                reals.append(None if value is None else
                             nx.dequantize(value, quant.params()) if quant is not None
                             else np.asarray(value))  # fmt: skip
            outputs.append(reals)
        return outputs

    def _operand(self, value: SSAValue, golden: Mapping[str, np.ndarray],
                 raw: Mapping[str, np.ndarray], env: dict) -> np.ndarray:  # fmt: skip
        """The golden value of an operand in the form the op reads it, else (a tensor the
        float model has no name for) what the previous op produced in this run."""
        if isinstance(value, BlockArgument):
            return np.asarray(raw[self.model.inputs[value.index].name])
        if isinstance(value.owner, ConstantOp):
            if value not in self._constants:
                self._constants[value] = constant_array(value, self.model.weights)
            return self._constants[value]
        real = golden.get(self.names.get(value, ""))
        if real is None or tuple(real.shape) != tuple(value.type.get_shape()):
            return env[value]
        quant = npu.quant_of(value)
        if quant is None or quant.element == "f32":
            return real
        return nx.quantize(real, quant.params())


def _operands(op: Operation) -> list[SSAValue | None]:
    return op.onnx_inputs() if isinstance(op, OnnxOp) else list(op.operands)


# ---------------------------------------------------------------------- one sample


@dataclass
class SampleResult:
    """One sample's tensors, kept only as long as the caller needs them (dumps)."""

    golden: dict[str, np.ndarray]
    entire: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]  # the simulator's model outputs
    golden_outputs: dict[str, np.ndarray]


def compare_sample(rows: Sequence[LayerRow], layers: Sequence[Layer], result: SampleResult,
                   single: Sequence[Sequence[np.ndarray | None]]) -> None:  # fmt: skip
    """Append this sample's distances to each row."""
    for row, layer in zip(rows, layers, strict=True):
        golden = result.golden[layer.name]
        row.entire.append(distance(golden, result.entire.get(layer.name)))
        row.single.append(distance(golden, single[layer.step][layer.result]))


def input_rows(specs: Sequence[TensorSpec]) -> list[LayerRow]:
    """RKNN's table starts with one `[Input]` row per model input."""
    return [LayerRow(spec.name, "Input", np.dtype(spec.dtype).name.upper()) for spec in specs]


def iter_samples(samples: Sequence[Mapping[str, np.ndarray]]) -> Iterator[Mapping[str, np.ndarray]]:
    """The samples, with a progress bar when there are several and a terminal shows it."""
    from tqdm import tqdm

    yield from tqdm(samples, unit="sample", desc="accuracy analysis",
                    disable=None if len(samples) > 1 else True)  # fmt: skip
