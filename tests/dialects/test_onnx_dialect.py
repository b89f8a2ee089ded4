"""The `onnx` dialect: generated classes, schema-driven attributes and verification, textual
round trips of the custom attributes."""

from __future__ import annotations

import numpy as np
import onnx.defs
import pytest
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, StringAttr, TensorType, f16, f32, i64
from xdsl.dialects.test import TestOp as SourceOp
from xdsl.ir import SSAValue
from xdsl.utils.exceptions import VerifyException

from compiler.ir_model import parse_module
from dialects.onnx import OPS_BY_TYPE, OPSET, ConstantOp, attribute_from_value
from dialects.onnx.base import dense_from_numpy, dense_to_numpy
from dialects.onnx.generate import canonical_schemas
from dialects.onnx.generate import main as generate_main
from dialects.weights import WeightRefAttr, WeightTable, using_weights


def values(*shapes: tuple[int, ...], elem=f32) -> list[SSAValue]:
    source = SourceOp(result_types=[TensorType(elem, list(s)) for s in shapes])
    return list(source.results)


def conv(x_shape, w_shape, y_shape, **attrs):
    x, w = values(x_shape, w_shape)
    props = {
        k: attribute_from_value(OPS_BY_TYPE["Conv"].SCHEMA.attributes[k].kind, v)
        for k, v in attrs.items()
    }
    op = OPS_BY_TYPE["Conv"].create_onnx([x, w], [TensorType(f32, list(y_shape))], props)
    op.set_names("conv1", ["y"])
    return op


def test_generated_ops_are_up_to_date():
    assert generate_main(["--check"]) == 0


def test_every_onnx_op_of_the_canonical_opset_has_a_class():
    expected = {s.name for s in canonical_schemas(OPSET)}
    assert expected <= set(OPS_BY_TYPE)
    assert len(expected) > 180


def test_schema_records_onnx_defaults_and_kinds():
    schema = OPS_BY_TYPE["LeakyRelu"].SCHEMA
    assert schema.attributes["alpha"].kind == "float"
    assert schema.attributes["alpha"].default == 0.01
    assert OPS_BY_TYPE["Conv"].SCHEMA.attributes["auto_pad"].default == "NOTSET"
    assert OPS_BY_TYPE["Conv"].SCHEMA.inputs == ("X", "W", "B")
    assert (
        OPS_BY_TYPE["Conv"].SCHEMA.since_version
        == onnx.defs.get_schema("Conv", OPSET).since_version
    )


def test_attribute_values_and_defaults():
    op = conv((1, 3, 8, 8), (4, 3, 3, 3), (1, 4, 4, 4), strides=[2, 2], pads=[1, 1, 1, 1])
    op.verify()
    assert op.attribute_values() == {"strides": [2, 2], "pads": [1, 1, 1, 1]}
    assert op.attr("group") == 1  # the ONNX default
    assert op.attr("strides") == [2, 2]
    assert op.node_name == "conv1" and op.output_names == ["y"]
    assert op.describe() == 'Conv "conv1"'


def test_conv_with_wrong_result_shape_names_the_node():
    op = conv((1, 3, 8, 8), (4, 3, 3, 3), (1, 4, 8, 8))  # no padding: 6x6, not 8x8
    with pytest.raises(
        VerifyException,
        match=r'Conv "conv1": result shape \[1,4,8,8\], '
        r"expected \[1,4,6,6\]",
    ):
        op.verify()


def test_conv_group_mismatch_is_rejected():
    op = conv((1, 4, 8, 8), (4, 3, 3, 3), (1, 4, 6, 6))
    with pytest.raises(VerifyException, match="group"):
        op.verify()


def test_type_constraint_requires_one_element_type():
    a, b = values((2,), (2,))
    (c,) = values((2,), elem=f16)
    op = OPS_BY_TYPE["Add"].create_onnx([a, c], [TensorType(f32, [2])])
    with pytest.raises(VerifyException, match="must share one type"):
        op.verify()
    assert b is not None


