"""The model's function in a module (every layer needs to find it)."""

from __future__ import annotations

from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp

from dialects.errors import CompilerError


def main_func(module: ModuleOp) -> FuncOp:
    """The model's function: `main`, or the only function in the module."""
    funcs = [op for op in module.ops if isinstance(op, FuncOp)]
    for func in funcs:
        if func.sym_name.data == "main":
            return func
    if len(funcs) != 1:
        raise CompilerError(f"expected one function `main` in the module, found {len(funcs)}")
    return funcs[0]
