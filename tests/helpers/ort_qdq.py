"""onnxruntime's static quantizer as a fixture: a QDQ model (per-channel int8 weights, int8
activations) made from a float ONNX model and calibration samples.

Two things make the comparison fair: models below opset 13 are converted to 13 first
(per-channel DequantizeLinear needs `axis`, opset 13; onnxruntime otherwise writes a model
it then refuses to load), and Entropy runs with TensorRT's 2048 histogram bins (onnxruntime's
`quantize_static` leaves the calibrator at 128 bins and 128 levels, where the only candidate
is the full range: Entropy then equals MinMax)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx

ENTROPY_OPTIONS = {"num_bins": 2048, "num_quantized_bins": 128}


def ort_quantize_static(model: Path, samples: Iterable[dict[str, np.ndarray]], out: Path,
                        method: str = "MinMax", per_channel: bool = True,
                        activations: str = "QInt8") -> Path:  # fmt: skip
    """Write onnxruntime's `quantize_static` QDQ model of `model` to `out`; `method` is
    "MinMax" or "Entropy", `activations` "QInt8" or "QUInt8"."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(list(samples))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    source = _at_least_opset_13(model, out)
    with _entropy_bins() if method == "Entropy" else contextlib.nullcontext():
        quantize_static(
            str(source), str(out), Reader(), quant_format=QuantFormat.QDQ,
            per_channel=per_channel, activation_type=QuantType[activations],
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod[method],
        )  # fmt: skip
    return out


def _at_least_opset_13(model: Path, out: Path) -> Path:
    proto = onnx.load(str(model))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
    if opset >= 13:
        return model
    converted = out.with_name(out.stem + ".op13.onnx")
    onnx.save(onnx.version_converter.convert_version(proto, 13), str(converted))
    return converted


@contextlib.contextmanager
def _entropy_bins() -> Iterator[None]:
    module = importlib.import_module("onnxruntime.quantization.quantize")
    original = module.create_calibrator

    def create_calibrator(*args: object, extra_options: dict | None = None,
                          **kwargs: object) -> object:  # fmt: skip
        return original(*args, extra_options={**(extra_options or {}), **ENTROPY_OPTIONS},
                        **kwargs)  # fmt: skip

    module.create_calibrator = create_calibrator
    try:
        yield
    finally:
        module.create_calibrator = original