def test_type_constraint_rejects_disallowed_element_type():
    (x,) = values((2,), elem=i64)
    op = OPS_BY_TYPE["Sigmoid"].create_onnx([x], [TensorType(i64, [2])])
    with pytest.raises(VerifyException, match="not allowed"):
        op.verify()


def test_dynamic_shapes_are_rejected():
    (x,) = values((-1, 3))
    op = OPS_BY_TYPE["Relu"].create_onnx([x], [TensorType(f32, [-1, 3])])
    with pytest.raises(VerifyException, match="dynamic shape"):
        op.verify()


def test_missing_required_attribute():
    (x,) = values((1, 3, 8, 8))
    op = OPS_BY_TYPE["MaxPool"].create_onnx([x], [TensorType(f32, [1, 3, 4, 4])])
    with pytest.raises(VerifyException, match="kernel_shape"):
        op.verify()


def test_optional_inputs_keep_onnx_positions():
    x, hi = values((4,), ())
    op = OPS_BY_TYPE["Clip"].create_onnx([x, None, hi], [TensorType(f32, [4])])
    op.verify()
    assert op.onnx_inputs() == [x, None, hi]


def test_variadic_inputs():
    a, b, c = values((1, 2), (1, 3), (1, 1))
    props = {"axis": IntegerAttr(1, i64)}
    op = OPS_BY_TYPE["Concat"].create_onnx([a, b, c], [TensorType(f32, [1, 6])], props)
    op.verify()
    assert op.onnx_inputs() == [a, b, c]


