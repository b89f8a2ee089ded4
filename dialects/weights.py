"""Weights live outside the textual IR.

An op refers to a weight by handle, `#weights.ref<"conv1.weight">`; the arrays live in a
`WeightTable` owned by the compilation (saved as `.npz` beside the `.mlir`). Printing and
parsing the IR therefore costs nothing per weight byte (see DESIGN.md, IR rules). We do not
use xDSL's `dense_resource`: its blob store is process-global and renames handles when the
same text is parsed twice.

Passes are frozen dataclasses whose fields are CLI options, so the table reaches them through
a context variable: `with using_weights(table): pipeline.apply(ctx, module)`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer


@irdl_attr_definition
class WeightRefAttr(ParametrizedAttribute):
    """`#weights.ref<"key">`: the entry `key` of the compilation's weight table."""

    name = "weights.ref"

    key: StringAttr

    def __init__(self, key: str) -> None:
        super().__init__(StringAttr(key))

    @property
    def handle(self) -> str:
        return self.key.data

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string_literal(self.key.data)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            key = parser.parse_str_literal()
        return [StringAttr(key)]


Weights = Dialect("weights", [], [WeightRefAttr])


class WeightTable:
    """Handle -> numpy array. Handles are ONNX tensor names where there is one."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.arrays: dict[str, np.ndarray] = dict(arrays or {})

    def add(self, array: np.ndarray, name: str) -> WeightRefAttr:
        """Store `array` under `name`, or under `name` with a suffix if it is taken."""
        key, n = name, 0
        while key in self.arrays:
            n += 1
            key = f"{name}#{n}"
        self.arrays[key] = np.ascontiguousarray(array)
        return WeightRefAttr(key)

    def __getitem__(self, ref: WeightRefAttr | str) -> np.ndarray:
        key = ref.handle if isinstance(ref, WeightRefAttr) else ref
        try:
            return self.arrays[key]
        except KeyError:
            raise KeyError(f"weight {key!r} is not in the weight table") from None

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    def subset(self, keys: set[str]) -> WeightTable:
        """A table with only `keys` (to drop entries no op refers to any more)."""
        return WeightTable({k: a for k, a in self.arrays.items() if k in keys})


_CURRENT: contextvars.ContextVar[WeightTable | None] = contextvars.ContextVar(
    "weights", default=None
)


@contextlib.contextmanager
def using_weights(table: WeightTable) -> Iterator[WeightTable]:
    token = _CURRENT.set(table)
    try:
        yield table
    finally:
        _CURRENT.reset(token)


def current_weights() -> WeightTable:
    table = _CURRENT.get()
    if table is None:
        raise RuntimeError("no weight table in scope: wrap the call in `using_weights(table)`")
    return table
