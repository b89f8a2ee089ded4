"""A zoo model built into a container and run two ways: `runtime.session.Session` (NPU jobs
on the simulator, CPU ops between them) and the `npu` reference executor on the same model
quantized again before the backend passes. The whole-zoo bit-exactness tests and the
float16 benchmark share it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.container import write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from runtime.session import Session
from tests.zoo import ZooModel, model_path


@dataclass
class TwoRuns:
    path: Path  # the container
    session: Session
    simulated: dict[str, np.ndarray]  # outputs by name
    reference: dict[str, np.ndarray]

    def ops(self, *names: str) -> list[dict]:
        """The op table's entries of the ops named (`npu.conv2d`, ...)."""
        return [op for op in self.session.metadata["ops"] if op["op"] in names]


def run_both(zm: ZooModel, dataset: Path | None, options: QuantizeOptions, sample: np.ndarray,
             folder: Path) -> TwoRuns:  # fmt: skip
    """`zm` built with `options` (calibrated on `dataset`), both runs on `sample`."""
    result = build_model(import_onnx(model_path(zm)), dataset, options)
    path = folder / f"{zm.name}.rknn"
    write_container(result.container, path)
    session = Session(path)
    reference = import_onnx(model_path(zm))
    quantize_model(reference, dataset, options)
    (spec,) = session.metadata["inputs"]
    feed = {spec["name"]: sample}
    expected = Interpreter(reference).run(feed).outputs
    return TwoRuns(path, session, session.run(feed), expected)