@pytest.mark.parametrize(
    ("op_type", "shapes", "result", "attrs", "ok"),
    [
        ("Gemm", [(2, 3), (4, 3)], (2, 4), {"transB": 1}, True),
        ("Gemm", [(2, 3), (4, 3)], (2, 4), {}, False),
        ("MatMul", [(2, 5, 3), (3, 7)], (2, 5, 7), {}, True),
        ("Transpose", [(1, 2, 3)], (3, 1, 2), {"perm": [2, 0, 1]}, True),
        ("Transpose", [(1, 2, 3)], (3, 2, 1), {"perm": [0, 0, 1]}, False),
        ("Flatten", [(2, 3, 4)], (6, 4), {"axis": 2}, True),
        ("Flatten", [(2, 3, 4)], (2, 12), {"axis": 2}, False),
        (
            "MaxPool",
            [(1, 1, 5, 5)],
            (1, 1, 2, 2),
            {"kernel_shape": [2, 2], "strides": [2, 2]},
            True,
        ),
        (
            "MaxPool",
            [(1, 1, 5, 5)],
            (1, 1, 3, 3),
            {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
            True,
        ),
        ("GlobalAveragePool", [(1, 8, 5, 5)], (1, 8, 1, 1), {}, True),
        ("Concat", [(1, 2), (2, 2)], (3, 2), {"axis": 0}, True),
        ("Concat", [(1, 2), (2, 3)], (3, 2), {"axis": 0}, False),
        ("Add", [(1, 3, 1), (4,)], (1, 3, 4), {}, True),
        ("Add", [(3,), (4,)], (4,), {}, False),
        ("Softmax", [(2, 3)], (2, 3), {"axis": 2}, False),
        ("Cast", [(2,)], (2,), {"to": 1}, True),  # to FLOAT: f32 result
        ("Cast", [(2,)], (2,), {"to": 7}, False),  # to INT64, yet the result is f32
        ("DepthToSpace", [(1, 8, 2, 2)], (1, 2, 4, 4), {"blocksize": 2}, True),
        ("ConvTranspose", [(1, 4, 3, 3), (4, 2, 3, 3)], (1, 2, 5, 5), {}, True),
        ("ConvTranspose", [(1, 4, 3, 3), (4, 2, 3, 3)], (1, 2, 7, 7), {"strides": [2, 2]}, True),
    ],
)
def test_shape_verifiers(op_type, shapes, result, attrs, ok):
    cls = OPS_BY_TYPE[op_type]
    props = {k: attribute_from_value(cls.SCHEMA.attributes[k].kind, v) for k, v in attrs.items()}
    op = cls.create_onnx(values(*shapes), [TensorType(f32, list(result))], props)
    if ok:
        op.verify()
    else:
        with pytest.raises(VerifyException):
            op.verify()


def test_constant_checks_inline_type():
    value = dense_from_numpy(np.arange(3, dtype=np.int64))
    ConstantOp(value, TensorType(i64, [3])).verify()
    with pytest.raises(VerifyException, match="differs from result type"):
        ConstantOp(value, TensorType(i64, [4])).verify()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(5, dtype=np.int64),
        np.array([True, False]),
        np.float32(2.5) * np.ones(()),
        np.zeros((2, 3), np.float16),
        np.array([200, 3], np.uint8),
        np.array([-1.5e-7], np.float32),
    ],
)
def test_dense_attributes_round_trip_numpy(array):
    back = dense_to_numpy(dense_from_numpy(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_weight_table_resolves_handles():
    table = WeightTable()
    ref = table.add(np.ones(3, np.float32), "w")
    ref2 = table.add(np.zeros(3, np.float32), "w")
    assert ref.handle == "w" and ref2.handle == "w#1"
    op = ConstantOp(ref2, TensorType(f32, [3]))
    op.properties["value"] = ref2
    with using_weights(table):
        assert op.attribute_values()["value"].tolist() == [0, 0, 0]


IR_TEXT = """builtin.module attributes {onnx.opset = 21 : i64} {
  func.func @main(%x: tensor<1x3x4x4xf32> {onnx.name = "x:0"}) -> (tensor<1x3x4x4xf32> {onnx.name = "y/out"}) {
    %w = "onnx.Constant"() <{value = #weights.ref<"conv \\22w\\22">}> {onnx.outputs = ["w"]} : () -> tensor<3x1x1x1xf32>
    %s = "onnx.Constant"() <{value = dense<[1, 3, 4, 4]> : tensor<4xi64>}> {onnx.outputs = ["s"]} : () -> tensor<4xi64>
    %c = "onnx.Conv"(%x, %w) <{auto_pad = "NOTSET", group = 3 : i64, strides = array<i64: 1, 1>}> {onnx.node = "conv", onnx.outputs = ["c"]} : (tensor<1x3x4x4xf32>, tensor<3x1x1x1xf32>) -> tensor<1x3x4x4xf32>
    %l = "onnx.LeakyRelu"(%c) <{alpha = 0.0123456791 : f32}> {onnx.node = "act", onnx.outputs = ["l"]} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
    %r = "onnx.Reshape"(%l, %s) {onnx.node = "reshape", onnx.outputs = ["y/out"]} : (tensor<1x3x4x4xf32>, tensor<4xi64>) -> tensor<1x3x4x4xf32>
    func.return %r : tensor<1x3x4x4xf32>
  }
}"""


def test_textual_ir_round_trips_exactly():
    module = parse_module(IR_TEXT)
    module.verify()
    assert str(module) == IR_TEXT
    constant = next(op for op in module.walk() if isinstance(op, ConstantOp))
    assert constant.value == WeightRefAttr('conv "w"')
    leaky = next(op for op in module.walk() if getattr(op, "op_type", "") == "LeakyRelu")
    assert leaky.attr("alpha") == pytest.approx(0.0123456791, rel=1e-7)


def test_string_and_list_attribute_conversion():
    assert attribute_from_value("string", b"abc") == StringAttr("abc")
    assert attribute_from_value("ints", [1, 2]) == DenseArrayBase.from_list(i64, [1, 2])
    floats = attribute_from_value("floats", [0.5, 1.25])
    assert list(floats.get_values()) == [0.5, 1.25]
