"""onnxruntime's static quantizer as a fixture: a QDQ model (per-channel int8 weights, int8
activations) made from a float ONNX model and calibration samples."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


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

    quantize_static(
        str(model), str(out), Reader(), quant_format=QuantFormat.QDQ,
        per_channel=per_channel, activation_type=QuantType[activations],
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod[method],
    )  # fmt: skip
    return out
