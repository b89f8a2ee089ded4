"""`#npu.quant<...>`: how a quantized tensor's integers map to reals (see `numerics.py`).

Text form, per tensor and per channel of `axis`::

    #npu.quant<i8, 0.023529411764705882 : -128>
    #npu.quant<i8 axis 0, [0.0123, 0.0456] : [0, 0]>
    #npu.quant<f16>                             (float16: no scale, no zero point)

Scales print as Python's shortest round-tripping float text, so parse(print(q)) == q exactly.
"""

from __future__ import annotations

import math

import numpy as np
from xdsl.dialects.builtin import DenseArrayBase, IntAttr, StringAttr, f64, i64
from xdsl.ir import Attribute, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from dialects.npu.numerics import FLOAT_DTYPES, QRANGES, QuantParams

DTYPES = (*QRANGES, *FLOAT_DTYPES)
NO_AXIS = -1


def float_text(value: float) -> str:
    """Shortest round-tripping text that is also an MLIR float literal (`1e-30` is not
    one: the mantissa needs a dot)."""
    text = repr(float(value))
    mantissa, exp, exponent = text.partition("e")
    if exp and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


@irdl_attr_definition
class QuantAttr(ParametrizedAttribute):
    """Element dtype, scale(s), zero point(s), channel axis (-1: per tensor)."""

    name = "npu.quant"

    # dense arrays, not lists of FloatAttr: a per-channel layer has hundreds of scales, and
    # building one xDSL attribute per value dominated quantization time
    dtype: StringAttr
    scales: DenseArrayBase
    zero_points: DenseArrayBase
    axis: IntAttr

    def __init__(
        self,
        dtype: str,
        scales: list[float] | None = None,
        zero_points: list[int] | None = None,
        axis: int | None = None,
    ) -> None:
        super().__init__(
            StringAttr(dtype),
            DenseArrayBase.from_list(f64, [float(s) for s in scales or []]),
            DenseArrayBase.from_list(i64, [int(z) for z in zero_points or []]),
            IntAttr(NO_AXIS if axis is None else axis),
        )

    @classmethod
    def from_params(cls, params: QuantParams) -> QuantAttr:
        scales = np.atleast_1d(params.scale).tolist()
        zero_points = np.atleast_1d(params.zero_point).tolist()
        if params.dtype in FLOAT_DTYPES:
            return cls(params.dtype)
        return cls(params.dtype, scales, zero_points, params.axis)

    # ------------------------------------------------------------------ values
    @property
    def element(self) -> str:
        return self.dtype.data

    @property
    def scale_values(self) -> list[float]:
        return [float(v) for v in self.scales.get_values()]

    @property
    def zero_point_values(self) -> list[int]:
        return [int(v) for v in self.zero_points.get_values()]

    @property
    def is_float(self) -> bool:
        return self.element in FLOAT_DTYPES

    @property
    def channel_axis(self) -> int | None:
        return None if self.axis.data == NO_AXIS else self.axis.data

    def params(self) -> QuantParams:
        """The parameters as numpy values for `numerics` (per tensor: 0-d arrays)."""
        scales = np.array(self.scales.get_values(), np.float64)
        zero_points = np.array(self.zero_points.get_values(), np.int64)
        if self.is_float:
            return QuantParams(self.element, np.float64(1.0), np.int64(0))
        if self.channel_axis is None:
            return QuantParams(self.element, scales.reshape(()), zero_points.reshape(()))
        return QuantParams(self.element, scales, zero_points, self.channel_axis)

    @property
    def scale(self) -> float:
        """The per-tensor scale (an error for per-channel parameters)."""
        if self.channel_axis is not None:
            raise ValueError("per-channel parameters have no single scale")
        return float(self.params().scale)

    @property
    def zero_point(self) -> int:
        if self.channel_axis is not None:
            raise ValueError("per-channel parameters have no single zero point")
        return int(self.params().zero_point)

    # ------------------------------------------------------------------ checks
    def verify(self) -> None:
        if self.element not in DTYPES:
            raise VerifyException(f"npu.quant: dtype {self.element!r} is not one of {DTYPES}")
        scales, zero_points = self.scale_values, self.zero_point_values
        n_scales, n_zps = len(scales), len(zero_points)
        if self.is_float:
            if n_scales or n_zps:
                raise VerifyException(f"npu.quant: {self.element} has no scale or zero point")
            return
        if n_scales != n_zps or n_scales == 0:
            raise VerifyException("npu.quant: needs as many zero points as scales (at least 1)")
        if self.channel_axis is None and n_scales != 1:
            raise VerifyException("npu.quant: per-tensor parameters have one scale")
        for scale in scales:
            if not (math.isfinite(scale) and scale > 0):
                raise VerifyException(f"npu.quant: scale {scale} is not positive")
        lo, hi = QRANGES[self.element]
        for zero_point in zero_points:
            if not lo <= zero_point <= hi:
                raise VerifyException(f"npu.quant: zero point {zero_point} outside {self.element}")

    # ------------------------------------------------------------------ text
    def print_parameters(self, printer: Printer) -> None:
        scales = [float_text(s) for s in self.scale_values]
        zps = [str(z) for z in self.zero_point_values]
        with printer.in_angle_brackets():
            printer.print_string(self.element)
            if self.is_float:
                return
            if self.channel_axis is None:
                printer.print_string(f", {scales[0]} : {zps[0]}")
            else:
                printer.print_string(
                    f" axis {self.channel_axis}, [{', '.join(scales)}] : [{', '.join(zps)}]"
                )

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            dtype = parser.parse_identifier()
            axis = NO_AXIS
            if parser.parse_optional_keyword("axis"):
                axis = parser.parse_integer(allow_boolean=False)
            scales: list[float] = []
            zps: list[int] = []
            if parser.parse_optional_punctuation(","):
                if axis == NO_AXIS:
                    scales = [parser.parse_float()]
                    parser.parse_punctuation(":")
                    zps = [parser.parse_integer(allow_boolean=False)]
                else:
                    scales = parser.parse_comma_separated_list(
                        parser.Delimiter.SQUARE, parser.parse_float
                    )
                    parser.parse_punctuation(":")
                    zps = parser.parse_comma_separated_list(
                        parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False)
                    )
        attr = cls(dtype, scales, zps, None if axis == NO_AXIS else axis)
        return list(attr.parameters)
