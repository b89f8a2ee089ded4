"""Every zoo model, on its real input: the reference interpreter against onnxruntime
(relative max error <= 1e-4), and import -> print -> parse -> print is the identity."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import parse_module
from tests.helpers.ort import run_model
from tests.zoo import MODELS, ZooModel, model_path, real_input

PARAMS = [pytest.param(m, id=m.name) for m in MODELS]


def relative_max_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want|."""
    want64 = want.astype(np.float64)
    scale = max(float(np.abs(want64).max()), 1e-12)
    return float(np.abs(got.astype(np.float64) - want64).max()) / scale


@pytest.mark.parametrize("zoo_model", PARAMS)
def test_interpreter_matches_onnxruntime(zoo_model: ZooModel) -> None:
    path = model_path(zoo_model)
    model = import_onnx(path)
    (spec,) = model.inputs
    feeds = {spec.name: real_input(zoo_model)}
    ours = Interpreter(model).run(feeds).outputs
    theirs = run_model(onnx.load(path), feeds)
    assert list(ours) == [o.name for o in onnx.load(path, load_external_data=False).graph.output]
    for (name, got), want in zip(ours.items(), theirs, strict=True):
        assert got.shape == want.shape, name
        assert got.dtype == want.dtype, name
        assert relative_max_error(got, want) <= 1e-4, name


@pytest.mark.parametrize("zoo_model", PARAMS)
def test_print_parse_print_is_identity(zoo_model: ZooModel) -> None:
    model = import_onnx(model_path(zoo_model))
    text = str(model.module)
    reparsed = parse_module(text)
    reparsed.verify()
    assert str(reparsed) == text
