"""What every `onnx` dialect op shares: its ONNX schema, attribute values as Python values,
ONNX-ordered operand access, the node and tensor names it came from, and verification.

The op classes themselves are generated from ONNX's schemas (`ops.py`, by `generate.py`);
each carries a `SCHEMA` (an `OnnxSchema`) that this module interprets.

Names: the ONNX node name travels in the discardable attribute `onnx.node`, the ONNX names of
the op's results in `onnx.outputs` (one string per result). SSA names in the text are only
hints; these attributes are what reports and configs use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    f32,
    i64,
)
from xdsl.ir import Attribute, OpResult, SSAValue
from xdsl.irdl import IRDLOperation, OptionalDef, VariadicDef
from xdsl.utils.exceptions import VerifyException

from dialects.dtypes import (
    element_type,
    element_type_name,
    known_element_type_names,
    numpy_dtype,
    tensor_type,
)
from dialects.weights import WeightRefAttr, WeightTable, current_weights

NODE_NAME = "onnx.node"
OUTPUT_NAMES = "onnx.outputs"

AttributeValue = (
    int | float | str | list[int] | list[float] | list[str] | np.ndarray | dict[str, Any]
)


@dataclass(frozen=True)
class AttributeSpec:
    """One ONNX attribute of an op: its kind, its ONNX default (None: no default)."""

    kind: str  # int | float | string | ints | floats | strings | tensor | dict
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class TypeVar:
    """An ONNX type constraint: operands/results (by field name) that share one element
    type, and the element types allowed (short names, see `dialects.dtypes`)."""

    members: tuple[str, ...]
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class OnnxSchema:
    op_type: str
    since_version: int
    inputs: tuple[str, ...]  # operand field names, in ONNX input order
    outputs: tuple[str, ...]  # result field names, in ONNX output order
    attributes: Mapping[str, AttributeSpec] = field(default_factory=dict)
    type_vars: tuple[TypeVar, ...] = ()


OpVerifier = Callable[["OnnxOp"], None]
_VERIFIERS: dict[str, OpVerifier] = {}


def op_verifier(*op_types: str) -> Callable[[OpVerifier], OpVerifier]:
    """Register a shape/attribute check run by `verify_` of each of `op_types`."""

    def register(fn: OpVerifier) -> OpVerifier:
        for op_type in op_types:
            _VERIFIERS[op_type] = fn
        return fn

    return register


class OnnxOp(IRDLOperation):
    """Base of all generated `onnx.*` op classes."""

    SCHEMA: ClassVar[OnnxSchema]

    # ------------------------------------------------------------------ construction
    @classmethod
    def create_onnx(
        cls,
        inputs: Sequence[SSAValue | None],
        result_types: Sequence[Attribute | None],
        properties: Mapping[str, Attribute] | None = None,
    ) -> OnnxOp:
        """Build from ONNX-ordered operands and result types (None: an absent optional),
        the way an ONNX node lists them."""
        definition = cls.get_irdl_definition()
        operands = _place(list(inputs), [d for _, d in definition.operands], "input", cls)
        results = _place(list(result_types), [d for _, d in definition.results], "output", cls)
        return cls.build(operands=operands, result_types=results, properties=dict(properties or {}))

    # ------------------------------------------------------------------ identity, names
    @property
    def op_type(self) -> str:
        return self.SCHEMA.op_type

    @property
    def node_name(self) -> str:
        attr = self.attributes.get(NODE_NAME)
        return attr.data if isinstance(attr, StringAttr) else ""

    def describe(self) -> str:
        """`Conv "conv1"`, for messages."""
        return f'{self.op_type} "{self.node_name}"' if self.node_name else self.op_type

    @property
    def output_names(self) -> list[str]:
        attr = self.attributes.get(OUTPUT_NAMES)
        if isinstance(attr, ArrayAttr):
            return [a.data for a in attr.data if isinstance(a, StringAttr)]
        return []

    def set_names(self, node: str | None, outputs: Sequence[str]) -> None:
        """Record the ONNX node name (if there is one) and the result tensor names."""
        if node:
            self.attributes[NODE_NAME] = StringAttr(node)
        self.attributes[OUTPUT_NAMES] = ArrayAttr([StringAttr(n) for n in outputs])

    # ------------------------------------------------------------------ operands in ONNX order
    def onnx_inputs(self) -> list[SSAValue | None]:
        """Operands in ONNX input order; None for an absent optional input. A variadic
        input contributes all its values."""
        values: list[SSAValue | None] = []
        for name in self.SCHEMA.inputs:
            value = getattr(self, name)
            if value is None or isinstance(value, SSAValue):
                values.append(value)
            else:
                values.extend(value)
        return values

    def onnx_results(self) -> list[OpResult | None]:
        """Results in ONNX output order; None for an absent optional output."""
        values: list[OpResult | None] = []
        for name in self.SCHEMA.outputs:
            value = getattr(self, name)
            if value is None or isinstance(value, OpResult):
                values.append(value)
            else:
                values.extend(value)
        return values

    # ------------------------------------------------------------------ attributes
    def attribute_values(self, weights: WeightTable | None = None) -> dict[str, AttributeValue]:
        """The ONNX attributes set on this op, as Python values (kernel keyword arguments)."""
        return {
            name: attribute_value(self.properties[name], weights)
            for name in self.SCHEMA.attributes
            if name in self.properties
        }

    def attr(self, name: str) -> Any:
        """The value of ONNX attribute `name`, or its ONNX default when it is not set."""
        spec = self.SCHEMA.attributes[name]
        prop = self.properties.get(name)
        return spec.default if prop is None else attribute_value(prop)

    # ------------------------------------------------------------------ verification
    def verify_(self) -> None:
        try:
            self._verify_types()
            self._verify_attributes()
            check = _VERIFIERS.get(self.op_type)
            if check is not None:
                check(self)
        except VerifyException as exc:
            raise VerifyException(f"{self.describe()}: {exc}") from None
        names = self.attributes.get(OUTPUT_NAMES)
        if isinstance(names, ArrayAttr) and len(names.data) != len(self.results):
            raise VerifyException(
                f"{self.describe()}: {OUTPUT_NAMES} has {len(names.data)} names "
                f"for {len(self.results)} results"
            )

    def _verify_types(self) -> None:
        for value in (*self.operands, *self.results):
            if not isinstance(value.type, TensorType):
                raise VerifyException(f"expected a ranked tensor, got {value.type}")
            if any(d < 0 for d in value.type.get_shape()):
                raise VerifyException(f"dynamic shape {value.type} (shapes must be static)")
        for var in self.SCHEMA.type_vars:
            elems = {e for member in var.members for e in self._element_types(member)}
            if len(elems) > 1:
                names = ", ".join(sorted(element_type_name(e) for e in elems))
                raise VerifyException(f"{'/'.join(var.members)} must share one type, got {names}")
            allowed = _allowed_types(var.allowed)
            if elems and allowed and not elems <= allowed:
                (elem,) = elems
                raise VerifyException(
                    f"element type {element_type_name(elem)} not allowed for "
                    f"{'/'.join(var.members)} (allowed: {', '.join(var.allowed)})"
                )

    def _element_types(self, member: str) -> list[Attribute]:
        value = getattr(self, member)
        values = [] if value is None else [value] if isinstance(value, SSAValue) else value
        return [v.type.element_type for v in values if isinstance(v.type, TensorType)]

    def _verify_attributes(self) -> None:
        for name, spec in self.SCHEMA.attributes.items():
            if spec.required and name not in self.properties:
                raise VerifyException(f"missing required attribute {name}")


def _place(items: list[Any], defs: list[Any], what: str, cls: type[OnnxOp]) -> list[Any]:
    """Distribute ONNX-ordered `items` over IRDL operand/result definitions: a single takes
    one (it must be present), an optional one or None, a variadic (always last in ONNX)
    everything left, absent entries dropped."""
    placed: list[Any] = []
    for index, definition in enumerate(defs):
        optional = isinstance(definition, OptionalDef)  # (OptionalDef subclasses VariadicDef)
        if isinstance(definition, VariadicDef) and not optional:
            placed.append([item for item in items[index:] if item is not None])
            return placed
        item = items[index] if index < len(items) else None
        if item is None and not optional:
            raise ValueError(f"{cls.SCHEMA.op_type}: required {what} {index} is missing")
        placed.append(item)
    if len(items) > len(defs):
        raise ValueError(f"{cls.SCHEMA.op_type}: {len(items)} {what}s, at most {len(defs)}")
    return placed


_ALLOWED_CACHE: dict[tuple[str, ...], frozenset[Attribute]] = {}
_KNOWN = set(known_element_type_names())


def _allowed_types(names: tuple[str, ...]) -> frozenset[Attribute]:
    cached = _ALLOWED_CACHE.get(names)
    if cached is None:
        cached = frozenset(element_type(n) for n in names if n in _KNOWN)
        _ALLOWED_CACHE[names] = cached
    return cached


# ---------------------------------------------------------------------- attribute <-> Python
def attribute_value(attr: Attribute, weights: WeightTable | None = None) -> AttributeValue:
    """The Python value of an ONNX attribute stored as an xDSL property."""
    if isinstance(attr, IntegerAttr):
        return int(attr.value.data)
    if isinstance(attr, FloatAttr):
        return float(attr.value.data)
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, DenseArrayBase):
        return list(attr.get_values())
    if isinstance(attr, ArrayAttr):
        return [a.data for a in attr.data if isinstance(a, StringAttr)]
    if isinstance(attr, DictionaryAttr):
        return {key: attribute_value(value, weights) for key, value in attr.data.items()}
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return dense_to_numpy(attr)
    if isinstance(attr, WeightRefAttr):
        return (weights or current_weights())[attr]
    raise TypeError(f"no Python value for attribute {attr}")


def attribute_from_value(kind: str, value: Any) -> Attribute:
    """The property for an ONNX attribute of `kind` with Python `value`."""
    if kind == "int":
        return IntegerAttr(int(value), i64)
    if kind == "float":
        return FloatAttr(float(value), f32)
    if kind == "string":
        return StringAttr(value if isinstance(value, str) else value.decode())
    if kind == "ints":
        return DenseArrayBase.from_list(i64, [int(v) for v in value])
    if kind == "floats":
        return DenseArrayBase.from_list(f32, [float(v) for v in value])
    if kind == "strings":
        return ArrayAttr([StringAttr(v if isinstance(v, str) else v.decode()) for v in value])
    if kind == "tensor":
        return value if isinstance(value, WeightRefAttr) else dense_from_numpy(np.asarray(value))
    if kind == "dict":  # scalar entries only: a fused activation's attributes
        return DictionaryAttr({k: _scalar_attribute(v) for k, v in value.items()})
    raise ValueError(f"unknown attribute kind {kind}")


def _scalar_attribute(value: int | float | str) -> Attribute:
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return IntegerAttr(int(value), i64)
    return FloatAttr(float(value), f32)


def dense_from_numpy(array: np.ndarray) -> DenseIntOrFPElementsAttr:
    """An inline dense attribute built from the array's bytes (never from Python lists)."""
    array = np.asarray(array)
    storage = array.astype(np.uint8) if array.dtype == np.bool_ else array  # i1: one byte each
    return DenseIntOrFPElementsAttr(
        tensor_type(array.shape, array.dtype), BytesAttr(storage.tobytes())
    )


def dense_to_numpy(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    tensor = attr.get_type()
    assert isinstance(tensor, TensorType)
    dtype = numpy_dtype(tensor.element_type)
    storage = np.uint8 if dtype == np.bool_ else dtype
    array = np.frombuffer(attr.data.data, dtype=storage).reshape(tensor.get_shape())
    return array.astype(np.bool_) if dtype == np.bool_ else array
