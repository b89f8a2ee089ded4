"""The ONNX importer: canonical opset, names kept, weights aside, static shapes, and the
one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import CompilerError
from compiler.examples import TINY_CNN
from compiler.frontend import import_onnx
from compiler.ir_model import IRModel, parse_module
from dialects.onnx import OPSET, ConstantOp, OnnxOp
from dialects.weights import WeightRefAttr


def make_model(nodes, inputs, outputs, inits=(), opset=OPSET, ir_version=None):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version or (10 if opset >= 21 else 7)
    return model


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def ops(model: IRModel) -> list[OnnxOp]:
    return [op for op in model.main.body.blocks[0].ops if isinstance(op, OnnxOp)]


def by_type(model: IRModel, op_type: str) -> list[OnnxOp]:
    return [op for op in ops(model) if op.op_type == op_type]


# ------------------------------------------------------------------ structure and names


def test_tiny_cnn_keeps_every_node_and_tensor_name():
    onnx_model = onnx.load(TINY_CNN)
    model = import_onnx(TINY_CNN)
    non_constant = [op for op in ops(model) if not isinstance(op, ConstantOp)]
    assert [op.node_name for op in non_constant] == [n.name for n in onnx_model.graph.node]
    assert [op.op_type for op in non_constant] == [n.op_type for n in onnx_model.graph.node]
    for op, node in zip(non_constant, onnx_model.graph.node, strict=True):
        assert op.output_names == list(node.output)
    assert [s.name for s in model.inputs] == ["input"]
    assert [s.name for s in model.outputs] == ["probs"]
    assert model.outputs[0].shape == (1, 10)


def test_large_initializers_go_to_the_weight_table_small_ones_stay_inline():
    model = import_onnx(TINY_CNN)
    constants = {op.output_names[0]: op for op in ops(model) if isinstance(op, ConstantOp)}
    assert isinstance(constants["stem.w"].value, WeightRefAttr)
    assert constants["stem.w"].value.handle == "stem.w"
    expected = numpy_helper.to_array(
        next(t for t in onnx.load(TINY_CNN).graph.initializer if t.name == "stem.w")
    )
    np.testing.assert_array_equal(model.weights["stem.w"], expected)
    assert not isinstance(constants["relu6.max"].value, WeightRefAttr)  # a scalar: inline
    assert not isinstance(constants["stem.b"].value, WeightRefAttr)  # 16 elements: inline
    assert isinstance(constants["fc.w"].value, WeightRefAttr)


def test_module_records_opsets():
    model = import_onnx(TINY_CNN)
    assert model.module.attributes["onnx.opset"].value.data == OPSET
    assert model.module.attributes["onnx.source_opset"].value.data == 13


def test_print_parse_print_is_identity():
    model = import_onnx(TINY_CNN)
    text = str(model.module)
    assert str(parse_module(text)) == text


def test_save_and_load(tmp_path: Path):
    model = import_onnx(TINY_CNN)
    npz = model.save(tmp_path / "m.mlir")
    assert npz == tmp_path / "m.npz"
    loaded = IRModel.load(tmp_path / "m.mlir")
    assert str(loaded.module) == str(model.module)
    assert set(loaded.weights.arrays) == set(model.weights.arrays)
    for key, array in model.weights.arrays.items():
        np.testing.assert_array_equal(loaded.weights[key], array)


def test_unnamed_and_duplicate_node_names_are_made_unique():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Relu", ["a"], ["b"], "r"),
        helper.make_node("Relu", ["b"], ["c"], "r"),
    ]
    model = import_onnx(make_model(nodes, [vi("x", [2])], [vi("c", [2])]))
    assert [op.node_name for op in ops(model)] == ["Relu_0", "r", "r_1"]


def test_multiple_inputs_and_outputs():
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"], "add"),
        helper.make_node("Mul", ["a", "b"], ["p"], "mul"),
    ]
    model = import_onnx(
        make_model(nodes, [vi("a", [2, 3]), vi("b", [3])], [vi("p", [2, 3]), vi("s", [2, 3])])
    )
    assert [s.name for s in model.inputs] == ["a", "b"]
    assert [s.name for s in model.outputs] == ["p", "s"]
    assert model.inputs[1].shape == (3,)


# ------------------------------------------------------------------ opsets


def test_old_opset_clip_attributes_become_inputs():
    node = helper.make_node("Clip", ["x"], ["y"], "clip", min=0.0, max=6.0)
    model = import_onnx(make_model([node], [vi("x", [4])], [vi("y", [4])], opset=10))
    (clip,) = by_type(model, "Clip")
    assert len([v for v in clip.onnx_inputs() if v is not None]) == 3
    assert clip.node_name == "clip"


def test_upsample_becomes_resize():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], "up", mode="nearest")
    model = import_onnx(
        make_model([node], [vi("x", [1, 1, 2, 2])], [vi("y", [1, 1, 4, 4])], [scales], opset=9)
    )
    assert [op.op_type for op in ops(model) if not isinstance(op, ConstantOp)] == ["Resize"]
    assert model.outputs[0].shape == (1, 1, 4, 4)


def test_newer_opset_with_same_signature_is_relabelled():
    node = helper.make_node("Relu", ["x"], ["y"], "relu")
    model = import_onnx(make_model([node], [vi("x", [3])], [vi("y", [3])], opset=22))
    assert [op.op_type for op in ops(model)] == ["Relu"]


def test_newer_opset_attribute_added_later_is_fine_when_unset():
    node = helper.make_node("Cast", ["x"], ["y"], "cast", to=TensorProto.INT32)
    model = make_model([node], [vi("x", [3])], [vi("y", [3], TensorProto.INT32)], opset=25)
    assert [op.op_type for op in ops(import_onnx(model))] == ["Cast"]


def test_newer_opset_attribute_the_canonical_opset_lacks_is_rejected():
    node = helper.make_node("Cast", ["x"], ["y"], "cast", to=TensorProto.INT32, round_mode="up")
    model = make_model([node], [vi("x", [3])], [vi("y", [3], TensorProto.INT32)], opset=25)
    with pytest.raises(
        CompilerError,
        match=r"node 'cast' \(Cast\): Cast at opset 25 has no "
        "equivalent at opset 21",
    ):
        import_onnx(model)


# ------------------------------------------------------------------ weights in Constant nodes


def test_paddle_style_constant_weights_go_to_the_table():
    weight = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "unused_name")
    nodes = [
        helper.make_node("Constant", [], ["w"], "const_w", value=weight),
        helper.make_node("Constant", [], ["k"], "const_k", value_ints=[1, 8, 36]),
        helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "k"], ["y"], "reshape"),
    ]
    model = import_onnx(make_model(nodes, [vi("x", [1, 3, 6, 6])], [vi("y", [1, 8, 36])]))
    constants = [op for op in ops(model) if isinstance(op, ConstantOp)]
    weights = [c for c in constants if isinstance(c.value, WeightRefAttr)]
    assert [c.node_name for c in weights] == ["const_w"]
    assert weights[0].value.handle == "w"
    assert {c.node_name for c in constants} == {"const_w", "const_k"}


# ------------------------------------------------------------------ shapes


def shape_chain_model(dynamic_batch: bool):
    """x -> Identity -> Shape -> Gather(1) -> Cast -> Unsqueeze -> Concat([-1, c]) -> Reshape."""
    inits = [
        numpy_helper.from_array(np.array(1, np.int64), "one"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    nodes = [
        helper.make_node("Identity", ["x"], ["xi"], "id"),
        helper.make_node("Shape", ["xi"], ["s"], "shape"),
        helper.make_node("Gather", ["s", "one"], ["c"], "gather"),
        helper.make_node("Cast", ["c"], ["c64"], "cast", to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["c64", "axes"], ["cu"], "unsq"),
        helper.make_node("Concat", ["minus1", "cu"], ["shape2"], "concat", axis=0),
        helper.make_node("Reshape", ["xi", "shape2"], ["y"], "reshape"),
    ]
    batch = "N" if dynamic_batch else 2
    return make_model(nodes, [vi("x", [batch, 3, 4])], [vi("y", None)], inits, opset=13)


def test_identity_shape_cast_chain_gets_static_shapes():
    model = import_onnx(shape_chain_model(dynamic_batch=False))
    assert model.outputs[0].shape == (8, 3)


def test_dynamic_input_needs_input_shape():
    with pytest.raises(
        CompilerError,
        match=r"input 'x' has a dynamic shape \(\?,3,4\); give it "
        r"with --input-shape x=",
    ):
        import_onnx(shape_chain_model(dynamic_batch=True))
    model = import_onnx(shape_chain_model(dynamic_batch=True), {"x": (5, 3, 4)})
    assert model.inputs[0].shape == (5, 3, 4)
    assert model.outputs[0].shape == (20, 3)


def test_input_shape_errors():
    model = shape_chain_model(dynamic_batch=True)
    with pytest.raises(CompilerError, match="the model's inputs are 'x'"):
        import_onnx(model, {"images": (1, 3, 4)})
    with pytest.raises(CompilerError, match="rank 3, not 2"):
        import_onnx(model, {"x": (1, 3)})
    with pytest.raises(CompilerError, match="cannot change it"):
        import_onnx(model, {"x": (1, 4, 4)})


def test_nhwc_input_model_keeps_its_layout():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], "to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Relu", ["t"], ["y"], "relu"),
    ]
    model = import_onnx(make_model(nodes, [vi("x", [1, 8, 6, 3])], [vi("y", [1, 3, 8, 6])]))
    assert model.inputs[0].shape == (1, 8, 6, 3)
    assert model.outputs[0].shape == (1, 3, 8, 6)


def test_the_callers_model_is_not_modified():
    model = onnx.load(TINY_CNN)
    before = model.SerializeToString()
    import_onnx(model)
    assert model.SerializeToString() == before


def test_unsorted_graph_is_sorted():
    nodes = [
        helper.make_node("Relu", ["a"], ["y"], "second"),
        helper.make_node("Neg", ["x"], ["a"], "first"),
    ]
    model = import_onnx(make_model(nodes, [vi("x", [2])], [vi("y", [2])]))
    assert [op.node_name for op in ops(model)] == ["first", "second"]


# ------------------------------------------------------------------ errors


def test_not_an_onnx_file(tmp_path: Path):
    path = tmp_path / "bad.onnx"
    path.write_text("this is not a model\n" * 10)
    with pytest.raises(CompilerError, match="not an ONNX model"):
        import_onnx(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(CompilerError, match="no such file"):
        import_onnx(tmp_path / "nope.onnx")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path: Path, fraction: float):
    data = TINY_CNN.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CompilerError):
        import_onnx(path)


def test_missing_external_data(tmp_path: Path):
    model = onnx.load(TINY_CNN)
    onnx.save(
        model, tmp_path / "m.onnx", save_as_external_data=True, location="m.data", size_threshold=64
    )
    assert import_onnx(tmp_path / "m.onnx").weights.nbytes() > 0
    (tmp_path / "m.data").unlink()
    with pytest.raises(CompilerError, match=r"keeps its data in 'm\.data', which is missing"):
        import_onnx(tmp_path / "m.onnx")


def test_unknown_domain_names_the_node():
    node = helper.make_node("FusedConv", ["x"], ["y"], "fused", domain="com.microsoft")
    model = make_model([node], [vi("x", [2])], [vi("y", [2])])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(
        CompilerError,
        match=r"node 'fused' \(FusedConv\) is in domain "
        r"'com.microsoft'",
    ):
        import_onnx(model)


def test_unknown_op_names_the_node():
    node = helper.make_node("NoSuchOp", ["x"], ["y"], "mystery")
    with pytest.raises(CompilerError, match="mystery"):
        import_onnx(make_model([node], [vi("x", [2])], [vi("y", [2])]))


def test_undefined_input_names_the_node():
    node = helper.make_node("Add", ["x", "ghost"], ["y"], "add")
    with pytest.raises(CompilerError, match=r"node 'add' \(Add\) reads 'ghost'"):
        import_onnx(make_model([node], [vi("x", [2])], [vi("y", [2])]))


def test_subgraph_ops_are_rejected():
    branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["z"])], "b", [], [vi("z", [2])]
    )
    node = helper.make_node("If", ["c"], ["y"], "branch", then_branch=branch, else_branch=branch)
    model = make_model([node], [vi("c", [], TensorProto.BOOL), vi("x", [2])], [vi("y", [2])])
    with pytest.raises(
        CompilerError,
        match=r"'branch' \(If\): attribute '(then|else)_branch' "
        "holds a subgraph",
    ):
        import_onnx(model)


def test_unknown_attribute_is_rejected():
    node = helper.make_node("Relu", ["x"], ["y"], "relu", slope=0.1)
    with pytest.raises(CompilerError, match="Relu has no attribute 'slope'"):
        import_onnx(make_model([node], [vi("x", [2])], [vi("y", [2])]))


def test_unsupported_element_type():
    node = helper.make_node("Identity", ["x"], ["y"], "id")
    model = make_model(
        [node], [vi("x", [2], TensorProto.STRING)], [vi("y", [2], TensorProto.STRING)]
    )
    with pytest.raises(CompilerError, match="STRING"):
        import_onnx(model)


def test_inconsistent_model_is_reported_with_the_node():
    # the declared output shape disagrees with what the Conv computes
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], "conv", group=2)
    with pytest.raises(CompilerError, match="conv"):
        import_onnx(make_model([node], [vi("x", [1, 3, 5, 5])], [vi("y", [1, 2, 3, 3])], [w]))


def test_random_byte_flips_give_a_model_or_a_clean_error(tmp_path: Path):
    """Damaged files never escape as anything but CompilerError (seeded, 200 variants)."""
    import random

    from compiler.interpreter import Interpreter

    data = TINY_CNN.read_bytes()
    rng = random.Random(0)
    path = tmp_path / "flipped.onnx"
    outcomes = {"ran": 0, "rejected": 0}
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(damaged)
        try:
            interpreter = Interpreter(import_onnx(path))
            interpreter.run({s.name: np.zeros(s.shape, s.dtype) for s in interpreter.input_specs})
            outcomes["ran"] += 1  # the flip hit weight data, or a harmless field
        except CompilerError:
            outcomes["rejected"] += 1
    assert outcomes["ran"] > 0 and outcomes["rejected"] > 0, outcomes
