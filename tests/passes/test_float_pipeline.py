"""`float-pipeline`: the order per optimization level, its expansion into timed passes, and
what level 3 does to every zoo model (outputs kept within 1e-4; no BatchNormalization, no
Identity, no Conv left unfused with its Relu/Clip)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from onnx import helper

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.pipeline import parse_pipeline
from passes.float_pipeline import LEVELS
from passes.registry import PASSES
from tests.compiler.test_zoo_models import relative_max_error
from tests.passes.helpers import (
    assert_same_outputs,
    clone,
    model_from_nodes,
    op_types,
    ops,
    run_passes,
)
from tests.zoo import MODELS, ZooModel, model_path, real_input


def test_levels_name_registered_passes_only():
    for names in LEVELS.values():
        assert set(names) <= set(PASSES)
    assert LEVELS[0] == ()
    assert set(LEVELS[1]) < set(LEVELS[2]) < set(LEVELS[3])


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_pipeline_expands_into_its_passes(level: int):
    names = [p.name for p in parse_pipeline(f"float-pipeline{{level={level}}}")]
    assert names == list(LEVELS[level])


def test_unknown_level_is_a_clean_error():
    from compiler.errors import CompilerError

    with pytest.raises(CompilerError, match="level"):
        parse_pipeline("float-pipeline{level=7}")


def small_cnn():
    """Conv -> BatchNorm -> Relu -> Identity -> Conv -> Clip(0, 6) -> Add(residual)."""
    rng = np.random.default_rng(0)
    inits = {
        "w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "scale": rng.random(4).astype(np.float32) + 0.5, "bias": rng.random(4).astype(np.float32),
        "mean": rng.random(4).astype(np.float32), "var": rng.random(4).astype(np.float32) + 0.5,
        "w2": rng.standard_normal((4, 4, 3, 3)).astype(np.float32),
        "lo": np.float32(0), "hi": np.float32(6),
    }  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["bn"],
                         "bn1"),
        helper.make_node("Relu", ["bn"], ["r1"], "relu1"),
        helper.make_node("Identity", ["r1"], ["i1"], "id1"),
        helper.make_node("Conv", ["i1", "w2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["k2"], "clip2"),
        helper.make_node("Add", ["k2", "i1"], ["y"], "add"),
    ]  # fmt: skip
    return model_from_nodes(nodes, [("x", (1, 3, 8, 8))], ["y"], inits)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_each_level_keeps_the_outputs(level: int):
    model = small_cnn()
    before = clone(model)
    run_passes(model, f"float-pipeline{{level={level}}}")
    assert_same_outputs(before, model, rtol=1e-4, atol=1e-5)


def test_level_3_fuses_the_small_cnn():
    model = small_cnn()
    run_passes(model, "float-pipeline{level=3}")
    assert op_types(model) == ["FusedConv", "FusedConv"]
    first, second = ops(model)
    assert first.activation_spec()[0] == "Relu"
    assert second.activation_spec() == ("Clip", {"min": 0.0, "max": 6.0})
    assert second.output_names == ["y"]


def test_without_residual_fusion_the_add_stays():
    model = small_cnn()
    before = clone(model)
    run_passes(model, "float-pipeline{level=3 residual_fusion=false}")
    assert op_types(model) == ["FusedConv", "FusedConv", "Add"]
    assert_same_outputs(before, model, rtol=1e-4, atol=1e-5)


def test_level_0_changes_nothing():
    model = small_cnn()
    text = str(model.module)
    run_passes(model, "float-pipeline{level=0}")
    assert str(model.module) == text


# ------------------------------------------------------------------ the zoo at level 3

PARAMS = [pytest.param(m, id=m.name) for m in MODELS]


def unfused_conv_activations(model) -> list[str]:
    """Conv-like ops whose only reader is a Relu or Clip (a fusion left undone)."""
    found = []
    for op in ops(model):
        if op.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            continue
        readers = [use.operation for use in op.results[0].uses]
        if len(readers) == 1 and getattr(readers[0], "op_type", "") in ("Relu", "Clip"):
            found.append(op.describe())
    return found


@pytest.mark.parametrize("zoo_model", PARAMS)
def test_zoo_level_3(zoo_model: ZooModel, capsys: pytest.CaptureFixture[str]):
    model = import_onnx(model_path(zoo_model))
    feeds = {model.inputs[0].name: real_input(zoo_model)}
    want = Interpreter(model).run(feeds).outputs
    before = Counter(op_types(model))
    run_passes(model, "float-pipeline{level=3}")
    after = Counter(op_types(model))
    got = Interpreter(model).run(feeds).outputs
    for name, value in want.items():
        assert relative_max_error(got[name], value) <= 1e-4, name
    assert after["BatchNormalization"] == 0 and after["Identity"] == 0
    assert not unfused_conv_activations(model)
    with capsys.disabled():
        print(f"\n| {zoo_model.name} | {sum(before.values())} | {sum(after.values())} | "
              f"{dict(before.most_common(4))} | {dict(after.most_common(4))} |")  # fmt: skip
