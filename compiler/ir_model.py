"""The IR of one model: an xDSL module plus the weight table its handles point into, and its
files: `NAME.mlir` (text) beside `NAME.npz` (weights)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp, StringAttr, TensorType
from xdsl.dialects.func import FuncOp
from xdsl.ir import Attribute
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError

from backends.fileio import atomic_write
from compiler.errors import CompilerError
from dialects.context import make_context
from dialects.dtypes import numpy_dtype
from dialects.weights import WeightRefAttr, WeightTable

NAME_ATTR = "onnx.name"


@dataclass
class TensorSpec:
    """A graph input or output: ONNX name, shape, numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class IRModel:
    module: ModuleOp
    weights: WeightTable

    @property
    def main(self) -> FuncOp:
        for op in self.module.ops:
            if isinstance(op, FuncOp):
                return op
        raise CompilerError("the module has no function")

    @property
    def inputs(self) -> list[TensorSpec]:
        func = self.main
        return _specs(func.arg_attrs, func.function_type.inputs.data, "input")

    @property
    def outputs(self) -> list[TensorSpec]:
        func = self.main
        return _specs(func.res_attrs, func.function_type.outputs.data, "output")

    def clone(self) -> IRModel:
        """An independent copy (passes change the module and add weights in place; the
        arrays themselves are shared: no pass writes into an existing array)."""
        return IRModel(self.module.clone(), WeightTable(dict(self.weights.arrays)))

    def used_weights(self) -> set[str]:
        keys = set()
        for op in self.module.walk():
            # properties hold the weights ops compute with; attributes hold what backend
            # passes add beside them (align-channels' padded copies)
            for value in (*op.properties.values(), *op.attributes.values()):
                if isinstance(value, WeightRefAttr):
                    keys.add(value.handle)
        return keys

    # ------------------------------------------------------------------ files
    def save(self, mlir_path: Path | str) -> Path:
        """Write `NAME.mlir` and, beside it, `NAME.npz` with the weights the IR uses."""
        mlir_path = Path(mlir_path)
        npz_path = mlir_path.with_suffix(".npz")
        weights = self.weights.subset(self.used_weights())
        with atomic_write(npz_path, "wb") as f:
            np.savez(f, **weights.arrays)
        with atomic_write(mlir_path, "w") as f:
            f.write(str(self.module))
            f.write("\n")
        return npz_path

    @classmethod
    def load(cls, mlir_path: Path | str) -> IRModel:
        mlir_path = Path(mlir_path)
        try:
            text = mlir_path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CompilerError(f"cannot read {mlir_path}: {_reason(exc)}") from None
        module = parse_module(text, str(mlir_path))
        weights = load_weights(mlir_path.with_suffix(".npz"))
        model = cls(module, weights)
        missing = sorted(model.used_weights() - set(weights.arrays))
        if missing:
            raise CompilerError(
                f"{mlir_path.with_suffix('.npz')} lacks weight {missing[0]!r}"
                + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            )
        return model


def parse_module(text: str, source: str = "<text>") -> ModuleOp:
    try:
        module = Parser(make_context(), text, source).parse_module()
    except ParseError as exc:
        first = str(exc).strip().splitlines()
        raise CompilerError(f"{source}: not valid IR: {first[0] if first else exc}") from None
    return module


def load_weights(npz_path: Path) -> WeightTable:
    if not npz_path.exists():
        return WeightTable()
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            return WeightTable({k: z[k] for k in z.files})
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CompilerError(f"cannot read weights {npz_path}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _specs(attrs: ArrayAttr | None, types: tuple[Attribute, ...], kind: str) -> list[TensorSpec]:
    """Inputs/outputs with the ONNX names in `onnx.name` (`input0`... where there is none)."""
    specs = []
    for i, t in enumerate(types):
        d = attrs.data[i] if attrs is not None and i < len(attrs.data) else None
        name = d.data.get(NAME_ATTR) if isinstance(d, DictionaryAttr) else None
        assert isinstance(t, TensorType)
        specs.append(
            TensorSpec(
                name.data if isinstance(name, StringAttr) else f"{kind}{i}",
                tuple(t.get_shape()),
                numpy_dtype(t.element_type),
            )
        )
    return specs
