"""`#npu.quant<...>`: text round trip, verification, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from dialects import context
from dialects.npu import numerics as nx
from dialects.npu.attributes import QuantAttr


def parse(text: str):
    return Parser(context.make_context(), text).parse_attribute()


def test_per_tensor_text_exact():
    attr = QuantAttr("i8", [6 / 255], [-128])
    assert str(attr) == "#npu.quant<i8, 0.023529411764705882 : -128>"
    back = parse(str(attr))
    assert back == attr
    assert back.scale == 6 / 255
    assert back.zero_point == -128
    back.verify()


@pytest.mark.parametrize(
    "attr",
    [
        QuantAttr("i8", [1e-30, 0.1, 1e20], [0, 0, 0], axis=0),
        QuantAttr("i16", [0.1 + 0.2, 3.0, 1 / 3], [-5, 0, 32767], axis=1),
        QuantAttr("i4", [2.0 / 7], [0]),
        QuantAttr("u8", [1.0], [255]),
        QuantAttr("f16"),
        QuantAttr("i32", [5e-324], [0]),
    ],
    ids=["per-channel-extremes", "i16-per-channel", "i4", "u8", "f16", "subnormal"],
)
def test_round_trip_exact(attr):
    attr.verify()
    back = parse(str(attr))
    assert back == attr
    assert str(back) == str(attr)
    np.testing.assert_array_equal(back.params().scale, attr.params().scale)


def test_per_channel_text_form():
    attr = QuantAttr("i8", [1e-30, 0.1, 1e20], [0, 1, -1], axis=0)
    assert str(attr) == "#npu.quant<i8 axis 0, [1.0e-30, 0.1, 1.0e+20] : [0, 1, -1]>"
    assert attr.channel_axis == 0
    with pytest.raises(ValueError):
        _ = attr.scale


def test_parse_handwritten_text():
    attr = parse("#npu.quant<i8 axis 1, [0.0123, 0.0456] : [0, 0]>")
    assert attr == QuantAttr("i8", [0.0123, 0.0456], [0, 0], axis=1)
    assert parse("#npu.quant<f16>").is_float


@pytest.mark.parametrize(
    "args, message",
    [
        (("i8", [0.0], [0]), "not positive"),
        (("i8", [-0.5], [0]), "not positive"),
        (("i8", [float("inf")], [0]), "not positive"),
        (("i8", [0.1], [128]), "outside"),
        (("i8", [0.1], [-129]), "outside"),
        (("i4", [0.1], [8]), "outside"),
        (("u8", [0.1], [-1]), "outside"),
        (("i8", [0.1, 0.2], [0], 0), "as many zero points"),
        (("i8", [], []), "as many zero points"),
        (("i8", [0.1, 0.2], [0, 0]), "one scale"),
        (("i7", [0.1], [0]), "not one of"),
        (("f16", [0.1], [0]), "no scale"),
    ],
)
def test_verify_rejects(args, message):
    # xdsl verifies an attribute when it is built
    with pytest.raises(VerifyException, match=message):
        QuantAttr(*args)


@pytest.mark.parametrize(
    "text, message",
    [
        ("#npu.quant<i8, 0.1 : 300>", "outside"),
        ("#npu.quant<i8, 0.0 : 0>", "not positive"),
        ("#npu.quant<i8 axis 0, [0.1, 0.2] : [0]>", "as many zero points"),
        ("#npu.quant<q8, 0.1 : 0>", "not one of"),
    ],
)
def test_parse_rejects_invalid(text, message):
    with pytest.raises(VerifyException, match=message):
        parse(text)


def test_params_round_trip_per_tensor():
    p = nx.asymmetric_params(-1.0, 3.0, "i16")
    attr = QuantAttr.from_params(p)
    got = attr.params()
    assert got.dtype == "i16"
    assert got.axis is None
    assert got.scale.shape == () and got.zero_point.shape == ()
    assert float(got.scale) == float(p.scale)
    assert int(got.zero_point) == int(p.zero_point)


def test_params_round_trip_per_channel():
    p = nx.QuantParams("i8", np.array([0.5, 1e-30, 1e20]), np.array([0, 0, 0], np.int64), 0)
    got = QuantAttr.from_params(p).params()
    assert got.axis == 0
    np.testing.assert_array_equal(got.scale, p.scale)
    np.testing.assert_array_equal(got.zero_point, p.zero_point)
    # the parsed text gives the same parameters
    again = parse(str(QuantAttr.from_params(p))).params()
    np.testing.assert_array_equal(again.scale, p.scale)


def test_params_float16():
    attr = QuantAttr.from_params(nx.QuantParams("f16", np.float64(1.0), np.int64(0)))
    assert attr == QuantAttr("f16")
    assert attr.params().dtype == "f16"
