"""The inputs of `RKNN.accuracy_analysis(inputs=[...])`: one file per model input (an
image, read as calibration reads it, or a `.npy` array in the model's layout), as the raw
values `inference` takes (the model normalizes inside)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from compiler.calibration import InputPreprocess, dataset
from compiler.ir_model import TensorSpec
from runtime.api_support import ApiError


def read_sample(
    paths: Sequence[str | Path] | str | Path,
    specs: Sequence[TensorSpec],
    preprocess: Sequence[InputPreprocess | None] | None,
) -> dict[str, np.ndarray]:
    """{input name: raw array} for one sample given as one file per input."""
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    if len(files) != len(specs):
        names = ", ".join(repr(s.name) for s in specs)
        raise ApiError(
            f"{len(files)} input files given; the model has {len(specs)} inputs ({names})"
        )
    pre = list(preprocess or [None] * len(specs))
    return dataset.read_sample([Path(f) for f in files], specs, pre, "inputs")
