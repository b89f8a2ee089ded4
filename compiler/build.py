"""`build`: ONNX model -> container, the whole pipeline with the time of every stage.

1. quantize (`compiler.quantization`: float pipeline, calibration, `lower-to-npu`);
2. the backend passes: partition-cpu, assign-layout, align-channels, tile, plan-memory;
3. code generation (`backends.codegen.generate`): register tasks, weight blob, relocations;
4. the container (`backends.container`): metadata (inputs/outputs, the op table with ONNX
   names, NPU/CPU placement and task ranges, the memory plan, the build config, the tool
   version), the weight blob, the command blob with its relocations, and for the CPU side
   the post-backend IR (`module`, MLIR text) with the weights its CPU ops read
   (`cpu_weights`, see `pack_arrays`): the runtime runs those ops between NPU jobs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from xdsl.dialects.func import FuncOp, ReturnOp

from backends.codegen import Program, generate
from backends.container import (
    COMMANDS,
    CPU_WEIGHTS,
    RELOCATIONS,
    WEIGHTS,
    Container,
    pack_relocations,
)
from backends.targets import get_target
from compiler import __version__
from compiler.calibration.statistics import TensorStatistics
from compiler.ir_model import IRModel
from compiler.pipeline import parse_pipeline, run_pipeline
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import placement as pl
from dialects.onnx import ConstantOp, OnnxOp
from dialects.weights import WeightRefAttr

MODULE = "module"  # container section: the post-backend IR, MLIR text
TOOL_NAME = "rknpu-compiler"
BACKEND_PASSES = "partition-cpu{{target={chip}}},assign-layout,align-channels,tile,plan-memory"


@dataclass
class BuildResult:
    container: Container
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)
    notes: list[str] = field(default_factory=list)  # what the passes reported
    program: Program | None = None

    def summary(self) -> dict:
        meta = self.container.metadata
        placement = [op["target"] for op in meta["ops"]]
        return {
            "npu_ops": placement.count("npu"),
            "cpu_ops": placement.count("cpu"),
            "tasks": len(self.program.tasks) if self.program else 0,
            "weight_bytes": meta["memory"]["weight_bytes"],
            "internal_bytes": meta["memory"]["internal_bytes"],
            "not_generated": list(self.program.unsupported) if self.program else [],
        }


def build_model(model: IRModel, dataset: Path | str | None, options: QuantizeOptions,
                statistics: dict[str, TensorStatistics] | None = None) -> BuildResult:  # fmt: skip
    """Build `model` (changed in place) for `options.target`; `statistics`: calibration
    statistics measured before (`quantize_model`'s)."""
    result = BuildResult(Container(get_target(options.target).name))
    start = time.perf_counter()
    quantized = quantize_model(model, dataset, options, statistics)
    result.stages.append(("quantize", time.perf_counter() - start))
    result.notes += quantized.report.notes if quantized.report else []

    return build_quantized(model, options, result)


def build_quantized(model: IRModel, options: QuantizeOptions,
                    result: BuildResult | None = None) -> BuildResult:  # fmt: skip
    """Steps 2 to 4 on a quantized model (changed in place), their times added to
    `result` (a new one when None)."""
    result = result or BuildResult(Container(get_target(options.target).name))
    start = time.perf_counter()
    report = run_pipeline(model, parse_pipeline(BACKEND_PASSES.format(chip=options.target)))
    result.stages.append(("backend passes", time.perf_counter() - start))
    result.notes += report.notes

    start = time.perf_counter()
    result.program = generate(model)
    result.stages.append(("code generation", time.perf_counter() - start))

    start = time.perf_counter()
    result.container = assemble(model, result.program, options)
    result.stages.append(("container", time.perf_counter() - start))
    return result


def assemble(model: IRModel, program: Program, options: QuantizeOptions) -> Container:
    func = model.main
    cpu_weights = _cpu_weight_names(func)
    metadata = {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "inputs": [_spec(s, "input") for s in model.inputs],
        "outputs": [_spec(s, "output") for s in model.outputs],
        "ops": _op_table(func, program),
        "memory": _memory(model, program),
        "jobs": program.jobs,
        "tasks": [[t.op_index, t.first_word, t.word_count] for t in program.tasks],
        "config": _config(options),
    }
    sections = {
        WEIGHTS: program.weight_blob,
        COMMANDS: program.command_bytes(),
        RELOCATIONS: pack_relocations(program.relocations),
        MODULE: str(model.module).encode(),
        CPU_WEIGHTS: pack_arrays({k: model.weights[k] for k in sorted(cpu_weights)}),
    }
    chip = pl.get_str(model.module, pl.CHIP) or get_target(options.target).name
    return Container(chip, _plain(metadata), sections)


def _op_table(func: FuncOp, program: Program) -> list[dict]:
    tasks: dict[int, list[int]] = {}
    for number, task in enumerate(program.tasks):
        tasks.setdefault(task.op_index, []).append(number)
    table = []
    for index, op in enumerate(func.body.blocks[0].ops):
        if isinstance(op, ConstantOp | ReturnOp):
            continue
        entry = {
            "index": index,
            "op": op.name,
            "node": getattr(op, "node_name", "") or "",
            "outputs": list(getattr(op, "output_names", [])),
            "target": pl.get_str(op, pl.TARGET, "cpu"),
            "segment": pl.get_int(op, pl.SEGMENT, -1),
        }
        if index in tasks:
            entry["tasks"] = [tasks[index][0], len(tasks[index])]
        if (reason := pl.get_str(op, pl.REASON)) is not None:
            entry["reason"] = reason
        table.append(entry)
    return table


def _memory(model: IRModel, program: Program) -> dict:
    internal = pl.get_int(model.module, pl.INTERNAL_BYTES, 0) or 0
    return {
        "weight_bytes": len(program.weight_blob),
        "internal_bytes": internal,
        "command_bytes": len(program.words) * 8,
        "buffers": {str(k): v for k, v in sorted(program.buffer_bytes.items())},
    }


def _spec(spec: object, kind: str) -> dict:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": str(spec.dtype),
            "kind": kind}  # fmt: skip


def _config(options: QuantizeOptions) -> dict:
    config = asdict(options)
    config.pop("cfg", None)
    config["cpu_ops"] = sorted(options.cpu_ops)
    config["preprocess"] = [asdict(p) if p else None for p in options.preprocess or []]
    return config


def _cpu_weight_names(func: FuncOp) -> set[str]:
    """Weights of the constants that ops other than NPU ones read."""
    names = set()
    for op in func.body.blocks[0].ops:
        if not isinstance(op, ConstantOp) or not isinstance(op.value, WeightRefAttr):
            continue
        readers = [use.operation for use in op.results[0].uses]
        if any(isinstance(r, OnnxOp) or pl.get_str(r, pl.TARGET) == "cpu" for r in readers):
            names.add(op.value.handle)
    return names


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays in a deterministic byte format (numpy's .npz stamps the time): a JSON index
    (name, dtype, shape, offset, bytes) behind its u64 length, then the C-order data, each
    array 64-byte aligned."""
    index, chunks, offset = [], [], 0
    for name, array in arrays.items():
        data = np.ascontiguousarray(array).tobytes()
        pad = -offset % 64
        chunks.append(b"\0" * pad + data)
        offset += pad
        index.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                      "offset": offset, "bytes": len(data)})  # fmt: skip
        offset += len(data)
    header = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    return len(header).to_bytes(8, "little") + header + b"".join(chunks)


def _plain(value: object) -> object:
    """JSON-ready: numpy scalars, tuples and paths become plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [_plain(v) for v in items]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
